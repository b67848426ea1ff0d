"""Run Kubernetes Pods on Docker Engine or Podman, the way the kubelet does.

:class:`PodRuntime` takes Pod objects as plain dicts (``metadata``, ``spec``,
``status``, as the API serves them) and returns the pod's new ``status``
dict; the agent loop does all Kubernetes API I/O.

Shaped like the kubelet:

- :mod:`.runtime` — :class:`PodRuntime`, one :class:`.worker.PodWorker` per pod uid
  (``pod_workers.go``): a pod's syncs are serialized, and its in-memory state
  (:class:`.state.PodState`) goes when the pod goes.
- :mod:`.actions` — pure ``computePodActions``: from the sandbox and container spec hashes and what the
  engine shows, which sandbox and containers to kill or start (unit tested without an engine).
- :mod:`.sandbox`, :mod:`.containers`, :mod:`.images`, :mod:`.volumes` — the managers ``SyncPod`` drives
  (infra container; create/start/kill and GC; pull policy and back-off; emptyDir/hostPath/subPath).
- :mod:`.status` — the one place pod status is computed (``generateAPIPodStatus``).
- :mod:`.prober` — liveness, readiness and startup probes (``prober_manager.go``, ``worker.go``,
  ``prober.go``); :mod:`.probes` holds their pure logic (defaults, thresholds, gating, messages).
- :mod:`.lifecycle` — ``postStart`` and ``preStop`` hooks (``lifecycle/handlers.go``, ``killContainer``,
  ``executePreStopHook``): run on threads of their own, so syncs never wait for them; crash-safe through marker
  files in the pod's directory.

How it behaves:

- One infra ("pause") container per pod holds the network, IPC and UTS
  namespaces (its hostname is the pod's) and publishes the ``hostPort``\\ s on
  loopback; every app container joins them (``network_mode``, ``ipc_mode``
  and ``uts_mode`` ``"container:<infra>"``).
- Each engine container carries labels (pod uid/name/namespace, container
  name, spec hash, restart count, back-off, grace period) so that the whole
  state, back-off included, is derived from the engine: a new
  :class:`PodRuntime` after a crash adopts what is running, never duplicates.
- A container whose spec hash changed is killed and started again; others
  are left alone. Exited containers restart per ``restartPolicy`` with the
  crash back-off of :func:`dockyard.agent.podspec.restart_backoff`.
- Termination is non-blocking in :meth:`PodRuntime.sync_pod` (the ``preStop`` hook, SIGTERM, then
  SIGKILL once the grace period is over, checked on later syncs);
  :meth:`PodRuntime.kill_pod` is the blocking, bounded variant for orphans.

Every engine call goes through :mod:`dockyard.agent.engine` (Engine API reference:
https://docs.docker.com/engine/api/v1.41/; Podman serves the same through ``podman system service``).
"""

from dockyard.agent.pods.images import PAUSE_IMAGE, PullAuth
from dockyard.agent.pods.runtime import LogsUnavailable, PodRuntime

__all__ = ["PAUSE_IMAGE", "LogsUnavailable", "PodRuntime", "PullAuth"]
