"""Serve ``Push`` objects: commit a pod's container to an image and push it.

The Kubernetes Push proposal's per-node agent, with OpenStack Zun's commit options (``pause``, ``changes``,
``message``, ``author``).

- **Phases.** ``Pending`` (waiting for the container to exit, or for the next attempt) → ``Running`` →
  ``Succeeded`` | ``Failed``, with a ``Succeeded`` condition (``Unknown`` while in progress, Tekton's and
  OpenShift's shape) and a typed ``status.reason`` after a failed attempt (:class:`dockyard.api.phases.PushReason`).
- **Succeeded means served.** The digest is the one the engine's push reported, and ``Succeeded`` is written only
  after the registry serves a manifest under that digest whose bytes hash to it (``GET /v2/<name>/manifests/
  <digest>`` with the push credentials; OCI distribution spec, "Pulling manifests").
- **Retries.** A failed attempt is retried after an exponential back-off (:func:`backoff_delay`: 10 s, 20 s,
  40 s, ..., at most 5 min) up to ``spec.backoffLimit`` retries (a Job's ``backoffLimit``), then ``Failed``.
  Only an image reference that does not parse fails at once. The committed image (``status.imageID``) is kept
  across retries: a retry pushes the same image again (a registry that went away mid-push gets it once it is
  back). ``status.attempts``, ``startTime``, ``completionTime`` record the course.
- **Trigger OnExit.** The pod worker calls :meth:`PushWorker.on_container_exit` when it sees a container that
  exited, before ``restartPolicy`` removes it to start the next one (:meth:`dockyard.agent.pods.PodRuntime
  .add_exit_hook`); a waiting ``OnExit`` Push commits that container then, and pushes the commit.
- **Provenance.** Each commit carries the labels :data:`~dockyard.api.labels.OCI_CREATED`,
  :data:`~dockyard.api.labels.OCI_BASE_NAME`, :data:`~dockyard.api.labels.OCI_BASE_DIGEST` (OCI image-spec
  "Pre-Defined Annotation Keys") and :data:`~dockyard.api.labels.SOURCE_POD` /
  :data:`~dockyard.api.labels.SOURCE_CONTAINER`.

A Push found ``Running`` after an agent restart is attempted again: a commit and a push of the same container
are idempotent from the registry's point of view.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from lightkube.resources.core_v1 import Pod

from dockyard.agent import pods
from dockyard.agent.engine import containers as engine_containers
from dockyard.agent.engine import errors as engine_errors
from dockyard.agent.engine import images
from dockyard.api import credentials, objects, phases, timefmt
from dockyard.api import labels as well_known
from dockyard.client import events, metrics, resources, runtime
from dockyard.client.connection import Connection
from dockyard.registry import client as registry
from dockyard.registry import errors as registry_errors
from dockyard.registry import reference

log = logging.getLogger(__name__)

TERMINAL = phases.PUSH_TERMINAL
Reason = phases.PushReason

RETRY_BASE = 10.0
"""Seconds before the first retry; each further retry waits twice as long (:func:`backoff_delay`)."""
RETRY_CAP = 300.0
"""The longest wait between two attempts, in seconds."""
REGISTRY_TIMEOUT = 10.0
"""Seconds for each request to the registry while verifying a push."""


# --- pure rules ------------------------------------------------------------------------------------


def backoff_delay(retry: int, *, base: float = RETRY_BASE, cap: float = RETRY_CAP) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first): ``base * 2**(retry-1)``, at most ``cap``
    (the Job controller's pod-failure back-off, client-go's ``ItemExponentialFailureRateLimiter``)."""
    return float(min(cap, base * 2 ** min(max(retry - 1, 0), 32)))


def failure_reason(err: BaseException) -> str:
    """The :class:`~dockyard.api.phases.PushReason` for an error of a push attempt.

    ``CommitFailed`` for the engine's commit; ``AuthenticationFailed`` for refused or missing credentials
    (a registry 401/403, an engine push error that says so, an unusable ``imagePushSecrets`` Secret);
    ``InvalidImageReference`` for a reference that does not parse; ``PushImageToRegistryFailed`` for anything
    else of the push (registry away, 5xx, a digest the registry does not serve, the engine unreachable).
    """
    if isinstance(err, engine_errors.CommitFailed):
        return Reason.COMMIT_FAILED
    if isinstance(err, (credentials.CredentialError, registry_errors.Unauthorized)):
        return Reason.AUTHENTICATION_FAILED
    if isinstance(err, registry_errors.InvalidReference):
        return Reason.INVALID_IMAGE_REFERENCE
    if isinstance(err, engine_errors.PushFailed) and _says_unauthorized(str(err)):
        return Reason.AUTHENTICATION_FAILED
    return Reason.PUSH_FAILED


