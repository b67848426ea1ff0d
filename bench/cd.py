"""Benchmark: continuous delivery — a push by any client to the embedded registry until the new pod serves it,
and one new digest fanned out to 1,000 ImageDeploys.

One run starts ``dockyard up`` (temporary data dir, free ports on 127.0.0.1; see ``_harness.py``). ``up``
configures its registry's notifications (``POST /registry/notifications``), so a push is seen at once; the
Images here poll only every ``10m``, so polling cannot be what moves them. Measured:

push → serving (``--pushes``, default 20)
    ``--pushes`` + 1 images, each the hello app (busybox httpd) with its own ``index.html``, are built with the
    raw engine and pushed to a staging repository (not timed). One Image (``REG/hello:latest``) and one
    ImageDeploy (1 replica) follow it. The app is reached on a free port of 127.0.0.1 (``--expose``):

    - ``service`` (default): a ``LoadBalancer`` Service on that port in front of the pods, and a rolling update
      that surges (``maxSurge: 1``, ``maxUnavailable: 0``): the new pod starts while the old one serves, and the
      node agent's Service proxy sends new connections to it once it is Ready (zero downtime, as on a cluster);
    - ``hostport``: the pod's own ``hostPort`` (as ``examples/hello`` does), so the old pod must be gone before
      the new one can bind the port (``maxSurge: 0``, ``maxUnavailable: 1``): the old pod's termination (busybox
      httpd is PID 1 and ignores SIGTERM, so its ``terminationGracePeriodSeconds: 1`` is waited out) is on the
      path.

    Each round, ``skopeo copy`` (a client that is not dockyard) puts the next image on ``REG/hello:latest``; the
    clock starts when skopeo returns and stops when ``GET http://127.0.0.1:PORT/`` answers the new page (polled
    every 20 ms), then when the API shows the pod on the new digest Running and Ready. p50/p99 of each.
fan-out (``--fleet``, default 1,000)
    ``--fleet`` ImageDeploys (``replicas: 0``) in their own namespace follow one Image; once every Deployment
    carries the first digest, ``skopeo copy`` pushes a new one and the clock runs until every Deployment's
    container is on the new digest, as seen by a watch of the fleet's Deployments started (from the LIST that
    showed the first digest everywhere) before the push; a final LIST confirms it.

Reference (not measured here; the tools' documented defaults): Flux's ImageRepository examples and Keel poll
every 1 minute, Argo CD Image Updater every 2 minutes, so a push reaches them after half that on average.

Prints tables and, as its last stdout line, one JSON summary. ``dockyard up`` is stopped with SIGTERM at the
end, also on failure; the run's own container store is deleted.

Usage: .venv/bin/python bench/cd.py [--pushes 20] [--fleet 1000] [--expose service|hostport] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as harness
from _harness import (
    APP,
    GROUP,
    NS,
    BenchError,
    Harness,
    code_version,
    console,
    fmt,
    free_port,
    make_workdir,
    median,
    percentile,
)

FLEET_NS = "bench-fleet"
FLEET_LABEL = "bench.dockyard.dev/fleet"
POLL_INTERVAL = "10m"
"""The Images' polling backstop: long, so only the registry's notification can move them within the bench."""
GOAL_SERVING_P50 = 1.5
GOAL_FLEET = 10.0
ANCHORS = {
    "Flux (ImageRepository interval 1m)": 60.0,
    "Keel (poll @every 1m)": 60.0,
    "Argo CD Image Updater (2m)": 120.0,
}

# Every wait is bounded (seconds).
ROUND_TIMEOUT = 60
FIRST_DEPLOY_TIMEOUT = 180
FLEET_CREATE_TIMEOUT = 600
FLEET_TIMEOUT = 120
SKOPEO_TIMEOUT = 120


class FleetWatch:
    """A watch of the fleet's Deployments (from ``resource_version``, on its own thread and connection) noting
    when each first shows a container on :attr:`digest`: the fan-out's clock, exact to the event and cheaper
    for the API server than LISTing 1,000 Deployments again and again."""

    def __init__(self, bench: Bench, resource_version: str) -> None:
        assert bench.http is not None
        self._client = httpx.Client(
            base_url=bench.http.base_url, headers=bench.http.headers, verify=bench.verify, timeout=None
        )
        self._rv = resource_version
        self.digest: str | None = None
        """Set once pushed; events before that cannot carry it."""
        self._on: dict[str, float] = {}
        self._pending: list[tuple[str, str, float]] = []
        self.error = ""
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fleet-watch")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._client.close()

    def count(self) -> int:
        with self._cond:
            return len(self._on)

    def _run(self) -> None:
        params = {
            "watch": "1",
            "labelSelector": FLEET_LABEL,
            "resourceVersion": self._rv,
            "allowWatchBookmarks": "false",
        }
        try:
            with self._client.stream("GET", f"/apis/apps/v1/namespaces/{FLEET_NS}/deployments", params=params) as resp:
                if not resp.is_success:
                    self.error = f"watch answered {resp.status_code}"
                    return
                for line in resp.iter_lines():
                    if not line:
                        continue
                    now = time.monotonic()
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") not in ("ADDED", "MODIFIED"):
                        continue
                    name = obj["metadata"]["name"]
                    image = obj["spec"]["template"]["spec"]["containers"][0]["image"]
                    with self._cond:
                        self._note(name, image, now)
                        self._cond.notify_all()
        except httpx.HTTPError as err:
            if not self._client.is_closed:
                self.error = str(err)
        finally:
            with self._cond:
                self._cond.notify_all()

    def _note(self, name: str, image: str, now: float) -> None:
        """Caller holds the lock. Events before :attr:`digest` is known wait for it (the controllers may act
        before skopeo returns)."""
        if self.digest is None:
            self._pending.append((name, image, now))
        elif image.endswith("@" + self.digest):
            self._on.setdefault(name, now)

    def pushed(self, digest: str) -> None:
        """The digest pushed: events seen so far are judged by it."""
        with self._cond:
            self.digest = digest
            for name, image, at in self._pending:
                self._note(name, image, at)
            self._pending.clear()

    def wait_all(self, n: int, deadline: float) -> float | None:
        """The monotonic time the ``n``-th Deployment was seen on :attr:`digest`, or None at ``deadline``."""
        with self._cond:
            while len(self._on) < n:
                left = deadline - time.monotonic()
                if left <= 0 or (self.error and not self._thread.is_alive()):
                    return None
                self._cond.wait(min(left, 0.5))
            return max(self._on.values())

    def first(self) -> float | None:
        with self._cond:
            return min(self._on.values()) if self._on else None


class Bench(Harness):
    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        super().__init__(workdir)
        self.args = args
        self.problems: list[str] = []
        self.host_port = free_port()
        """The port of 127.0.0.1 the app is reached on: the Service's port, or the pod's hostPort."""
        self.staging = f"{self.registry}/bench/hello-src"
        self.results: dict[str, Any] = {"serving_s": [], "ready_s": [], "fleet": {}}
        self.pages: list[str] = []

    # --- helpers --------------------------------------------------------------------------------

    def skopeo_copy(self, src: str, dest: str) -> str:
        """``skopeo copy`` between two repositories of the registry; the digest written (``--digestfile``)."""
        digestfile = self.workdir / "digest"
        self.sh(
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--digestfile",
            str(digestfile),
            f"docker://{src}",
            f"docker://{dest}",
            timeout=SKOPEO_TIMEOUT,
        )
        return digestfile.read_text().strip()

    def privileged(self, namespace: str) -> None:
        """Let ``namespace`` run pods with a hostPort (Pod Security ``privileged``, as the hello example does)."""
        assert self.http is not None
        body = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
        resp = self.http.patch(
            f"/api/v1/namespaces/{namespace}", json=body, headers={"Content-Type": "application/merge-patch+json"}
        )
        if resp.status_code == 404:
            self.api("POST", "/api/v1/namespaces", json={"metadata": {"name": namespace, **body["metadata"]}})
        elif not resp.is_success:
            raise BenchError(f"PATCH namespace {namespace}: {resp.status_code} {resp.text[:300]}")

    def image(self, namespace: str, name: str, repository: str) -> None:
        self.api(
            "POST",
            f"{GROUP}/namespaces/{namespace}/images",
            json={
                "apiVersion": "dockyard.dev/v1alpha1",
                "kind": "Image",
                "metadata": {"name": name},
                "spec": {"repository": repository, "tag": "latest", "interval": POLL_INTERVAL},
            },
        )

    @staticmethod
    def imagedeploy(
        name: str, image: str, spec: dict[str, Any], labels: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "ImageDeploy",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"imageRef": {"name": image}, "containerName": "web", "deployment": spec},
        }

    # --- push → serving -------------------------------------------------------------------------

    def build_variants(self) -> None:
        """``--pushes`` + 1 hello images with their own page, pushed to the staging repository (not timed)."""
        assert self.raw is not None
        context = self.workdir / "app"
        shutil.copytree(APP, context, dirs_exist_ok=True)
        for i in range(self.args.pushes + 1):
            page = f"dockyard cd bench v{i} {uuid.uuid4().hex[:8]}"
            (context / "index.html").write_text(page + "\n")
            ref = f"{self.staging}:v{i}"
            self.raw.build(context, ref, {"BASE": self.base_ref})
            self.raw.push(ref)
            self.remember_image(ref)
            self.pages.append(page)
        console.print(f"  {len(self.pages)} images in {self.staging}")

    def serving(self) -> str | None:
        try:
            resp = httpx.get(f"http://127.0.0.1:{self.host_port}/", timeout=1)
        except httpx.HTTPError:
            return None
        return resp.text.strip() if resp.status_code == 200 else None

    def ready_on(self, digest: str) -> bool:
        """The API shows a pod of the hello Deployment on ``digest``, Running and Ready."""
        pods = self.api("GET", f"/api/v1/namespaces/{NS}/pods", params={"labelSelector": "app=bench-hello"})["items"]
        for pod in pods:
            images = [c.get("image", "") for c in pod["spec"]["containers"]]
            st = pod.get("status") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
            if any(i.endswith("@" + digest) for i in images) and st.get("phase") == "Running" and ready:
                return True
        return False

    def service(self) -> None:
        """A ``LoadBalancer`` Service on ``127.0.0.1:host_port`` in front of the hello pods."""
        self.api(
            "POST",
            f"/api/v1/namespaces/{NS}/services",
            json={
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "bench-hello"},
                "spec": {
                    "type": "LoadBalancer",
                    "selector": {"app": "bench-hello"},
                    "ports": [{"name": "http", "port": self.host_port, "targetPort": 8080}],
                },
            },
        )

    def push_to_serving(self) -> None:
        hostport = self.args.expose == "hostport"
        port: dict[str, Any] = {"containerPort": 8080}
        if hostport:
            self.privileged(NS)
            port.update(hostPort=self.host_port, hostIP="127.0.0.1")
            rolling = {"maxSurge": 0, "maxUnavailable": 1}
        else:
            self.service()
            rolling = {"maxSurge": 1, "maxUnavailable": 0}
        repo = f"{self.registry}/bench/hello"
        digest = self.skopeo_copy(f"{self.staging}:v0", f"{repo}:latest")
        self.image(NS, "bench-hello", repo)
        spec = {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "bench-hello"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
            "template": {
                "metadata": {"labels": {"app": "bench-hello"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "web",
                            "image": "placeholder",
                            "ports": [port],
                        }
                    ],
                },
            },
        }
        self.api(
            "POST", f"{GROUP}/namespaces/{NS}/imagedeploys", json=self.imagedeploy("bench-hello", "bench-hello", spec)
        )
        self.wait_for("the first pod serving v0", lambda: self.serving() == self.pages[0], FIRST_DEPLOY_TIMEOUT, 0.1)
        self.wait_for("the first pod Ready", lambda: self.ready_on(digest), FIRST_DEPLOY_TIMEOUT, 0.1)
        for i in range(1, self.args.pushes + 1):
            time.sleep(0.5)  # let the last rollout settle (old ReplicaSet scaled down, statuses written)
            digest = self.skopeo_copy(f"{self.staging}:v{i}", f"{repo}:latest")
            t0 = time.monotonic()
            deadline = t0 + ROUND_TIMEOUT
            served = None
            while time.monotonic() < deadline:
                if self.serving() == self.pages[i]:
                    served = time.monotonic() - t0
                    break
                time.sleep(0.02)
            if served is None:
                raise BenchError(f"push {i}: v{i} not served within {ROUND_TIMEOUT}s (serving {self.serving()!r})")
            ready = None
            while time.monotonic() < deadline:
                if self.ready_on(digest):
                    ready = time.monotonic() - t0
                    break
                time.sleep(0.05)
            if ready is None:
                raise BenchError(f"push {i}: no pod on {digest} Running and Ready within {ROUND_TIMEOUT}s")
            self.results["serving_s"].append(served)
            self.results["ready_s"].append(ready)
            console.print(f"  push {i:2}: serving after {served:.2f}s, pod Ready (API) after {ready:.2f}s")

    # --- fan-out --------------------------------------------------------------------------------

    def fleet_images(self) -> dict[str, str]:
        """``{deployment name: image}`` of the fleet's Deployments (one LIST)."""
        items = self.api(
            "GET", f"/apis/apps/v1/namespaces/{FLEET_NS}/deployments", params={"labelSelector": FLEET_LABEL}
        )["items"]
        return {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in items}

    def fleet(self) -> None:
        n = self.args.fleet
        self.privileged(FLEET_NS)
        repo = f"{self.registry}/bench/fleet"
        first = self.skopeo_copy(f"{self.staging}:v0", f"{repo}:latest")
        self.image(FLEET_NS, "fleet", repo)
        spec = {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "fleet"}},
            "template": {
                "metadata": {"labels": {"app": "fleet"}},
                "spec": {"containers": [{"name": "web", "image": "placeholder"}]},
            },
        }
        t0 = time.monotonic()
        assert self.http is not None
        http = self.http

        def create(i: int) -> None:
            body = self.imagedeploy(f"fleet-{i:04}", "fleet", spec, {FLEET_LABEL: "true"})
            for _attempt in range(5):
                resp = http.post(f"{GROUP}/namespaces/{FLEET_NS}/imagedeploys", json=body)
                if resp.is_success or resp.status_code == 409:
                    return
                time.sleep(0.5)
            raise BenchError(f"POST imagedeploy fleet-{i}: {resp.status_code} {resp.text[:300]}")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(n)))
        created = time.monotonic() - t0
        console.print(f"  {n} ImageDeploys created in {created:.1f}s; waiting for {n} Deployments on the first digest")

        def all_on(digest: str) -> bool:
            images = self.fleet_images()
            return len(images) == n and all(i.endswith("@" + digest) for i in images.values())

        self.wait_for(f"{n} Deployments on the first digest", lambda: all_on(first), FLEET_CREATE_TIMEOUT, 1.0)
        settled = time.monotonic() - t0
        console.print(f"  all {n} Deployments on the first digest {settled:.1f}s after the first create")
        time.sleep(2)  # let the Deployment/ReplicaSet controllers finish their own work on the new Deployments
        listing = self.api(
            "GET", f"/apis/apps/v1/namespaces/{FLEET_NS}/deployments", params={"labelSelector": FLEET_LABEL}
        )
        watcher = FleetWatch(self, listing["metadata"]["resourceVersion"])
        watcher.start()
        try:
            second = self.skopeo_copy(f"{self.staging}:v1", f"{repo}:latest")
            t1 = time.monotonic()
            watcher.pushed(second)
            done_at = watcher.wait_all(n, t1 + FLEET_TIMEOUT)
        finally:
            watcher.stop()
        if done_at is None:
            raise BenchError(
                f"not every one of {n} Deployments on the new digest within {FLEET_TIMEOUT}s "
                f"({watcher.count()} seen{'; watch error: ' + watcher.error if watcher.error else ''})"
            )
        done = done_at - t1
        first_seen = (watcher.first() or done_at) - t1
        images = self.fleet_images()
        if len(images) != n or not all(i.endswith("@" + second) for i in images.values()):
            raise BenchError("the watch saw every Deployment on the new digest, a LIST does not")
        self.results["fleet"] = {
            "imagedeploys": n,
            "create_s": created,
            "first_digest_everywhere_s": settled,
            "first_deployment_on_new_digest_s": first_seen,
            "all_deployments_on_new_digest_s": done,
            "measured_by": "watch",
        }
        console.print(f"  new digest on all {n} Deployments {done:.2f}s after skopeo returned")

    # --- report ---------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        s, r = self.results["serving_s"], self.results["ready_s"]
        fleet = self.results["fleet"]
        out = {
            "pushes": len(s),
            "expose": self.args.expose,
            "serving_p50_s": median(s),
            "serving_p99_s": percentile(s, 99),
            "serving_max_s": max(s) if s else None,
            "ready_p50_s": median(r),
            "ready_p99_s": percentile(r, 99),
            "serving_s": [round(x, 3) for x in s],
            "fleet": fleet,
            "goals": {
                "serving_p50_le_1_5s": (median(s) or 1e9) <= GOAL_SERVING_P50 if s else None,
                "fleet_le_10s": fleet.get("all_deployments_on_new_digest_s", 1e9) <= GOAL_FLEET if fleet else None,
            },
            "anchors_poll_interval_s": ANCHORS,
        }
        return out

    def tables(self, summary: dict[str, Any]) -> list[Table]:
        t = Table(title=f"push (skopeo) → new pod serving, {summary['pushes']} pushes (seconds)")
        for col in ("", "p50", "p99", "max", "goal"):
            t.add_column(col, justify="right" if col else "left")
        s, r = self.results["serving_s"], self.results["ready_s"]
        t.add_row(
            f"dockyard: new page served ({self.args.expose})",
            fmt(median(s)),
            fmt(percentile(s, 99)),
            fmt(max(s) if s else None),
            f"p50 ≤ {GOAL_SERVING_P50}",
        )
        t.add_row(
            "dockyard: pod on the new digest Running+Ready (API)",
            fmt(median(r)),
            fmt(percentile(r, 99)),
            fmt(max(r) if r else None),
            "",
        )
        for name, interval in ANCHORS.items():
            t.add_row(
                f"reference: {name} poll, before the rollout starts",
                fmt(interval / 2, 0) + " avg",
                fmt(interval, 0) + " worst",
                "",
                "",
            )
        tables = [t]
        f = summary["fleet"]
        if f:
            ft = Table(title=f"one new digest → {f['imagedeploys']} ImageDeploys (replicas 0)")
            ft.add_column("")
            ft.add_column("seconds", justify="right")
            ft.add_column("goal", justify="right")
            ft.add_row("first Deployment on the new digest", fmt(f["first_deployment_on_new_digest_s"]), "")
            ft.add_row(
                "every Deployment on the new digest", fmt(f["all_deployments_on_new_digest_s"]), f"≤ {GOAL_FLEET:.0f}"
            )
            ft.add_row(f"(setup) {f['imagedeploys']} ImageDeploys created", fmt(f["create_s"]), "")
            ft.add_row(
                "(setup) … and all their Deployments on the first digest", fmt(f["first_digest_everywhere_s"]), ""
            )
            ft.add_row("reference: Flux, Keel poll (1m), Argo CD Image Updater (2m)", "60 / 120 worst", "")
            tables.append(ft)
        return tables


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pushes", type=int, default=20, help="measured pushes (default 20)")
    p.add_argument("--fleet", type=int, default=1000, help="ImageDeploys following one Image (default 1000; 0 skips)")
    p.add_argument(
        "--expose",
        choices=("service", "hostport"),
        default="service",
        help="how the app is reached: a LoadBalancer Service with a surging rollout (default), or a hostPort",
    )
    p.add_argument("--workdir", type=Path, help="state directory (default: a new one under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the work directory and the images")
    args = p.parse_args()
    if not 1 <= args.pushes <= 100 or not 0 <= args.fleet <= 5000:
        p.error("--pushes must be 1..100 and --fleet 0..5000")
    workdir = make_workdir(args.workdir, "dy-bench-cd-")
    bench = Bench(workdir, args)
    bench.notes += harness.start_notes()
    steps: list[harness.Step] = [
        ("dockyard up", bench.start),
        ("base image: dockyard base-image busybox", bench.base_image),
        (f"{args.pushes + 1} hello images (raw engine) in a staging repository", bench.build_variants),
        (f"push → serving: {args.pushes} skopeo pushes", bench.push_to_serving),
    ]
    if args.fleet:
        steps.append((f"fan-out: one new digest → {args.fleet} ImageDeploys", bench.fleet))
    error = harness.run_steps(
        steps,
        log=workdir / "up.log",
        cleanup=lambda: bench.teardown(keep=args.keep),
        after_step=lambda title: bench.notes.append(f"host load average after {title}: {harness.load_average()}"),
    )
    summary = bench.summary()
    out = Console(highlight=False, width=150)
    for t in bench.tables(summary):
        out.print(t)
    harness.print_notes(out, bench.notes, bench.stop_info, bench.problems)
    for goal, met in summary["goals"].items():
        if met is False:
            bench.notes.append(f"goal not met: {goal}")  # in the record's notes (the tables show the goals)
    fields = {
        "code": code_version(),
        "engine": bench.engine_kind,
        **summary,
    }
    return harness.finish(
        "cd",
        error=error,
        fields=fields,
        problems=bench.problems,
        notes=bench.notes,
        stop=bench.stop_info,
        workdir=workdir,
        keep=args.keep or args.workdir is not None,
    )


if __name__ == "__main__":
    sys.exit(main())
