"""Serve ``Push`` objects: commit a pod's container to an image and push it.

The Kubernetes Push proposal's per-node agent, with OpenStack Zun's commit
options (``pause``, ``changes``, ``message``, ``author``). Phase ``Pending`` →
``Running`` → ``Succeeded`` | ``Failed``. ``Succeeded`` is written only after
the registry serves the pushed tag, and ``status.imageDigest`` is the digest
it serves (OCI distribution spec, "Pulling manifests"). A Push found
``Running`` after a restart is done again: a commit and a push of the same
container are idempotent from the registry's point of view.
"""

from __future__ import annotations

import logging
from typing import Any

from dockyard.agent import builds, pods
from dockyard.agent.engine import errors as engine_errors
from dockyard.agent.engine import images
from dockyard.api import credentials, phases
from dockyard.api import labels as well_known
from dockyard.client import events, resources, runtime
from dockyard.client.connection import Connection
from dockyard.registry import errors as registry_errors

log = logging.getLogger(__name__)

TERMINAL = phases.PUSH_TERMINAL


class PushWorker(runtime.Controller):
    """Reconciles Pushes whose pod runs on this node (key ``namespace/name``)."""

    name = "pushes"
    component = "node-agent"

    def __init__(self, conn: Connection, *, runtime_: pods.PodRuntime, engine_client: Any, node_name: str) -> None:
        super().__init__(conn=conn, workers=2)
        self.pods = runtime_
        self.engine = engine_client
        self.node = node_name
        self.host = node_name

    def watches(self) -> list[runtime.Watch]:
        return [runtime.Watch("Push")]

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        push = runtime.get_or_none(self.api, "Push", name, ns)
        if push is None or (push.get("status") or {}).get("phase") in TERMINAL:
            return None
        spec = push["spec"]
        label_node = (push["metadata"].get("labels") or {}).get(well_known.NODE_NAME)
        if label_node and label_node != self.node:
            return None
        pod = runtime.get_or_none(self.api, "Pod", spec["podName"], ns)
        if pod is None:
            return self._fail(push, f"pod {spec['podName']!r} not found in namespace {ns!r}")
        if (pod["spec"].get("nodeName") or self.node) != self.node:
            return None
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        container = spec.get("containerName") or (containers[0] if containers else None)
        if container not in containers:
            return self._fail(
                push,
                f"container {container!r} not found in pod {spec['podName']!r} (containers: {', '.join(containers)})",
            )
        container_id = self.pods.container_id(pod, container)
        if container_id is None:
            return self._fail(
                push, f"container {container!r} of pod {spec['podName']!r} has no running container on this node"
            )
        running = runtime.patch_status(
            self.api,
            "Push",
            push,
            {
                "phase": "Running",
                "nodeName": self.node,
                "message": f"committing {container}",
                "startTime": (push.get("status") or {}).get("startTime") or runtime.now_rfc3339(),
            },
        )
        push = running or push
        try:
            registry_auth = self._credentials(push)
        except credentials.CredentialError as err:
            return self._fail(push, str(err))
        auth = {"username": registry_auth[0], "password": registry_auth[1]} if registry_auth else None
        try:
            images.commit(
                self.engine,
                container_id,
                spec["image"],
                pause=spec.get("pause", True),
                changes=spec.get("changes") or None,
                message=spec.get("message"),
                author=spec.get("author"),
            )
            self.events.record(
                push,
                events.NORMAL,
                "Committed",
                f"Committed container {container} of pod {spec['podName']} to {spec['image']}",
            )
            digest = builds.push_and_verify(
                self.engine, spec["image"], auth=auth, registry_auth=registry_auth, on_log=lambda _line: None
            )
        except (engine_errors.EngineError, registry_errors.RegistryError) as err:
            return self._fail(push, f"{type(err).__name__}: {err}")
        runtime.patch_status(
            self.api,
            "Push",
            push,
            {
                "phase": "Succeeded",
                "imageDigest": digest,
                "message": f"pushed {spec['image']}@{digest}",
                "completionTime": runtime.now_rfc3339(),
            },
        )
        log.info("push %s: %s@%s", key, spec["image"], digest)
        self.events.record(push, events.NORMAL, "Pushed", f"Pushed {spec['image']}@{digest}")
        return None

    def _credentials(self, push: dict[str, Any]) -> tuple[str, str] | None:
        """``(username, password)`` for the target registry from ``spec.imagePushSecrets``, in order, or None.

        Read with the node identity (the Node authorizer lets a node read the Secrets of the Pushes it serves).

        Raises:
            credentials.CredentialError: a named Secret is missing or not a dockerconfigjson (the message names it).
        """
        ns = push["metadata"]["namespace"]
        registry = builds.registry_of(push["spec"]["image"])
        for ref in push["spec"].get("imagePushSecrets") or []:
            secret = runtime.get_or_none(self.api, "Secret", ref["name"], ns)
            if secret is None:
                raise credentials.CredentialError(
                    f"imagePushSecrets: secret {ref['name']!r} not found in namespace {ns!r}"
                )
            found = credentials.registry_auth(secret, registry)
            if found is not None:
                return found
        return None

    def _fail(self, push: dict[str, Any], message: str) -> None:
        log.info("push %s failed: %s", resources.key(push), message)
        self.events.record(push, events.WARNING, "PushFailed", message)
        runtime.patch_status(
            self.api,
            "Push",
            push,
            {"phase": "Failed", "message": message, "nodeName": self.node, "completionTime": runtime.now_rfc3339()},
        )
        return None