_UNAUTHORIZED = re.compile(r"\b(unauthori[sz]ed|authentication required|denied|forbidden)\b", re.IGNORECASE)
"""What the engines' push errors say when the registry refused the credentials (distribution error codes
``UNAUTHORIZED``, ``DENIED``; HTTP 401/403 reason phrases). Words only: a bare "401" may be part of a port."""


def _says_unauthorized(text: str) -> bool:
    return _UNAUTHORIZED.search(text) is not None


def base_digest(base_name: str, repo_digests: Sequence[str]) -> str | None:
    """The manifest digest of the image ``base_name`` among an engine image's ``RepoDigests``
    (``repository@sha256:...``): the first of ``base_name``'s repository, else the first of any, else None."""
    digests = [d.partition("@") for d in repo_digests if "@" in d]
    try:
        wanted = reference.parse(base_name).repository_url
    except registry_errors.InvalidReference:
        wanted = None
    for repo, _, digest in digests:
        if wanted is not None and _repository_url(repo) == wanted:
            return digest
    return digests[0][2] if digests else None


def _repository_url(repo: str) -> str | None:
    try:
        return reference.parse(repo).repository_url
    except registry_errors.InvalidReference:
        return None


def provenance_labels(
    *, namespace: str, pod: str, container: str, base_name: str, base_digest: str | None, created: str
) -> dict[str, str]:
    """The provenance labels of a commit (keys from :mod:`dockyard.api.labels`); the base digest is left out when
    unknown (an image that never came from or went to a registry)."""
    labels = {well_known.OCI_CREATED: created, well_known.OCI_BASE_NAME: base_name}
    if base_digest:
        labels[well_known.OCI_BASE_DIGEST] = base_digest
    labels[well_known.SOURCE_POD] = f"{namespace}/{pod}"
    labels[well_known.SOURCE_CONTAINER] = container
    return labels


