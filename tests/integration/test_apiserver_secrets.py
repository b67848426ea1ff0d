"""Secret data never comes back in errors, Events or logs; bodies and time are bounded."""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.apiserver import crud
from dockyard.client import connection, events

SECRETS = "/api/v1/namespaces/default/secrets"
PODS = "/api/v1/namespaces/default/pods"
EVENTS = "/api/v1/namespaces/default/events"
PLAIN = "hunter2-TOPSECRET-value"
ENCODED = base64.b64encode(PLAIN.encode()).decode()
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def secret(name: str = "creds", **data: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "data": data or {"password": ENCODED},
    }


def assert_clean(resp: httpx.Response) -> None:
    assert PLAIN not in resp.text and ENCODED not in resp.text, resp.text


def test_secret_data_is_never_echoed_in_errors(api: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert api.post(SECRETS, json=secret()).status_code == 201
    for resp, code in [
        (api.post(SECRETS, json=secret()), 409),
        (api.post(SECRETS, json=secret("Bad_Name")), 422),
        (api.post(SECRETS, json=secret("other", password=PLAIN + "!")), 422),
        (api.post(SECRETS, json=secret("other", **{"bad key": ENCODED})), 422),
        (api.put(f"{SECRETS}/creds", json={**secret(), "metadata": {"name": "creds", "resourceVersion": "1"}}), 409),
        (
            api.patch(
                f"{SECRETS}/creds",
                json=[{"op": "add", "path": "/data/x", "value": PLAIN}, {"value": ENCODED}],
                headers=JSON_PATCH,
            ),
            400,
        ),
        (
            api.patch(
                f"{SECRETS}/creds", json=[{"op": "test", "path": "/data/password", "value": PLAIN}], headers=JSON_PATCH
            ),
            422,
        ),
        (api.patch(f"{SECRETS}/creds", json={"data": {"password": PLAIN}}, headers=MERGE), 422),
        (
            api.post(
                SECRETS,
                content=b'{"data": {"password": "' + PLAIN.encode() + b'"',
                headers={"Content-Type": "application/json"},
            ),
            400,
        ),
    ]:
        assert resp.status_code == code, resp.text
        assert_clean(resp)
    assert PLAIN not in caplog.text and ENCODED not in caplog.text


def test_string_data_is_stored_as_data(api: httpx.Client) -> None:
    created = api.post(SECRETS, json={"metadata": {"name": "s"}, "stringData": {"password": PLAIN}}).json()
    assert created["data"] == {"password": ENCODED} and "stringData" not in created


def test_events_about_secrets_carry_no_data(api: httpx.Client, apiserver: Any, tmp_path: Path) -> None:
    stored = api.post(SECRETS, json=secret()).json()
    conn = connection.connect(str(apiserver.kubeconfig(tmp_path / "kubeconfig")))
    recorder = events.EventRecorder(conn.lightkube(timeout=5), component="test")
    recorder.record(stored, events.NORMAL, "Rotated", f"clone https://u:{PLAIN}@example.com/x failed")
    listed = api.get(EVENTS, params={"fieldSelector": "involvedObject.kind=Secret"})
    assert listed.json()["items"] and listed.json()["items"][0]["reason"] == "Rotated"
    assert_clean(listed)


def test_tables_never_show_secret_values(api: httpx.Client) -> None:
    api.post(SECRETS, json=secret())
    table = api.get(SECRETS, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert table.json()["rows"][0]["cells"][:3] == ["creds", "Opaque", 1]
    assert_clean(table)


def test_bodies_over_3_mib_are_413_and_requests_are_bounded_in_time(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = secret("big", blob=base64.b64encode(b"x" * (3 * 1024 * 1024)).decode())
    resp = api.post(SECRETS, json=big)
    assert resp.status_code == 413 and resp.json()["reason"] == "RequestEntityTooLarge"

    real = crud.list_objects

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(crud, "list_objects", slow)
    started = time.monotonic()
    resp = api.get(PODS, params={"timeout": "200ms", "limit": "5"})  # a paged list: read from the store
    assert resp.status_code == 504 and resp.json()["reason"] == "Timeout"
    assert time.monotonic() - started < 0.9


@pytest.mark.parametrize(
    ("type_", "data", "fields"),
    [
        ("kubernetes.io/dockerconfigjson", {"other": ENCODED}, ["data[.dockerconfigjson]"]),
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": ENCODED}, ["data[.dockerconfigjson]"]),
        ("kubernetes.io/dockercfg", {}, ["data[.dockercfg]"]),
        ("kubernetes.io/basic-auth", {"user": ENCODED}, ["data[username]", "data[password]"]),
        ("kubernetes.io/ssh-auth", {"ssh-publickey": ENCODED}, ["data[ssh-privatekey]"]),
        ("kubernetes.io/tls", {"tls.crt": ENCODED}, ["data[tls.key]"]),
        ("kubernetes.io/service-account-token", {}, ["metadata.annotations[kubernetes.io/service-account.name]"]),
    ],
)
def test_a_secret_without_what_its_type_needs_is_422_naming_the_key(
    api: httpx.Client, type_: str, data: dict[str, str], fields: list[str]
) -> None:
    """``ValidateSecret``'s rules by type; the message never shows a value (here: not valid JSON)."""
    resp = api.post(SECRETS, json={**secret("typed"), "type": type_, "data": data})
    assert resp.status_code == 422, resp.text
    assert [c["field"] for c in resp.json()["details"]["causes"]] == fields, resp.text
    assert_clean(resp)
    assert api.get(f"{SECRETS}/typed").status_code == 404


def test_secrets_with_what_their_type_needs_are_accepted(api: httpx.Client) -> None:
    config = base64.b64encode(b'{"auths": {"127.0.0.1:5000": {"auth": "eDp5"}}}').decode()
    for i, (type_, data) in enumerate(
        [
            ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": config}),
            ("kubernetes.io/basic-auth", {"password": ENCODED}),
            ("kubernetes.io/tls", {"tls.crt": ENCODED, "tls.key": ENCODED}),
            ("example.com/custom", {"anything": ENCODED}),
        ]
    ):
        resp = api.post(SECRETS, json={**secret(f"ok-{i}"), "type": type_, "data": data})
        assert resp.status_code == 201, resp.text
