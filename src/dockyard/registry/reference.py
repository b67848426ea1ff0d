"""Image references for the registry client: :mod:`dockyard.api.reference` (the one parser), raising the
registry's error type (:class:`dockyard.registry.errors.InvalidReference`, a ``RegistryError``) so callers
that handle registry failures also handle a bad reference.
"""

from __future__ import annotations

from dockyard.api import reference as _reference
from dockyard.api.reference import (
    DEFAULT_REGISTRY,
    DEFAULT_TAG,
    LEGACY_DEFAULT_REGISTRY,
    Reference,
    split_tag,
)
from dockyard.registry.errors import InvalidReference

__all__ = ["DEFAULT_REGISTRY", "DEFAULT_TAG", "LEGACY_DEFAULT_REGISTRY", "Reference", "parse", "split_tag"]


def parse(ref: str) -> Reference:
    """:func:`dockyard.api.reference.parse`.

    Raises:
        InvalidReference: the text does not follow the grammar (the message says which part is wrong).
    """
    try:
        return _reference.parse(ref)
    except _reference.InvalidReference as e:
        raise InvalidReference(str(e)) from e
