"""Controllers read from their informers' caches (listers) and stay correct when those caches lag.

- After the informers synced, reconciling N BuildConfigs, Builds and Deployments sends no LIST: every
  request the controllers send is counted (a counting ``Auth`` on their connection, which every HTTP
  client made from it uses) and the requests per reconcile are printed.
- Expectations (client-go ``ControllerExpectations``): with a Pod informer that delivers each event late,
  a ReplicaSet of 5 gets exactly 5 pods, and a scale-down deletes exactly the surplus; with a Build
  informer that lags the BuildConfig one, a ConfigChange trigger starts exactly one Build per generation.
- Workers wait for every informer's first list (client-go ``WaitForCacheSync``): with a BuildConfig informer
  slow to list, no reconcile runs before it and a Parallel config's Builds both start; with one that cannot
  list, none runs at all and the log names the kind.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import parse_qs

import pytest
from lightkube.resources.core_v1 import Pod

from dockyard.api import buildpod, kinds
from dockyard.api import objects as api_objects
from dockyard.client import connection, credentials, runtime
from dockyard.controllers.build import BuildController
from dockyard.controllers.buildconfig import BuildConfigController
from dockyard.controllers.deployment import DeploymentController, ReplicaSetController

from .conftest import Env, Tracking, status
from .test_build_controller import config
from .test_deployment_controller import LABELS, live_pods, mark_ready, replicaset, template

PLURALS = frozenset(info.plural for info in kinds.RESOURCES)


class CountingAuth(credentials.Auth):  # type: ignore[misc]
    """The connection's ``Auth``, recording ``(verb, path)`` of every request it signs (watches as WATCH,
    GETs of a collection as LIST, as kube-apiserver's ``apiserver_request_total`` names verbs)."""

    def __init__(self, source: credentials.Source) -> None:
        super().__init__(source)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        path = request.url.path
        query = parse_qs(str(request.url.query, "ascii") if isinstance(request.url.query, bytes) else request.url.query)
        verb = request.method
        if verb == "GET" and path.rstrip("/").rsplit("/", 1)[-1] in PLURALS:
            verb = "WATCH" if query.get("watch", [""])[0] in ("true", "1") else "LIST"
        with self.lock:
            self.requests.append((verb, path))
        yield from super().auth_flow(request)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()

    def verbs(self) -> Counter[str]:
        with self.lock:
            return Counter(verb for verb, _ in self.requests)


@pytest.fixture
def conn(conn: connection.Connection) -> connection.Connection:
    """The envtest connection with a :class:`CountingAuth` (``conn.auth``)."""
    assert conn.auth is not None, "the envtest kubeconfig has a token"
    return dataclasses.replace(conn, auth=CountingAuth(conn.auth.source))


def counting(conn: connection.Connection) -> CountingAuth:
    assert isinstance(conn.auth, CountingAuth)
    return conn.auth


def lagging(cls: type[runtime.Controller], lags: dict[str, float]) -> type[runtime.Controller]:
    """``cls`` whose informers deliver each event of a kind in ``lags`` that many seconds late (the events
    after it wait too, as a slow watch stream would)."""

    class LaggingInformer(runtime.Informer):
        def deliver(self, event: str, obj: Any) -> None:
            time.sleep(lags.get(self.kind, 0.0))
            super().deliver(event, obj)

    return type(cls.__name__, (cls,), {"informer_class": LaggingInformer})


def slow_to_list(cls: type[runtime.Controller], delays: dict[str, float]) -> type[runtime.Controller]:
    """``cls`` whose informers of the kinds in ``delays`` put their first list in the cache that many seconds
    late (a large collection, a slow API server): the other informers have synced and delivered by then."""

    class SlowInformer(runtime.Informer):
        def relisted(self, objs: list[Any]) -> None:
            if not self.synced.is_set():
                time.sleep(delays.get(self.kind, 0.0))
            super().relisted(objs)

    return type(cls.__name__, (cls,), {"informer_class": SlowInformer})


