"""The web dashboard in a real browser (Playwright driving Debian's Chromium) against a real `dockyard up`.

One `dockyard up` on free ports with the hello example applied; the steps run in order, as a user would:
sign in, start a build by the button and watch it run to Complete with its log appearing, see its digest roll
out on the Deploys page, build again and see the new digest replace it, roll back by the button, and check
that a view-token session has no write buttons and that a forged write with the view token gets 403.
Screenshots of each page are written to $DOCKYARD_SCREENSHOTS, or to dockyard-screenshots/ in the temporary
directory: a test run leaves the tree as it was. `make screenshots` writes them to docs/screenshots/ (the README
links them).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml
from harness import demo_module

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("DOCKYARD_SCREENSHOTS") or Path(tempfile.gettempdir()) / "dockyard-screenshots")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
BUILD_TIMEOUT_MS = 300_000
ROLLOUT_TIMEOUT_MS = 180_000


def _token(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"])


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    """`dockyard up` (Podman) on free ports with the busybox base image and the hello example applied."""
    demo = demo_module()
    d = demo.Demo(
        tmp_path_factory.mktemp("dashboard"),
        engine="podman",
        api_port=demo.free_port(),
        registry_port=demo.free_port(),
        host_port=demo.free_port(),
    )
    try:
        d.start()
        d.base_image()
        d.make_repo()
        d.apply()
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        print(f"chromium {b.version} from {CHROMIUM}")
        yield b
        b.close()


def _page(browser, hello, viewport=DESKTOP):
    context = browser.new_context(viewport=viewport, ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("dialog", lambda dialog: dialog.accept())
    # what the network layer said of each request that got no answer (net::ERR_...), shown if the test fails;
    # aborted streams of a page left behind are among them
    page.on(
        "requestfailed",
        lambda request: print(
            f"{time.strftime('%H:%M:%S')} no answer: {request.method} {request.url}: {request.failure}"
        ),
    )
    page.csp_errors = errors
    return page


def _goto(page, url: str):
    """``page.goto(url)``, again (at most twice) if Chromium aborted it with ``net::ERR_NETWORK_CHANGED``: it
    reports that whenever a network interface comes or goes, as a pod's veth does while the dashboard loads."""
    for attempt in range(3):
        try:
            return page.goto(url)
        except sync_api.Error as err:
            if "ERR_NETWORK_CHANGED" not in str(err) or attempt == 2:
                raise
    return None


def _url(hello, path: str) -> str:
    return f"https://127.0.0.1:{hello.api_port}/dashboard/{path}"


