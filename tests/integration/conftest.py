"""Fixtures of the integration tests (the real control plane, no operator unless started)."""

from __future__ import annotations

from typing import Any

import pytest

from krally.api import crd


@pytest.fixture(scope="module")
def crd_installed(cluster: Any) -> None:
    """The generated CRD, applied server-side and Established."""
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=crd.render_yaml()
    )
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd.NAME}", "--timeout=60s")
