"""Static pods: pods the node runs from manifest files and a manifest URL, mirrored into the API.

The kubelet's ``staticPodPath`` (``pkg/kubelet/config/file.go``) and ``--manifest-url`` (``config/http.go``)
sources, and its mirror pods (``pkg/kubelet/pod/mirror_client.go``):

- **Sources.** Every regular, non-hidden ``*.yaml``/``*.yml``/``*.json`` file in the folder holds one Pod (the
  kubelet takes one pod per file, :func:`read_folder`); it is read again every ``period`` seconds. The URL answers
  one Pod, or a ``List``/``PodList`` of them (the kubelet's ``http.go`` takes either); it is polled every
  ``url_period`` seconds (kubelet ``httpCheckFrequency``: 20 s), its answer bounded to :data:`MAX_MANIFEST_BYTES`,
  an empty answer meaning no pods. A URL that cannot be read leaves its pods as they were (kubelet keeps the last
  good answer). Only loopback URLs are taken (:func:`check_manifest_url`): dockyard's traffic stays on 127.0.0.1.
- **Defaults** (``config/common.go`` ``applyDefaults``): the pod is named ``<name>-<nodeName>``, namespace
  ``default`` unless given, bound to the node, annotated ``kubernetes.io/config.source`` (``file``/``http``),
  ``kubernetes.io/config.hash`` (a hash of the manifest as read) and ``kubernetes.io/config.seen``; then validated
  and defaulted as the API server validates pods (:func:`dockyard.api.validation.validate`, the same field paths).
  A manifest that does not parse or validate is a Warning Event ``FailedValidation`` on the Node naming the file
  (or URL) and the fields, once per change; it never stops the other pods.
- **Identity.** The kubelet's static pod UID is the manifest's hash, so an edit restarts the whole pod. Here the UID
  is a hash of node, source and ``namespace/name`` (:func:`static_uid`): an edited manifest is the same pod, and the
  per-container spec hash restarts only the containers that changed (issue 8 item 6). A pod renamed in its file is
  a new pod.
- **Mirror pods.** Each static pod appears in the API as a mirror pod of the same name, annotated
  ``kubernetes.io/config.mirror`` with the config hash; its status is the static pod's. A mirror pod with another
  hash is deleted and created again; a mirror pod deleted through the API (Terminating, as any pod bound to a
  node) is removed with grace period 0 and created again (the file is the truth; kubelet ``syncPod``); mirror
  pods of this node whose static pod is gone are deleted, Terminating ones too (kubelet
  ``deleteOrphanedMirrorPods``).
  The node creates them with its own identity, so NodeRestriction and Pod Security admission apply
  (:func:`dockyard.apiserver.nodeauthz.check_mirror_pod_create`): a static pod that references Secrets or that the
  namespace's Pod Security level refuses still runs, as on a kubelet, but gets no mirror pod (a Warning Event
  ``FailedMirrorPod`` on the Node says why). No ``ownerReference`` to the Node is set: the embedded engine keeps
  no Node objects.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from lightkube import ApiError
from lightkube.models.core_v1 import PodStatus
from lightkube.resources.core_v1 import Pod

from dockyard.api import errors as api_errors
from dockyard.api import kinds, timefmt, validation
from dockyard.api import labels as well_known
from dockyard.client import events, objects, runtime
from dockyard.client.connection import Connection

__all__ = [
    "MANIFEST_SUFFIXES",
    "MAX_MANIFEST_BYTES",
    "Manifest",
    "StaticPods",
    "check_manifest_url",
    "is_mirror_pod",
    "read_folder",
    "read_url",
    "static_uid",
]

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
"""Files of the manifest folder that are read; others are ignored."""

MAX_MANIFEST_BYTES = 10 * 1024 * 1024
"""Bound on one manifest file or URL answer (10 MiB)."""

SOURCE_FILE, SOURCE_HTTP = "file", "http"
"""``kubernetes.io/config.source`` values (``kubetypes.FileSource``, ``kubetypes.HTTPSource``)."""

FAILED_VALIDATION = "FailedValidation"
"""The kubelet's Event reason for a pod it will not take (``events.FailedValidation``)."""

