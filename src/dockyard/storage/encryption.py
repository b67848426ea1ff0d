"""Encryption at rest for stored objects, with Kubernetes ``EncryptionConfiguration`` semantics.

The configuration file is the one kube-apiserver reads with
``--encryption-provider-config`` ("Encrypting Confidential Data at Rest"),
``apiserver.config.k8s.io/v1`` ``EncryptionConfiguration``::

    {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
     "resources": [{"resources": ["secrets"],
                    "providers": [{"aesgcm": {"keys": [{"name": "key1", "secret": "<base64 of 32 bytes>"}]}},
                                  {"identity": {}}]}]}

As in Kubernetes, the first provider of a resource encrypts every write; all
providers are tried on read, so a plaintext value written before encryption
was configured (``identity``) is still read, and a value under an older key
of the list is still decrypted. ``dockyard up`` makes this file on first
start under ``DATA_DIR/pki/encryption-config.json`` (mode 0600), as k3s's
``--secrets-encryption`` does, with one new AES-256 key.

Stored form (kube-apiserver's ``aesgcm`` transformer): the bytes
``k8s:enc:aesgcm:v1:<key name>:`` + 12-byte random nonce + AES-GCM ciphertext
and tag, with the object's storage location (``resource/namespace/name``) as
additional authenticated data, so a value cannot be moved to another
object's row. Random nonces bound one key to about 2**32 writes (NIST SP
800-38D section 8.3); rotate the key (put a new one first in ``keys``) long
before that. Only ``aesgcm`` and ``identity`` providers are understood; any
other provider is refused at load with :class:`ConfigError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = b"k8s:enc:aesgcm:v1:"
NONCE_BYTES = 12
KEY_BYTES = (16, 24, 32)
"""AES key sizes kube-apiserver accepts for ``aesgcm`` (bytes)."""
DEFAULT_RESOURCES = ("secrets",)


class ConfigError(ValueError):
    """The encryption configuration cannot be used (the message names the field)."""


class DecryptError(ValueError):
    """A stored value cannot be decrypted with any configured key (wrong key, or tampered)."""


@dataclass(frozen=True)
class _Providers:
    keys: tuple[tuple[str, AESGCM], ...]  # encrypting key first
    identity: bool  # plaintext is readable
    identity_first: bool  # write plaintext


class Transformer:
    """Encrypts and decrypts stored values of the configured resources.

    Args:
        providers: qualified resource (``secrets``, ``builds.dockyard.dev``)
            -> its providers in order.
    """

    def __init__(self, providers: Mapping[str, _Providers]) -> None:
        self._providers = dict(providers)

    @property
    def resources(self) -> frozenset[str]:
        """The qualified resources whose values are encrypted on write."""
        return frozenset(r for r, p in self._providers.items() if not p.identity_first)

    def encrypts(self, resource: str) -> bool:
        """True if values of ``resource`` are written encrypted."""
        return resource in self.resources

    def seal(self, resource: str, location: str, plaintext: str) -> str | bytes:
        """The value to store for ``plaintext`` (a JSON text) of ``resource`` at ``location``.

        Returns the plaintext itself for resources that are not encrypted.
        """
        providers = self._providers.get(resource)
        if providers is None or providers.identity_first:
            return plaintext
        name, aead = providers.keys[0]
        nonce = os.urandom(NONCE_BYTES)
        return PREFIX + name.encode() + b":" + nonce + aead.encrypt(nonce, plaintext.encode(), location.encode())

    def open(self, resource: str, location: str, stored: str | bytes) -> str | bytes:
        """The JSON text of a stored value (inverse of :meth:`seal`).

        Raises:
            DecryptError: the value is encrypted under no configured key, fails
                authentication, or is plaintext where ``identity`` is not allowed.
        """
        if isinstance(stored, str) or not stored.startswith(PREFIX):
            providers = self._providers.get(resource)
            if providers is not None and not providers.identity:
                raise DecryptError(f"{resource} {location}: stored unencrypted and no identity provider is configured")
            return stored
        name, sep, rest = stored[len(PREFIX) :].partition(b":")
        providers = self._providers.get(resource)
        keys = dict(providers.keys) if providers else {}
        aead = keys.get(name.decode(errors="replace"))
        if not sep or aead is None or len(rest) <= NONCE_BYTES:
            raise DecryptError(f"{resource} {location}: no configured key named {name[:64]!r}")
        try:
            return aead.decrypt(rest[:NONCE_BYTES], rest[NONCE_BYTES:], location.encode())
        except InvalidTag:
            raise DecryptError(f"{resource} {location}: authentication failed (wrong key or tampered value)") from None


IDENTITY = Transformer({})
"""Stores everything as plaintext (no configuration)."""


def _config_error(path: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}")


def parse(doc: Any) -> Transformer:
    """A :class:`Transformer` from a decoded ``EncryptionConfiguration``.

    Raises:
        ConfigError: wrong kind, an unknown provider, a bad key (field path in the message).
    """
    if not isinstance(doc, dict) or doc.get("kind") != "EncryptionConfiguration":
        raise ConfigError("kind: must be EncryptionConfiguration")
    if doc.get("apiVersion") not in ("apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1beta1"):
        raise ConfigError("apiVersion: must be apiserver.config.k8s.io/v1")
    found: dict[str, _Providers] = {}
    for i, entry in enumerate(doc.get("resources") or []):
        where = f"resources[{i}]"
        if not isinstance(entry, dict):
            raise _config_error(where, "must be an object")
        keys: list[tuple[str, AESGCM]] = []
        identity = identity_first = False
        for j, provider in enumerate(entry.get("providers") or []):
            pwhere = f"{where}.providers[{j}]"
            if not isinstance(provider, dict) or len(provider) != 1:
                raise _config_error(pwhere, "must name exactly one provider")
            ((kind, body),) = provider.items()
            if kind == "identity":
                identity = True
                identity_first = identity_first or j == 0
            elif kind == "aesgcm":
                for k, key in enumerate((body or {}).get("keys") or []):
                    kwhere = f"{pwhere}.aesgcm.keys[{k}]"
                    try:
                        raw = base64.b64decode(str(key.get("secret", "")), validate=True)
                    except (binascii.Error, AttributeError):
                        raise _config_error(kwhere, "secret: must be base64") from None
                    if len(raw) not in KEY_BYTES or not key.get("name"):
                        raise _config_error(kwhere, "needs a name and a 16, 24 or 32 byte secret")
                    keys.append((str(key["name"]), AESGCM(raw)))
            else:
                raise _config_error(pwhere, f"provider {kind!r} is not supported (aesgcm, identity)")
        if not keys and not identity:
            raise _config_error(f"{where}.providers", "at least one provider is required")
        for resource in entry.get("resources") or []:
            found[_qualified(str(resource))] = _Providers(tuple(keys), identity, identity_first)
    return Transformer(found)


def _qualified(resource: str) -> str:
    """``secrets`` and ``secrets.`` are the core group's; ``builds.dockyard.dev`` stays as it is."""
    return resource.rstrip(".")


def new_config(resources: Iterable[str] = DEFAULT_RESOURCES) -> dict[str, Any]:
    """An ``EncryptionConfiguration`` with one new random AES-256 key, then ``identity`` (old plaintext)."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": list(resources),
                "providers": [{"aesgcm": {"keys": [{"name": "key1", "secret": key}]}}, {"identity": {}}],
            }
        ],
    }


def ensure(path: str | Path) -> Transformer:
    """Load the configuration at ``path``, making it (mode 0600, parent 0700) with a new key if missing.

    Raises:
        ConfigError: the file exists but is not a usable configuration.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(new_config(), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return load(path)


def load(path: str | Path) -> Transformer:
    """Load an ``EncryptionConfiguration`` (JSON or YAML) from ``path``.

    Raises:
        ConfigError: unreadable or not a usable configuration.
    """
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError:
        import yaml  # the file may be YAML, as kube-apiserver's usually is

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not JSON or YAML: {err}") from None
    try:
        return parse(doc)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
