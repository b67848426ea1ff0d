"""BuildConfig and Build fields are honoured or refused, never accepted and ignored (DESIGN.md "Rules").

Against the real API server over HTTPS: what the builder cannot honour is 422 naming the field, nothing stored:

- ``output.to`` and ``dockerStrategy.from`` are registry references (``kind: DockerImage``) or name an Image of
  the namespace (``kind: Image``, resolved by the build controller when the build starts): another kind, an
  Image "name" that is no Image's name, or a ``namespace``, would be pushed to or pulled as the literal name;
- an ``ImageChange`` trigger follows an Image object (``imageChange.from: {kind: Image, name}``), named unless
  ``dockerStrategy.from`` is an Image (then it follows that one), with nothing else in it; a ``Generic`` trigger
  needs a secret, or its webhook can never be called;
- a source has what its type needs (``git`` for Git, ``dockerfile`` for Dockerfile) and nothing another type
  needs (``git`` beside Binary or Dockerfile would be ignored).

And with :func:`dockyard.agent.builds.run_build` (what the builder process runs) against the real Podman service
and a registry: ``source.dockerfile`` is the Dockerfile built for Git and Binary sources too, written at
``dockerStrategy.dockerfilePath`` (default ``Dockerfile``) in ``contextDir``, over the source's own file.
"""

from __future__ import annotations

import copy
import io
import tarfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.agent import builds
from dockyard.api import objects as api_objects
from dockyard.registry import server
from integration.test_build_digests import ListSink, pulled_files
from integration.test_build_source_escapes import git_repo

GROUP = "/apis/dockyard.dev/v1alpha1/namespaces/default"
BCS = f"{GROUP}/buildconfigs"
BUILDS = f"{GROUP}/builds"
TO = {"kind": "DockerImage", "name": "127.0.0.1:5000/fields:latest"}
BC: dict[str, Any] = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "BuildConfig",
    "metadata": {"name": "fields"},
    "spec": {
        "source": {"type": "Dockerfile", "dockerfile": "FROM scratch\n"},
        "strategy": {"type": "Docker"},
        "output": {"to": TO},
    },
}


