"""Bearer-token authentication as ASGI middleware.

Kubernetes "Authenticating" (static token file): a request carries
``Authorization: Bearer <token>``; an unknown or missing token gets 401 with
a ``Status`` body (reason ``Unauthorized``). Health and version endpoints are
open, as the apiserver's default RBAC lets anyone read them.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.api import errors
from dockyard.apiserver import wire

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
# OpenShift's build webhooks carry their own secret in the URL; they take no bearer token.
WEBHOOK_PATH = re.compile(r"^/apis/dockyard\.dev/v1alpha1/namespaces/[^/]+/buildconfigs/[^/]+/webhooks/[^/]+/[^/]+$")
# Generic registry notifications carry an Image's own token (dockyard.apiserver.registryhooks), not an API token.
IMAGE_NOTIFICATION_PATH = re.compile(r"^/registry/notifications/namespaces/[^/]+/images/[^/]+$")


_WEBHOOK_SECRET = re.compile(r"(/webhooks/)[^/]+")


def redact_path(path: str) -> str:
    """``path`` with a build webhook's secret replaced: ``.../webhooks/<redacted>/generic``.

    Every path that is logged or put into a message goes through this: the
    secret in a webhook URL is the webhook's only credential (OpenShift's URL
    shape ``.../buildconfigs/NAME/webhooks/SECRET/TYPE``).
    """
    if "/webhooks/" not in path:  # nearly every path: no regex
        return path
    return _WEBHOOK_SECRET.sub(r"\1<redacted>", path)


IDENTITIES = ("admin", "node", "view")
"""The identities ``dockyard up`` makes a token and a kubeconfig for."""


def load_tokens(path: str | Path) -> dict[str, str]:
    """Bearer tokens by identity (``admin``, ``node``, ``view``) from a JSON file, made on first use.

    The file is ``{"admin": TOKEN, "node": TOKEN, "view": TOKEN}``, mode 0600;
    missing identities are added.
    """
    path = Path(path)
    tokens: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if all(tokens.get(i) for i in IDENTITIES):
        return tokens
    for ident in IDENTITIES:
        tokens.setdefault(ident, secrets.token_urlsafe(32))
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh)
    os.replace(tmp, path)
    return tokens


def users_by_token(tokens: Mapping[str, str], *, node_name: str) -> dict[str, str]:
    """Token -> user name: ``admin``, ``view`` and ``system:node:<node_name>`` (see :mod:`.authz`)."""
    names = {"admin": "admin", "view": "view", "node": f"system:node:{node_name}"}
    return {token: names[ident] for ident, token in tokens.items() if ident in names}


def user_for(tokens: Mapping[str, str], authorization: str | None) -> str | None:
    """The user name for an ``Authorization`` header value, or ``None``.

    Compares tokens in constant time.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    token = token.strip()
    user = None
    for known, name in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            user = name
    return user


class BearerAuth:
    """ASGI middleware: 401 for requests without a known bearer token.

    Sets ``scope["state"]["user"]`` to the authenticated user name. ``public(method, path)`` names further
    open requests (the dashboard's page shells and static files, which carry no data).
    """

    def __init__(
        self, app: ASGIApp, *, tokens: Mapping[str, str], public: Callable[[str, str], bool] | None = None
    ) -> None:
        self.app = app
        self.tokens = dict(tokens)
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path.rstrip("/") in OPEN_PATHS
            or (scope.get("method") == "POST" and (WEBHOOK_PATH.match(path) or IMAGE_NOTIFICATION_PATH.match(path)))
            or (self.public is not None and self.public(scope.get("method", ""), path))
        ):
            await self.app(scope, receive, send)
            return
        header = None
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                header = value.decode("latin-1")
                break
        user = user_for(self.tokens, header)
        if user is None:
            response = wire.status_response(errors.Unauthorized("Unauthorized"))
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)
