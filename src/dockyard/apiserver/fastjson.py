"""JSON encoding and decoding with orjson, falling back to the standard library where orjson refuses.

orjson (https://github.com/ijl/orjson) writes the same compact UTF-8 JSON as
``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)`` for every value the API
stores, several times faster; it refuses integers beyond 64 bits (which JSON allows and
Kubernetes' JSON decoding keeps as numbers), so those documents go through :mod:`json`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON of ``obj`` (dicts with string keys, lists, strings, numbers, booleans, None)."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a non-string key
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON that this server wrote (stored objects); integers beyond 64 bits stay exact.

    orjson reads such integers as floats, so a document with a run of 19 or more digits anywhere
    (rare: a quick scan in C) is parsed by :mod:`json` instead.

    Raises:
        ValueError: not JSON.
    """
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGITS.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


_LONG_DIGITS = re.compile(rb"\d{19}")
