"""Builds as a platform team relies on them, against the real API server, Podman, registry and git.

Run policies, cancel, deadlines, history limits, stages and revision, inline
Dockerfile sources, build args, secrets (http git with basic auth, a registry
with htpasswd), triggers, binary sources and `dockyard logs -f`.
"""

from __future__ import annotations

import base64
import http.server
import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from harness import apply, buildconfig, git_repo, phase, wait_phase

from dockyard.agent.builds import SCRATCH_PREFIX
from dockyard.registry import server as registry_server

pytestmark = pytest.mark.e2e

SLOW = "FROM {registry}/dockyard/busybox:latest\nRUN sleep 60\n"
FAST = "FROM {registry}/dockyard/busybox:latest\nRUN echo built {tag} > /built\n"


def dockerfile_source(text: str) -> dict:
    return {"type": "Dockerfile", "dockerfile": text}


def slow(cluster, name: str, **spec) -> dict:
    """A BuildConfig whose build runs ~60 s (never cached), for cancel, deadline and policy tests."""
    return buildconfig(
        name,
        source=dockerfile_source(SLOW.format(registry=cluster.registry)),
        to=f"{cluster.registry}/slow:{name}",
        strategy={"type": "Docker", "dockerStrategy": {"noCache": True}},
        **spec,
    )


def start(cluster, name: str) -> str:
    return cluster.dockyard("start-build", name).stdout.strip().removeprefix("build/")


def running_slow_git_build(cluster, directory: Path, name: str, message: str) -> tuple[Path, str]:
    """A git repository at ``directory`` (one commit, ``message``) of a ~60 s Dockerfile, a Git BuildConfig
    ``name`` building it, and its Build started and seen in its RUN step. Returns ``(repository, build name)``."""
    repo = git_repo(directory, {"Dockerfile": SLOW.format(registry=cluster.registry)}, message=message)
    apply(
        cluster,
        buildconfig(
            name,
            source={"type": "Git", "git": {"uri": str(repo)}},
            to=f"{cluster.registry}/{name}:latest",
            strategy={"type": "Docker", "dockerStrategy": {"noCache": True}},
        ),
    )
    build = start(cluster, name)
    wait_phase(cluster, build, ("Running",), 60)
    cluster.wait_for(
        "the build log to show the RUN step", lambda: "sleep" in cluster.dockyard("logs", f"build/{build}").stdout, 60
    )
    return repo, build


def test_cancel_running_build_keeps_build_and_log(cluster):
    apply(cluster, slow(cluster, "slow-cancel"))
    build = start(cluster, "slow-cancel")
    wait_phase(cluster, build, ("Running",), 60)
    cluster.wait_for(
        "the build log to show the RUN step", lambda: "sleep" in cluster.dockyard("logs", f"build/{build}").stdout, 60
    )
    out = cluster.dockyard("cancel-build", build)
    assert f"build/{build} cancelled" in out.stdout
    status = wait_phase(cluster, build, ("Cancelled",), 30)["status"]
    assert status["reason"] == "CancelledBuild" and status["cancelled"] is True
    cluster.wait_for(
        "the build pod to go", lambda: cluster.kubectl("get", "pod", f"{build}-build", check=False).returncode != 0, 30
    )
    assert "sleep" in cluster.dockyard("logs", f"build/{build}").stdout
    # cancelling again is harmless, and says so
    assert "already Cancelled" in cluster.dockyard("cancel-build", build).stderr


