"""Unit tests see dockyard's kinds served, as every API server does by default (from their CRDs)."""

from __future__ import annotations

import pytest

from dockyard.apiserver import crds, customresources


@pytest.fixture(autouse=True, scope="session")
def dockyard_kinds_served() -> None:
    customresources.serve_definitions(crds.all_crds())
