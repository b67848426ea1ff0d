"""The node agent: runs this node's pods, build pods and pushes.

Kubelet-like: it watches Pods through the Kubernetes API, makes the engine
match each pod (via :class:`dockyard.agent.pods.PodRuntime`), and writes pod
status through ``/status``. Pods labelled ``dockyard.dev/build-pod`` are run
with the engine's build API instead (see :mod:`dockyard.agent.builds`).
Pushes are served here because only this node can reach the container.

State lives in the API and in the engine (container labels), never only in
memory, so a killed agent resumes: running containers are adopted, build pods
left ``Pending``/``Running`` are run again (builds are idempotent: same source,
same tag), and a Push left ``Running`` is committed and pushed again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from dockyard.agent import builds, pods, pushes
from dockyard.agent.logsink import LogSink
from dockyard.api import buildpod, credentials
from dockyard.client import resources, runtime
from dockyard.client.connection import Connection

log = logging.getLogger(__name__)

SYNC_PERIOD = 2.0  # seconds between syncs of one running pod (kubelet's housekeeping)
SWEEP_PERIOD = 10.0  # seconds between sweeps for containers of pods that no longer exist


class PodWorker(runtime.Controller):
    """Reconciles this node's Pods (key ``namespace/name``)."""

    name = "pods"

    def __init__(self, conn: Connection, *, runtime_: pods.PodRuntime, engine_client: Any, node_name: str,
                 max_builds: int = 2) -> None:
        super().__init__(conn=conn, workers=4)
        self.pods = runtime_
        self.engine = engine_client
        self.node = node_name
        self._uids: dict[str, str] = {}
        self._builds: dict[str, threading.Thread] = {}
        self._cancelled: set[str] = set()
        self._build_slots = FifoSlots(max_builds)
        self._lock = threading.Lock()

    def watches(self) -> list[runtime.Watch]:
        def track(event: str, pod: dict[str, Any]) -> list[str]:
            k = resources.key(pod)
            with self._lock:
                if event == "DELETED":
                    uid = self._uids.pop(k, None)
                    if _is_build_pod(pod):
                        self._cancelled.add(pod["metadata"]["uid"])  # cancel or deadline: abort the build
                    elif uid:
                        self._kill_later(uid)
                else:
                    self._uids[k] = pod["metadata"]["uid"]
            return [k]
        return [runtime.Watch("Pod", track)]

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        threads = super().start(stop)
        sweeper = threading.Thread(target=self._sweep, args=(stop,), daemon=True, name="pods-sweep")
        sweeper.start()
        return threads + [sweeper]

    def _kill_later(self, uid: str) -> None:
        threading.Thread(target=self.pods.kill_pod, args=(uid,), daemon=True).start()

    def _sweep(self, stop: threading.Event) -> None:
        """Remove containers whose pod is gone (deleted while the agent was down, or missed)."""
        while not stop.wait(SWEEP_PERIOD):
            informer = self.informers.get("Pod")
            if informer is None or not informer.synced.is_set():
                continue
            try:
                known = {p["metadata"]["uid"] for p in informer.items()}
                for uid in self.pods.pod_uids() - known:
                    log.info("removing containers of deleted pod %s", uid)
                    self.pods.kill_pod(uid)
            except Exception:  # noqa: BLE001
                log.exception("sweep failed")

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        pod = runtime.get_or_none(self.api, "Pod", name, ns)
        if pod is None:
            return None
        node = pod["spec"].get("nodeName")
        if node and node != self.node:
            return None
        if not node:
            pod = self._bind(pod)
        if _is_build_pod(pod):
            return self._build_pod(pod)
        if pod["metadata"].get("deletionTimestamp"):
            self.pods.kill_pod(pod["metadata"]["uid"])
            return None
        status = self.pods.sync_pod(pod)
        runtime.patch_status(self.api, "Pod", pod, status)
        return SYNC_PERIOD

    def _bind(self, pod: dict[str, Any]) -> dict[str, Any]:
        """Assign the pod to this node (the embedded engine has one node; no scheduler)."""
        from lightkube.types import PatchType

        return resources.as_dict(self.api.patch(
            resources.resource("Pod"), pod["metadata"]["name"],
            {"metadata": {"labels": {"dockyard.dev/nodename": self.node}}, "spec": {"nodeName": self.node}},
            namespace=pod["metadata"]["namespace"], patch_type=PatchType.MERGE))

    # --- build pods ---------------------------------------------------------------------------

    def _build_pod(self, pod: dict[str, Any]) -> float | None:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None
        uid = pod["metadata"]["uid"]
        with self._lock:
            thread = self._builds.get(uid)
            if thread is not None and thread.is_alive():
                return None
            thread = threading.Thread(target=self._run_build, args=(pod,), daemon=True,
                                      name=f"build-{pod['metadata']['name']}")
            self._builds[uid] = thread
        thread.start()
        return None

    def _run_build(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        try:
            payload = buildpod.build_from_pod(pod)
        except ValueError as err:
            self._finish_build_pod(pod, buildpod.BuildResult(succeeded=False, reason="InvalidBuildPod",
                                                              message=str(err)), started=runtime.now_rfc3339())
            return
        name, ns = payload["metadata"]["name"], payload["metadata"]["namespace"]
        with self._build_slots:
            if uid in self._cancelled:
                return
            started = runtime.now_rfc3339()
            runtime.patch_status(self.api, "Pod", pod, {
                "phase": "Running", "startTime": started, "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                "containerStatuses": [_builder_status(running={"startedAt": started})]})
            http = self.conn.http(timeout=120)
            sink = LogSink(http, namespace=ns, name=name)
            try:
                inputs = self._inputs(payload, http, cancelled=lambda: uid in self._cancelled)
                result = builds.run_build(self.engine, payload, sink, inputs)
            except builds.BuildCancelled:
                sink.write("Build cancelled: the build pod was deleted")
                sink.close()
                log.info("build %s/%s: aborted (pod deleted)", ns, name)
                return
            except builds.StageFailed as err:
                sink.write(f"error: {err.message}")
                sink.close()
                result = buildpod.BuildResult(succeeded=False, reason=err.reason, message=err.message,
                                              log_snippet=sink.snippet())
            except Exception as err:  # noqa: BLE001 — a builder bug must still end the build
                log.exception("build %s crashed", name)
                result = buildpod.BuildResult(succeeded=False, reason="GenericBuildFailed", message=str(err))
            finally:
                http.close()
            self._finish_build_pod(pod, result, started=started)

    def _inputs(self, payload: dict[str, Any], http: Any, *, cancelled: Callable[[], bool]) -> builds.BuildInputs:
        """Fetch what the build needs from the API: secrets and the uploaded binary archive.

        Raises:
            builds.StageFailed: a Secret is missing or unusable (the message names it, never its data).
        """
        spec, ns = payload["spec"], payload["metadata"]["namespace"]
        inputs = builds.BuildInputs(cancelled=cancelled)
        source_secret = (spec["source"].get("sourceSecret") or {}).get("name")
        if source_secret:
            inputs.source_auth = self._secret_auth(ns, source_secret, "FetchSourceFailed",
                                                   lambda s: credentials.basic_auth(s))
        push_secret = (spec["output"].get("pushSecret") or {}).get("name")
        if push_secret:
            target = builds.registry_of(spec["output"]["to"]["name"])
            inputs.push_auth = self._secret_auth(ns, push_secret, "PushImageToRegistryFailed",
                                                 lambda s: credentials.registry_auth(s, target))
        if spec["source"].get("type") == "Binary":
            resp = http.get(f"/apis/dockyard.dev/v1alpha1/namespaces/{ns}/builds/"
                            f"{payload['metadata']['name']}/source")
            if resp.status_code == 200:
                inputs.binary = resp.content
        return inputs

    def _secret_auth(self, ns: str, name: str, reason: str, parse: Callable[[dict[str, Any]], Any]) -> Any:
        secret = runtime.get_or_none(self.api, "Secret", name, ns)
        if secret is None:
            raise builds.StageFailed(reason, f"secret {name!r} not found in namespace {ns!r}")
        try:
            return parse(secret)
        except credentials.CredentialError as err:
            raise builds.StageFailed(reason, str(err)) from err

    def _finish_build_pod(self, pod: dict[str, Any], result: buildpod.BuildResult, *, started: str) -> None:
        done = runtime.now_rfc3339()
        current = runtime.get_or_none(self.api, "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"])
        if current is None:
            return
        runtime.patch_status(self.api, "Pod", current, {
            "phase": "Succeeded" if result.succeeded else "Failed",
            "containerStatuses": [_builder_status(terminated={
                "exitCode": 0 if result.succeeded else 1,
                "reason": "Completed" if result.succeeded else "Error",
                "startedAt": started, "finishedAt": done, "message": result.termination_message()})]})


class FifoSlots:
    """At most ``n`` holders at once, admitted in arrival order (a fair semaphore).

    The node-level limit on concurrent builds: builds over it wait (their pods
    stay ``Pending``) and start in the order they asked.
    """

    def __init__(self, n: int) -> None:
        self._n = max(1, n)
        self._active = 0
        self._queue: list[object] = []
        self._cond = threading.Condition()

    def __enter__(self) -> FifoSlots:
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            while self._queue[0] is not ticket or self._active >= self._n:
                self._cond.wait()
            self._queue.pop(0)
            self._active += 1
            self._cond.notify_all()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()


def _is_build_pod(pod: dict[str, Any]) -> bool:
    return (pod["metadata"].get("labels") or {}).get(buildpod.BUILD_POD_LABEL) == "true"


def _builder_status(**state: Any) -> dict[str, Any]:
    return {"name": buildpod.BUILDER_CONTAINER, "image": buildpod.BUILDER_IMAGE, "imageID": "",
            "ready": "running" in state, "restartCount": 0, "started": "running" in state, "state": state}


class NodeAgent:
    """All of a node's workers; ``start(stop)`` runs them on daemon threads.

    Args:
        conn: API connection (the node identity's kubeconfig).
        engine_client: a ``docker.DockerClient`` for Docker Engine or Podman's service.
        node_name: this node's name (``spec.nodeName``, label ``dockyard.dev/nodename``).
        state_dir: where emptyDir volumes live.
        instance: which agent owns the engine's pod containers (see ``PodRuntime``).
    """

    def __init__(self, conn: Connection, *, engine_client: Any, engine_kind: str, node_name: str,
                 state_dir: Any, max_builds: int = 2, instance: str | None = None) -> None:
        self.runtime = pods.PodRuntime(engine_client, node_name=node_name, state_dir=state_dir, instance=instance)
        self.pods = PodWorker(conn, runtime_=self.runtime, engine_client=engine_client, node_name=node_name,
                              max_builds=max_builds)
        self.pushes = pushes.PushWorker(conn, runtime_=self.runtime, engine_client=engine_client,
                                        node_name=node_name)

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        return self.pods.start(stop) + self.pushes.start(stop)

    def synced(self) -> bool:
        return self.pods.synced() and self.pushes.synced()

    def stop_pods(self, *, grace_seconds: int = 2, budget: float = 5.0) -> None:
        """Stop and remove every pod container on this node, in parallel, within ``budget`` seconds.

        Used on a clean shutdown of ``dockyard up``: the Pod objects stay in the API,
        so the next start runs them again.
        """
        threads = [threading.Thread(target=self.runtime.kill_pod, args=(uid,),
                                    kwargs={"grace_period_seconds": grace_seconds}, daemon=True)
                   for uid in self.runtime.pod_uids()]
        for t in threads:
            t.start()
        deadline = time.monotonic() + budget
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
