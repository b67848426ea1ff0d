"""ListOptions: the list and watch query parameters and the combinations Kubernetes forbids."""

from __future__ import annotations

import pytest

from dockyard.api import errors
from dockyard.apiserver import listopts


def test_defaults_and_values() -> None:
    opts = listopts.parse({})
    assert opts.revision is None and not opts.watch and opts.initial_events
    opts = listopts.parse({"resourceVersion": "12", "limit": "5", "continue": "t"})
    assert (opts.revision, opts.limit, opts.continue_token) == (12, 5, "t")
    assert listopts.parse({"limit": "0"}).limit is None
    assert listopts.parse({"limit": "999999999"}).limit == listopts.MAX_LIMIT
    watch = listopts.parse(
        {"watch": "true", "resourceVersion": "3", "allowWatchBookmarks": "true", "timeoutSeconds": "9"}
    )
    assert watch.watch and watch.bookmarks and watch.timeout == 9 and not watch.initial_events
    streaming = listopts.parse(
        {
            "watch": "1",
            "sendInitialEvents": "true",
            "allowWatchBookmarks": "true",
            "resourceVersionMatch": "NotOlderThan",
            "resourceVersion": "",
        }
    )
    assert streaming.initial_events and streaming.send_initial_events
    assert not listopts.parse({"watch": "true", "sendInitialEvents": "false"}).initial_events


@pytest.mark.parametrize(
    "query",
    [
        {"resourceVersionMatch": "NotOlderThan"},
        {"resourceVersionMatch": "Exact", "resourceVersion": "0"},
        {"resourceVersionMatch": "Sometimes", "resourceVersion": "4"},
        {"resourceVersionMatch": "Exact", "resourceVersion": "4", "continue": "x"},
        {"sendInitialEvents": "true"},
        {"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true"},
        {"watch": "true", "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan"},
        {"watch": "true", "resourceVersionMatch": "NotOlderThan", "resourceVersion": "3"},
    ],
)
def test_forbidden_combinations_are_422(query: dict[str, str]) -> None:
    with pytest.raises(errors.Invalid) as err:
        listopts.parse(query)
    assert err.value.code == 422 and err.value.details["kind"] == "ListOptions"


@pytest.mark.parametrize(
    "query",
    [
        {"resourceVersion": "x"},
        {"resourceVersion": "-1"},
        {"limit": "ten"},
        {"timeoutSeconds": "soon"},
        {"watch": "maybe"},
    ],
)
def test_malformed_values_are_400(query: dict[str, str]) -> None:
    with pytest.raises(errors.BadRequest):
        listopts.parse(query)
