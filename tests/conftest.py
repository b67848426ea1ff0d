"""Shared fixtures for tests that need real parts: a registry and a Podman engine.

Session-scoped so the whole run pays the start-up once (registry ~0.1 s,
Podman service ~2 s):

- ``registry_server``: a ``docker-registry`` on ``127.0.0.1:<free port>``
  (:class:`dockyard.registry.server.RegistryServer`, no auth).
- ``podman_engine``: our own ``podman system service`` on a socket in a tmp
  dir (:func:`dockyard.agent.engine.connect.connect`), stopped at the end.
- ``busybox_image``: the busybox base image built and pushed to
  ``registry_server`` → ``(reference, digest)``.

Missing tools make these fixtures fail loudly rather than skip: CI installs
them (scripts/bootstrap.sh).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dockyard.agent.engine import connect
from dockyard.cli import base_image
from dockyard.registry import server


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[server.RegistryServer]:
    root = tmp_path_factory.mktemp("registry")
    with server.RegistryServer(server.free_port(), root / "data") as registry:
        yield registry


@pytest.fixture(scope="session")
def podman_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[connect.Engine]:
    run_dir = tmp_path_factory.mktemp("podman")
    engine = connect.connect("podman", run_dir=run_dir)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="session")
def busybox_image(podman_engine: connect.Engine, registry_server: server.RegistryServer) -> tuple[str, str]:
    """``(reference, digest)`` of the busybox base image in ``registry_server``."""
    ref = f"{registry_server.address}/dockyard-test/busybox:1"
    digest = base_image.build_base_image(podman_engine, to=ref)
    return ref, digest
