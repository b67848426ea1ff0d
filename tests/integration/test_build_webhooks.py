"""Build sources and the generic webhook over real HTTPS: git option injection, secrets in paths.

The attack: a webhook payload ``{"git": {"commit": "--pathspec-from-file=FILE"}}``
reached ``git checkout`` as an option and FILE's contents came back in the
build log. Refs, commits and URIs are now checked at admission; the webhook
answers 400 naming the field and makes no Build.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dockyard.apiserver import buildhooks

GV = "/apis/dockyard.dev/v1alpha1/namespaces/default"
BCS = f"{GV}/buildconfigs"
BUILDS = f"{GV}/builds"
SECRET = "s3cr3t-hook-value-9f2e"


def buildconfig(name: str = "hook", *, git: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildConfig",
        "metadata": {"name": name},
        "spec": {
            "source": {"type": "Git", "git": git or {"uri": "https://git.example/app.git", "ref": "main"}},
            "output": {"to": {"name": "127.0.0.1:5000/hook:latest"}},
            "triggers": [{"type": "Generic", "generic": {"secret": SECRET}}],
        },
    }


def builds(api: httpx.Client) -> list[str]:
    return [b["metadata"]["name"] for b in api.get(BUILDS).json()["items"]]


def hook(apiserver: Any, secret: str = SECRET, name: str = "hook", kind: str = "generic") -> str:
    return f"{apiserver.url}{BCS}/{name}/webhooks/{secret}/{kind}"


def post_hook(apiserver: Any, payload: Any = None, **kw: str) -> httpx.Response:
    with httpx.Client(verify=apiserver.ssl_context()) as anon:
        return anon.post(hook(apiserver, **kw), json=payload)


@pytest.mark.parametrize(
    "field,payload",
    [
        ("git.commit", {"git": {"commit": "--pathspec-from-file=/etc/hostname"}}),
        ("git.commit", {"git": {"commit": "-x"}}),
        ("git.commit", {"git": {"commit": "a..b"}}),
        ("git.commit", {"git": {"commit": 12345}}),
        ("git.ref", {"git": {"ref": "--upload-pack=touch /tmp/pwned"}}),
        ("git.ref", {"git": {"ref": "refs/heads/x y"}}),
        ("git.author", {"git": {"commit": "abcd1234", "author": "me"}}),
        ("git.author.name", {"git": {"commit": "abcd1234", "author": {"name": ["x"]}}}),
        ("git.message", {"git": {"commit": "abcd1234", "message": {"x": 1}}}),
        ("git", {"git": "main"}),
    ],
)
def test_webhook_refuses_a_hostile_revision_and_makes_no_build(
    apiserver: Any, api: httpx.Client, field: str, payload: Any
) -> None:
    assert api.post(BCS, json=buildconfig()).status_code == 201
    resp = post_hook(apiserver, payload)
    assert resp.status_code == 400, resp.text
    status = resp.json()
    assert status["kind"] == "Status" and status["reason"] == "BadRequest"
    assert field in status["message"]
    assert [c["field"] for c in status["details"]["causes"]] == [field]
    assert builds(api) == []
    assert api.get(f"{BCS}/hook").json().get("status", {}).get("lastVersion") in (None, 0)


def test_webhook_accepts_a_commit_and_a_branch_and_answers_with_the_build_name_only(
    apiserver: Any, api: httpx.Client
) -> None:
    assert api.post(BCS, json=buildconfig()).status_code == 201
    sha = "0123456789abcdef0123456789abcdef01234567"
    resp = post_hook(apiserver, {"git": {"commit": sha, "author": {"name": "A", "email": "a@b"}, "message": "m"}})
    assert resp.status_code == 202, resp.text
    assert resp.json() == {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Build",
        "metadata": {"name": "hook-1", "namespace": "default"},
    }
    build = api.get(f"{BUILDS}/hook-1").json()
    assert build["spec"]["source"]["git"]["ref"] == sha
    assert build["spec"]["revision"]["git"]["commit"] == sha
    resp = post_hook(apiserver, {"git": {"ref": "refs/heads/release-1.0"}})
    assert resp.status_code == 202, resp.text
    assert api.get(f"{BUILDS}/hook-2").json()["spec"]["source"]["git"]["ref"] == "refs/heads/release-1.0"
    assert post_hook(apiserver).status_code == 202  # no payload: the config's own ref
    assert SECRET not in api.get(BUILDS).text


@pytest.mark.parametrize(
    "git,field",
    [
        ({"uri": "https://git.example/app.git", "ref": "--upload-pack=touch /tmp/pwned"}, "spec.source.git.ref"),
        ({"uri": "https://git.example/app.git", "ref": "-b"}, "spec.source.git.ref"),
        ({"uri": "https://git.example/app.git", "ref": "main:x"}, "spec.source.git.ref"),
        ({"uri": "ext::sh -c touch% /tmp/pwned"}, "spec.source.git.uri"),
        ({"uri": "fd::3"}, "spec.source.git.uri"),
        ({"uri": "--upload-pack=touch /tmp/pwned"}, "spec.source.git.uri"),
        ({"uri": "ssh://-oProxyCommand=touch%20/tmp/pwned/r"}, "spec.source.git.uri"),
        ({"uri": "ftp://git.example/app.git"}, "spec.source.git.uri"),
    ],
)
def test_buildconfig_with_a_hostile_git_source_is_invalid(api: httpx.Client, git: dict[str, Any], field: str) -> None:
    resp = api.post(BCS, json=buildconfig(git=git))
    assert resp.status_code == 422, resp.text
    status = resp.json()
    assert [c["field"] for c in status["details"]["causes"]] == [field]
    assert field in status["message"]
    assert api.get(f"{BCS}/hook").status_code == 404


def test_instantiate_with_a_hostile_revision_is_invalid(api: httpx.Client) -> None:
    assert api.post(BCS, json=buildconfig()).status_code == 201
    resp = api.post(
        f"{BCS}/hook/instantiate",
        json={"kind": "BuildRequest", "revision": {"git": {"commit": "--pathspec-from-file=/x"}}},
    )
    assert resp.status_code == 422, resp.text
    fields = {c["field"] for c in resp.json()["details"]["causes"]}
    assert "spec.revision.git.commit" in fields
    assert builds(api) == []


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every log record of the process (root and uvicorn's own non-propagating loggers), at DEBUG."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield seen
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


def _text(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text


def test_no_log_record_or_answer_holds_the_webhook_secret(
    apiserver: Any, api: httpx.Client, records: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api.post(BCS, json=buildconfig()).status_code == 201
    answers = [
        post_hook(apiserver, {"git": {"commit": "-x"}}),  # 400
        post_hook(apiserver, name="nosuch"),  # 403
        post_hook(apiserver, kind="github"),  # 404
        api.get(hook(apiserver)),  # not a POST
        api.post(hook(apiserver).rsplit("/", 1)[0]),  # too short a path
        httpx.post(f"{hook(apiserver)}/x", verify=apiserver.ssl_context()),  # too long, no token
    ]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(buildhooks, "_webhook", broken)
    answers.append(post_hook(apiserver))  # 500
    assert answers[-1].status_code == 500
    assert [a.status_code for a in answers[:3]] == [400, 403, 404]
    for answer in answers:
        assert SECRET not in answer.text and SECRET not in str(answer.headers)
    assert any("internal error" in r.getMessage() for r in records)
    server_side = [r for r in records if not r.name.startswith(("httpx", "httpcore"))]  # not the test's client
    leaked = [f"{r.name}: {_text(r)}" for r in server_side if SECRET in _text(r)]
    assert leaked == []


def test_identities_below_admin_never_read_an_inline_webhook_secret(apiserver: Any, api: Any) -> None:
    """view (and the node) may read BuildConfigs, but an inline Generic secret would let them start builds."""
    inline = "inline-webhook-secret-42"
    config = {
        "metadata": {"name": "inline"},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/x:1"}},
            "triggers": [{"type": "Generic", "generic": {"secret": inline}}],
        },
    }
    path = "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs"
    assert api.post(path, json=config).status_code == 201
    assert api.get(f"{path}/inline").json()["spec"]["triggers"][0]["generic"]["secret"] == inline
    for token in (apiserver.view_token, apiserver.node_token):
        with apiserver.client(token=token) as reader:
            for resp in (
                reader.get(f"{path}/inline"),
                reader.get(path),
                reader.get(path, params={"watch": "true", "timeoutSeconds": "1"}),
                reader.get(path, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}),
            ):
                assert resp.status_code == 200, resp.text
                assert inline not in resp.text
            got = reader.get(f"{path}/inline").json()
            assert got["spec"]["triggers"][0]["generic"]["secret"] == "<redacted>"
            hook = reader.post(f"{path}/inline/webhooks/<redacted>/generic", json={})
            assert hook.status_code in (403, 404)


def test_identities_below_admin_never_read_an_inline_webhook_secret_in_the_last_applied_annotation(
    apiserver: Any, api: Any
) -> None:
    """``kubectl apply`` keeps the whole manifest, inline secret included, in the
    ``kubectl.kubernetes.io/last-applied-configuration`` annotation: view and the node get it redacted there too
    (found by an audit: view read the secret from the annotation, then started a build through the webhook)."""
    inline = "inline-webhook-secret-in-annotation-43"
    config: dict[str, Any] = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildConfig",
        "metadata": {"name": "applied", "namespace": "default"},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/x:1"}},
            "triggers": [{"type": "Generic", "generic": {"secret": inline}}],
        },
    }
    applied = json.dumps(config)
    config["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": applied, "other": inline}
    path = "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs"
    assert api.post(path, json=config).status_code == 201
    assert (
        api.get(f"{path}/applied").json()["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        == applied
    )
    for token in (apiserver.view_token, apiserver.node_token):
        with apiserver.client(token=token) as reader:
            for resp in (
                reader.get(f"{path}/applied"),
                reader.get(path),
                reader.get(path, params={"watch": "true", "timeoutSeconds": "1"}),
                reader.get(path, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}),
            ):
                assert resp.status_code == 200, resp.text
                assert inline not in resp.text
            got = reader.get(f"{path}/applied").json()["metadata"]["annotations"]
            shown = json.loads(got["kubectl.kubernetes.io/last-applied-configuration"])
            assert shown["spec"]["triggers"][0]["generic"]["secret"] == "<redacted>"
            assert shown["spec"]["output"] == config["spec"]["output"]  # the rest of the manifest is as applied
            assert got["other"] == "<redacted>"  # wherever a reader below admin would find the secret


def test_a_live_watch_shared_by_admin_and_view_shows_view_the_secret_redacted(apiserver: Any, api: Any) -> None:
    """Events written straight to the watchers' connections are encoded per view: the admin's stream and the
    view identity's, open together on one resource, never share a chunk."""
    path = "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs"
    rv = api.get(path).json()["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "5"}
    with (
        apiserver.client(token=apiserver.view_token, timeout=30) as view,
        api.stream("GET", path, params=params) as admin_stream,
        view.stream("GET", path, params=params) as view_stream,
    ):
        assert api.post(BCS, json=buildconfig("live")).status_code == 201
        admin_event = json.loads(next(line for line in admin_stream.iter_lines() if line.strip()))
        view_line = next(line for line in view_stream.iter_lines() if line.strip())
    assert admin_event["object"]["spec"]["triggers"][0]["generic"]["secret"] == SECRET
    assert SECRET not in view_line
    assert json.loads(view_line)["object"]["spec"]["triggers"][0]["generic"]["secret"] == "<redacted>"


def test_a_secret_reference_authenticates_the_webhook_with_its_webhooksecretkey(apiserver: Any, api: Any) -> None:
    """OpenShift's ``generic.secretReference``: the webhook's secret is the referenced Secret's ``WebHookSecretKey``.
    Only that value starts a Build; another value, a Secret without the key, or a missing Secret is 403."""
    import base64

    value = "ref-hook-value-7c1d"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hook-key"},
        "data": {buildhooks.WEBHOOK_SECRET_KEY: base64.b64encode(value.encode()).decode()},
    }
    assert api.post("/api/v1/namespaces/default/secrets", json=secret).status_code == 201
    for name, ref in (("byref", "hook-key"), ("nokey", "other-key"), ("gone", "no-such-secret")):
        body = buildconfig(name)
        body["spec"]["triggers"] = [{"type": "Generic", "generic": {"secretReference": {"name": ref}}}]
        assert api.post(BCS, json=body).status_code == 201
    other = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "other-key"}, "stringData": {"x": value}}
    assert api.post("/api/v1/namespaces/default/secrets", json=other).status_code == 201

    assert post_hook(apiserver, secret="wrong-value", name="byref").status_code == 403
    assert post_hook(apiserver, secret=value, name="nokey").status_code == 403
    assert post_hook(apiserver, secret=value, name="gone").status_code == 403
    assert not [b for b in builds(api) if b.startswith(("byref", "nokey", "gone"))]
    resp = post_hook(apiserver, secret=value, name="byref")
    assert resp.status_code == 202, resp.text
    assert [b for b in builds(api) if b.startswith("byref")] == ["byref-1"]