def test_a_cancelled_git_build_leaves_nothing_in_the_temporary_directory(cluster, tmp_path):
    """A cancel ends the builder at once (SIGTERM, then ``os._exit``), with its clone and work directory still
    there: they live in the builder's state directory, which the agent removes with the pod, never in /tmp."""
    before = set(Path(tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*"))
    _, build = running_slow_git_build(cluster, tmp_path / "cancelled", "git-cancel", "slow")
    cluster.dockyard("cancel-build", build)
    wait_phase(cluster, build, ("Cancelled",), 30)
    cluster.wait_for(
        "the build pod to go", lambda: cluster.kubectl("get", "pod", f"{build}-build", check=False).returncode != 0, 30
    )
    assert set(Path(tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*")) - before == set()


def test_deadline_counts_from_pod_creation(cluster):
    apply(cluster, slow(cluster, "slow-deadline", completionDeadlineSeconds=4))
    build = start(cluster, "slow-deadline")
    status = wait_phase(cluster, build, ("Failed", "Complete", "Error"), 60)["status"]
    assert status["phase"] == "Failed" and status["reason"] == "BuildDeadlineExceeded", status


def test_serial_latest_only_cancels_superseded_queued_builds(cluster):
    apply(cluster, slow(cluster, "latest-only", runPolicy="SerialLatestOnly"))
    first, second, third = (start(cluster, "latest-only") for _ in range(3))
    status = wait_phase(cluster, second, ("Cancelled",), 30)["status"]
    assert status["reason"] == "CancelledBuild"
    assert phase(cluster, third) == "New"  # waits for the first (Serial order)
    cluster.dockyard("cancel-build", first, third)
    wait_phase(cluster, third, ("Cancelled",), 30)


def test_parallel_runs_builds_together(cluster):
    apply(cluster, slow(cluster, "par", runPolicy="Parallel"))
    a, b = start(cluster, "par"), start(cluster, "par")
    cluster.wait_for(
        "both parallel builds to run", lambda: phase(cluster, a) == "Running" and phase(cluster, b) == "Running", 60
    )
    cluster.dockyard("cancel-build", a, b)
    wait_phase(cluster, b, ("Cancelled",), 30)


def test_stages_revision_history_and_build_args(cluster, tmp_path):
    text = (
        f"ARG GREETING=unset\nFROM {cluster.registry}/dockyard/busybox:latest\nARG GREETING\n"
        'RUN echo "$GREETING" > /greeting && cat /greeting\n'
    )
    repo = git_repo(tmp_path / "args", {"Dockerfile": text}, message="use build args")
    apply(
        cluster,
        buildconfig(
            "args",
            source={"type": "Git", "git": {"uri": str(repo)}},
            to=f"{cluster.registry}/args:latest",
            strategy={
                "type": "Docker",
                "dockerStrategy": {"buildArgs": [{"name": "GREETING", "value": "hej"}], "noCache": True},
            },
            successfulBuildsHistoryLimit=1,
        ),
    )
    first = start(cluster, "args")
    done = wait_phase(cluster, first, ("Complete", "Failed"), 120)
    assert done["status"]["phase"] == "Complete", done["status"]
    assert [s["name"] for s in done["status"]["stages"]] == ["FetchInputs", "Build", "PushImage"]
    assert all(s["durationMilliseconds"] >= 0 and s["startTime"] for s in done["status"]["stages"])
    git = done["spec"]["revision"]["git"]
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert git["commit"] == head.strip()
    assert git["author"] == {"name": "Test Author", "email": "author@example.com"}
    assert git["message"] == "use build args"
    assert done["spec"]["triggeredBy"] == [{"message": "Manually triggered"}]
    assert "hej" in cluster.dockyard("logs", f"build/{first}").stdout
    second = start(cluster, "args")
    wait_phase(cluster, second, ("Complete",), 120)
    cluster.wait_for(
        "the older build to be pruned (successfulBuildsHistoryLimit 1)",
        lambda: cluster.kubectl("get", "build", first, check=False).returncode != 0,
        30,
    )
    assert cluster.dockyard("logs", f"build/{first}", check=False).returncode != 0


def test_the_revision_is_on_the_build_while_it_runs(cluster, tmp_path):
    """The builder reports the resolved commit through ``builds/details`` once it has fetched the source, as
    OpenShift's does: a Build still running already names what it builds."""
    repo, build = running_slow_git_build(cluster, tmp_path / "rev", "rev-early", "slow one")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    running = cluster.wait_for(
        "spec.revision on the running Build",
        lambda: (doc := cluster.get("build", build)).get("spec", {}).get("revision") and doc,
        15,
    )
    assert running["status"]["phase"] == "Running"
    assert running["spec"]["revision"]["git"]["commit"] == head
    assert running["spec"]["revision"]["git"]["message"] == "slow one"
    cluster.dockyard("cancel-build", build)
    wait_phase(cluster, build, ("Cancelled",), 30)


def test_logs_follow_streams_live_and_ends_with_the_build(cluster):
    text = f"FROM {cluster.registry}/dockyard/busybox:latest\nRUN for i in 1 2 3; do echo tick $i; sleep 1; done\n"
    apply(
        cluster,
        buildconfig(
            "ticks",
            source=dockerfile_source(text),
            to=f"{cluster.registry}/ticks:latest",
            strategy={"type": "Docker", "dockerStrategy": {"noCache": True}},
        ),
    )
    build = start(cluster, "ticks")
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(cluster.dockyard_bin), "logs", f"build/{build}", "-f"], env=cluster.env, stdout=subprocess.PIPE, text=True
    )
    first_tick = None
    for line in proc.stdout:
        if "tick 1" in line and first_tick is None:
            first_tick = time.monotonic() - started
    proc.wait(timeout=60)
    total = time.monotonic() - started
    assert proc.returncode == 0
    assert first_tick is not None and first_tick < total - 1.0  # seen before the build ended
    assert phase(cluster, build) == "Complete"


class _AuthGitHandler(http.server.SimpleHTTPRequestHandler):
    """Dumb-HTTP git server (git's ``http.server`` fallback protocol) behind Basic auth."""

    expected = ""

    def do_GET(self):
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def test_source_secret_for_http_git_and_nothing_leaks(cluster, tmp_path):
    work = git_repo(tmp_path / "work", {"Dockerfile": FAST.format(registry=cluster.registry, tag="secret")})
    bare = tmp_path / "srv" / "app.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    password = "s3cr3t-Pa55"
    handler = type(
        "H", (_AuthGitHandler,), {"expected": "Basic " + base64.b64encode(f"git:{password}".encode()).decode()}
    )
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(tmp_path / "srv")))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{srv.server_address[1]}/app.git"
        apply(
            cluster,
            buildconfig(
                "gitauth", source={"type": "Git", "git": {"uri": uri}}, to=f"{cluster.registry}/gitauth:latest"
            ),
        )
        failed = wait_phase(cluster, start(cluster, "gitauth"), ("Failed", "Complete"), 60)
        assert failed["status"]["reason"] == "FetchSourceFailed"
        apply(
            cluster,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "git-creds"},
                "type": "kubernetes.io/basic-auth",
                "stringData": {"username": "git", "password": password},
            },
        )
        apply(
            cluster,
            buildconfig(
                "gitauth",
                source={"type": "Git", "git": {"uri": uri}, "sourceSecret": {"name": "git-creds"}},
                to=f"{cluster.registry}/gitauth:latest",
            ),
        )
        build = start(cluster, "gitauth")
        done = wait_phase(cluster, build, ("Failed", "Complete"), 120)
        assert done["status"]["phase"] == "Complete", done["status"]
        everything = cluster.dockyard("logs", f"build/{build}").stdout + json.dumps(done)
        everything += cluster.kubectl("get", "events", "-o", "json").stdout
        assert password not in everything
        assert base64.b64encode(f"git:{password}".encode()).decode() not in everything
    finally:
        srv.shutdown()


