"""Reading credentials out of Secrets (pure; the caller fetched the Secret).

Formats: ``kubernetes.io/dockerconfigjson`` (``data[".dockerconfigjson"]``,
the Docker ``config.json`` ``auths`` map, each entry ``auth`` =
base64("user:password") or ``username``/``password``) and
``kubernetes.io/basic-auth`` (``data.username``, ``data.password``), as in
the Kubernetes "Secret types" documentation. Errors never include secret values.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


class CredentialError(ValueError):
    """The Secret is not of a usable form; the message names the Secret and key, never values."""


def _data(secret: dict[str, Any], key: str) -> str | None:
    raw = (secret.get("data") or {}).get(key)
    if raw is None:
        plain = (secret.get("stringData") or {}).get(key)
        return plain if isinstance(plain, str) else None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, TypeError) as err:
        raise CredentialError(f"secret {_name(secret)}: data.{key} is not valid base64") from err


def _name(secret: dict[str, Any]) -> str:
    return repr((secret.get("metadata") or {}).get("name", "?"))


def basic_auth(secret: dict[str, Any]) -> tuple[str, str]:
    """``(username, password)`` of a ``kubernetes.io/basic-auth`` Secret (username may be empty for tokens).

    Raises:
        CredentialError: no ``password`` key.
    """
    password = _data(secret, "password")
    if password is None:
        raise CredentialError(
            f"secret {_name(secret)} has no data.password (expected a kubernetes.io/basic-auth "
            "secret with username and password)"
        )
    return _data(secret, "username") or "", password


def registry_auth(secret: dict[str, Any], registry: str) -> tuple[str, str] | None:
    """``(username, password)`` for ``registry`` (``host[:port]``) from a dockerconfigjson Secret, or None.

    Raises:
        CredentialError: the Secret has no parseable ``.dockerconfigjson``.
    """
    text = _data(secret, ".dockerconfigjson")
    if text is None:
        text = _data(secret, ".dockercfg")
    if text is None:
        raise CredentialError(
            f"secret {_name(secret)} has no data[.dockerconfigjson] (expected type kubernetes.io/dockerconfigjson)"
        )
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise CredentialError(f"secret {_name(secret)}: .dockerconfigjson is not JSON") from err
    auths = doc.get("auths", doc) if isinstance(doc, dict) else {}
    for key, entry in auths.items():
        host = key.split("://", 1)[-1].split("/", 1)[0]
        if host != registry or not isinstance(entry, dict):
            continue
        if entry.get("username") is not None:
            return str(entry["username"]), str(entry.get("password") or "")
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as err:
                raise CredentialError(f"secret {_name(secret)}: auths[{key!r}].auth is not base64") from err
            return user, password
    return None
