"""`krally ...` as a user runs it: a subprocess of this Python, from the repository's root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def krally(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "krally", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
