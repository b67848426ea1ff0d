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
import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dockyard.api import reference


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


def _auths(secret: dict[str, Any]) -> Any:
    """The ``auths`` map of a dockerconfigjson (or legacy ``.dockercfg``, which is the map itself) Secret.

    Raises:
        CredentialError: no ``.dockerconfigjson``/``.dockercfg``, or not JSON (the message names the Secret).
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
    return doc.get("auths", doc) if isinstance(doc, dict) else {}


def registry_auth(secret: dict[str, Any], registry: str) -> tuple[str, str] | None:
    """``(username, password)`` for ``registry`` (``host[:port]``) from a dockerconfigjson Secret, or None.

    Raises:
        CredentialError: the Secret has no parseable ``.dockerconfigjson``.
    """
    auths = _auths(secret)
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


def docker_config_auths(secret: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Every ``auths`` entry of a ``kubernetes.io/dockerconfigjson`` (or legacy ``.dockercfg``) Secret:
    ``{key as written: (username, password)}``; entries without credentials are left out.

    Raises:
        CredentialError: the Secret has no parseable ``.dockerconfigjson`` (the message names the Secret).
    """
    auths = _auths(secret)
    out: dict[str, tuple[str, str]] = {}
    for key, entry in (auths if isinstance(auths, dict) else {}).items():
        if not isinstance(entry, dict):
            continue
        if entry.get("username") is not None:
            out[str(key)] = (str(entry["username"]), str(entry.get("password") or ""))
        elif entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, TypeError) as err:
                raise CredentialError(f"secret {_name(secret)}: auths[{key!r}].auth is not base64") from err
            out[str(key)] = (user, password)
    return out


_DEFAULT_REGISTRY_HOST = "index.docker.io"


def _keyring_key(location: str) -> str:
    """``host[:port][/path]`` of an ``auths`` key, as the kubelet's ``BasicDockerKeyring.Add`` files it: the
    scheme dropped, ``/v1/`` or ``/v2/`` at the start of the path dropped (Docker's ``ResolveAuthConfig``)."""
    rest = location.split("://", 1)[1] if "://" in location else location
    host, _, path = rest.partition("/")
    path = "/" + path if path else ""
    if path.startswith(("/v1/", "/v2/")):
        path = path[3:]
    return host + path if path not in ("", "/") else host


def _split_host(host: str) -> tuple[list[str], str]:
    name, sep, port = host.rpartition(":")
    if not sep or "]" in port:
        return host.split("."), ""
    return name.split("."), port


def _urls_match(glob: str, target: str) -> bool:
    """kubelet ``credentialprovider.URLsMatch``: same port, as many host labels, each label matching as a shell
    glob (``*.example.com``), and the glob's path a prefix of the target's."""
    glob_host, _, glob_path = glob.partition("/")
    target_host, _, target_path = target.partition("/")
    glob_parts, glob_port = _split_host(glob_host)
    target_parts, target_port = _split_host(target_host)
    if glob_port != target_port or len(glob_parts) != len(target_parts):
        return False
    if not ("/" + target_path).startswith("/" + glob_path if glob_path else "/"):
        return False
    return all(fnmatch.fnmatchcase(t, g) for g, t in zip(glob_parts, target_parts, strict=True))


@dataclass(frozen=True)
class DockerKeyring:
    """Registry credentials looked up by image, as the kubelet's ``credentialprovider.BasicDockerKeyring``
    (``pkg/credentialprovider/keyring.go``) looks them up for a pod's ``imagePullSecrets``.

    Attributes:
        entries: ``(key, (username, password))``, keys ``host[:port][/path]`` (see :func:`_keyring_key`),
            most specific first (reverse-sorted, so ``quay.io/team`` is tried before ``quay.io``).
    """

    entries: tuple[tuple[str, tuple[str, str]], ...] = ()

    @classmethod
    def from_secrets(cls, secrets: Iterable[dict[str, Any]]) -> DockerKeyring:
        """The keyring of dockerconfigjson Secrets (in ``imagePullSecrets`` order; equal keys keep every
        credential, to be tried in turn).

        Raises:
            CredentialError: a Secret has no parseable ``.dockerconfigjson``.
        """
        found: dict[str, list[tuple[str, str]]] = {}
        for secret in secrets:
            for location, creds in docker_config_auths(secret).items():
                found.setdefault(_keyring_key(location), []).append(creds)
        return cls(tuple((key, creds) for key in sorted(found, reverse=True) for creds in found[key]))

    def lookup(self, image: str) -> list[tuple[str, str]]:
        """The credentials to try, in order, for ``image`` (``[registry/]repository[:tag][@digest]``, normalized
        as the distribution reference does): every key whose host (glob), port and path prefix match the
        image's ``registry/repository``; failing those, for an image on Docker Hub, the ``index.docker.io``
        entry (keyring ``isDefaultRegistryMatch``). ``[]``: pull anonymously.

        Raises:
            reference.InvalidReference: ``image`` does not parse.
        """
        ref = reference.parse(image)
        target = ref.repository_url
        out = [creds for key, creds in self.entries if _urls_match(key, target)]
        if not out and ref.registry == reference.DEFAULT_REGISTRY:
            out = [creds for key, creds in self.entries if key == _DEFAULT_REGISTRY_HOST]
        return out
