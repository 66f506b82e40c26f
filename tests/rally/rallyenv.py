"""Rally 5.1.1 itself, as the oracle of krally's Rally JSON: ``rally task import`` and reports.

Rally lives in its own virtual environment (``scripts/install-rally.sh``, cached under
``~/.cache/krally/rally-<version>-py<X.Y>-venv``); it is never a krally dependency. Each test
session gets a throwaway Rally: a ``rally.conf`` and a sqlite database in a temporary
directory, ``HOME`` pointed there too (Rally writes nothing that outlives the session), and one
empty environment (spec ``{}``: no platform, so nothing ever tries to reach OpenStack;
``task import`` only needs an environment in READY state to attach the task to).

Without Rally's venv these tests are skipped, except under CI=true (or KRALLY_REQUIRE_RALLY=1),
where they fail: CI installs Rally through ``scripts/install-deps``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RALLY_VERSION = os.environ.get("KRALLY_RALLY_VERSION", "5.1.1")
ENV_NAME = "krally-tests"


def rally_bin() -> Path:
    cache = os.environ.get("KRALLY_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "krally"
    )
    py = "{}.{}".format(*sys.version_info[:2])
    # Keyed on the Python that built it (install-rally.sh uses python3): prefer this one's.
    exact = Path(cache) / f"rally-{RALLY_VERSION}-py{py}-venv" / "bin" / "rally"
    if exact.exists():
        return exact
    found = sorted(Path(cache).glob(f"rally-{RALLY_VERSION}-py*-venv/bin/rally"))
    return found[0] if found else exact


def _required() -> bool:
    flags = (os.environ.get("CI", ""), os.environ.get("KRALLY_REQUIRE_RALLY", ""))
    return any(f.lower() in ("1", "true", "yes") for f in flags)


@dataclass
class Rally:
    """A throwaway Rally installation: its config file, database and one empty environment."""

    binary: Path
    home: Path
    config: Path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RALLY_", "OS_"))}
        env["HOME"] = str(self.home)
        proc = subprocess.run(
            [str(self.binary), "--config-file", str(self.config), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.home,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"rally {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
            )
        return proc

    def import_results(self, path: Path) -> str:
        """``rally task import`` → the new task's uuid (fails the test if Rally refuses it)."""
        proc = self("task", "import", "--file", str(path), "--env", ENV_NAME)
        match = re.search(r"Task UUID: ([0-9a-f-]{36})", proc.stdout)
        assert match, f"no task uuid in rally's output:\n{proc.stdout}\n{proc.stderr}"
        return match.group(1)

    def report_html(self, uuid: str) -> str:
        out = self.home / f"{uuid}.html"
        self("task", "report", uuid, "--html", "--out", str(out))
        return out.read_text(encoding="utf-8")

    def report_json(self, uuid: str) -> dict[str, Any]:
        out = self.home / f"{uuid}.json"
        self("task", "report", uuid, "--json", "--out", str(out))
        return json.loads(out.read_text(encoding="utf-8"))


def start(home: Path) -> Rally:
    """A fresh Rally under ``home``: its config, ``db create``, one empty environment.

    Skips the calling test when Rally's venv is missing, fails it instead under CI=true.
    """
    binary = rally_bin()
    if not binary.exists():
        message = (
            f"Rally {RALLY_VERSION} is not installed ({binary}): bash scripts/install-rally.sh"
        )
        if _required():
            pytest.fail(message)
        pytest.skip(message)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "rally.conf"
    config.write_text(
        "[DEFAULT]\nuse_stderr = true\n"
        f"[database]\nconnection = sqlite:///{home / 'rally.sqlite'}\n",
        encoding="utf-8",
    )
    (home / "empty-env.json").write_text("{}\n", encoding="utf-8")  # no platform at all
    instance = Rally(binary, home, config)
    instance("db", "create")
    instance(
        "env", "create", "--name", ENV_NAME, "--spec", str(home / "empty-env.json"), "--no-use"
    )
    return instance
