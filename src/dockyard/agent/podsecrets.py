"""The Secrets a pod's containers read (``env[].valueFrom.secretKeyRef``, ``envFrom``, ``secret`` and ``projected``
volumes), fetched as the kubelet's secret manager fetches them: with the node identity, which may get only the
Secrets of pods bound to it (the Node authorizer, :mod:`dockyard.apiserver.nodeauthz`), each read fresh when a
container starts. Values are never logged nor put in an Event, status or message.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx
from lightkube import ApiError

from dockyard.agent.pods.sources import SecretUnavailable
from dockyard.client import runtime
from dockyard.client.connection import Connection

__all__ = ["SecretReader"]


class SecretReader:
    """:data:`dockyard.agent.pods.sources.SecretLookup` over the API: ``(namespace, name) -> {key: bytes}``.

    Args:
        conn: the node identity's connection (its API client is made on first use).
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._api: Any = None

    def __call__(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The Secret's ``data``, decoded; ``None`` if it does not exist.

        Raises:
            SecretUnavailable: the API refused the read (its status message, e.g. 403) or could not be reached.
        """
        if self._api is None:
            self._api = self._conn.lightkube()
        try:
            secret = runtime.get_or_none(self._api, "Secret", name, namespace)
        except ApiError as err:
            raise SecretUnavailable(str(err.status.message or err.status.code)) from None
        except httpx.HTTPError as err:
            raise SecretUnavailable(f"the API server cannot be reached: {type(err).__name__}") from None
        if secret is None:
            return None
        out: dict[str, bytes] = {}
        for key, value in (secret.get("data") or {}).items():
            try:
                out[key] = base64.b64decode(value or "", validate=True)
            except (binascii.Error, ValueError):
                raise SecretUnavailable(f"key {key!r} is not base64") from None
        return out