FAILED_MIRROR = "FailedMirrorPod"
"""Event reason when the API refuses a mirror pod (the kubelet only logs "Failed creating a mirror pod")."""

URL_TIMEOUT = 10.0
"""Seconds one manifest URL request may take."""

_POD = kinds.by_kind("v1", "Pod")


def is_mirror_pod(pod: Pod) -> bool:
    """True if ``pod`` is the API's mirror of a static pod (annotation ``kubernetes.io/config.mirror``); the node
    never runs a mirror pod itself (kubelet ``IsMirrorPod``)."""
    return bool(pod.metadata and pod.metadata.annotations and well_known.CONFIG_MIRROR in pod.metadata.annotations)


def check_manifest_url(url: str) -> str:
    """``url`` if it is an ``http``/``https`` URL of a loopback host (``127.0.0.0/8``, ``::1``, ``localhost``).

    Raises:
        ValueError: another scheme or host; the message says what is allowed.
    """
    parsed = urllib.parse.urlsplit(url)
    host = (parsed.hostname or "").lower()
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if parsed.scheme not in ("http", "https") or not loopback:
        raise ValueError(
            f"--manifest-url {url!r}: only http(s) URLs on 127.0.0.1 (or localhost) are allowed; "
            "dockyard's traffic stays on the loopback interface"
        )
    return url


