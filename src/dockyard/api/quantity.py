"""Kubernetes resource quantities (``100m``, ``0.5``, ``128Mi``, ``1G``), as
``k8s.io/apimachinery/pkg/api/resource`` ``ParseQuantity`` reads them.

Pure: no I/O. Used by the API server's checks of ``resources`` and by the node agent's engine options.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = ["parse_quantity"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse a Kubernetes resource quantity into an exact :class:`~decimal.Decimal`.

    Accepts the forms of ``resource.ParseQuantity``: a decimal number with an
    optional binary suffix (``Ki`` .. ``Ei``), decimal suffix (``n u m k M G T
    P E``) or exponent (``1e3``). ``int``/``float`` (as YAML gives them) are
    taken as plain numbers.

    Raises:
        ValueError: not a quantity.
    """
    if isinstance(value, bool):
        raise ValueError(f"quantities must be numbers or strings, not {value!r}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"invalid quantity {value!r}")
        return Decimal(str(value))
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"invalid quantity {value!r}")
    try:
        number = Decimal(match["num"])
        if match["exp"]:
            return number * (Decimal(10) ** int(match["exp"][1:]))
    except InvalidOperation as e:  # pragma: no cover - the regex admits only numbers
        raise ValueError(f"invalid quantity {value!r}") from e
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    return number * _DECIMAL[suffix]