def config(**spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(BC)
    body["spec"].update(copy.deepcopy(spec))
    return body


def refused(api: httpx.Client, body: dict[str, Any], field: str, *words: str, url: str = BCS) -> dict[str, Any]:
    """POST ``body``: 422 Invalid whose one cause names ``field`` (with ``words`` in its message); nothing stored."""
    resp = api.post(url, json=body)
    assert resp.status_code == 422, resp.text
    status = resp.json()
    assert status["reason"] == "Invalid", status
    causes = status["details"]["causes"]
    assert [c["field"] for c in causes] == [field], causes
    for word in words:  # the server starts a cause's message lowercase
        assert word.lower() in causes[0]["message"].lower(), causes
    assert api.get(f"{url}/{body['metadata']['name']}").status_code == 404
    return causes[0]


def accepted(api: httpx.Client, body: dict[str, Any], url: str = BCS) -> dict[str, Any]:
    resp = api.post(url, json=body)
    assert resp.status_code == 201, resp.text
    assert api.delete(f"{url}/{body['metadata']['name']}").status_code == 200
    return resp.json()  # type: ignore[no-any-return]


# --- output.to and dockerStrategy.from: registry references, or an Image of the namespace -----------------------


@pytest.mark.parametrize("kind", ["ImageStreamTag", "ImageStreamImage", "dockerimage", "image"])
def test_output_to_of_another_kind_than_docker_image_or_image_is_refused(api: httpx.Client, kind: str) -> None:
    body = config(output={"to": {"kind": kind, "name": "app"}})
    cause = refused(api, body, "spec.output.to.kind", f'"{kind}"', '"DockerImage"', '"Image"')
    assert cause["message"].lower().startswith("unsupported value"), cause


@pytest.mark.parametrize("kind", ["ImageStreamTag", "ImageStreamImage"])
def test_docker_strategy_from_of_another_kind_than_docker_image_or_image_is_refused(
    api: httpx.Client, kind: str
) -> None:
    body = config(strategy={"type": "Docker", "dockerStrategy": {"from": {"kind": kind, "name": "base"}}})
    refused(api, body, "spec.strategy.dockerStrategy.from.kind", f'"{kind}"', '"DockerImage"', '"Image"')


@pytest.mark.parametrize("field", ["output.to", "strategy.dockerStrategy.from"])
def test_a_registry_reference_under_kind_image_is_refused(api: httpx.Client, field: str) -> None:
    """``to: {kind: Image, name: 127.0.0.1:15000/audit/outkind:v1}`` was once pushed to that literal reference:
    under ``kind: Image`` the name is an Image's (a lowercase RFC 1123 subdomain)."""
    ref = {"kind": "Image", "name": "127.0.0.1:15000/audit/outkind:v1"}
    if field == "output.to":
        body = config(output={"to": ref})
    else:
        body = config(strategy={"type": "Docker", "dockerStrategy": {"from": ref}})
    refused(api, body, f"spec.{field}.name", "Image")


def test_image_references_are_accepted(api: httpx.Client) -> None:
    """``kind: Image`` names an Image of the BuildConfig's namespace, resolved when each build starts."""
    got = accepted(
        api,
        config(
            output={"to": {"kind": "Image", "name": "app"}},
            strategy={"type": "Docker", "dockerStrategy": {"from": {"kind": "Image", "name": "base"}}},
        ),
    )
    assert got["spec"]["output"]["to"] == {"kind": "Image", "name": "app"}
    assert got["spec"]["strategy"]["dockerStrategy"]["from"] == {"kind": "Image", "name": "base"}


def test_a_namespace_on_an_image_reference_is_refused(api: httpx.Client) -> None:
    body = config(output={"to": {**TO, "namespace": "other"}})
    refused(api, body, "spec.output.to.namespace", "not supported")
    from_ = {"kind": "DockerImage", "name": "127.0.0.1:5000/base:1", "namespace": "other"}
    body = config(strategy={"type": "Docker", "dockerStrategy": {"from": from_}})
    refused(api, body, "spec.strategy.dockerStrategy.from.namespace", "not supported")


def test_a_build_is_checked_as_its_config_is(api: httpx.Client) -> None:
    body = config(output={"to": {"kind": "ImageStreamTag", "name": "app:latest"}})
    body["kind"], body["metadata"]["name"] = "Build", "fields-1"
    refused(api, body, "spec.output.to.kind", '"ImageStreamTag"', url=BUILDS)


def test_docker_image_references_are_accepted(api: httpx.Client) -> None:
    from_ = {"kind": "DockerImage", "name": "127.0.0.1:5000/base:1"}
    accepted(api, config(strategy={"type": "Docker", "dockerStrategy": {"from": from_}}))
    got = accepted(api, config(output={"to": {"name": "127.0.0.1:5000/fields:v2"}}))
    assert got["spec"]["output"]["to"] == {"kind": "DockerImage", "name": "127.0.0.1:5000/fields:v2"}  # defaulted


# --- triggers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "trigger,field,words",
    [
        (
            {"type": "ImageChange", "imageChange": {"from": {"kind": "DockerImage", "name": "base"}}},
            "spec.triggers[0].imageChange.from.kind",
            ['"DockerImage"', '"Image"'],
        ),
        (
            {"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "base"}}},
            "spec.triggers[0].imageChange.from.kind",
            ['"ImageStreamTag"'],
        ),
        (
            {"type": "ImageChange", "imageChange": {"from": {"name": "base"}, "paused": True}},
            "spec.triggers[0].imageChange.paused",
            [],
        ),
        (
            {"type": "ImageChange", "imageChange": {"from": {"kind": "Image", "name": "base"}, "bogus": 1}},
            "spec.triggers[0].imageChange.bogus",
            [],
        ),
        (
            {"type": "ImageChange", "imageChange": {"from": {"kind": "Image", "name": "base", "namespace": "o"}}},
            "spec.triggers[0].imageChange.from.namespace",
            ["not supported"],
        ),
        (
            {"type": "ImageChange", "imageChange": {"from": {"kind": "Image", "name": "Not_An_Image"}}},
            "spec.triggers[0].imageChange.from.name",
            [],
        ),
        ({"type": "ImageChange", "imageChange": {}}, "spec.triggers[0].imageChange.from", ["dockerStrategy.from"]),
        ({"type": "ImageChange"}, "spec.triggers[0].imageChange", ["Required value"]),
        ({"type": "Generic"}, "spec.triggers[0].generic", ["Required value"]),
        ({"type": "Generic", "generic": {}}, "spec.triggers[0].generic.secretReference", ["Required value"]),
        ({"type": "Generic", "generic": {"secret": ""}}, "spec.triggers[0].generic.secretReference", []),
        (
            {"type": "Generic", "generic": {"secret": "s3cr3t", "allowEnv": True}},
            "spec.triggers[0].generic.allowEnv",
            [],
        ),
        ({"type": "ConfigChange", "generic": {"secret": "s3cr3t"}}, "spec.triggers[0].generic", ["Forbidden"]),
        (
            {"type": "Generic", "generic": {"secret": "s3cr3t"}, "imageChange": {"from": {"name": "base"}}},
            "spec.triggers[0].imageChange",
            ["Forbidden"],
        ),
    ],
)
def test_a_trigger_that_could_never_fire_is_refused(
    api: httpx.Client, trigger: dict[str, Any], field: str, words: list[str]
) -> None:
    refused(api, config(triggers=[trigger]), field, *words)


def test_triggers_that_can_fire_are_accepted(api: httpx.Client) -> None:
    triggers = [
        {"type": "ConfigChange"},
        {"type": "ImageChange", "imageChange": {"from": {"kind": "Image", "name": "base"}}},
        {"type": "ImageChange", "imageChange": {"from": {"name": "other"}}},
        {"type": "Generic", "generic": {"secret": "s3cr3t"}},
        {"type": "Generic", "generic": {"secretReference": {"name": "hook"}}},
    ]
    got = accepted(api, config(triggers=triggers))
    assert got["spec"]["triggers"][2]["imageChange"]["from"] == {"kind": "Image", "name": "other"}  # defaulted


def test_an_image_change_trigger_without_from_follows_an_image_docker_strategy_from(api: httpx.Client) -> None:
    """OpenShift's default: an ImageChange trigger without ``from`` follows the strategy's ``from``, here when that
    is ``kind: Image``; with a registry reference there is nothing to follow (422 naming ``from``)."""
    triggers = [{"type": "ConfigChange"}, {"type": "ImageChange", "imageChange": {}}]
    strategy = {"type": "Docker", "dockerStrategy": {"from": {"kind": "Image", "name": "base"}}}
    got = accepted(api, config(triggers=triggers, strategy=strategy))
    assert got["spec"]["triggers"][1] == {"type": "ImageChange", "imageChange": {}}
    strategy = {"type": "Docker", "dockerStrategy": {"from": {"kind": "DockerImage", "name": "127.0.0.1:5000/b:1"}}}
    refused(api, config(triggers=triggers, strategy=strategy), "spec.triggers[1].imageChange.from", "Required value")


# --- sources: what each type needs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source,field,words",
    [
        ({"type": "Git"}, "spec.source.git", ["Required value"]),
        ({}, "spec.source.git", ["Required value"]),  # type defaults to Git
        ({"type": "Git", "dockerfile": "FROM scratch\n"}, "spec.source.git", ["Required value"]),
        ({"type": "Dockerfile"}, "spec.source.dockerfile", ["Required value"]),
        ({"type": "Dockerfile", "dockerfile": ""}, "spec.source.dockerfile", []),
        ({"type": "Binary", "git": {"uri": "https://example.com/r.git"}}, "spec.source.git", ["Forbidden"]),
        (
            {"type": "Dockerfile", "dockerfile": "FROM scratch\n", "git": {"uri": "https://example.com/r.git"}},
            "spec.source.git",
            ["Forbidden"],
        ),
        ({"type": "Binary", "sourceSecret": {"name": "creds"}}, "spec.source.sourceSecret", ["Forbidden"]),
        (
            {"type": "Dockerfile", "dockerfile": "FROM scratch\n", "sourceSecret": {"name": "creds"}},
            "spec.source.sourceSecret",
            ["Forbidden"],
        ),
    ],
)
def test_a_source_without_what_its_type_needs_is_refused(
    api: httpx.Client, source: dict[str, Any], field: str, words: list[str]
) -> None:
    refused(api, config(source=source), field, *words)


