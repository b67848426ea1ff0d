"""Benchmark: many dockyard builds at once, and a cached rebuild, against the raw engine in the same run.

One run starts ``dockyard up --max-builds N`` (temporary data dir, free ports on 127.0.0.1; see
``_harness.py``), makes the busybox base image and a git repository from ``examples/hello/app``, and
measures:

batch (for each N of ``--max-builds``, default ``2,10``; ``up`` is restarted with the next N)
    dockyard: ``--builds`` (10) commits, each with its own ``index.html`` (not timed), then the clock
    runs from the first of ``--builds`` ``POST .../buildconfigs/bench-par/instantiate`` (runPolicy
    ``Parallel``; each BuildRequest pins its own commit with ``revision.git.commit``) until a watch
    has seen every one of those Builds ``Complete``. Every Build must report its own digest and the
    registry must serve it.
    raw, same concurrency: the same number of contexts, each with its own ``index.html``, each
    ``podman build`` + ``podman push`` (own tag), run by N threads.
raw, serial
    the same work one build after another (``--builds`` contexts, new content).
cache
    dockyard: a new commit is built once (the first build of that content, timed from instantiate to
    Complete), then the same commit again with nothing changed (the rebuild, timed the same way).
    raw: ``podman build`` + ``push`` of a new context, then of the same context unchanged.
    ``--cache-rounds`` (default 2) of each; medians.

Both sides use the same engine socket, the same registry and the same base image. Prints tables and,
as its last stdout line, one JSON summary. ``dockyard up`` is stopped with SIGTERM at the end, also on
failure; the run's own container store is deleted.

Usage: .venv/bin/python bench/builds.py [--builds 10] [--max-builds 2,10] [--cache-rounds 2] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import functools
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
    BUILD_TERMINAL,
    GROUP,
    NS,
    BenchError,
    Harness,
    code_version,
    console,
    fmt,
    make_workdir,
    median,
)

BUILDCONFIG = "bench-par"
LABEL = "dockyard.dev/buildconfig"

# Every wait is bounded (seconds).
BATCH_TIMEOUT = 900
BUILD_TIMEOUT = 300


class Bench(Harness):
    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        super().__init__(
            workdir,
            engine=args.engine,
            raw_client=args.raw_client,
            isolated_storage=not args.shared_storage,
            up_args=["--max-builds", str(args.max_builds[0])],
        )
        self.args = args
        self.repo = workdir / "hello-src"
        self.raw_dir = workdir / "raw"
        self.out_ref = f"{self.registry}/bench-par:latest"
        self.raw_repo = f"{self.registry}/bench-par-raw"
        self.seq = 0  # makes every piece of content, commit and raw tag unique in the run
        self.results: dict[str, Any] = {"dockyard": {}, "raw_concurrent": {}, "raw_serial": None, "cache": {}}
        self.problems: list[str] = []
        self.current_max: int | None = None

    # --- source ---------------------------------------------------------------------------------

    def git(self, *args: str) -> str:
        return self.sh(
            "git", "-C", str(self.repo), "-c", "user.name=dockyard bench", "-c", "user.email=bench@dockyard.dev", *args
        ).stdout.strip()

    def content(self, side: str) -> str:
        self.seq += 1
        return f"Hello from dockyard bench {side} #{self.seq} {uuid.uuid4()}\n"

    def make_repo(self) -> None:
        shutil.copytree(APP, self.repo / "app")
        self.sh("git", "init", "-q", "-b", "main", str(self.repo))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "bench v0")

    def new_commit(self) -> str:
        """Commit a new index.html; returns the commit id (not timed)."""
        (self.repo / "app" / "index.html").write_text(self.content("dockyard"))
        self.git("commit", "-q", "-am", f"bench #{self.seq}")
        return self.git("rev-parse", "HEAD")

    def raw_context(self) -> Path:
        """A copy of the app with a new index.html (not timed)."""
        ctx = self.raw_dir / f"ctx-{self.seq + 1}"
        shutil.copytree(APP, ctx)
        (ctx / "index.html").write_text(self.content("raw"))
        return ctx

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
                "runPolicy": "Parallel",
                # keep every Build of the run (the default keeps 5 successful ones)
                "successfulBuildsHistoryLimit": 1000,
                "failedBuildsHistoryLimit": 1000,
                "source": {"type": "Git", "git": {"uri": str(self.repo), "ref": "main"}, "contextDir": "app"},
                "strategy": {
                    "type": "Docker",
                    "dockerStrategy": {
                        "dockerfilePath": "Dockerfile",
                        "buildArgs": [{"name": "BASE", "value": self.base_ref}],
                    },
                },
                "output": {"to": {"kind": "DockerImage", "name": self.out_ref}},
            },
        }
        self.api("POST", f"{GROUP}/namespaces/{NS}/buildconfigs", json=bc)

    # --- dockyard -------------------------------------------------------------------------------

    def instantiate(self, commit: str) -> dict[str, Any]:
        return self.api(
            "POST",
            f"{GROUP}/namespaces/{NS}/buildconfigs/{BUILDCONFIG}/instantiate",
            json={
                "kind": "BuildRequest",
                "apiVersion": "dockyard.dev/v1alpha1",
                "metadata": {"name": BUILDCONFIG},
                "revision": {"type": "Git", "git": {"commit": commit}},
            },
        )

    def watch_builds(
        self, names: list[str], rv: str, t0: float, timeout: float
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]], int]:
        """Watch this config's Builds until every one of ``names`` is terminal.

        Returns (last object by name, {name: {phase: seconds since t0 first seen}}, the most Builds seen
        ``Running`` at once).
        """
        wanted = set(names)
        last: dict[str, dict[str, Any]] = {}
        seen: dict[str, dict[str, float]] = {n: {} for n in names}
        running: set[str] = set()
        peak = 0
        path = f"{GROUP}/namespaces/{NS}/builds"
        deadline = time.monotonic() + timeout

        def note(o: dict[str, Any]) -> None:
            nonlocal peak
            name = o["metadata"]["name"]
            if name not in wanted:
                return
            last[name] = o
            phase = (o.get("status") or {}).get("phase") or "New"
            seen[name].setdefault(phase, time.monotonic() - t0)
            if phase == "Running":
                running.add(name)
            else:
                running.discard(name)
            peak = max(peak, len(running))

        def done() -> bool:
            return all(((last.get(n) or {}).get("status") or {}).get("phase") in BUILD_TERMINAL for n in names)

        for _attempt in range(1000):  # reconnects, bounded by the deadline in practice
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                selector = {"labelSelector": f"{LABEL}={BUILDCONFIG}"}
                for event in self.watch_events(
                    path, selector, rv, remaining=remaining, window=120, slack=10, what="watch on builds"
                ):
                    o = event.get("object") or {}
                    rv = (o.get("metadata") or {}).get("resourceVersion", rv)
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        note(o)
                    if done():
                        return last, seen, peak
                    if time.monotonic() > deadline:
                        break
            except (httpx.HTTPError, ValueError):
                pass  # stream ended or broke: list and watch again
            listed = self.api("GET", path, params={"labelSelector": f"{LABEL}={BUILDCONFIG}"})
            for o in listed["items"]:
                note(o)
            if done():
                return last, seen, peak
            rv = listed["metadata"]["resourceVersion"]
        pending = {n: ((last.get(n) or {}).get("status") or {}).get("phase") for n in names}
        raise BenchError(f"builds not all terminal after {timeout:.0f}s: {pending}")

    def run_builds(self, commits: list[str], timeout: float) -> dict[str, Any]:
        """Instantiate one Build per commit at once; wait until all are terminal; check each one."""
        rv = self.api("GET", f"{GROUP}/namespaces/{NS}/builds", params={"limit": "1"})["metadata"]["resourceVersion"]
        t0 = time.monotonic()
        names = [self.instantiate(c)["metadata"]["name"] for c in commits]
        t_created = time.monotonic() - t0
        last, seen, peak = self.watch_builds(names, rv, t0, timeout)
        wall = time.monotonic() - t0
        digests, per_build, durations, failures = [], [], [], []
        for name, commit in zip(names, commits, strict=True):
            st = last[name].get("status") or {}
            if st.get("phase") != "Complete":
                failures.append(f"build/{name} ended {st.get('phase')} ({st.get('reason')}): {st.get('message')}")
                continue
            digest = ((st.get("output") or {}).get("to") or {}).get("imageDigest")
            rev = (((st.get("revision") or last[name]["spec"].get("revision")) or {}).get("git") or {}).get("commit")
            if rev and rev != commit:
                failures.append(f"build/{name} built {rev}, asked for {commit}")
            if not digest or self.registry_digest(f"{self.out_ref.rsplit(':', 1)[0]}@{digest}") != digest:
                failures.append(f"build/{name}: digest {digest} is not in the registry")
            digests.append(digest)
            per_build.append(seen[name].get("Complete", wall))
            if isinstance(st.get("duration"), (int, float)):
                durations.append(st["duration"] / 1e9)
        if len(set(digests)) != len(digests):
            failures.append(
                f"{len(digests) - len(set(digests))} Builds report a digest another Build of this "
                "batch reports, although each built different content"
            )
        return {
            "names": names,
            "wall_s": wall,
            "instantiate_all_s": t_created,
            "peak_running": peak,
            "complete_s": per_build,
            "status_duration_s": durations,
            "digests": digests,
            "phases": {n: seen[n] for n in names},
            "failures": failures,
        }

    def dockyard_batch(self, n: int) -> None:
        if self.current_max != n:
            if self.current_max is not None:
                console.print(f"  restarting dockyard up with --max-builds {n}")
                self.stop()
                self.start(["--max-builds", str(n)])
            self.current_max = n
        commits = [self.new_commit() for _ in range(self.args.builds)]
        res = self.run_builds(commits, BATCH_TIMEOUT)
        res["load_average_after"] = harness.load_average()
        self.results["dockyard"][str(n)] = res
        first = min(res["complete_s"]) if res["complete_s"] else None
        console.print(
            f"  dockyard --max-builds {n}: {self.args.builds} builds in {res['wall_s']:.2f}s "
            f"(first Complete at {fmt(first)}s, at most {res['peak_running']} Running at once; "
            f"load {res['load_average_after']})"
        )
        for f in res["failures"]:
            self.problems.append(f"--max-builds {n}: {f}")
            console.print(f"  [yellow]! {f}[/yellow]")
        if len(res["failures"]) == len(commits):
            raise BenchError(f"--max-builds {n}: every build failed: {res['failures'][:2]}")

    # --- raw ------------------------------------------------------------------------------------

    def raw_one(self, ctx: Path, tag: str) -> float:
        assert self.raw is not None
        ref = f"{self.raw_repo}:{tag}"
        t0 = time.monotonic()
        self.raw.build(ctx, ref, {"BASE": self.base_ref})
        self.raw.push(ref)
        elapsed = time.monotonic() - t0
        if not self.registry_digest(ref):
            raise BenchError(f"raw push of {ref} is not in the registry")
        return elapsed

    def raw_batch(self, workers: int) -> dict[str, Any]:
        contexts = [self.raw_context() for _ in range(self.args.builds)]
        tags = [f"b{self.seq}-{i}" for i in range(len(contexts))]
        lock = threading.Lock()
        ends: list[float] = []
        t0 = time.monotonic()

        def job(i: int) -> float:
            elapsed = self.raw_one(contexts[i], tags[i])
            with lock:
                ends.append(time.monotonic() - t0)
            return elapsed

        with ThreadPoolExecutor(max_workers=workers) as pool:
            each = list(pool.map(job, range(len(contexts))))
        wall = time.monotonic() - t0
        for tag in tags:
            self.remember_image(f"{self.raw_repo}:{tag}")
        return {
            "workers": workers,
            "wall_s": wall,
            "each_s": each,
            "complete_s": sorted(ends),
            "load_average_after": harness.load_average(),
        }

    def raw_concurrent(self, n: int) -> None:
        res = self.raw_batch(n)
        self.results["raw_concurrent"][str(n)] = res
        console.print(
            f"  raw, {n} threads: {self.args.builds} build+push in {res['wall_s']:.2f}s "
            f"(each: median {fmt(median(res['each_s']))}s; load {res['load_average_after']})"
        )

    def raw_serial(self) -> None:
        res = self.raw_batch(1)
        self.results["raw_serial"] = res
        console.print(
            f"  raw, serial: {self.args.builds} build+push in {res['wall_s']:.2f}s "
            f"(each: median {fmt(median(res['each_s']))}s)"
        )

    # --- cache ----------------------------------------------------------------------------------

    def cache(self) -> None:
        out: dict[str, Any] = {
            "dockyard_first": [],
            "dockyard_rebuild": [],
            "dockyard_same_digest": [],
            "raw_first": [],
            "raw_rebuild": [],
            "raw_same_id": [],
        }
        for r in range(self.args.cache_rounds):
            commit = self.new_commit()
            first = self.run_builds([commit], BUILD_TIMEOUT)
            again = self.run_builds([commit], BUILD_TIMEOUT)
            for res in (first, again):
                for f in res["failures"]:
                    self.problems.append(f"cache round {r + 1}: {f}")
            if first["failures"] or again["failures"]:
                raise BenchError(f"cache round {r + 1}: a build failed: {(first['failures'] + again['failures'])[:2]}")
            out["dockyard_first"].append(first["wall_s"])
            out["dockyard_rebuild"].append(again["wall_s"])
            out["dockyard_same_digest"].append(first["digests"] == again["digests"])
            # a Build's image config carries its own provenance (its order, revision): the digest differs by
            # design; the layers show whether the engine's cache was used
            repo = self.out_ref.rsplit(":", 1)[0]
            layers = [self.registry_layers(f"{repo}@{d}") for d in (*first["digests"], *again["digests"])]
            out.setdefault("dockyard_same_layers", []).append(bool(layers[0]) and all(x == layers[0] for x in layers))
            out.setdefault("dockyard_first_status_duration", []).extend(first["status_duration_s"])
            out.setdefault("dockyard_rebuild_status_duration", []).extend(again["status_duration_s"])
            ctx = self.raw_context()
            tag = f"cache{r + 1}"
            t_first = self.raw_one(ctx, tag)
            assert self.raw is not None
            id_first = self.raw.image_id(f"{self.raw_repo}:{tag}")
            t_again = self.raw_one(ctx, tag)
            id_again = self.raw.image_id(f"{self.raw_repo}:{tag}")
            self.remember_image(f"{self.raw_repo}:{tag}")
            out["raw_first"].append(t_first)
            out["raw_rebuild"].append(t_again)
            out["raw_same_id"].append(bool(id_first) and id_first == id_again)
            console.print(
                f"  cache round {r + 1}: dockyard first {first['wall_s']:.2f}s, rebuild "
                f"{again['wall_s']:.2f}s (same layers: {out['dockyard_same_layers'][-1]}); raw first "
                f"{t_first:.2f}s, rebuild {t_again:.2f}s (same image: {out['raw_same_id'][-1]})"
            )
        self.results["cache"] = out

    # --- report ---------------------------------------------------------------------------------

    def tables(self) -> list[Table]:
        r = self.results
        n_builds = self.args.builds
        serial = (r["raw_serial"] or {}).get("wall_s")
        t = Table(
            title=f"{n_builds} builds of examples/hello/app (each new content), started together; "
            f"engine {self.engine_kind}, raw side {self.raw.name if self.raw else '?'}"
        )
        t.add_column("run")
        t.add_column("at once (most Running seen)", justify="right")
        t.add_column("wall s, all done", justify="right")
        t.add_column("per build s (wall/n)", justify="right")
        t.add_column("÷ raw serial", justify="right")
        t.add_column("÷ raw same concurrency", justify="right")
        t.add_column("median s to each Complete", justify="right")
        for n in self.args.max_builds:
            d = r["dockyard"].get(str(n))
            raw = r["raw_concurrent"].get(str(n))
            raw_wall = (raw or {}).get("wall_s")
            if d:
                t.add_row(
                    f"dockyard, --max-builds {n} (runPolicy Parallel)",
                    f"{min(n, n_builds)} (seen {d['peak_running']})",
                    fmt(d["wall_s"]),
                    fmt(d["wall_s"] / n_builds),
                    fmt(d["wall_s"] / serial if serial else None),
                    fmt(d["wall_s"] / raw_wall if raw_wall else None),
                    fmt(median(d["complete_s"])),
                )
        if serial:
            t.add_row(
                "raw podman build + push, serial",
                "1",
                fmt(serial),
                fmt(serial / n_builds),
                "1.00",
                "—",
                fmt(median(r["raw_serial"]["complete_s"])),
            )
        for n in self.args.max_builds:
            raw = r["raw_concurrent"].get(str(n))
            if raw:
                t.add_row(
                    f"raw podman build + push, {n} threads",
                    str(min(n, n_builds)),
                    fmt(raw["wall_s"]),
                    fmt(raw["wall_s"] / n_builds),
                    fmt(raw["wall_s"] / serial if serial else None),
                    "1.00",
                    fmt(median(raw["complete_s"])),
                )
        tables = [t]
        c = r["cache"]
        if c and c.get("dockyard_first"):
            ct = Table(
                title=f"rebuild with no source change vs the first build of that content "
                f"(medians of {len(c['dockyard_first'])})"
            )
            ct.add_column("side")
            ct.add_column("first build s", justify="right")
            ct.add_column("rebuild s", justify="right")
            ct.add_column("rebuild ÷ first", justify="right")
            ct.add_column("same layers (dockyard) / image (raw)", justify="right")
            for side, key, same in (
                ("dockyard (instantiate → Complete)", "dockyard", "dockyard_same_layers"),
                ("raw podman build + push", "raw", "raw_same_id"),
            ):
                f, g = median(c[f"{key}_first"]), median(c[f"{key}_rebuild"])
                ct.add_row(side, fmt(f), fmt(g), fmt(g / f if f and g else None), f"{sum(c[same])}/{len(c[same])}")
            sf, sr = (
                median(c.get("dockyard_first_status_duration") or []),
                median(c.get("dockyard_rebuild_status_duration") or []),
            )
            ct.add_row(
                "  dockyard, as Build status.duration reports it",
                fmt(sf),
                fmt(sr),
                fmt(sr / sf if sf and sr else None),
                "",
            )
            df, rf = median(c["dockyard_first"]), median(c["raw_first"])
            dr, rr = median(c["dockyard_rebuild"]), median(c["raw_rebuild"])
            ct.add_row(
                "dockyard ÷ raw", fmt(df / rf if df and rf else None), fmt(dr / rr if dr and rr else None), "", ""
            )
            tables.append(ct)
        return tables

    def summary(self) -> dict[str, Any]:
        r: dict[str, Any] = json.loads(json.dumps(self.results, default=str))
        serial = (r["raw_serial"] or {}).get("wall_s")
        for n, d in r["dockyard"].items():
            raw = (r["raw_concurrent"].get(n) or {}).get("wall_s")
            d["ratio_vs_raw_serial"] = d["wall_s"] / serial if serial else None
            d["ratio_vs_raw_same_concurrency"] = d["wall_s"] / raw if raw else None
            d.pop("phases", None)
            d["median_phase_first_seen_s"] = {
                p: median([ph[p] for ph in self.results["dockyard"][n]["phases"].values() if p in ph])
                for p in ("New", "Pending", "Running", "Complete")
            }
        return r


def parse_max_builds(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of integers, e.g. 2,10") from None
    if not values or any(v < 1 or v > 64 for v in values):
        raise argparse.ArgumentTypeError("each --max-builds value must be 1..64")
    return values


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--builds", type=int, default=10, help="builds per batch (default 10)")
    p.add_argument(
        "--max-builds",
        type=parse_max_builds,
        default=[2, 10],
        help="dockyard up --max-builds values to run, comma-separated (default 2,10)",
    )
    p.add_argument(
        "--cache-rounds", type=int, default=2, help="first build + unchanged rebuild pairs (default 2; 0 skips)"
    )
    p.add_argument("--skip-serial", action="store_true", help="skip the raw serial batch")
    p.add_argument("--engine", default="auto", help="dockyard up --engine: auto | podman | docker")
    p.add_argument(
        "--raw-client",
        default="auto",
        choices=("auto", "podman", "docker-py"),
        help="how the raw side drives the engine (auto: podman CLI for Podman, else docker-py)",
    )
    p.add_argument(
        "--shared-storage",
        action="store_true",
        help="let dockyard's Podman service use the host's image store (default: its own)",
    )
    p.add_argument("--workdir", type=Path, help="state directory (default: a new one under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the work directory and the images")
    args = p.parse_args()
    if not 1 <= args.builds <= 50 or not 0 <= args.cache_rounds <= 10:
        p.error("--builds must be 1..50 and --cache-rounds 0..10")
    workdir = make_workdir(args.workdir, "dy-bench-builds-")
    bench = Bench(workdir, args)
    bench.notes += harness.start_notes()
    steps: list[harness.Step] = [
        (f"dockyard up --max-builds {args.max_builds[0]}", bench.start),
        ("base image: dockyard base-image busybox", bench.base_image),
        ("git repository + BuildConfig (runPolicy Parallel)", bench.repo_and_buildconfig),
    ]
    # the last --max-builds value stays up for the cache rounds
    for n in args.max_builds:
        steps.append((f"dockyard: {args.builds} builds, --max-builds {n}", functools.partial(bench.dockyard_batch, n)))
        steps.append((f"raw: {args.builds} build + push, {n} threads", functools.partial(bench.raw_concurrent, n)))
    if not args.skip_serial:
        steps.append((f"raw: {args.builds} build + push, serial", bench.raw_serial))
    if args.cache_rounds:
        steps.append((f"cache: {args.cache_rounds} × (first build, unchanged rebuild), each side", bench.cache))

    def cleanup() -> None:
        bench.notes.append(f"host load average at the end: {harness.load_average()}")
        bench.teardown(keep=args.keep)

    error = harness.run_steps(steps, log=workdir / "up.log", cleanup=cleanup)
    out = Console(highlight=False, width=150)
    for t in bench.tables():
        out.print(t)
    summary = bench.summary()
    for n, d in summary["dockyard"].items():
        ph = d["median_phase_first_seen_s"]
        out.print(
            f"dockyard --max-builds {n}: median seconds from the first instantiate until a Build is first "
            "seen "
            + ", ".join(f"{k} {fmt(v)}" for k, v in ph.items())
            + f"; instantiating all took {d['instantiate_all_s']:.2f}s; status.duration median "
            f"{fmt(median(d['status_duration_s']))}s"
        )
    harness.print_notes(out, bench.notes, bench.stop_info, bench.problems)
    fields = {
        "code": code_version(),
        "engine": bench.engine_kind,
        "raw_client": bench.raw.name if bench.raw else None,
        "builds": args.builds,
        "max_builds": args.max_builds,
        **summary,
    }
    return harness.finish(
        "builds",
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
