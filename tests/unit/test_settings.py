"""The operator's settings: read once into one object; every KRALLY_* variable documented."""

from __future__ import annotations

import re
from pathlib import Path

from krally.kube.operator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"KRALLY_[A-Z_]+[A-Z]")
# A variable as code uses one: quoted ("KRALLY_X", environ["KRALLY_X"]) or in shell ($KRALLY_X,
# ${KRALLY_X:-...}); a Python constant that happens to be named KRALLY_... is not one.
USED = re.compile(r"[\"'$]\{?(KRALLY_[A-Z_]*[A-Z])")


def _documented() -> set[str]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Settings") :]
    return {m.group(0) for line in table.splitlines() if line.startswith("| `") for m in
            NAME.finditer(line.split("|")[1])}  # fmt: skip


def test_every_krally_variable_is_in_the_readme_table() -> None:
    used: set[str] = set()
    folders = (
        "operator",
        "tests/cluster",
        "tests/conftest.py",
        "tests/e2e",
        "scripts",
        "manifests",
    )
    for folder in (*folders, "Dockerfile"):
        paths = [ROOT / folder] if (ROOT / folder).is_file() else (ROOT / folder).rglob("*")
        for path in paths:
            if path.is_file() and path.suffix in {".py", ".sh", ".yaml", ""}:
                used |= set(USED.findall(path.read_text(errors="ignore")))
    assert used, "the scan found no KRALLY_ variable at all"
    assert used - _documented() == set()


def test_settings_come_from_the_environment_and_the_flags() -> None:
    assert Settings.from_env({}) == Settings()
    env = {
        "KRALLY_IMAGE": "all:1",
        "KRALLY_HOOK_IMAGE": "hook:2",
        "KRALLY_HOOK_TIMEOUT": "42",
        "KRALLY_COMMAND": "python -m krally",
        "KRALLY_STATUS_WRITE_PERIOD": "0.5",
        "KRALLY_MAX_WORKERS": "3",
        "KRALLY_SCANNING": "1",
        "KRALLY_IMAGE_PULL_POLICY": "Never",
    }
    settings = Settings.from_env(env)
    assert (settings.runner_image, settings.hook_image) == ("all:1", "hook:2")
    assert settings.hook_timeout_seconds == 42
    assert settings.command == ("python", "-m", "krally")
    assert (settings.status_write_period, settings.max_workers) == (0.5, 3)
    assert settings.scanning and settings.image_pull_policy == "Never"
    assert settings.hook_service_accounts is None
    # The flags stand for KRALLY_IMAGE / KRALLY_HOOK_TIMEOUT: a more specific variable still wins.
    flagged = Settings.load(env, image="flag:3", hook_timeout=7)
    assert (flagged.runner_image, flagged.hook_image) == ("flag:3", "hook:2")
    assert flagged.hook_timeout_seconds == 7
    assert env["KRALLY_IMAGE"] == "all:1"  # the caller's mapping is not changed


def test_nothing_reads_the_environment_at_import() -> None:
    runner = sorted(p.name for p in (ROOT / "operator/krally/kube/pods/runner").glob("*.py"))
    modules = ["kube/operator/handlers.py", "kube/operator/controller.py"]
    for module in [*modules, *(f"kube/pods/runner/{name}" for name in runner)]:
        source = (ROOT / "operator/krally" / module).read_text()
        top_level = [line for line in source.splitlines() if line and not line[0].isspace()]
        assert not [line for line in top_level if "environ" in line], module