def test_sources_with_what_their_type_needs_are_accepted(api: httpx.Client) -> None:
    git = {"uri": "https://example.com/r.git"}
    accepted(api, config(source={"type": "Git", "git": git}))
    accepted(api, config(source={"type": "Git", "git": git, "dockerfile": "FROM scratch\n", "contextDir": "app"}))
    accepted(api, config(source={"type": "Binary"}))
    accepted(api, config(source={"type": "Binary", "dockerfile": "FROM scratch\n"}))


# --- source.dockerfile is the Dockerfile built, for every source type (real builds) --------------------------------

REPO_DOCKERFILE = "FROM scratch\nCOPY from-repo.txt /\n"
INLINE = "FROM scratch\nCOPY from-inline.txt /\n"


def a_build(source: dict[str, Any], output: str, strategy: dict[str, Any] | None = None) -> api_objects.Build:
    return api_objects.Build.model_validate(
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Build",
            "metadata": {
                "name": "inline-1",
                "namespace": "t",
                "uid": str(uuid.uuid4()),
                "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "spec": {
                "source": source,
                "strategy": {"type": "Docker", "dockerStrategy": strategy or {}},
                "output": {"to": {"kind": "DockerImage", "name": output}},
            },
        }
    )


def built_files(podman_engine: Any, build: api_objects.Build, tmp_path: Path, **inputs: Any) -> dict[str, bytes]:
    """Run ``build``; the files of the image it pushed."""
    sink = ListSink()
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    result = builds.run_build(podman_engine.client, build, sink, builds.BuildInputs(scratch=scratch, **inputs))
    assert result.succeeded, (result.reason, result.message, sink.lines[-20:])
    repository = build.spec.output.to.name.rsplit(":", 1)[0]
    return pulled_files(f"{repository}@{result.image_digest}", tmp_path / f"pull-{uuid.uuid4().hex[:8]}")


