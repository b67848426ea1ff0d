"""The dashboard over the real API server (HTTPS): open shells, token-only data, the API's authorization.

The browser tests (tests/e2e/test_dashboard.py) drive the same routes in Chromium; these check the HTTP
contract quickly and without an engine.
"""

from __future__ import annotations

import html
import re

import pytest

from dockyard.api import kinds

G = f"/apis/{kinds.GROUP}/{kinds.VERSION}/namespaces/default"
REPO = "127.0.0.1:5999/hello"
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def _seed(api) -> None:
    bc = {
        "apiVersion": kinds.API_VERSION,
        "kind": "BuildConfig",
        "metadata": {"name": "hello"},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM scratch\n"},
            "output": {"to": {"kind": "DockerImage", "name": f"{REPO}:latest"}},
        },
    }
    assert api.post(f"{G}/buildconfigs", json=bc).status_code == 201
    image = {
        "apiVersion": kinds.API_VERSION,
        "kind": "Image",
        "metadata": {"name": "hello"},
        "spec": {"repository": REPO, "tag": "latest"},
    }
    assert api.post(f"{G}/images", json=image).status_code == 201
    idp = {
        "apiVersion": kinds.API_VERSION,
        "kind": "ImageDeploy",
        "metadata": {"name": "hello"},
        "spec": {
            "imageRef": {"name": "hello"},
            "deployment": {
                "selector": {"matchLabels": {"app": "hello"}},
                "template": {
                    "metadata": {"labels": {"app": "hello"}},
                    "spec": {"containers": [{"name": "web", "image": f"{REPO}:latest"}]},
                },
            },
        },
    }
    assert api.post(f"{G}/imagedeploys", json=idp).status_code == 201
    status = {
        "status": {
            "latestImage": f"{REPO}@{D2}",
            "availableImage": f"{REPO}@{D2}",
            "history": [
                {"image": f"{REPO}@{D2}", "digest": D2, "deployedAt": "2025-01-02T00:00:00Z"},
                {"image": f"{REPO}@{D1}", "digest": D1, "deployedAt": "2025-01-01T00:00:00Z"},
            ],
        }
    }
    merge = {"Content-Type": "application/merge-patch+json"}
    assert api.patch(f"{G}/imagedeploys/hello/status", json=status, headers=merge).status_code == 200


@pytest.fixture
def seeded(apiserver):
    with apiserver.client() as api:
        _seed(api)
    return apiserver


def test_shells_are_open_carry_no_data_and_a_strict_csp(apiserver):
    with apiserver.client(token=None) as anon:
        for page in ("builds", "images", "deploys", "pushes", "events", "builds/default/hello-1"):
            resp = anon.get(f"/dashboard/{page}")
            assert resp.status_code == 200, page
            csp = resp.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert resp.headers["x-content-type-options"] == "nosniff"
            # no inline script: every <script> has a src
            assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", resp.text))
            assert "hx-get" in resp.text
        assert anon.get("/dashboard/static/htmx.min.js").status_code == 200
        assert anon.get("/dashboard/static/dashboard.js").headers["content-type"].startswith("text/javascript")
        assert anon.get("/dashboard/static/routes.py").status_code in (401, 404)
        assert anon.get("/dashboard/nosuchpage").status_code in (401, 404)


def test_fragments_and_buttons_need_the_bearer_token(seeded):
    with seeded.client(token=None) as anon:
        for path in ("/dashboard/f/builds", "/dashboard/f/deploys", "/dashboard/f/whoami"):
            assert anon.get(path).status_code == 401, path
        # a cross-site form post carries no Authorization header: nothing happens
        assert anon.post("/dashboard/f/buildconfigs/default/hello/instantiate").status_code == 401
    with seeded.client() as api:
        assert api.get(f"{G}/builds").json()["items"] == []