def pod_names(env: Env) -> set[str]:
    return {p["metadata"]["name"] for p in live_pods(env)}


# ------------------------------------------------------------------ no LIST after sync


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {**LABELS, "app": name}
    body = template()
    body["metadata"]["labels"] = labels
    return {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": body},
    }


def test_reconciling_after_sync_sends_no_list(
    env: Env, conn: connection.Connection, run_controller: Callable[..., Tracking]
) -> None:
    n = 5
    controllers = [
        run_controller(cls)
        for cls in (BuildConfigController, BuildController, DeploymentController, ReplicaSetController)
    ]
    auth = counting(conn)
    auth.reset()  # what the informers' first lists sent is behind us
    for i in range(n):
        env.create("BuildConfig", config(f"app{i}", triggers=[{"type": "ConfigChange"}]))
        env.create("Deployment", deployment(f"web{i}", 2))
    env.wait(
        lambda: len([b for b in env.list("Build") if status(b).get("phase") == "Pending"]) == n, "N Builds Pending"
    )
    env.wait(lambda: len(live_pods(env)) == 3 * n, "N build pods and 2N deployment pods")
    for pod in live_pods(env):
        if "web" in pod["metadata"]["name"]:
            mark_ready(env, pod)
    for i in range(n):
        env.wait_for("Deployment", f"web{i}", lambda d: status(d).get("availableReplicas") == 2, "2 available")
    env.quiet()
    verbs = auth.verbs()
    reconciles = sum(c.reconciles for c in controllers)
    writes = sum(verbs[v] for v in ("POST", "PUT", "PATCH", "DELETE"))
    print(
        f"\n{n} BuildConfigs, {n} Builds, {n} Deployments: {reconciles} reconciles, requests by verb {dict(verbs)}, "
        f"{sum(verbs.values()) / reconciles:.2f} requests/reconcile ({writes / reconciles:.2f} writes, "
        f"{verbs['GET'] / reconciles:.2f} GETs, {verbs['LIST'] / reconciles:.2f} LISTs)"
    )
    assert verbs["LIST"] == 0, [r for r in auth.requests if r[0] == "LIST"][:10]
    assert verbs["GET"] <= n, "GETs only where a cache miss must be told from a deletion"


# ------------------------------------------------------------------ expectations


def test_a_replicaset_of_5_creates_exactly_5_pods_when_the_informer_lags(
    env: Env, run_controller: Callable[..., Tracking]
) -> None:
    rsc = run_controller(lagging(ReplicaSetController, {"Pod": 0.3}))
    replicaset(env, 5)
    env.wait(lambda: len(rsc.lister(Pod).list(env.ns)) >= 5, "the lagging Pod informer to see 5 pods", timeout=20)
    env.wait_for("ReplicaSet", "web-rs", lambda o: status(o).get("replicas") == 5, "status.replicas 5")
    assert env.settled(lambda: len(live_pods(env))) == 5
    assert len(rsc.lister(Pod).list(env.ns)) == 5


def test_a_scale_down_deletes_exactly_the_surplus_when_the_informer_lags(
    env: Env, run_controller: Callable[..., Tracking]
) -> None:
    rsc = run_controller(lagging(ReplicaSetController, {"Pod": 0.2}))
    replicaset(env, 5)
    env.wait(lambda: len(rsc.lister(Pod).list(env.ns)) == 5, "5 pods in the cache", timeout=20)
    before = env.settled(lambda: pod_names(env))
    assert len(before) == 5
    env.patch("ReplicaSet", "web-rs", {"spec": {"replicas": 2}})
    env.wait(lambda: len(rsc.lister(Pod).list(env.ns)) == 2, "2 pods in the cache", timeout=20)
    after = env.settled(lambda: pod_names(env))
    assert len(after) == 2 and after <= before, "exactly the surplus deleted, nothing made again"
    env.wait_for("ReplicaSet", "web-rs", lambda o: status(o).get("replicas") == 2, "status.replicas 2")


