"""The Secrets and ConfigMaps a pod's containers read (``env[].valueFrom``, ``envFrom``, ``secret``, ``configMap``
and ``projected`` volumes), fetched as the kubelet's secret and configmap managers fetch them: with the node
identity, which may get only those of pods bound to it (the Node authorizer, :mod:`dockyard.apiserver.nodeauthz`),
each read fresh when a container starts and when the volumes are refreshed. Secret values are never logged nor put
in an Event, status or message.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from lightkube import ApiError

from dockyard.agent.pods.sources import SecretUnavailable
from dockyard.client import runtime
from dockyard.client.connection import HTTP_ERRORS, Connection

__all__ = ["ConfigMapReader", "SecretReader"]


class _Reader:
    """An :data:`dockyard.agent.pods.sources.ObjectLookup` of one kind over the API."""

    kind = ""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._api: Any = None

    def _get(self, namespace: str, name: str) -> Any:
        """The object as stored, ``None`` if it does not exist.

        Raises:
            SecretUnavailable: the API refused the read (its status message, e.g. 403) or could not be reached.
        """
        if self._api is None:
            self._api = self._conn.lightkube()
        try:
            return runtime.get_or_none(self._api, self.kind, name, namespace)
        except ApiError as err:
            raise SecretUnavailable(str(err.status.message or err.status.code)) from None
        except HTTP_ERRORS as err:
            raise SecretUnavailable(f"the API server cannot be reached: {type(err).__name__}") from None


def _decoded(values: Any) -> dict[str, bytes]:
    """``{key: base64}`` decoded. Raises SecretUnavailable naming a key (never its value) that is not base64."""
    out: dict[str, bytes] = {}
    for key, value in (values or {}).items():
        try:
            out[key] = base64.b64decode(value or "", validate=True)
        except (binascii.Error, ValueError):
            raise SecretUnavailable(f"key {key!r} is not base64") from None
    return out


class SecretReader(_Reader):
    """:data:`dockyard.agent.pods.sources.SecretLookup` over the API: ``(namespace, name) -> {key: bytes}``.

    Args:
        conn: the node identity's connection (its API client is made on first use).
    """

    kind = "Secret"

    def __call__(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The Secret's ``data``, decoded; ``None`` if it does not exist.

        Raises:
            SecretUnavailable: the API refused the read (its status message, e.g. 403) or could not be reached.
        """
        secret = self._get(namespace, name)
        return None if secret is None else _decoded(secret.get("data"))


class ConfigMapReader(_Reader):
    """:data:`dockyard.agent.pods.sources.ObjectLookup` of ConfigMaps over the API: ``data`` (UTF-8) and
    ``binaryData`` (decoded) as ``{key: bytes}`` (a key is in only one of them: the API server's validation).

    Args:
        conn: the node identity's connection (its API client is made on first use).
    """

    kind = "ConfigMap"

    def __call__(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The ConfigMap's keys; ``None`` if it does not exist.

        Raises:
            SecretUnavailable: the API refused the read (its status message, e.g. 403) or could not be reached.
        """
        config_map = self._get(namespace, name)
        if config_map is None:
            return None
        out = _decoded(config_map.get("binaryData"))
        for key, value in (config_map.get("data") or {}).items():
            out[key] = str(value or "").encode()
        return out