def test_admin_sees_write_buttons_and_view_does_not(seeded):
    with seeded.client() as admin:
        assert 'data-user="admin"' in admin.get("/dashboard/f/whoami").text
        builds = admin.get("/dashboard/f/builds").text
        assert 'data-action="start"' in builds
        deploys = admin.get("/dashboard/f/deploys").text
        assert 'data-action="rollback"' in deploys and "sha256:111111111111" in deploys
    with seeded.client(token=seeded.view_token) as view:
        assert 'data-user="view"' in view.get("/dashboard/f/whoami").text
        for page in ("builds", "images", "deploys", "pushes", "events"):
            resp = view.get(f"/dashboard/f/{page}")
            assert resp.status_code == 200, page
            assert "data-action" not in resp.text, page


def test_a_forged_write_with_the_view_token_gets_403(seeded):
    with seeded.client(token=seeded.view_token) as view:
        resp = view.post("/dashboard/f/buildconfigs/default/hello/instantiate")
        assert resp.status_code == 403
        assert 'User "view" cannot create resource "buildconfigs/instantiate"' in html.unescape(resp.text)
        assert view.post(f"{G}/buildconfigs/hello/instantiate", json={"kind": "BuildRequest"}).status_code == 403
        assert view.post("/dashboard/f/imagedeploys/default/hello/rollback").status_code == 403
    with seeded.client() as api:
        assert api.get(f"{G}/builds").json()["items"] == []


def test_start_build_and_cancel_through_the_api(seeded):
    with seeded.client() as admin:
        resp = admin.post("/dashboard/f/buildconfigs/default/hello/instantiate")
        assert resp.status_code == 200 and "hello-1" in resp.text
        build = admin.get(f"{G}/builds/hello-1").json()
        assert "dashboard by admin" in build["spec"]["triggeredBy"][0]["message"]
        page = admin.get("/dashboard/f/builds").text
        assert "hello-1" in page and 'data-action="cancel"' in page
        assert admin.post("/dashboard/f/builds/default/hello-1/cancel").status_code == 200
        assert admin.get(f"{G}/builds/hello-1").json()["status"]["cancelled"] is True
        detail = admin.get("/dashboard/f/builds/default/hello-1")
        assert detail.status_code == 200 and "Build default/hello-1" in detail.text
        assert admin.get("/dashboard/f/builds/default/Bad..Name").status_code == 400
        assert admin.get("/dashboard/f/builds/default/nope").status_code == 404


def test_rollback_quarantines_the_current_digest_and_names_the_previous_one(seeded):
    with seeded.client() as admin:
        resp = admin.post("/dashboard/f/imagedeploys/default/hello/rollback")
        assert resp.status_code == 200, resp.text
        status = admin.get(f"{G}/imagedeploys/hello").json()["status"]
        assert status["availableImage"] == f"{REPO}@{D1}"
        assert status["failedImages"][0]["image"] == f"{REPO}@{D2}"
        assert status["failedImages"][0]["reason"] == "RolledBackByUser"
        page = admin.get("/dashboard/f/deploys").text
        assert "Quarantined" in page and "RolledBackByUser" in page


def test_events_page_filters_by_object(seeded):
    with seeded.client() as admin:
        for name, reason in (("hello", "ImageResolved"), ("other", "ScanFailed")):
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{name}.1"},
                "involvedObject": {"kind": "Image", "namespace": "default", "name": name},
                "reason": reason,
                "message": f"{REPO}:latest is {REPO}@{D1}" if name == "hello" else "registry down",
                "type": "Normal",
                "lastTimestamp": "2025-01-01T00:00:00Z",
            }
            assert admin.post("/api/v1/namespaces/default/events", json=event).status_code == 201
        page = admin.get("/dashboard/f/events?namespace=default&kind=Image&name=hello").text
        assert "ImageResolved" in page and "ScanFailed" not in page
        images = admin.get("/dashboard/f/images").text
        assert f"{REPO}@{D1}" in images  # the digest history from ImageResolved events
