"""Kubernetes name formats, one home for each: DNS-1123 labels and subdomains, IANA service (port) names. No I/O.

Source: ``k8s.io/apimachinery/pkg/util/validation`` (``validation.go``): ``IsDNS1123Label``,
``IsDNS1123Subdomain`` and ``IsValidPortName``, whose messages :func:`port_name_errors` keeps word for word.
"""

from __future__ import annotations

import re

DNS1123_LABEL_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
"""A lower-case RFC 1123 label, unanchored (for composing larger patterns)."""
DNS1123_LABEL = re.compile(rf"^{DNS1123_LABEL_FMT}$")
"""A whole RFC 1123 label (``my-name``); its length (at most :data:`DNS1123_LABEL_MAX`) is checked apart."""
DNS1123_LABEL_MAX = 63
"""Characters in a DNS-1123 label at most."""
DNS1123_SUBDOMAIN_FMT = rf"{DNS1123_LABEL_FMT}(\.{DNS1123_LABEL_FMT})*"
"""A lower-case RFC 1123 subdomain, unanchored."""
DNS1123_SUBDOMAIN = re.compile(rf"^{DNS1123_SUBDOMAIN_FMT}$")
"""A whole RFC 1123 subdomain (``example.com``); its length (at most :data:`DNS1123_SUBDOMAIN_MAX`) apart."""
DNS1123_SUBDOMAIN_MAX = 253
"""Characters in a DNS-1123 subdomain at most."""
PORT_NAME_MAX = 15
"""Characters in an IANA service name (a port's ``name``) at most (RFC 6335 section 5.1)."""

_PORT_NAME_CHARSET = re.compile(r"^[-a-z0-9]+$")
_LETTER = re.compile(r"[a-z]")


def port_name_errors(value: str) -> list[str]:
    """Why ``value`` is not an IANA_SVC_NAME (RFC 6335 section 5.1: a container port's ``name``, a Service's
    ``targetPort`` or a probe's ``port`` given by name), in ``IsValidPortName``'s words; empty if it is one."""
    errs = []
    if len(value) > PORT_NAME_MAX:
        errs.append(f"must be no more than {PORT_NAME_MAX} characters")
    if not _PORT_NAME_CHARSET.match(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _LETTER.search(value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens (-)")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen (-)")
    return errs