def test_push_secret_against_registry_with_htpasswd(cluster, tmp_path):
    users = {"pusher": "pw-9f8e7d"}
    htpasswd = registry_server.write_htpasswd(tmp_path / "htpasswd", users)
    port = registry_server.free_port()
    with registry_server.RegistryServer(port, tmp_path / "reg", htpasswd=htpasswd):
        target = f"127.0.0.1:{port}/private/app:latest"
        source = dockerfile_source(FAST.format(registry=cluster.registry, tag="private"))
        apply(cluster, buildconfig("private", source=source, to=target))
        failed = wait_phase(cluster, start(cluster, "private"), ("Failed", "Complete"), 120)["status"]
        assert failed["phase"] == "Failed"
        assert failed["reason"] == "PushImageToRegistryFailed"
        assert "authentication" in failed["message"].lower() or "unauthorized" in failed["message"].lower()

        auth = base64.b64encode(b"pusher:pw-9f8e7d").decode()
        config = json.dumps({"auths": {f"127.0.0.1:{port}": {"auth": auth}}})
        apply(
            cluster,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "push-creds"},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": config},
            },
        )
        bc = buildconfig("private", source=source, to=target)
        bc["spec"]["output"]["pushSecret"] = {"name": "push-creds"}
        apply(cluster, bc)
        build = start(cluster, "private")
        done = wait_phase(cluster, build, ("Failed", "Complete"), 120)
        assert done["status"]["phase"] == "Complete", done["status"]
        skopeo = cluster.sh(
            "skopeo", "inspect", "--tls-verify=false", "--creds", "pusher:pw-9f8e7d", f"docker://{target}"
        )
        assert json.loads(skopeo.stdout)["Digest"] == done["status"]["output"]["to"]["imageDigest"]
        text = cluster.dockyard("logs", f"build/{build}").stdout + json.dumps(done)
        assert "pw-9f8e7d" not in text and auth not in text


