"""Fixtures of the integration tests (the real control plane, no operator unless started)."""

from __future__ import annotations

from typing import Any

import pytest

from krally.api import crd


@pytest.fixture(scope="module")
def crd_installed(cluster: Any) -> None:
    """The generated CRD, applied server-side and Established."""
    cluster.apply_crd(crd.render_yaml(), crd.NAME)