def test_a_config_change_starts_one_build_per_generation_when_the_build_informer_lags(
    env: Env, run_controller: Callable[..., Tracking]
) -> None:
    bcc = run_controller(lagging(BuildConfigController, {"Build": 0.5, "BuildConfig": 0.02}))
    env.create("BuildConfig", config(triggers=[{"type": "ConfigChange"}]))
    env.wait(lambda: len(bcc.lister(api_objects.Build).list(env.ns)) >= 1, "the Build in the cache", timeout=20)
    assert env.settled(lambda: sorted(b["metadata"]["name"] for b in env.list("Build"))) == ["app-1"]
    env.patch("BuildConfig", "app", {"spec": {"completionDeadlineSeconds": 600}})
    env.wait(lambda: len(bcc.lister(api_objects.Build).list(env.ns)) >= 2, "the second Build in the cache", timeout=20)
    assert env.settled(lambda: sorted(b["metadata"]["name"] for b in env.list("Build"))) == ["app-1", "app-2"]


# ------------------------------------------------------------------ workers wait for every cache


def test_no_reconcile_runs_before_every_informer_has_listed(
    env: Env, conn: connection.Connection, run_controller: Callable[..., Tracking]
) -> None:
    """client-go's ``WaitForCacheSync`` before the workers start: a Build reconciled while the BuildConfig
    cache is still empty would be taken for one of a ``Serial`` config and wait for its siblings for good
    (the BuildConfig's events enqueue nothing). Seen after a leader takeover (test_leader_election)."""
    env.create("BuildConfig", config(runPolicy="Parallel"))
    first = env.instantiate("app")["metadata"]["name"]
    second = env.instantiate("app")["metadata"]["name"]
    cls = slow_to_list(BuildController, {"BuildConfig": 1.5})
    seen: list[bool] = []
    original = cls.reconcile

    def reconcile(self: Any, key: str) -> float | None:
        seen.append(all(i.synced.is_set() for i in self.informers.values()))
        return original(self, key)

    run_controller(type(cls.__name__, (cls,), {"reconcile": reconcile}))
    env.wait(lambda: pod_names(env) >= {buildpod.pod_name(first), buildpod.pod_name(second)}, "both build pods")
    assert seen and all(seen), f"{seen.count(False)} of {len(seen)} reconciles ran before every cache had synced"


def test_workers_wait_for_an_informer_that_cannot_list_and_the_log_names_it(
    env: Env, conn: connection.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    class FailingToList(runtime.Informer):
        def relisted(self, objs: list[Any]) -> None:
            if self.kind == "BuildConfig":
                raise RuntimeError("refused")  # the informer logs it and lists again, as after a 403
            super().relisted(objs)

    cls = type("BuildController", (Tracking, BuildController), {"informer_class": FailingToList})
    controller = cls(conn)
    env.create("BuildConfig", config(runPolicy="Parallel"))
    env.instantiate("app")
    stop = threading.Event()
    threads = controller.start(stop)
    try:
        env.wait(lambda: controller.informers["Build"].synced.is_set(), "the Build informer to list")
        waiter = threading.Timer(1.0, stop.set)
        waiter.start()
        with caplog.at_level("WARNING", logger="dockyard.client.runtime"):
            assert controller.wait_for_cache_sync(stop, warn_after=0.3) is False
        assert controller.reconciles == 0, "a reconcile ran on an incomplete cache"
        assert any("BuildConfig" in r.getMessage() and "sync" in r.getMessage() for r in caplog.records), [
            r.getMessage() for r in caplog.records
        ]
        assert buildpod.pod_name("app-1") not in pod_names(env)
    finally:
        stop.set()
        for t in threads:
            if "-worker-" in t.name:
                t.join(timeout=5)
    assert not any(t.is_alive() for t in threads if "-worker-" in t.name), "a waiting worker did not stop"
