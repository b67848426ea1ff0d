"""``PodLogOptions`` parsing and the container choice (pure: :mod:`dockyard.api.podlogs`)."""

from __future__ import annotations

import pytest

from dockyard.api import errors, podlogs

NOW = 1_800_000_000.0


def test_defaults_and_every_option_read_back_for_the_agent():
    assert podlogs.parse({}, pod="p", now=NOW) == podlogs.LogOptions()
    options = podlogs.parse(
        {
            "container": ["c"],
            "follow": ["true"],
            "previous": ["1"],
            "timestamps": ["true"],
            "tailLines": ["0"],
            "limitBytes": ["10"],
            "sinceSeconds": ["60"],
        },
        pod="p",
        now=NOW,
    )
    assert options == podlogs.LogOptions("c", True, True, NOW - 60, True, 0, 10)
    assert podlogs.to_query(options, pod_uid="u") == {
        "podUID": "u",
        "follow": "true",
        "previous": "true",
        "timestamps": "true",
        "since": repr(NOW - 60),
        "tailLines": "0",
        "limitBytes": "10",
    }
    assert podlogs.parse({"sinceTime": ["2027-01-15T08:00:00Z"]}, pod="p", now=NOW).since == 1_800_000_000.0 + 0


def test_every_bad_option_is_one_cause_naming_it():
    with pytest.raises(errors.Invalid) as err:
        podlogs.parse(
            {"tailLines": ["x"], "limitBytes": ["0"], "sinceSeconds": ["-3"], "timestamps": ["yes"]}, pod="p", now=NOW
        )
    assert [c.field for c in err.value.causes] == ["timestamps", "tailLines", "limitBytes", "sinceSeconds"]
    assert err.value.message.startswith('PodLogOptions "p" is invalid: ')


@pytest.mark.parametrize(
    "spec, asked, picked",
    [
        ({"containers": [{"name": "a"}]}, "", "a"),
        ({"containers": [{"name": "a"}, {"name": "b"}]}, "b", "b"),
        ({"containers": [{"name": "a"}], "initContainers": [{"name": "init"}]}, "init", "init"),
    ],
)
def test_the_container_is_the_only_one_or_the_one_named(spec, asked, picked):
    pod = {"metadata": {"name": "p"}, "spec": spec}
    assert podlogs.container_for(podlogs.LogOptions(container=asked), pod) == picked


def test_several_containers_need_a_name_and_a_name_must_exist():
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    with pytest.raises(
        errors.BadRequest, match=r"a container name must be specified for pod p, choose one of: \[a b\]"
    ):
        podlogs.container_for(podlogs.LogOptions(), pod)
    with pytest.raises(errors.BadRequest, match="container c is not valid for pod p"):
        podlogs.container_for(podlogs.LogOptions(container="c"), pod)
