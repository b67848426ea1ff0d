"""Benchmark: dockyard's Build and Push against the raw engine doing the same work.

One run starts ``dockyard up`` (temporary data dir, free ports on 127.0.0.1,
engine ``auto``), makes the busybox base image, then measures, round by round:

build
    dockyard: ``POST .../buildconfigs/bench-hello/instantiate`` → the Build's
    ``status.phase`` is ``Complete`` (seen through a watch). Each round commits
    a new ``index.html`` to the git source first, so the ``COPY`` layer is new.
    raw: ``podman --url unix://SOCK build`` of the same context with the same
    kind of change + ``podman push --tls-verify=false`` to the same registry.
push
    dockyard: ``POST .../pushes`` (the object ``dockyard commit POD/web REF``
    creates) → ``status.phase`` is ``Succeeded``.
    raw: ``podman commit --pause=true`` + ``podman push`` of the same engine
    container (found by its ``dockyard.pod.*`` labels) to another tag.

Both sides talk to the same engine socket and the same registry; rounds
alternate which side goes first. Prints a table (medians, ratio dockyard/raw)
and, as its last stdout line, one JSON summary. ``dockyard up`` is stopped
with SIGTERM at the end, also on failure.

Usage: .venv/bin/python bench/build_push.py [--rounds N] [--warmup N] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as harness
from _harness import (
    APP,
    BUILD_TERMINAL,
    GROUP,
    NS,
    PUSH_TERMINAL,
    BenchError,
    Harness,
    build_stages,
    console,
    fmt,
    make_workdir,
    median,
    stage_medians,
)

BUILDCONFIG = "bench-hello"
POD = "bench-web"
CONTAINER = "web"

# Every wait is bounded (seconds).
BUILD_TIMEOUT = 300
PUSH_TIMEOUT = 180
POD_TIMEOUT = 180


# --- the benchmark -------------------------------------------------------------------------------


class Bench(Harness):
    def __init__(
        self, workdir: Path, *, rounds: int, warmup: int, engine: str, raw_client: str, isolated_storage: bool = True
    ) -> None:
        super().__init__(workdir, engine=engine, raw_client=raw_client, isolated_storage=isolated_storage)
        self.repo = workdir / "hello-src"
        self.raw_ctx = workdir / "raw-ctx"
        self.rounds, self.warmup = rounds, warmup
        self.build_ref = f"{self.registry}/bench-hello:latest"
        self.raw_build_ref = f"{self.registry}/bench-hello:raw"
        self.snap_repo = f"{self.registry}/bench-snapshot"
        self.pod_digests: list[str] = []
        self.pod_uid: str | None = None
        self.container_id: str | None = None
        # results
        self.results: dict[str, dict[str, Any]] = {
            "build": {"dockyard": [], "raw": [], "status_duration": [], "phases": []},
            "push": {"dockyard": [], "raw": [], "phases": []},
        }

    # --- set-up ---------------------------------------------------------------------------------

    def git(self, *args: str) -> None:
        self.sh(
            "git", "-C", str(self.repo), "-c", "user.name=dockyard bench", "-c", "user.email=bench@dockyard.dev", *args
        )

    def make_repo(self) -> None:
        shutil.copytree(APP, self.repo / "app")
        shutil.copytree(APP, self.raw_ctx)
        self.sh("git", "init", "-q", "-b", "main", str(self.repo))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "bench v0")

    def repo_and_buildconfig(self) -> None:
        """The git repository, then the BuildConfig building from it."""
        self.make_repo()
        self.apply_buildconfig()

    def apply_buildconfig(self) -> None:
        bc = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildConfig",
            "metadata": {"name": BUILDCONFIG, "namespace": NS},
            "spec": {
                "source": {"type": "Git", "git": {"uri": str(self.repo), "ref": "main"}, "contextDir": "app"},
                "strategy": {
                    "type": "Docker",
                    "dockerStrategy": {
                        "dockerfilePath": "Dockerfile",
                        "buildArgs": [{"name": "BASE", "value": self.base_ref}],
                    },
                },
                "output": {"to": {"kind": "DockerImage", "name": self.build_ref}},
            },
        }
        self.kubectl("apply", "-f", "-", input_=yaml.safe_dump(bc))

        def idle() -> bool:  # no build of this config under way (none is expected: the config has no triggers)
            items = self.api(
                "GET",
                f"{GROUP}/namespaces/{NS}/builds",
                params={"labelSelector": f"dockyard.dev/buildconfig={BUILDCONFIG}"},
            )["items"]
            return all((b.get("status") or {}).get("phase") in BUILD_TERMINAL for b in items)

        time.sleep(0.5)
        self.wait_for(f"builds of {BUILDCONFIG} to be idle", idle, BUILD_TIMEOUT)

    # --- build ----------------------------------------------------------------------------------

    def dockyard_build(self, label: str) -> tuple[float, dict[str, Any], dict[str, float]]:
        (self.repo / "app" / "index.html").write_text(f"Hello from dockyard bench {label} dockyard {uuid.uuid4()}\n")
        self.git("commit", "-q", "-am", f"bench {label}")
        t0 = time.monotonic()
        build = self.api(
            "POST",
            f"{GROUP}/namespaces/{NS}/buildconfigs/{BUILDCONFIG}/instantiate",
            json={"kind": "BuildRequest", "apiVersion": "dockyard.dev/v1alpha1", "metadata": {"name": BUILDCONFIG}},
        )
        build, phases = self.wait_phase("builds", build, BUILD_TERMINAL, BUILD_TIMEOUT, t0)
        elapsed = time.monotonic() - t0
        status = build.get("status") or {}
        name = build["metadata"]["name"]
        if status.get("phase") != "Complete":
            raise BenchError(
                f"build/{name} ended {status.get('phase')} ({status.get('reason')}): "
                f"{status.get('message')}\n{status.get('logSnippet') or ''}"
            )
        digest = ((status.get("output") or {}).get("to") or {}).get("imageDigest")
        served = self.registry_digest(self.build_ref)
        if not digest or served != digest:
            raise BenchError(f"build/{name}: registry serves {served} for {self.build_ref}, Build says {digest}")
        self.remember_image(self.build_ref)
        return elapsed, build, phases

    def raw_build(self, label: str) -> tuple[float, dict[str, float]]:
        """``(seconds, {"build": s, "push": s})`` of the raw client's build then push."""
        assert self.raw is not None
        (self.raw_ctx / "index.html").write_text(f"Hello from dockyard bench {label} raw {uuid.uuid4()}\n")
        t0 = time.monotonic()
        self.raw.build(self.raw_ctx, self.raw_build_ref, {"BASE": self.base_ref})
        t1 = time.monotonic()
        self.raw.push(self.raw_build_ref)
        elapsed = time.monotonic() - t0
        if not self.registry_digest(self.raw_build_ref):
            raise BenchError(f"raw push of {self.raw_build_ref} is not in the registry")
        self.remember_image(self.raw_build_ref)
        return elapsed, {"build": t1 - t0, "push": t0 + elapsed - t1}

    def bench_build(self) -> str:
        res = self.results["build"]
        digest = ""
        for i in range(self.warmup + self.rounds):
            warm = i < self.warmup
            label = f"warmup{i + 1}" if warm else f"round{i - self.warmup + 1}"
            sides = ["dockyard", "raw"] if i % 2 == 0 else ["raw", "dockyard"]
            line = []
            for side in sides:
                if side == "dockyard":
                    elapsed, build, phases = self.dockyard_build(label)
                    digest = build["status"]["output"]["to"]["imageDigest"]
                    dur = build["status"].get("duration")
                    stages = build_stages(build, elapsed, phases)
                    if not warm:
                        res["dockyard"].append(elapsed)
                        res["phases"].append(phases)
                        res.setdefault("stages", []).append(stages)
                        if isinstance(dur, (int, float)):
                            res["status_duration"].append(dur / 1e9)
                    line.append(
                        f"dockyard {elapsed:.2f}s (build/{build['metadata']['name']}, "
                        f"status.duration {fmt(dur / 1e9 if isinstance(dur, (int, float)) else None)}s, "
                        + ", ".join(f"{p}@{t:.2f}" for p, t in phases.items())
                        + "; stages "
                        + ", ".join(f"{n} {t:.2f}" for n, t in stages.items())
                        + ")"
                    )
                else:
                    elapsed, split = self.raw_build(label)
                    if not warm:
                        res["raw"].append(elapsed)
                        res.setdefault("raw_stages", []).append(split)
                    line.append(f"raw {elapsed:.2f}s (build {split['build']:.2f}, push {split['push']:.2f})")
            console.print(f"  build {label}: " + " · ".join(line))
        return digest

    # --- push -----------------------------------------------------------------------------------

    def run_pod(self, digest: str) -> None:
        image = f"{self.registry}/bench-hello@{digest}"
        self.pod_digests.append(digest)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": POD, "namespace": NS, "labels": {"app": "bench-web"}},
            # busybox httpd as PID 1 ignores SIGTERM: a short grace period lets the clean-up finish quickly
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": CONTAINER, "image": image}]},
        }
        self.kubectl("apply", "-f", "-", input_=yaml.safe_dump(pod))

        def running() -> dict[str, Any] | None:
            p = self.api("GET", f"/api/v1/namespaces/{NS}/pods/{POD}")
            statuses = (p.get("status") or {}).get("containerStatuses") or []
            up = any(s.get("name") == CONTAINER and "running" in (s.get("state") or {}) for s in statuses)
            return p if (p.get("status") or {}).get("phase") == "Running" and up else None

        t0 = time.monotonic()
        pod_obj = self.wait_for(f"pod/{POD} Running", running, POD_TIMEOUT)
        self.pod_uid = pod_obj["metadata"]["uid"]
        raw, uid = self.raw, self.pod_uid
        assert raw is not None and uid is not None
        self.container_id = self.wait_for(
            f"the engine container of {POD}/{CONTAINER} (label dockyard.pod.uid={uid})",
            lambda: raw.find_container(uid, CONTAINER),
            60,
        )
        console.print(f"  pod/{POD} Running in {time.monotonic() - t0:.1f}s; engine container {self.container_id[:12]}")

    def touch_container(self, label: str) -> None:
        """Write a unique file into the container so the next commit carries a new layer (not timed).

        If the pod's engine container was replaced (or stopped by someone else), wait for the running one
        and say so in the notes.
        """
        assert self.raw is not None and self.container_id is not None and self.pod_uid is not None
        try:
            self.raw.put_file(self.container_id, f"/bench-{label}.txt", f"{label} {uuid.uuid4()}\n")
            return
        except BenchError as err:
            first = str(err).strip().splitlines()[-1]
        raw, uid = self.raw, self.pod_uid
        self.container_id = self.wait_for(
            f"a running engine container for {POD}/{CONTAINER}", lambda: raw.find_container(uid, CONTAINER), POD_TIMEOUT
        )
        self.notes.append(
            f"push {label}: the pod's container was not running ({first}); continued with {self.container_id[:12]}"
        )
        self.raw.put_file(self.container_id, f"/bench-{label}.txt", f"{label} {uuid.uuid4()}\n")

    def dockyard_push(self, label: str) -> tuple[float, dict[str, Any], dict[str, float]]:
        ref = f"{self.snap_repo}:dockyard-{label}"
        self.touch_container(f"dockyard-{label}")
        body = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Push",
            "metadata": {"generateName": f"{POD}-{CONTAINER}-", "namespace": NS},
            "spec": {"podName": POD, "containerName": CONTAINER, "image": ref, "pause": True},
        }
        t0 = time.monotonic()
        push = self.api("POST", f"{GROUP}/namespaces/{NS}/pushes", json=body)
        push, phases = self.wait_phase("pushes", push, PUSH_TERMINAL, PUSH_TIMEOUT, t0)
        elapsed = time.monotonic() - t0
        status = push.get("status") or {}
        name = push["metadata"]["name"]
        if status.get("phase") != "Succeeded":
            raise BenchError(f"push/{name} ended {status.get('phase')}: {status.get('message')}")
        served = self.registry_digest(ref)
        if served != status.get("imageDigest"):
            raise BenchError(f"push/{name}: registry serves {served} for {ref}, Push says {status.get('imageDigest')}")
        self.remember_image(ref)
        return elapsed, push, phases

    def raw_push(self, label: str) -> float:
        assert self.raw is not None and self.container_id is not None
        ref = f"{self.snap_repo}:raw-{label}"
        self.touch_container(f"raw-{label}")
        t0 = time.monotonic()
        self.raw.commit(self.container_id, ref)
        self.raw.push(ref)
        elapsed = time.monotonic() - t0
        if not self.registry_digest(ref):
            raise BenchError(f"raw push of {ref} is not in the registry")
        self.remember_image(ref)
        return elapsed

    def bench_push(self) -> None:
        res = self.results["push"]
        for i in range(self.warmup + self.rounds):
            warm = i < self.warmup
            label = f"warmup{i + 1}" if warm else f"round{i - self.warmup + 1}"
            sides = ["dockyard", "raw"] if i % 2 == 0 else ["raw", "dockyard"]
            line = []
            for side in sides:
                if side == "dockyard":
                    elapsed, push, phases = self.dockyard_push(label)
                    if not warm:
                        res["dockyard"].append(elapsed)
                        res["phases"].append(phases)
                    line.append(
                        f"dockyard {elapsed:.2f}s (push/{push['metadata']['name']}, "
                        + ", ".join(f"{p}@{t:.2f}" for p, t in phases.items())
                        + ")"
                    )
                else:
                    elapsed = self.raw_push(label)
                    if not warm:
                        res["raw"].append(elapsed)
                    line.append(f"raw {elapsed:.2f}s")
            console.print(f"  push {label}: " + " · ".join(line))

    # --- tear-down ------------------------------------------------------------------------------

    def delete_pod(self) -> None:
        """Delete the bench pod through the API so the agent removes its engine containers (bounded)."""
        if self.http is None or self.pod_uid is None or self.up_proc is None or self.up_proc.poll() is not None:
            return
        try:
            self.http.delete(f"/api/v1/namespaces/{NS}/pods/{POD}", params={"gracePeriodSeconds": "0"})
            raw = self.raw
            uid = self.pod_uid
            self.wait_for(
                "the bench pod's containers to be removed", lambda: raw is None or not raw.pod_containers(uid), 30
            )
        except Exception as err:
            self.notes.append(f"pod clean-up incomplete: {err}")

    def extra_refs_to_remove(self) -> list[str]:
        return [f"{self.registry}/bench-hello@{d}" for d in self.pod_digests]

    # --- report ---------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for op in ("build", "push"):
            r = self.results[op]
            dy, raw = median(r["dockyard"]), median(r["raw"])
            entry: dict[str, Any] = {
                "dockyard_median_s": dy,
                "raw_median_s": raw,
                "ratio": (dy / raw) if dy is not None and raw else None,
                # each round runs both sides back to back: its own ratio cancels what drifts over the run
                # (the host's other load), which the ratio of the two medians does not
                "paired_ratio": median([d / w for d, w in zip(r["dockyard"], r["raw"], strict=False) if w]),
                "rounds": min(len(r["dockyard"]), len(r["raw"])),
                "dockyard_s": [round(x, 3) for x in r["dockyard"]],
                "raw_s": [round(x, 3) for x in r["raw"]],
            }
            phases = sorted({p for ph in r["phases"] for p in ph})
            entry["dockyard_phase_first_seen_median_s"] = {
                p: median([ph[p] for ph in r["phases"] if p in ph]) for p in phases
            }
            if op == "build":
                entry["status_duration_median_s"] = median(r["status_duration"])
                entry["dockyard_stage_median_s"] = stage_medians(r.get("stages") or [])
                entry["raw_stage_median_s"] = stage_medians(r.get("raw_stages") or [])
            out[op] = entry
        return out

    def table(self, summary: dict[str, Any]) -> Table:
        t = Table(
            title=f"dockyard vs raw engine ({self.engine_kind}, raw side: "
            f"{self.raw.name if self.raw else '?'}), medians"
        )
        t.add_column("operation")
        t.add_column("dockyard median s", justify="right")
        t.add_column("raw median s", justify="right")
        t.add_column("ratio dockyard/raw", justify="right")
        t.add_column("paired ratio", justify="right")
        t.add_column("rounds", justify="right")
        rows = (
            ("build: source change → image in registry", "build"),
            ("push: commit running container → registry", "push"),
        )
        for title, op in rows:
            s = summary[op]
            t.add_row(
                title,
                fmt(s["dockyard_median_s"]),
                fmt(s["raw_median_s"]),
                fmt(s["ratio"]),
                fmt(s["paired_ratio"]),
                str(s["rounds"]),
            )
        s = summary["build"]
        if s.get("status_duration_median_s") is not None:
            t.add_row(
                "  build, as Build status.duration reports it (sum of its stages)",
                fmt(s["status_duration_median_s"]),
                fmt(s["raw_median_s"]),
                "—",
                "",
                str(s["rounds"]),
            )
        raw_stages = s.get("raw_stage_median_s") or {}
        client = self.raw.name if self.raw else "raw"
        anchors = {"Build": "build", "PushImage": "push"}  # the raw side's step doing the stage's work
        for stage, secs in (s.get("dockyard_stage_median_s") or {}).items():
            step = anchors.get(stage)
            anchor = raw_stages.get(step) if step else None
            t.add_row(
                f"  build stage: {stage}" + (f" (raw: {client} {step})" if anchor is not None else ""),
                fmt(secs),
                fmt(anchor) if anchor is not None else "",
                fmt(secs / anchor) if anchor and secs is not None else "",
                "",
                str(s["rounds"]),
            )
        return t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per operation (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (default 1)")
    parser.add_argument("--engine", default="auto", help="dockyard up --engine: auto | podman | docker")
    parser.add_argument(
        "--raw-client",
        default="auto",
        choices=("auto", "podman", "docker-py"),
        help="how the raw side drives the engine (auto: podman CLI for Podman, else docker-py)",
    )
    parser.add_argument("--workdir", type=Path, help="state directory (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and the images")
    parser.add_argument("--skip-push", action="store_true", help="measure builds only (no pod, no Push rounds)")
    parser.add_argument(
        "--shared-storage",
        action="store_true",
        help="let dockyard's Podman service use the host's image store (default: its own, under the work directory)",
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.rounds > 100 or args.warmup < 0 or args.warmup > 10:
        parser.error("--rounds must be 1..100 and --warmup 0..10")
    workdir = make_workdir(args.workdir, "dy-bench-")
    bench = Bench(
        workdir,
        rounds=args.rounds,
        warmup=args.warmup,
        engine=args.engine,
        raw_client=args.raw_client,
        isolated_storage=not args.shared_storage,
    )
    steps: list[harness.Step] = [
        ("dockyard up", bench.start),
        ("base image: dockyard base-image busybox", bench.base_image),
        ("git repository + BuildConfig (kubectl apply)", bench.repo_and_buildconfig),
    ]
    digest_box: dict[str, str] = {}
    steps += [
        (
            f"build: {args.warmup} warm-up + {args.rounds} rounds each side",
            lambda: digest_box.update(digest=bench.bench_build()),
        ),
    ]
    if not args.skip_push:
        steps += [
            ("pod with the built image", lambda: bench.run_pod(digest_box["digest"])),
            (f"push: {args.warmup} warm-up + {args.rounds} rounds each side", bench.bench_push),
        ]

    def cleanup() -> None:
        bench.delete_pod()
        bench.teardown(keep=args.keep)

    error = harness.run_steps(steps, log=workdir / "up.log", cleanup=cleanup)
    summary = bench.summary()
    out = Console(highlight=False, width=120)
    out.print(bench.table(summary))
    for p_op in ("build", "push"):
        ph = summary[p_op]["dockyard_phase_first_seen_median_s"]
        if ph:
            out.print(
                f"dockyard {p_op} phases, median seconds from create to first seen: "
                + ", ".join(f"{k} {fmt(v)}" for k, v in sorted(ph.items(), key=lambda kv: kv[1] or 0))
            )
    harness.print_notes(out, bench.notes, bench.stop_info)
    fields = {
        "engine": bench.engine_kind,
        "raw_client": bench.raw.name if bench.raw else None,
        "warmup": args.warmup,
        "rounds_requested": args.rounds,
        **summary,
    }
    return harness.finish(
        "build_push",
        error=error,
        fields=fields,
        stop=bench.stop_info,
        workdir=workdir,
        keep=args.keep or args.workdir is not None,
    )


if __name__ == "__main__":
    sys.exit(main())