class AttemptFailed(Exception):
    """One attempt failed with ``reason`` (:class:`~dockyard.api.phases.PushReason`) and ``message``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


# --- the worker ------------------------------------------------------------------------------------


class PushWorker(runtime.Controller):
    """Reconciles Pushes whose pod runs on this node (key ``namespace/name``).

    Attributes:
        retry_base: seconds before the first retry (:data:`RETRY_BASE`; tests set less).
        retry_cap: the longest wait between attempts (:data:`RETRY_CAP`).
    """

    name = "pushes"
    component = "node-agent"

    def __init__(self, conn: Connection, *, runtime_: pods.PodRuntime, engine_client: Any, node_name: str) -> None:
        super().__init__(conn=conn, workers=2)
        self.pods = runtime_
        self.engine = engine_client
        self.node = node_name
        self.host = node_name
        self.retry_base = RETRY_BASE
        self.retry_cap = RETRY_CAP
        self._retry_at: dict[str, float] = {}
        self._committed: dict[str, str] = {}  # push key -> engine id of the container committed for it
        self._lock = threading.Lock()
        self._key_locks: collections.defaultdict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        # one connection pool (and one TLS context: loading the CA bundle costs 20–60 ms) for every registry
        # request of this worker, instead of a new client per request
        self._registry = httpx.HTTPTransport()
        # status writes that overlap the engine's work (the Running write with the commit, the imageID
        # write with the push); each is joined before the next write of the same Push
        self._aside = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="push-status")
        runtime_.add_exit_hook(self.on_container_exit)

    def watches(self) -> list[runtime.Watch]:
        return [runtime.Watch("Push")]

    @contextmanager
    def _serialized(self, key: str) -> Iterator[None]:
        """One commit or attempt of a Push at a time (the workqueue's guarantee, extended to the exit hook)."""
        with self._lock:
            lock = self._key_locks[key]
        with lock:
            yield

    # --- reconcile ---------------------------------------------------------------------------------

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        with self._lock:
            due = self._retry_at.get(key)
        if due is not None and time.monotonic() < due:
            return due - time.monotonic()
        with self._serialized(key):
            push: objects.Push | None = self.lister(objects.Push).get(ns, name)
            if push is None or runtime.unseen_write(push):
                # not cached yet, or the cache has not seen this agent's last status write: the server knows
                push = runtime.get(self.api, "Push", name, ns)
            if push is None or push.status.phase in TERMINAL:
                self._forget(key)
                return None
            label_node = well_known.get(push, well_known.NODE_NAME)
            if label_node and label_node != self.node:
                return None
            return self._reconcile(push)

    def _reconcile(self, push: objects.Push) -> float | None:
        spec, ns = push.spec, str(push.metadata.namespace)
        attempt = (push.status.attempts or 0) + 1
        pod: Pod | None = runtime.get(self.api, "Pod", spec.podName, ns)
        if pod is None:
            return self._attempt_failed(
                push, attempt, Reason.SOURCE_POD_NOT_FOUND, f"pod {spec.podName!r} not found in namespace {ns!r}"
            )
        if pod.spec is None or (pod.spec.nodeName or self.node) != self.node:
            return None
        names = [c.name for c in pod.spec.containers]
        container = spec.containerName or (names[0] if names else "")
        if container not in names:
            return self._attempt_failed(
                push,
                attempt,
                Reason.SOURCE_CONTAINER_NOT_FOUND,
                f"container {container!r} not found in pod {spec.podName!r} (containers: {', '.join(names)})",
            )
        scheme, reported_id, reported_running = _reported_container(pod, container)
        if scheme is not None and scheme not in COMMITTABLE_RUNTIMES:
            return self._attempt_failed(
                push,
                attempt,
                Reason.UNSUPPORTED_RUNTIME,
                f"container {container!r} of pod {spec.podName!r} runs on {scheme} ({scheme}://…): Pushes commit "
                "containers through Docker Engine or Podman only",
            )
        image_id = push.status.imageID
        if image_id is None:
            ctr = self.pods.latest_container(str(pod.metadata.uid if pod.metadata else ""), container)
            if spec.trigger == phases.PushTrigger.ON_EXIT and (ctr is None or ctr.running or ctr.created):
                return self._wait_for_exit(push, container)
            if ctr is None and reported_id is None:
                return self._attempt_failed(
                    push,
                    attempt,
                    Reason.SOURCE_CONTAINER_NOT_FOUND,
                    f"container {container!r} of pod {spec.podName!r} has no engine container on this node",
                )
            # a container of this agent, else the one the pod's status names (a kubelet's, on a cluster whose
            # nodes run cri-dockerd or Podman)
            container_id, running = (ctr.id, ctr.running) if ctr is not None else (str(reported_id), reported_running)
            started = self._aside.submit(self._start_attempt, push, attempt, f"committing container {container}")
            try:
                image_id = self._commit(push, container, container_id, running=running)
            except engine_errors.EngineError as err:
                return self._attempt_failed(started.result(), attempt, failure_reason(err), str(err))
            message = f"committed container {container}; pushing"
            recorded = self._aside.submit(self._patch, started.result(), {"imageID": image_id, "message": message})
        else:
            recorded = self._aside.submit(self._start_attempt, push, attempt, f"pushing {spec.image}")
        return self._push(push, recorded, attempt, image_id)

    def _wait_for_exit(self, push: objects.Push, container: str) -> None:
        message = f"waiting for container {container} of pod {push.spec.podName} to exit"
        self._patch(
            push,
            {
                "phase": phases.PushPhase.PENDING,
                "nodeName": self.node,
                "message": message,
                "conditions": _succeeded(push, "Unknown", Reason.WAITING_FOR_EXIT, message),
            },
        )
        return None

    def _start_attempt(self, push: objects.Push, attempt: int, message: str) -> objects.Push:
        return self._patch(
            push,
            {
                "phase": phases.PushPhase.RUNNING,
                "nodeName": self.node,
                "attempts": attempt,
                "message": message,
                "startTime": push.status.startTime or timefmt.now(),
                "conditions": _succeeded(push, "Unknown", Reason.RUNNING, message),
            },
        )

    def _push(
        self, push: objects.Push, recorded: concurrent.futures.Future[objects.Push], attempt: int, image_id: str
    ) -> float | None:
        """Tag the committed image as ``spec.image``, push it, check the registry serves it; Succeeded or a
        failed attempt. ``push`` is the Push as read; ``recorded`` the status write that says what happens
        (``Running``, the ``imageID``), under way while the engine pushes: it is waited for before the next
        write, so the phases are stored in order."""
        spec = push.spec
        try:
            registry_auth = self._credentials(push)
            target = reference.parse(spec.image)
            repository, tag = images.split_tag(spec.image)
            images.tag(self.engine, image_id, repository, tag)
            auth = {"username": registry_auth[0], "password": registry_auth[1]} if registry_auth else None
            pushed = images.push(self.engine, spec.image, auth=auth)
            if pushed is None:  # the engine did not say: what the tag names now
                pushed = registry.manifest_digest(
                    target, auth=registry_auth, timeout=REGISTRY_TIMEOUT, transport=self._registry
                )
            digest = registry.get_manifest(
                target.with_digest(pushed), auth=registry_auth, timeout=REGISTRY_TIMEOUT, transport=self._registry
            ).digest
        except engine_errors.TagFailed as err:
            # the committed image is gone from the engine: commit again next time
            self._forget_commit(push)
            push = self._patch(recorded.result(), {"imageID": None})
            return self._attempt_failed(push, attempt, Reason.COMMIT_FAILED, f"committed image {image_id}: {err}")
        except (engine_errors.EngineError, registry_errors.RegistryError, credentials.CredentialError) as err:
            return self._attempt_failed(recorded.result(), attempt, failure_reason(err), f"{type(err).__name__}: {err}")
        message = f"pushed {spec.image}@{digest}"
        push = recorded.result()
        self._patch(
            push,
            {
                "phase": phases.PushPhase.SUCCEEDED,
                "reason": None,
                "imageDigest": digest,
                "message": message,
                "completionTime": timefmt.now(),
                "conditions": _succeeded(push, "True", Reason.PUSHED, message),
            },
        )
        log.info("push %s: %s@%s", push.key, spec.image, digest)
        _observe_duration(push, phases.PushPhase.SUCCEEDED)
        self.events.record(push, events.NORMAL, "Pushed", f"Pushed {spec.image}@{digest}")
        self._forget(push.key)
        return None

    def _attempt_failed(self, push: objects.Push, attempt: int, reason: str, message: str) -> float | None:
        """Record a failed attempt: ``Failed`` once ``spec.backoffLimit`` retries are spent (or at once for an
        invalid reference), else ``Pending`` until the back-off is over; returns the delay to look again."""
        limit = push.spec.backoffLimit
        key = push.key
        if attempt > limit or reason in (Reason.INVALID_IMAGE_REFERENCE, Reason.UNSUPPORTED_RUNTIME):
            log.info("push %s failed: %s: %s", key, reason, message)
            self.events.record(push, events.WARNING, "PushFailed", f"{reason}: {message}")
            text = f"{message} (attempt {attempt} of {limit + 1})"
            self._patch(
                push,
                {
                    "phase": phases.PushPhase.FAILED,
                    "reason": reason,
                    "message": text,
                    "attempts": attempt,
                    "nodeName": self.node,
                    "startTime": push.status.startTime or timefmt.now(),
                    "completionTime": timefmt.now(),
                    "conditions": _succeeded(push, "False", reason, text),
                },
            )
            _observe_duration(push, phases.PushPhase.FAILED)
            self._forget(key)
            return None
        delay = backoff_delay(attempt, base=self.retry_base, cap=self.retry_cap)
        with self._lock:
            self._retry_at[key] = time.monotonic() + delay
        text = f"attempt {attempt} of {limit + 1} failed: {message}; retrying in {delay:g}s"
        self.events.record(push, events.WARNING, "BackOff", f"{reason}: {text}")
        self._patch(
            push,
            {
                "phase": phases.PushPhase.PENDING,
                "reason": reason,
                "message": text,
                "attempts": attempt,
                "nodeName": self.node,
                "startTime": push.status.startTime or timefmt.now(),
                "conditions": _succeeded(push, "Unknown", reason, text),
            },
        )
        return delay

    # --- commit ------------------------------------------------------------------------------------

    def _commit(self, push: objects.Push, container: str, container_id: str, *, running: bool) -> str:
        """Commit ``container_id`` as ``spec.image`` with the provenance labels; the new image's engine id.

        Raises:
            engine_errors.CommitFailed: the engine refused the commit.
            engine_errors.EngineError: the engine could not be reached.
        """
        spec = push.spec
        labels = self._provenance(push, container, container_id)
        image_id = images.commit(
            self.engine,
            container_id,
            spec.image,
            pause=spec.pause and running,  # an exited container cannot be paused
            changes=spec.changes or None,
            message=spec.message,
            author=spec.author,
            labels=labels,
        )
        with self._lock:
            self._committed[push.key] = container_id
        self.events.record(
            push,
            events.NORMAL,
            "Committed",
            f"Committed container {container} of pod {spec.podName} to {spec.image} ({image_id[:19]})",
        )
        return image_id

    def _provenance(self, push: objects.Push, container: str, container_id: str) -> dict[str, str]:
        """:func:`provenance_labels` of a container: its image's reference and, of that image's repo digests,
        the one its registry serves for that reference if it is one of them (an engine that pushed one image in
        several formats lists several), else :func:`base_digest`'s pick."""
        ops = engine_containers.Containers(self.engine)
        attrs = ops.inspect(container_id)
        base_name = str((attrs.get("Config") or {}).get("Image") or attrs.get("Image") or "")
        repo_digests: list[str] = []
        try:
            repo_digests = list(ops.inspect_image(str(attrs.get("Image") or base_name)).get("RepoDigests") or [])
        except engine_errors.EngineError as err:
            log.debug("push %s: cannot inspect the image of container %s: %s", push.key, container_id, err)
        digest = base_digest(base_name, repo_digests)
        candidates = {d.partition("@")[2] for d in repo_digests}
        if len(candidates) > 1:
            try:
                served = registry.manifest_digest(
                    base_name, auth=self._credentials_or_none(push, base_name), timeout=5, transport=self._registry
                )
                digest = served if served in candidates else digest
            except (registry_errors.RegistryError, credentials.CredentialError) as err:
                log.debug("push %s: base image %s not checked at its registry: %s", push.key, base_name, err)
        return provenance_labels(
            namespace=str(push.metadata.namespace),
            pod=push.spec.podName,
            container=container,
            base_name=base_name,
            base_digest=digest,
            created=timefmt.now(),
        )

    # --- OnExit ------------------------------------------------------------------------------------

    def on_container_exit(self, namespace: str, pod_name: str, container_name: str, container_id: str) -> None:
        """The pod worker's exit hook: commit ``container_id`` for each ``OnExit`` Push waiting for it.

        Called with the pod's sync serialized, before its actions restart (and so remove) the exited container;
        cheap when no Push waits (a scan of the informer's cache). Never raises.
        """
        informer = self.informers.get("Push")
        for cached in informer.items() if informer else []:
            if (
                cached.metadata.namespace != namespace
                or cached.spec.podName != pod_name
                or cached.spec.trigger != phases.PushTrigger.ON_EXIT
                or cached.status.phase in TERMINAL
                or cached.status.imageID
                or (cached.spec.containerName not in (None, container_name))
            ):
                continue
            with self._lock:
                if self._committed.get(cached.key) == container_id:
                    continue
            try:
                self._commit_at_exit(cached.key, container_name, container_id)
            except Exception:
                log.exception("push %s: commit at the exit of %s/%s failed", cached.key, pod_name, container_name)

    def _commit_at_exit(self, key: str, container_name: str, container_id: str) -> None:
        ns, name = resources.split_key(key)
        with self._serialized(key):
            push: objects.Push | None = runtime.get(self.api, "Push", name, ns)
            if (
                push is None
                or push.status.phase in TERMINAL
                or push.status.imageID
                or (well_known.get(push, well_known.NODE_NAME) or self.node) != self.node
            ):
                return
            if push.spec.containerName is None:
                pod: Pod | None = runtime.get(self.api, "Pod", push.spec.podName, ns)
                first = pod.spec.containers[0].name if pod is not None and pod.spec and pod.spec.containers else None
                if first != container_name:
                    return
            try:
                image_id = self._commit(push, container_name, container_id, running=False)
            except engine_errors.EngineError as err:
                with self._lock:
                    self._committed[key] = container_id  # not this exit again: the next one
                self._attempt_failed(push, (push.status.attempts or 0) + 1, failure_reason(err), str(err))
                return
            message = f"committed container {container_name} at its exit; pushing"
            self._patch(
                push,
                {
                    "imageID": image_id,
                    "nodeName": self.node,
                    "message": message,
                    "conditions": _succeeded(push, "Unknown", Reason.RUNNING, message),
                },
            )
            with self._lock:
                self._retry_at.pop(key, None)
        self.queue.add(key)

    # --- helpers -----------------------------------------------------------------------------------

    def _patch(self, push: objects.Push, status: dict[str, Any]) -> objects.Push:
        """Merge-patch ``status`` through ``/status``; the Push as it is now (``push`` when nothing changed)."""
        out = runtime.patch_status(self.api, "Push", push, status)
        if out is None:
            return push
        out.setdefault("kind", "Push")
        updated: objects.Push = objects.parse(out)
        return updated

    def _forget(self, key: str) -> None:
        with self._lock:
            self._retry_at.pop(key, None)
            self._committed.pop(key, None)

    def _forget_commit(self, push: objects.Push) -> None:
        with self._lock:
            self._committed.pop(push.key, None)

    def _credentials(self, push: objects.Push) -> tuple[str, str] | None:
        """``(username, password)`` for the target registry from ``spec.imagePushSecrets``, in order, or None.

        Read with the node identity (the Node authorizer lets a node read the Secrets of the Pushes it serves).

        Raises:
            credentials.CredentialError: a named Secret is missing or not a dockerconfigjson (the message names it).
            registry_errors.InvalidReference: ``spec.image`` does not parse.
        """
        return self._credentials_for(push, reference.parse(push.spec.image).registry)

    def _credentials_or_none(self, push: objects.Push, image: str) -> tuple[str, str] | None:
        """The push credentials when ``image`` is on the target's registry (never sent to another), else None.

        Raises:
            credentials.CredentialError, registry_errors.InvalidReference: as :meth:`_credentials`.
        """
        host = reference.parse(image).registry
        return self._credentials_for(push, host) if host == reference.parse(push.spec.image).registry else None

    def _credentials_for(self, push: objects.Push, host: str) -> tuple[str, str] | None:
        ns = str(push.metadata.namespace)
        for ref in push.spec.imagePushSecrets:
            secret = runtime.get_or_none(self.api, "Secret", ref.name, ns)
            if secret is None:
                raise credentials.CredentialError(
                    f"imagePushSecrets: secret {ref.name!r} not found in namespace {ns!r}"
                )
            found = credentials.registry_auth(secret, host)
            if found is not None:
                return found
        return None


COMMITTABLE_RUNTIMES = frozenset({"docker", "podman"})
"""``containerID`` schemes of the runtimes a Push can commit through (the engine's commit API)."""


def _reported_container(pod: Pod, container: str) -> tuple[str | None, str | None, bool]:
    """``(scheme, id, running)`` of ``container`` as the pod's ``status.containerStatuses`` report it
    (``containerID`` is ``<runtime>://<id>``: ``docker``, ``podman``, ``containerd``, ``cri-o``), or
    ``(None, None, False)`` when it reports none."""
    for status in (pod.status.containerStatuses if pod.status else None) or []:
        if status.name == container and status.containerID and "://" in status.containerID:
            scheme, _, cid = status.containerID.partition("://")
            running = bool(status.state and status.state.running)
            return scheme, cid or None, running
    return None, None, False


def _observe_duration(push: objects.Push, phase: str) -> None:
    """``dockyard_push_duration_seconds{phase}``: from ``status.startTime`` (set by the first attempt) to now."""
    try:
        started = timefmt.parse(push.status.startTime or "")
    except ValueError:
        return
    metrics.PUSH_DURATION.labels(phase).observe(max(0.0, time.time() - started))


def _succeeded(push: objects.Push, status: str, reason: str, message: str) -> list[dict[str, Any]]:
    """``status.conditions`` with the ``Succeeded`` condition set (API conventions: ``lastTransitionTime`` moves
    only when ``status`` changes)."""
    kept = [c.model_dump(mode="json", exclude_none=True) for c in push.status.conditions]
    out = [c for c in kept if c.get("type") != phases.SUCCEEDED_CONDITION]
    old = next((c for c in kept if c.get("type") == phases.SUCCEEDED_CONDITION), None)
    since = old.get("lastTransitionTime") if old and old.get("status") == status else None
    out.append(
        {
            "type": phases.SUCCEEDED_CONDITION,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": since or timefmt.now(),
        }
    )
    return out
