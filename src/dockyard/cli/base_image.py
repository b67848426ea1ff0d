"""``dockyard base-image busybox --to REF``: make a base image without pulling anything.

Nothing can be pulled on dockyard's hosts, so base images are made locally:
``FROM scratch`` + the host's static busybox (Debian ``busybox-static``) +
``busybox --install -s /bin`` for the applet symlinks (sh, httpd, wget, …).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from dockyard.agent.engine import connect, images
from dockyard.agent.engine.errors import EngineError
from dockyard.registry import client as registry_client

__all__ = ["BUSYBOX", "SUPPORTED", "build_base_image"]

BUSYBOX = Path("/bin/busybox")
SUPPORTED = ("busybox",)

BUSYBOX_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["sh"]
"""


def _ignore(_line: str) -> None:
    pass


def build_base_image(
    engine: connect.Engine,
    *,
    name: str = "busybox",
    to: str,
    on_log: Callable[[str], None] = _ignore,
    busybox: Path = BUSYBOX,
    auth: tuple[str, str] | None = None,
) -> str:
    """Build the ``busybox`` base image, tag it ``to``, push it, return its registry digest.

    Args:
        engine: connected engine.
        name: base image kind; only ``"busybox"``.
        to: target reference, e.g. ``127.0.0.1:5000/base/busybox:1.35``.
        on_log: called with build and push output lines.
        busybox: the static busybox binary to copy in.
        auth: ``(username, password)`` for the target registry, if it needs one.

    Returns:
        The manifest digest the registry reports for ``to`` (``sha256:…``).

    Raises:
        EngineError: unsupported ``name``, busybox missing or not static-looking,
            or the build/push failed (``BuildFailed``/``PushFailed``).
        RegistryError: the registry cannot be asked for the digest.
    """
    if name not in SUPPORTED:
        raise EngineError(f"unsupported base image {name!r}: only {', '.join(SUPPORTED)} is supported")
    if not busybox.is_file():
        raise EngineError(f"{busybox} not found: install the busybox-static package (apt-get install busybox-static)")
    binary = busybox.read_bytes()
    if _has_elf_interpreter(binary):
        raise EngineError(f"{busybox} is dynamically linked: install busybox-static, not busybox")

    context = images.tar_files(
        {"Dockerfile": BUSYBOX_DOCKERFILE, "busybox": binary},
        modes={"busybox": 0o755},
    )
    images.build(engine.client, context=context, tag=to, on_log=on_log)
    push_auth = {"username": auth[0], "password": auth[1]} if auth else None
    images.push(engine.client, to, auth=push_auth, on_log=on_log)
    return registry_client.manifest_digest(to, auth=auth)


def _has_elf_interpreter(binary: bytes) -> bool:
    """True if a 64-bit little-endian ELF has a PT_INTERP header (dynamically linked)."""
    if binary[:4] != b"\x7fELF" or binary[4] != 2 or binary[5] != 1:
        return False
    phoff = struct.unpack_from("<Q", binary, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", binary, 0x36)
    for i in range(phnum):
        (p_type,) = struct.unpack_from("<I", binary, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return True
    return False
