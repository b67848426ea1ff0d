"""Bytes on the wire: bounded request bodies, JSON decoding, JSON and Status responses.

Error bodies are ``v1 Status`` objects (Kubernetes API conventions, "Response
Status Kind"); every response is ``application/json`` unless it is a log.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api import errors, models
from dockyard.apiserver import fastjson, objects

MAX_BODY = 3 * 1024 * 1024
"""Largest accepted request body in bytes: 3 MiB, the apiserver's ``MaxRequestBodyBytes``.
Larger bodies get 413 ``RequestEntityTooLarge`` before they are parsed. (Binary build
contexts, ``instantiatebinary``, have their own limit.)"""

MAX_LOG_CHUNK = 4 * 1024 * 1024
"""Largest accepted log chunk in bytes."""

REQUEST_TIMEOUT = 60.0
"""Seconds any request but a watch or a followed log may take (the apiserver's
``--request-timeout``, 1 minute); a ``timeout`` query parameter (``30s``, as
kubectl's ``--request-timeout`` sends it) can only shorten it. Past it the
client gets 504 ``Timeout``."""


def _too_large(limit: int) -> errors.RequestEntityTooLarge:
    return errors.RequestEntityTooLarge(f"the request body is larger than the limit of {limit} bytes")


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, at most ``limit`` bytes.

    Raises:
        errors.RequestEntityTooLarge: 413 when ``Content-Length`` or the
            streamed body exceeds ``limit``.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError as e:
            raise errors.BadRequest("invalid Content-Length") from e
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(body: bytes) -> Any:
    """Decode a JSON request body.

    Raises:
        errors.BadRequest: empty, not UTF-8, not JSON (``NaN`` and ``Infinity``
            are not), or nested deeper than ``objects.MAX_DEPTH`` (400).
    """
    if body.startswith(b"k8s\x00"):
        raise errors.UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: application/json"
        )
    if not body.strip():
        raise errors.BadRequest("the request body is empty")
    try:
        doc = json.loads(body, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise errors.BadRequest(f"the request body is not valid JSON: {e}") from None
    if objects.too_deep(doc):
        raise errors.BadRequest(f"the request body is nested deeper than {objects.MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(body):
        doc = _replace_lone_surrogates(doc)
    return doc


_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


def _fix(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _replace_lone_surrogates(doc: Any) -> Any:
    """Lone UTF-16 surrogates (``"\\ud800"``) become U+FFFD, as Go's JSON decoder makes them."""
    if isinstance(doc, str):
        return _fix(doc)
    if isinstance(doc, list):
        return [_replace_lone_surrogates(v) for v in doc]
    if isinstance(doc, dict):
        return {_fix(k): _replace_lone_surrogates(v) for k, v in doc.items()}
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (orjson: :mod:`dockyard.apiserver.fastjson`)."""
    return fastjson.dumps(obj)


def json_response(obj: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (``Content-Type: application/json``)."""
    return Response(dumps(obj), status_code=status_code, media_type="application/json", headers=headers)


def request_user(request: Request) -> str:
    """The user :class:`dockyard.apiserver.auth.BearerAuth` authenticated (``system:anonymous`` if none)."""
    return str(request.scope.get("state", {}).get("user") or "system:anonymous")


def status_response(err: errors.StatusError) -> Response:
    """The ``Status`` response for an error (its ``code`` is the HTTP status; 429 carries ``Retry-After``)."""
    retry_after = getattr(err, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return json_response(err.to_status(), err.code, headers=headers)


def success_status(details: dict[str, Any] | None = None, code: int = 200) -> dict[str, Any]:
    """A ``Status`` with ``status: Success``."""
    status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}
    if details:
        status["details"] = details
    return status


def request_timeout(request: Request) -> float:
    """The time bound of one request: :data:`REQUEST_TIMEOUT`, or less if ``?timeout=`` asks.

    A malformed ``timeout`` is ignored (the bound stays), never an error.
    """
    raw = request.query_params.get("timeout")
    if raw:
        try:
            return max(0.001, min(REQUEST_TIMEOUT, models.parse_duration(raw)))
        except ValueError:
            pass
    return REQUEST_TIMEOUT


def timed_out() -> errors.Timeout:
    """504 in the apiserver's words."""
    return errors.Timeout("Timeout: request did not complete within requested timeout - context deadline exceeded")


def query_bool(request: Request, name: str) -> bool:
    """A boolean query parameter: ``true``/``1`` (case-insensitive) are true."""
    return request.query_params.get(name, "").lower() in ("true", "1")


def query_int(request: Request, name: str, default: int | None = None) -> int | None:
    """An integer query parameter.

    Raises:
        errors.BadRequest: present but not an integer.
    """
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.BadRequest(f"invalid value for {name}: {raw!r} is not an integer") from None