def test_an_inline_dockerfile_replaces_a_git_sources_own(
    podman_engine: Any, registry_server: server.RegistryServer, tmp_path: Path
) -> None:
    repo = git_repo(
        tmp_path / "repo",
        {"Dockerfile": REPO_DOCKERFILE, "from-repo.txt": "repo\n", "from-inline.txt": "inline\n"},
        {},
    )
    source = {"type": "Git", "git": {"uri": f"file://{repo}"}, "dockerfile": INLINE}
    files = built_files(podman_engine, a_build(source, f"{registry_server.address}/inline-git:latest"), tmp_path)
    assert set(files) == {"from-inline.txt"}, files


def test_an_inline_dockerfile_goes_where_context_dir_and_dockerfile_path_say(
    podman_engine: Any, registry_server: server.RegistryServer, tmp_path: Path
) -> None:
    """OpenShift writes it into ``contextDir``; dockyard writes it at ``dockerfilePath`` there, the file it builds."""
    repo = git_repo(
        tmp_path / "repo",
        {
            "Dockerfile": "FROM scratch\nCOPY app/from-repo.txt /\n",
            "app/docker/web.Dockerfile": REPO_DOCKERFILE,
            "app/from-repo.txt": "repo\n",
            "app/from-inline.txt": "inline\n",
        },
        {},
    )
    source = {"type": "Git", "git": {"uri": f"file://{repo}"}, "contextDir": "app", "dockerfile": INLINE}
    build = a_build(
        source, f"{registry_server.address}/inline-path:latest", strategy={"dockerfilePath": "docker/web.Dockerfile"}
    )
    assert set(built_files(podman_engine, build, tmp_path)) == {"from-inline.txt"}