def test_config_change_trigger_builds_on_create_and_on_spec_change(cluster):
    source = dockerfile_source(FAST.format(registry=cluster.registry, tag="cc1"))
    apply(
        cluster,
        buildconfig("cc", source=source, to=f"{cluster.registry}/cc:latest", triggers=[{"type": "ConfigChange"}]),
    )
    wait_phase(cluster, "cc-1", ("Complete",), 120)
    assert cluster.get("build", "cc-1")["spec"]["triggeredBy"][0]["message"] == "Build configuration change"
    apply(
        cluster,
        buildconfig(
            "cc",
            source=dockerfile_source(FAST.format(registry=cluster.registry, tag="cc2")),
            to=f"{cluster.registry}/cc:latest",
            triggers=[{"type": "ConfigChange"}],
        ),
    )
    wait_phase(cluster, "cc-2", ("Complete",), 120)
    time.sleep(2)
    assert cluster.kubectl("get", "build", "cc-3", check=False).returncode != 0  # exactly one per change


def test_node_limit_on_concurrent_builds_queues_in_pending(cluster):
    """`dockyard up --max-builds` defaults to 2: a third parallel build waits in Pending."""
    apply(cluster, slow(cluster, "many", runPolicy="Parallel"))
    builds = [start(cluster, "many") for _ in range(3)]
    cluster.wait_for("two builds running", lambda: sum(phase(cluster, b) == "Running" for b in builds) == 2, 60)
    time.sleep(1)
    assert phase(cluster, builds[2]) == "Pending"
    cluster.dockyard("cancel-build", builds[0])
    wait_phase(cluster, builds[2], ("Running",), 60)
    cluster.dockyard("cancel-build", *builds[1:])
    for b in builds:
        wait_phase(cluster, b, ("Cancelled",), 30)