def static_uid(node: str, source: str, namespace: str, name: str) -> str:
    """The static pod's UID: 32 hex digits, stable for one node, source (file path or URL) and pod name."""
    return hashlib.md5(f"host:{node}\nsource:{source}\npod:{namespace}/{name}".encode()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """One static pod as read: ``pod`` is the defaulted, validated wire dict (with ``metadata.uid``)."""

    source: str  #: the file path or URL it came from
    pod: dict[str, Any]

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    @property
    def key(self) -> tuple[str, str]:
        return str(self.pod["metadata"]["namespace"]), str(self.pod["metadata"]["name"])

    @property
    def hash(self) -> str:
        return str(self.pod["metadata"]["annotations"][well_known.CONFIG_HASH])


Problem = tuple[str, str]
"""``(source, message)`` of a manifest that was not taken."""


def _decode(text: str, where: str) -> list[Any]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ValueError(f"{where}: not valid YAML or JSON{at}") from err
    return docs


def prepare(doc: Any, *, source: str, kind: str, node: str, seen: str) -> dict[str, Any]:
    """A manifest's Pod as the node runs it (module docstring, "Defaults"), validated as the API server does.

    Raises:
        ValueError: not a v1 Pod, or invalid; the message names the source and every bad field path.
    """
    if not isinstance(doc, dict) or doc.get("kind") != "Pod" or doc.get("apiVersion") != "v1":
        got = f"{doc.get('apiVersion')}/{doc.get('kind')}" if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{source}: kind: want a v1 Pod, got {got}")
    pod = copy.deepcopy(doc)
    pod.pop("status", None)
    meta = pod.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: metadata: must be an object")
    content = hashlib.md5(
        json.dumps(pod, sort_keys=True, separators=(",", ":")).encode() + f"\nhost:{node}\n{kind}:{source}".encode()
    ).hexdigest()
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{source}: metadata.name: Required value")
    meta["name"] = f"{name}-{node}"
    meta["namespace"] = meta.get("namespace") or "default"
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    meta["annotations"] = {
        **annotations,
        well_known.CONFIG_SOURCE: kind,
        well_known.CONFIG_HASH: content,
        well_known.CONFIG_SEEN: seen,
    }
    meta.pop(well_known.CONFIG_MIRROR, None)
    for key in ("uid", "resourceVersion", "generateName", "ownerReferences", "deletionTimestamp"):
        meta.pop(key, None)
    spec = pod.get("spec")
    if isinstance(spec, dict):
        spec["nodeName"] = node
    try:
        pod = validation.validate(_POD, pod)
    except api_errors.Invalid as err:
        fields = "; ".join(f"{c['field']}: {c['message']}" for c in err.details.get("causes", []))
        raise ValueError(f"{source}: {fields or err.message}") from err
    pod["metadata"]["uid"] = static_uid(node, source, pod["metadata"]["namespace"], pod["metadata"]["name"])
    return dict(pod)


def read_folder(folder: Path, *, node: str, now: str) -> tuple[list[Manifest], list[Problem]]:
    """The static pods of ``folder`` (kubelet ``extractFromDir``): one Pod per ``*.yaml``/``*.yml``/``*.json``
    regular, non-hidden file, in name order. A missing folder has no pods.

    Returns:
        ``(manifests, problems)``: each problem names the file and the fields.
    Raises:
        OSError: the folder cannot be listed; its pods are to be kept as they were.
    """
    manifests: list[Manifest] = []
    problems: list[Problem] = []
    try:
        entries = sorted(folder.iterdir())
    except FileNotFoundError:
        return [], []
    for path in entries:
        if path.name.startswith(".") or path.suffix not in MANIFEST_SUFFIXES or not path.is_file():
            continue
        where = str(path)
        try:
            if path.stat().st_size > MAX_MANIFEST_BYTES:
                raise ValueError(f"{where}: larger than {MAX_MANIFEST_BYTES} bytes")
            docs = _decode(path.read_text(encoding="utf-8"), where)
            if len(docs) != 1:
                raise ValueError(f"{where}: want exactly one Pod per file, got {len(docs)} documents")
            manifests.append(Manifest(where, prepare(docs[0], source=where, kind=SOURCE_FILE, node=node, seen=now)))
        except (OSError, UnicodeDecodeError) as err:
            problems.append((where, f"{where}: cannot read: {getattr(err, 'strerror', None) or err}"))
        except ValueError as err:
            problems.append((where, str(err)))
    return manifests, problems


def read_url(url: str, *, node: str, now: str, client: httpx.Client) -> tuple[list[Manifest], list[Problem]]:
    """The static pods at ``url`` (kubelet ``extractFromURL``): one Pod, or a ``List``/``PodList`` of Pods; an
    empty answer is no pods.

    Raises:
        OSError: the URL could not be read (not answered, not 200, larger than :data:`MAX_MANIFEST_BYTES`); the
            pods from it are to be kept as they were.
    """
    check_manifest_url(url)
    try:
        with client.stream("GET", url, follow_redirects=False) as resp:
            if resp.status_code != 200:
                raise OSError(f"{url}: answered {resp.status_code}")
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_MANIFEST_BYTES:
                    raise OSError(f"{url}: answer larger than {MAX_MANIFEST_BYTES} bytes")
    except httpx.HTTPError as err:
        raise OSError(f"{url}: {err}") from err
    if not body.strip():
        return [], []
    try:
        docs = _decode(body.decode("utf-8"), url)
    except (ValueError, UnicodeDecodeError) as err:
        return [], [(url, str(err) if isinstance(err, ValueError) else f"{url}: not UTF-8")]
    items: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") in ("List", "PodList"):
            items.extend(doc.get("items") or [])
        else:
            items.append(doc)
    manifests: list[Manifest] = []
    problems: list[Problem] = []
    for i, doc in enumerate(items):
        where = url if len(items) == 1 else f"{url} (items[{i}])"
        try:
            manifests.append(Manifest(url, prepare(doc, source=url, kind=SOURCE_HTTP, node=node, seen=now)))
        except ValueError as err:
            problems.append((where, str(err)))
    return manifests, problems


class StaticPods:
    """Runs this node's static pods and keeps their mirror pods (see the module docstring).

    Args:
        conn: the node identity's connection.
        runtime_: the node's pod runtime (its containers carry the static pod's UID).
        node_name: this node.
        manifest_path: the folder of manifests, or ``None``.
        manifest_url: the manifest URL (loopback only, :func:`check_manifest_url`), or ``None``.
        period: seconds between reads of the folder and syncs of the static pods.
        url_period: seconds between reads of the URL.
        mirrors: this node's pods as the agent's informer sees them (to find orphaned mirror pods).
        on_status: ``(mirror pod as last read, new status)`` after each sync: the agent's container Events.

    Raises:
        ValueError: ``manifest_url`` is not a loopback http(s) URL.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        runtime_: Any,
        node_name: str,
        manifest_path: Path | None,
        manifest_url: str | None,
        period: float = 2.0,
        url_period: float = 20.0,
        mirrors: Callable[[], Iterable[Pod]] = list,
        on_status: Callable[[Pod, PodStatus], None] | None = None,
    ) -> None:
        self._conn = conn
        self._runtime = runtime_
        self.node = node_name
        self.manifest_path = Path(manifest_path) if manifest_path is not None else None
        self.manifest_url = check_manifest_url(manifest_url) if manifest_url else None
        self.period = period
        self.url_period = url_period
        self._mirrors = mirrors
        self._on_status = on_status
        self._lock = threading.Lock()
        self._running: dict[str, Manifest] = {}  # uid → the manifest it runs
        self._from_url: list[Manifest] = []
        self._from_folder: list[Manifest] = []
        self._url_read_at = float("-inf")
        self._seen: dict[str, str] = {}  # config hash → when first seen (kubernetes.io/config.seen)
        self._reported: dict[str, str] = {}  # source → the problem last reported about it
        self._mirror_refused: dict[str, str] = {}  # uid → the refusal last reported

    def uids(self) -> set[str]:
        """UIDs of the static pods running now (their containers are not orphans)."""
        with self._lock:
            return set(self._running)

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """Sync the static pods every :attr:`period` seconds on a daemon thread until ``stop`` is set."""
        self.api = self._conn.lightkube()
        self.events = events.EventRecorder(self._conn.lightkube(timeout=5.0), component="kubelet", host=self.node)
        self._http = httpx.Client(timeout=URL_TIMEOUT, trust_env=False)
        thread = threading.Thread(target=self._loop, args=(stop,), daemon=True, name="static-pods")
        thread.start()
        return [thread]

    def _loop(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.sync_once()
                except Exception:
                    log.exception("static pods: sync failed")
                stop.wait(self.period)
        finally:
            self._http.close()

    # --- one pass ---------------------------------------------------------------------------------------------

    def sync_once(self) -> None:
        """Read the sources, then start, sync, update and stop static pods and their mirror pods to match."""
        now = timefmt.now()
        wanted: list[Manifest] = []
        problems: list[Problem] = []
        if self.manifest_path is not None:
            try:
                self._from_folder, bad = read_folder(self.manifest_path, node=self.node, now=now)
                problems += bad
            except OSError as err:
                log.warning("static pods: cannot read %s: %s", self.manifest_path, err.strerror or err)
            wanted += self._from_folder
        if self.manifest_url is not None:
            if time.monotonic() - self._url_read_at >= self.url_period:
                self._url_read_at = time.monotonic()
                try:
                    self._from_url, bad = read_url(self.manifest_url, node=self.node, now=now, client=self._http)
                    problems += bad
                except OSError as err:
                    log.warning("static pods: cannot read the manifest URL: %s", err)
            wanted += self._from_url
        desired: dict[str, Manifest] = {}
        names: dict[tuple[str, str], str] = {}
        for m in wanted:
            other = names.get(m.key)
            if other is not None:
                problems.append((m.source, f"{m.source}: duplicate pod name {m.key[1]!r} (also in {other}), ignored"))
                continue
            names[m.key] = m.source
            desired[m.uid] = self._seen_at(m)
        self._report(problems)
        with self._lock:
            gone = [m for uid, m in self._running.items() if uid not in desired]
            self._running = dict(desired)
        for m in gone:
            self._remove(m, keep_mirror=m.key in names)
        for m in desired.values():
            try:
                self._sync(m)
            except Exception:
                log.exception("static pods: sync of %s/%s failed", *m.key)
        self._delete_orphaned_mirrors(set(names))

    def _seen_at(self, m: Manifest) -> Manifest:
        """``kubernetes.io/config.seen``: when this version (config hash) was first read, not each read."""
        seen = self._seen.setdefault(m.hash, str(m.pod["metadata"]["annotations"][well_known.CONFIG_SEEN]))
        if len(self._seen) > 4096:
            self._seen = {m.hash: seen}
        pod = copy.deepcopy(m.pod)
        pod["metadata"]["annotations"][well_known.CONFIG_SEEN] = seen
        return Manifest(m.source, pod)

    def _report(self, problems: list[Problem]) -> None:
        """A Warning ``FailedValidation`` Event on the Node for each new or changed problem of a source."""
        now = {source: message for source, message in problems}
        for source, message in now.items():
            if self._reported.get(source) != message:
                log.warning("static pods: %s", message)
                self.events.record(
                    self._node_ref(), events.WARNING, FAILED_VALIDATION, f"Error validating pod: {message}"
                )
        self._reported = now

    def _node_ref(self) -> dict[str, Any]:
        """The kubelet's ``nodeRef``: UID = the node's name, which ``kubectl describe node`` searches Events by."""
        return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node, "uid": self.node}}

    # --- one static pod ---------------------------------------------------------------------------------------

    def _sync(self, m: Manifest) -> None:
        namespace, name = m.key
        mirror = runtime.get(self.api, "Pod", name, namespace)
        if mirror is not None and not is_mirror_pod(mirror):
            self._refused(m, f'a pod named "{namespace}/{name}" that is not a mirror pod exists')
            mirror = None
        elif mirror is not None and mirror.metadata.deletionTimestamp:
            self._delete_mirror(namespace, name)  # kubelet syncPod: a mirror pod being deleted goes now, comes back
            mirror = None
        elif mirror is not None and mirror.metadata.annotations.get(well_known.CONFIG_MIRROR) != m.hash:
            self._delete_mirror(namespace, name)  # kubelet: recreate on a changed pod
            mirror = None
        pod: Pod = objects.parse(dict(m.pod, kind="Pod", apiVersion="v1"), Pod)
        if mirror is not None and mirror.status is not None:
            pod.status = mirror.status
        status = self._runtime.sync_pod(pod)
        if mirror is None:
            mirror = self._create_mirror(m)
            if mirror is None:
                return
        if self._on_status is not None:
            self._on_status(mirror, status)
        runtime.patch_status(self.api, "Pod", mirror, status.to_dict())

    def _create_mirror(self, m: Manifest) -> Pod | None:
        body = copy.deepcopy(m.pod)
        body["metadata"].pop("uid", None)
        body["metadata"]["annotations"][well_known.CONFIG_MIRROR] = m.hash
        try:
            created: Pod = self.api.create(_pod(body), namespace=m.key[0])
        except ApiError as err:
            if err.status.code == 409:
                return None  # made meanwhile; the next pass reads it
            self._refused(m, str(err.status.message or err.status.code))
            return None
        self._mirror_refused.pop(m.uid, None)
        log.info("static pods: created mirror pod %s/%s", *m.key)
        return created

    def _refused(self, m: Manifest, why: str) -> None:
        if self._mirror_refused.get(m.uid) == why:
            return
        self._mirror_refused[m.uid] = why
        message = f"Failed creating a mirror pod for {m.key[0]}/{m.key[1]} ({m.source}): {why}"
        log.warning("static pods: %s", message)
        self.events.record(self._node_ref(), events.WARNING, FAILED_MIRROR, message)

    def _delete_mirror(self, namespace: str, name: str) -> None:
        try:
            self.api.delete(Pod, name, namespace=namespace, grace_period=0)
        except ApiError as err:
            if err.status.code not in (404, 409):
                raise

    def _remove(self, m: Manifest, *, keep_mirror: bool) -> None:
        """The static pod's manifest is gone: stop its containers, delete its mirror pod."""
        log.info("static pods: %s/%s removed from %s", *m.key, m.source)
        self._runtime.kill_pod(m.uid)
        self._mirror_refused.pop(m.uid, None)
        if not keep_mirror:
            self._delete_mirror(*m.key)

    def _delete_orphaned_mirrors(self, wanted: set[tuple[str, str]]) -> None:
        """kubelet ``deleteOrphanedMirrorPods``: mirror pods of this node without a static pod."""
        for pod in self._mirrors():
            if not is_mirror_pod(pod) or pod.spec is None or pod.spec.nodeName != self.node:
                continue
            key = (str(pod.metadata.namespace), str(pod.metadata.name))
            if key not in wanted and pod.metadata.deletionGracePeriodSeconds != 0:  # 0: only finalizers hold it
                log.info("static pods: deleting orphaned mirror pod %s/%s", *key)
                self._delete_mirror(*key)


def _pod(body: dict[str, Any]) -> Pod:
    parsed: Pod = objects.parse(dict(body, kind="Pod", apiVersion="v1"), Pod)
    return parsed
