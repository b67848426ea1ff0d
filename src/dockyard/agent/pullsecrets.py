"""Image pull secrets: the registry credentials of a pod's ``spec.imagePullSecrets``, as the kubelet finds them.

kubelet ``pkg/kubelet/kubelet_pods.go`` ``getPullSecretsForPod`` reads each named Secret of the pod's namespace (a
Secret it cannot read is reported with a ``FailedToRetrieveImagePullSecret`` Event and skipped), and
``pkg/credentialprovider/keyring.go`` matches their ``kubernetes.io/dockerconfigjson`` ``auths`` to the image
(:class:`dockyard.api.credentials.DockerKeyring`). The node identity reads only the Secrets its pods reference
(the Node authorizer, :mod:`dockyard.apiserver.nodeauthz`). Credentials are never logged nor put in an Event,
status or message.
"""

from __future__ import annotations

import logging
from typing import Any

from lightkube import ApiError
from lightkube.resources.core_v1 import Pod

from dockyard.api import credentials
from dockyard.client import events, runtime
from dockyard.client.connection import Connection

__all__ = ["FAILED_TO_RETRIEVE", "PullSecrets"]

log = logging.getLogger(__name__)

FAILED_TO_RETRIEVE = "FailedToRetrieveImagePullSecret"
"""The kubelet's Event reason for a pull Secret it cannot read (``events.FailedToRetrieveImagePullSecret``)."""


class PullSecrets:
    """``(pod, image) -> [auth config, ...]`` for :data:`dockyard.agent.pods.PullAuth`.

    Args:
        conn: the node identity's connection (its API clients are made on first use).
        node_name: ``source.host`` of the Events.
    """

    def __init__(self, conn: Connection, *, node_name: str) -> None:
        self._conn = conn
        self._node = node_name
        self._api: Any = None
        self._events: events.EventRecorder | None = None

    def __call__(self, pod: Pod, image: str) -> list[dict[str, str]]:
        """The credentials to try, in order, pulling ``image`` for ``pod`` (``[]``: none apply; pull anonymously).

        Each Secret is read fresh (a rotated password is used on the next pull). A Secret missing, forbidden or
        not a dockerconfigjson is skipped, as the kubelet skips it, with a Warning Event naming it.
        """
        refs = (pod.spec.imagePullSecrets if pod.spec else None) or []
        if not refs:
            return []
        if self._api is None:
            self._api = self._conn.lightkube()
            self._events = events.EventRecorder(self._conn.lightkube(timeout=5.0), component="kubelet", host=self._node)
        namespace = str(pod.metadata.namespace if pod.metadata else "") or "default"
        keyring: list[credentials.DockerKeyring] = []
        unreadable: list[str] = []
        for ref in refs:
            if not ref.name:
                continue
            try:
                secret = runtime.get_or_none(self._api, "Secret", ref.name, namespace)
                if secret is None:
                    unreadable.append(ref.name)
                    continue
                keyring.append(credentials.DockerKeyring.from_secrets([secret]))
            except (ApiError, credentials.CredentialError) as err:
                log.warning(
                    "pod %s/%s: image pull secret %r not used: %s",
                    namespace,
                    pod.metadata.name if pod.metadata else "",
                    ref.name,
                    _reason(err),
                )
                unreadable.append(ref.name)
        if unreadable and self._events is not None:
            self._events.record(
                pod,
                events.WARNING,
                FAILED_TO_RETRIEVE,
                f"Unable to retrieve some image pull secrets ({', '.join(unreadable)}); "
                "attempting to pull the image may not succeed.",
            )
        joined = credentials.DockerKeyring(tuple(entry for ring in keyring for entry in ring.entries))
        ordered = credentials.DockerKeyring(tuple(sorted(joined.entries, key=lambda e: e[0], reverse=True)))
        try:
            found = ordered.lookup(image)
        except ValueError:
            return []  # the pull reports the bad reference
        return [{"username": user, "password": password} for user, password in found]


def _reason(err: Exception) -> str:
    """What went wrong, without any Secret value: the API's status message or the credential error's."""
    if isinstance(err, ApiError):
        return str(err.status.message or err.status.code)
    return str(err)