def test_an_inline_dockerfile_replaces_a_link_without_writing_through_it(
    podman_engine: Any, registry_server: server.RegistryServer, tmp_path: Path
) -> None:
    """A repository's ``Dockerfile`` linked to a host file: the inline one replaces the link, the host file stays."""
    victim = tmp_path / "host" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("FROM scratch\nhost file\n")
    repo = git_repo(tmp_path / "repo", {"from-inline.txt": "inline\n"}, {"Dockerfile": str(victim)})
    source = {"type": "Git", "git": {"uri": f"file://{repo}"}, "dockerfile": INLINE}
    files = built_files(podman_engine, a_build(source, f"{registry_server.address}/inline-link:latest"), tmp_path)
    assert set(files) == {"from-inline.txt"}
    assert victim.read_text() == "FROM scratch\nhost file\n"


def test_an_inline_dockerfile_path_through_a_link_out_of_the_source_fails_the_build(
    podman_engine: Any, registry_server: server.RegistryServer, tmp_path: Path
) -> None:
    outside = tmp_path / "host"
    outside.mkdir()
    repo = git_repo(tmp_path / "repo", {"from-inline.txt": "inline\n"}, {"d": str(outside)})
    source = {"type": "Git", "git": {"uri": f"file://{repo}"}, "dockerfile": INLINE}
    build = a_build(source, f"{registry_server.address}/inline-out:latest", strategy={"dockerfilePath": "d/Dockerfile"})
    sink = ListSink()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = builds.run_build(podman_engine.client, build, sink, builds.BuildInputs(scratch=scratch))
    assert not result.succeeded and result.reason == "FetchSourceFailed", (result, sink.lines)
    assert "d/Dockerfile" in result.message, result.message
    assert list(outside.iterdir()) == []


def test_an_inline_dockerfile_replaces_a_binary_archives_own(
    podman_engine: Any, registry_server: server.RegistryServer, tmp_path: Path
) -> None:
    archive = tmp_path / "context.tar"
    with tarfile.open(archive, "w") as tar:
        for name, text in {
            "Dockerfile": REPO_DOCKERFILE,
            "from-repo.txt": "repo\n",
            "from-inline.txt": "inline\n",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    build = a_build({"type": "Binary", "dockerfile": INLINE}, f"{registry_server.address}/inline-bin:latest")
    assert set(built_files(podman_engine, build, tmp_path, binary=archive)) == {"from-inline.txt"}


def test_a_dockerfile_source_honours_dockerfile_path(
    podman_engine: Any, registry_server: server.RegistryServer, tmp_path: Path
) -> None:
    """A Dockerfile source is only ``dockerfile``: built from where ``dockerfilePath`` says, not a missing file."""
    inline = "FROM scratch\nLABEL inline=yes\n"
    build = a_build(
        {"type": "Dockerfile", "dockerfile": inline},
        f"{registry_server.address}/inline-only:latest",
        strategy={"dockerfilePath": "docker/Dockerfile.web"},
    )
    sink = ListSink()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = builds.run_build(podman_engine.client, build, sink, builds.BuildInputs(scratch=scratch))
    assert result.succeeded, (result.reason, result.message, sink.lines[-20:])
