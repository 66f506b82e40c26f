"""The ``rally`` fixture: a throwaway Rally 5.1.1 for the session (see ``rallyenv``)."""

from __future__ import annotations

import pytest
from tests.rally.rallyenv import Rally, start


@pytest.fixture(scope="session")
def rally(tmp_path_factory: pytest.TempPathFactory) -> Rally:
    return start(tmp_path_factory.mktemp("rally"))