def _sign_in(page, hello, token: str, user: str) -> None:
    _goto(page, _url(hello, "builds"))
    page.get_by_label("Bearer token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.locator("#who-name")).to_have_text(f"Signed in as {user}")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _build_digest(hello, name: str) -> str:
    return hello.get("build", name)["status"]["output"]["to"]["imageDigest"]


def test_dashboard_in_a_browser(hello, browser):
    # a build that prints a line a second for 15 s, so its log is seen streaming while it is Running whatever
    # the machine's load (builds are ~1 s now); the run's own token keeps a layer cache from skipping the step
    dockerfile = hello.repo / "app" / "Dockerfile"
    slow = f'RUN for i in $(seq 1 15); do echo "building slowly {uuid.uuid4().hex} $i"; sleep 1; done'
    dockerfile.write_text(dockerfile.read_text().replace("COPY index.html", f"{slow}\nCOPY index.html"))
    hello.sh("git", "-C", str(hello.repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "slow")
    admin_token = _token(hello.kubeconfig)
    view_token = _token(hello.data_dir / "kubeconfig-view")
    page = _page(browser, hello)

    # sign in: the shell has no data until a token is given; a wrong one is refused
    _goto(page, _url(hello, "builds"))
    sync_api.expect(page.locator("#sign-in")).to_be_visible()
    sync_api.expect(page.locator("#content")).to_be_hidden()
    _shot(page, "sign-in")
    page.get_by_label("Bearer token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.locator("#sign-in-error")).to_contain_text("401")
    _sign_in(page, hello, admin_token, "admin")
    assert "dockyard.dashboard.token" in page.evaluate("() => Object.keys(sessionStorage)")
    assert page.evaluate("() => Object.keys(localStorage)") == []  # nothing outlives the tab
    assert page.context.cookies() == []

    # the API server out of reach when a page loads (the request fails: "Failed to fetch") keeps the session:
    # the page says so and tries again; only a refused token (401) signs out
    whoami_failures = [1]

    def once_unreachable(route) -> None:
        if whoami_failures:
            whoami_failures.pop()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/dashboard/f/whoami", once_unreachable)
    page.reload()
    sync_api.expect(page.locator("#flash")).to_contain_text("Cannot reach the API server")
    sync_api.expect(page.locator("#who-name")).to_have_text("Signed in as admin")
    sync_api.expect(page.locator("#flash")).to_be_empty()
    assert whoami_failures == []
    page.unroute("**/dashboard/f/whoami")

    # start a build by the button; the table shows it without a reload
    start = page.locator("#start-default-hello")
    sync_api.expect(start).to_be_visible()
    start.focus()
    page.keyboard.press("Enter")  # keyboard reachable: a real <button>
    sync_api.expect(page.locator("#flash")).to_contain_text("Started build default/hello-1")
    sync_api.expect(page.locator("tr[data-build='hello-1']")).to_be_visible()

    # the build's page: phase and log live, to Complete
    page.locator("a", has_text="hello-1").click()
    page.wait_for_url("**/dashboard/builds/default/hello-1")
    log = page.locator("#log")
    samples: list[tuple[str, int]] = []
    deadline = time.monotonic() + BUILD_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        phase = page.locator("#build-phase").get_attribute("data-phase") or ""
        samples.append((phase, len(log.inner_text())))
        if phase in ("Complete", "Failed", "Error", "Cancelled") and samples[-1][1] > 0:
            break
        page.wait_for_timeout(250)
    assert samples[-1][0] == "Complete", samples[-5:]
    assert "STEP" in log.inner_text() or "COPY" in log.inner_text(), log.inner_text()[-2000:]
    assert any(n > 0 and ph == "Running" for ph, n in samples), samples  # lines appeared while it ran
    sync_api.expect(page.locator("#log-state")).to_have_text("(complete)")
    first = _build_digest(hello, "hello-1")
    sync_api.expect(page.locator("#content")).to_contain_text(first[:19])
    _shot(page, "build")

    # Deploys: the new digest rolls out to the pod
    _goto(page, _url(hello, "deploys"))
    card = page.locator("section[data-imagedeploy='hello']")
    sync_api.expect(card.locator(".pod-digest").first).to_contain_text(first[:19], timeout=ROLLOUT_TIMEOUT_MS)
    sync_api.expect(card.locator(".badge", has_text="True").first).to_be_visible(timeout=ROLLOUT_TIMEOUT_MS)

    # a second build (new source) started on the Builds page; the Deploys page, left open, follows the rollout.
    # The click comes right after a watch event refreshed the list: refreshed buttons work as soon as they are
    # there (htmx used to wire them 20 ms later, and a click in between was lost)
    hello.change_source()
    _goto(page, _url(hello, "builds"))
    sync_api.expect(page.locator("#start-default-hello")).to_be_visible()
    page.evaluate(
        """() => {
            const clickAfterRefresh = (e) => {
                if (e.detail.target.id !== "content") { return; }
                document.body.removeEventListener("htmx:afterSwap", clickAfterRefresh);
                setTimeout(() => document.getElementById("start-default-hello").click(), 0);
            };
            document.body.addEventListener("htmx:afterSwap", clickAfterRefresh);
            htmx.trigger(document.body, "dy-changed");
        }"""
    )
    sync_api.expect(page.locator("#flash")).to_contain_text("Started build default/hello-2")
    sync_api.expect(page.locator("tr[data-build='hello-2']")).to_have_attribute(
        "data-phase", "Complete", timeout=BUILD_TIMEOUT_MS
    )
    _shot(page, "builds")
    second = _build_digest(hello, "hello-2")
    assert second != first
    _goto(page, _url(hello, "deploys"))
    sync_api.expect(card.locator(".latest-image")).to_contain_text(second[:19], timeout=ROLLOUT_TIMEOUT_MS)
    sync_api.expect(card.locator(".pod-digest")).to_have_count(hello.replicas, timeout=ROLLOUT_TIMEOUT_MS)
    sync_api.expect(card.locator(".pod-digest").first).to_contain_text(second[:19], timeout=ROLLOUT_TIMEOUT_MS)
    n = hello.replicas
    sync_api.expect(card.locator(".rollout")).to_contain_text(f"{n}/{n} updated · {n} ready · {n} available")
    _shot(page, "deploys")

    # roll back by the button: the current digest is quarantined, the pod goes back to the first
    card.locator("button[data-action='rollback']").click()
    sync_api.expect(page.locator("#flash")).to_contain_text("Rolling default/hello back to")
    sync_api.expect(card).to_contain_text("RolledBackByUser")
    sync_api.expect(card.locator(".pod-digest")).to_have_count(hello.replicas, timeout=ROLLOUT_TIMEOUT_MS)
    sync_api.expect(card.locator(".pod-digest").first).to_contain_text(first[:19], timeout=ROLLOUT_TIMEOUT_MS)
    _shot(page, "deploys-rolled-back")

    # a Push (commit the running container), then the remaining pages
    hello.commit_container()
    _goto(page, _url(hello, "pushes"))
    sync_api.expect(page.locator("#content")).to_contain_text("Succeeded")
    _shot(page, "pushes")
    _goto(page, _url(hello, "images"))
    sync_api.expect(page.locator("#content")).to_contain_text(second[:19])
    _shot(page, "images")
    _goto(page, _url(hello, "events?namespace=default&kind=ImageDeploy&name=hello"))
    sync_api.expect(page.locator("#content")).to_contain_text("DeploymentUpdated")
    _shot(page, "events")
    assert page.csp_errors == []

    # phone width: still one column, buttons reachable
    phone = _page(browser, hello, PHONE)
    _sign_in(phone, hello, admin_token, "admin")
    _goto(phone, _url(hello, "deploys"))
    sync_api.expect(phone.locator("section[data-imagedeploy='hello']")).to_be_visible()
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"] + 1
    _shot(phone, "deploys-phone")
    _goto(phone, _url(hello, "builds"))
    sync_api.expect(phone.locator("#start-default-hello")).to_be_visible()
    _shot(phone, "builds-phone")

    # the view identity: everything readable, no write buttons, and a forged write is refused with 403
    view = _page(browser, hello)
    _sign_in(view, hello, view_token, "view")
    for name in ("builds", "deploys", "images", "pushes", "events", "builds/default/hello-1"):
        _goto(view, _url(hello, name))
        sync_api.expect(view.locator("#content h1").first).to_be_visible()
        assert view.locator("[data-action]").count() == 0, name
        assert view.locator("button:not(#sign-out):not(#sign-in-button)").count() == 0, name
    _shot(view, "build-view")
    forged = view.evaluate(
        """async () => {
          const auth = {Authorization: "Bearer " + sessionStorage.getItem("dockyard.dashboard.token"),
                        "Content-Type": "application/json"};
          const api = await fetch("/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs/hello/instantiate",
            {method: "POST", headers: auth, body: JSON.stringify({kind: "BuildRequest", metadata: {name: "hello"}})});
          const ui = await fetch("/dashboard/f/imagedeploys/default/hello/rollback", {method: "POST", headers: auth});
          return [api.status, (await api.json()).reason, ui.status];
        }"""
    )
    assert forged == [403, "Forbidden", 403]
    builds = json.loads(hello.kubectl("get", "builds", "-o", "json").stdout)["items"]
    assert sorted(b["metadata"]["name"] for b in builds) == ["hello-1", "hello-2"]