def test_binary_source_from_dir_file_and_archive(cluster, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(FAST.format(registry=cluster.registry, tag="binary"))
    (ctx / "data.txt").write_text("payload\n")
    apply(cluster, buildconfig("bin", source={"type": "Binary"}, to=f"{cluster.registry}/bin:latest"))
    for flag, path in (("--from-dir", ctx), ("--from-file", ctx / "Dockerfile")):
        out = cluster.dockyard("start-build", "bin", flag, str(path), "--follow", check=False, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Extracted the uploaded archive" in out.stdout
    archive = tmp_path / "ctx.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(ctx), "."], check=True)
    out = cluster.dockyard("start-build", "bin", "--from-archive", str(archive), "--follow", check=False, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("member", ["/etc/evil", "../escape", "link-out"])
def test_binary_archives_that_escape_are_refused_and_nothing_is_built(cluster, tmp_path, member):
    import io
    import tarfile

    apply(cluster, buildconfig("binbad", source={"type": "Binary"}, to=f"{cluster.registry}/binbad:latest"))
    before = cluster.kubectl("get", "builds", "-l", "dockyard.dev/buildconfig=binbad", "-o", "name").stdout
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(member)
        if member == "link-out":
            info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
            tar.addfile(info)
        else:
            data = b"x"
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    bad = tmp_path / "bad.tar"
    bad.write_bytes(buf.getvalue())
    out = cluster.dockyard("start-build", "binbad", "--from-archive", str(bad), check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "archive refused" in out.stderr and member.split("/")[-1] in out.stderr
    assert "Traceback" not in out.stderr
    after = cluster.kubectl("get", "builds", "-l", "dockyard.dev/buildconfig=binbad", "-o", "name").stdout
    assert after == before


def test_generic_webhook_starts_a_build_of_the_given_revision(cluster, tmp_path):
    import httpx

    repo = git_repo(tmp_path / "hook", {"Dockerfile": FAST.format(registry=cluster.registry, tag="hook1")}, "one")
    first = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    git_repo(repo, {"Dockerfile": FAST.format(registry=cluster.registry, tag="hook2")}, "two")
    apply(
        cluster,
        buildconfig(
            "hook",
            source={"type": "Git", "git": {"uri": str(repo), "ref": "main"}},
            to=f"{cluster.registry}/hook:latest",
            triggers=[{"type": "Generic", "generic": {"secret": "hook-secret-1"}}],
        ),
    )
    base = f"https://127.0.0.1:{cluster.api_port}/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs"
    wrong = httpx.post(f"{base}/hook/webhooks/nope/generic", verify=False)
    missing = httpx.post(f"{base}/nosuchconfig/webhooks/hook-secret-1/generic", verify=False)
    assert wrong.status_code == missing.status_code == 403
    assert wrong.json()["message"] == missing.json()["message"]
    attack = httpx.post(
        f"{base}/hook/webhooks/hook-secret-1/generic",
        verify=False,
        json={"git": {"commit": "--pathspec-from-file=/etc/hostname"}},
    )
    assert attack.status_code == 400 and "git.commit" in attack.json()["message"], attack.text
    resp = httpx.post(
        f"{base}/hook/webhooks/hook-secret-1/generic", verify=False, json={"git": {"commit": first, "message": "one"}}
    )
    assert resp.status_code == 202, resp.text
    assert set(resp.json()) == {"apiVersion", "kind", "metadata"}  # names the Build, nothing more
    build = resp.json()["metadata"]["name"]
    done = wait_phase(cluster, build, ("Complete", "Failed"), 120)
    assert done["status"]["phase"] == "Complete", done["status"]
    assert done["spec"]["revision"]["git"]["commit"] == first
    assert done["spec"]["triggeredBy"][0]["message"] == "Generic WebHook"
    assert "hook1" in cluster.dockyard("logs", f"build/{build}").stdout


def test_image_change_trigger_rebuilds_on_a_new_base_and_not_twice(cluster):
    base_repo = f"{cluster.registry}/trigger/base"
    cluster.dockyard("base-image", "busybox", "--to", f"{base_repo}:latest", "--data-dir", str(cluster.data_dir))
    apply(
        cluster,
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Image",
            "metadata": {"name": "base"},
            "spec": {"repository": base_repo, "tag": "latest", "interval": "1h"},
        },
    )
    cluster.wait_for(
        "the base Image to resolve", lambda: (cluster.get("image", "base").get("status") or {}).get("latestImage"), 60
    )
    apply(
        cluster,
        buildconfig(
            "onbase",
            source=dockerfile_source(f"FROM {base_repo}:latest\nRUN echo on base\n"),
            to=f"{cluster.registry}/onbase:latest",
            triggers=[{"type": "ImageChange", "imageChange": {"from": {"kind": "Image", "name": "base"}}}],
        ),
    )
    cluster.wait_for(
        "the first resolution to be recorded",
        lambda: (cluster.get("buildconfig", "onbase").get("status") or {}).get("imageChangeTriggers"),
        30,
    )
    before = cluster.get("image", "base")["status"]["latestImage"]
    first = wait_phase(cluster, "onbase-1", ("Complete", "Failed"), 120)  # no ConfigChange: the first image builds
    assert first["spec"]["triggeredBy"][0]["imageChangeBuild"]["imageID"] == before
    # a new base image: a different digest under the same tag (a build that adds a file to it)
    apply(
        cluster,
        buildconfig(
            "newbase", source=dockerfile_source(f"FROM {base_repo}:latest\nRUN touch /new\n"), to=f"{base_repo}:latest"
        ),
    )
    wait_phase(cluster, start(cluster, "newbase"), ("Complete",), 120)
    cluster.wait_for(
        "the ImageChange build", lambda: cluster.kubectl("get", "build", "onbase-2", check=False).returncode == 0, 60
    )
    second = wait_phase(cluster, "onbase-2", ("Complete", "Failed"), 120)
    after = cluster.get("image", "base")["status"]["latestImage"]
    assert after != before
    assert second["spec"]["triggeredBy"][0]["imageChangeBuild"]["imageID"] == after
    assert second["spec"]["strategy"]["dockerStrategy"]["from"]["name"] == after
    entries = cluster.get("buildconfig", "onbase")["status"]["imageChangeTriggers"]
    assert entries[0]["lastTriggeredImageID"] == after
    time.sleep(3)
    assert cluster.kubectl("get", "build", "onbase-3", check=False).returncode != 0


def test_push_image_push_secrets_against_registry_with_htpasswd(cluster, tmp_path):
    """A Push uses spec.imagePushSecrets (read by the node through the Node authorizer), never logs them."""
    users = {"snapper": "pw-5c4b3a"}
    htpasswd = registry_server.write_htpasswd(tmp_path / "htpasswd", users)
    port = registry_server.free_port()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "snap-src"},
        "spec": {
            "restartPolicy": "Always",
            "containers": [
                {"name": "c", "image": f"{cluster.registry}/dockyard/busybox:latest", "command": ["sleep", "3600"]}
            ],
        },
    }
    apply(cluster, pod)
    cluster.wait_for(
        "the pod to run", lambda: cluster.get("pod", "snap-src").get("status", {}).get("phase") == "Running", 120
    )

    def push(name: str, target: str, secrets: list[str]) -> dict:
        body = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Push",
            "metadata": {"name": name},
            "spec": {
                "podName": "snap-src",
                "image": target,
                "imagePushSecrets": [{"name": s} for s in secrets],
                "backoffLimit": 0,
            },
        }
        apply(cluster, body)
        cluster.wait_for(
            f"push {name} to end",
            lambda: (cluster.get("push", name).get("status") or {}).get("phase") in ("Succeeded", "Failed"),
            120,
        )
        return cluster.get("push", name)["status"]

    with registry_server.RegistryServer(port, tmp_path / "reg", htpasswd=htpasswd):
        target = f"127.0.0.1:{port}/private/snap:1"
        denied = push("snap-anon", target, [])
        assert (denied["phase"], denied["reason"]) == ("Failed", "AuthenticationFailed"), denied
        missing = push("snap-missing", target, ["no-such-secret"])
        assert missing["phase"] == "Failed" and "no-such-secret" in missing["message"]
        assert missing["reason"] == "AuthenticationFailed"

        auth = base64.b64encode(b"snapper:pw-5c4b3a").decode()
        config = json.dumps({"auths": {f"127.0.0.1:{port}": {"auth": auth}}})
        apply(
            cluster,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "snap-creds"},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": config},
            },
        )
        done = push("snap-auth", target, ["snap-creds"])
        assert done["phase"] == "Succeeded", done
        skopeo = cluster.sh(
            "skopeo", "inspect", "--tls-verify=false", "--creds", "snapper:pw-5c4b3a", f"docker://{target}"
        )
        assert json.loads(skopeo.stdout)["Digest"] == done["imageDigest"]
        described = cluster.kubectl("describe", "push", "snap-auth").stdout + json.dumps(done)
        assert "pw-5c4b3a" not in described and auth not in described


def test_push_trigger_on_exit_waits_for_the_exit(cluster):
    """trigger: OnExit is accepted; the Push stays Pending until its container exits (the integration tests in
    tests/integration/test_agent_pushes.py follow it through the exit and the push)."""
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "on-exit-src"},
            "spec": {
                "containers": [
                    {"name": "c", "image": f"{cluster.registry}/dockyard/busybox:latest", "command": ["sleep", "3600"]}
                ]
            },
        },
    )
    body = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Push",
        "metadata": {"name": "on-exit"},
        "spec": {"podName": "on-exit-src", "image": f"{cluster.registry}/x:1", "trigger": "OnExit"},
    }
    apply(cluster, body)
    cluster.wait_for(
        "the push to wait for the exit",
        lambda: "exit" in ((cluster.get("push", "on-exit").get("status") or {}).get("message") or ""),
        120,
    )
    assert cluster.get("push", "on-exit")["status"]["phase"] == "Pending"
