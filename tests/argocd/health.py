"""The Argo CD health check (manifests/argocd/health.lua) run from Python tests with Debian's
Lua 5.4 through tests/argocd/run_health.lua, which gives the script what Argo CD gives it.

``python -m tests.argocd.health --write`` rewrites manifests/argocd/argocd-cm-patch.yaml from
the script (its header comment is kept); the unit test fails when the two differ.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "manifests" / "argocd" / "health.lua"
PATCH = ROOT / "manifests" / "argocd" / "argocd-cm-patch.yaml"
DRIVER = Path(__file__).with_name("run_health.lua")
KEY = "resource.customizations.health.krally.dev_BenchmarkTask"
LUA = "lua5.4"
# What Argo CD accepts from a health script (anything else it turns into Unknown).
STATUSES = frozenset({"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"})


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_lua() -> str:
    """The interpreter with cjson; skipped with the reason when missing, a failure in CI (where
    scripts/install-deps installs both)."""
    lua = shutil.which(LUA)
    problem = "" if lua else f"{LUA} is not installed (Debian package lua5.4)"
    if lua:
        probe = subprocess.run(
            [lua, "-e", 'require("cjson")'], capture_output=True, text=True, timeout=30
        )
        if probe.returncode != 0:
            problem = f"{LUA} has no cjson module (Debian package lua-cjson): {probe.stderr}"
    if problem:
        if _ci():
            pytest.fail(f"{problem}; scripts/install-deps installs it", pytrace=False)
        pytest.skip(f"{problem}; scripts/install-deps installs it (CI=true fails instead)")
    assert lua
    return lua


def run_health(obj: Any, script: Path = SCRIPT) -> dict[str, Any]:
    """``hs`` of the health script for the object ``obj`` (a dict, as `kubectl get -o json`);
    fails the test with Lua's error when the script raises one."""
    proc = subprocess.run(
        [require_lua(), str(DRIVER), str(script)],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, f"the health script failed on {obj!r}:\n{proc.stderr}"
    hs = json.loads(proc.stdout)
    assert isinstance(hs, dict), hs
    assert hs.get("status") in STATUSES, hs
    assert isinstance(hs.get("message"), str), hs
    return hs


def render_patch(script: str | None = None, patch: str | None = None) -> str:
    """argocd-cm-patch.yaml with ``script`` (default: health.lua) as the health key's value;
    everything before that key's line (comments, metadata) is kept as it is."""
    script = SCRIPT.read_text() if script is None else script
    patch = PATCH.read_text() if patch is None else patch
    head, _, _ = patch.partition(f"  {KEY}: |\n")
    body = "".join(
        f"    {line}" if line.strip() else "\n" for line in script.splitlines(keepends=True)
    )
    return f"{head}  {KEY}: |\n{body}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.argocd.health", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"rewrite {PATCH.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    text = render_patch()
    if args.write:
        PATCH.write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
