"""Fixtures for end-to-end tests: a running `dockyard up` with the busybox base image in its registry."""

from __future__ import annotations

import pytest
from harness import demo_module


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running `dockyard up` (Podman engine) with ``REGISTRY/dockyard/busybox:latest`` pushed."""
    d = demo_module().Demo(tmp_path_factory.mktemp("cluster"), engine="podman")
    try:
        d.start()
        d.base_image()
        yield d
    finally:
        d.cleanup()
