"""``krally plugin list`` and ``krally plugin show NAME``, driven through ``krally.cli.main``."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from krally.cli import main, output
from krally.task import plugin
from krally.task.hook import Hook
from krally.task.sla import SLA

# A third party's plugins: a documented hook, a trigger and a hook sharing one name (ambiguous),
# and a hook without a docstring (it must not borrow its base's).
THIRD_PARTY = '''
from krally.task import hook, trigger


@hook.configure(name="cli_plugins_test_marker")
class Marker(hook.Hook):
    """Write a marker line.

    The second paragraph, shown only by `show`.
    """

    CONFIG_SCHEMA = {"type": "string", "description": "the marker file"}

    def run(self):
        self.set_status("success")


@hook.configure(name="cli_plugins_test_twin")
class TwinHook(hook.Hook):
    """The hook twin."""


@trigger.configure(name="cli_plugins_test_twin")
class TwinTrigger(trigger.Trigger):
    """The trigger twin."""

    def get_listening_event(self):
        return "iteration"

    def on_event(self, event_type, value=None):
        return False


@hook.configure(name="cli_plugins_test_undocumented")
class Undocumented(hook.Hook):
    pass
'''


class CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time: the stream capsys captures."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture(autouse=True)
def stderr_captured(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI's error stream is bound at import, before capsys replaces sys.stderr.
    monkeypatch.setattr(output, "err", CurrentStderr())


@pytest.fixture
def third_party(tmp_path: Path) -> Iterator[Path]:
    """A plugin folder; the registry is restored afterwards, so other tests never see it."""
    plugin.load_builtin_plugins()
    saved = {kind: dict(plugins) for kind, plugins in plugin._REGISTRY.items()}
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "cli_plugins_third_party.py").write_text(THIRD_PARTY)
    yield folder
    plugin._REGISTRY.clear()
    plugin._REGISTRY.update(saved)
    sys.modules.pop("cli_plugins_third_party", None)
    if str(folder) in sys.path:
        sys.path.remove(str(folder))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["plugin", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "list", "--json", *argv)
    assert code == 0, err
    entries: list[dict[str, Any]] = json.loads(out)
    return entries


def table_rows(out: str) -> dict[str, list[str]]:
    """The table's rows by plugin name: [name, kind, platform, module, description]."""
    rows = [line.strip("|").split("|") for line in out.splitlines() if line.startswith("|")]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows[1:]}


def test_list_has_every_builtin_kind_and_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    rows = table_rows(out)
    expected = {
        "Dummy.dummy": "scenario",
        "HttpRequests.check_request": "scenario",
        "constant": "runner",
        "rps": "runner",
        "dummy_context": "context",
        "sys_call": "hook",
        "kube.pod_kill": "hook",
        "kube.node_drain": "hook",
        "event": "trigger",
        "periodic": "trigger",
        "failure_rate": "sla",
        "disruption_impact": "sla",
    }
    for name, kind in expected.items():
        assert rows[name][1] == kind, name
    assert {row[1] for row in rows.values()} >= set(plugin.plugin_bases())
    assert rows["kube.pod_kill"][3] == "krally.plugins.kube.pod_kill"
    assert rows["failure_rate"][4].startswith("Failure rate (percent) between")
    # A first line that stops mid-sentence is completed from its paragraph, then shortened.
    assert rows["HttpRequests.check_request"][4].endswith("...")


def test_kind_filter_by_kind_plural_or_base_class(capsys: pytest.CaptureFixture[str]) -> None:
    hooks = listed(capsys, "--kind", "hook")
    assert {e["kind"] for e in hooks} == {"hook"}
    assert {"sys_call", "kube.pod_kill", "kube.scale"} <= {e["name"] for e in hooks}
    runners = listed(capsys, "--kind", "ScenarioRunner")
    assert {e["name"] for e in runners} >= {"constant", "constant_for_duration", "rps", "serial"}
    assert {e["kind"] for e in runners} == {"runner"}
    assert listed(capsys, "--kind", "slas") == listed(capsys, "--kind", "sla")
    code, out, _ = run(capsys, "list", "--kind", "hook", "--name", "POD")
    assert code == 0
    assert sorted(table_rows(out)) == ["kube.pod_kill"]


def test_unknown_kind_is_refused_naming_the_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "list", "--kind", "probe")
    assert code == 2 and out == ""
    assert "--kind 'probe'" in err and "hook, runner, scenario, sla, trigger" in err


def test_list_json_is_complete(capsys: pytest.CaptureFixture[str]) -> None:
    entries = {e["name"]: e for e in listed(capsys)}
    pod_kill = entries["kube.pod_kill"]
    assert pod_kill["base"] == "Hook" and pod_kill["source"] == "built-in"
    assert pod_kill["platform"] == "default"
    assert pod_kill["config_schema"] == Hook.get("kube.pod_kill").CONFIG_SCHEMA
    assert entries["constant"]["base"] == "ScenarioRunner"
    # A scenario without a CONFIG_SCHEMA of its own: its run() arguments instead.
    http = entries["HttpRequests.check_request"]
    assert http["config_schema"] is None
    assert http["arguments"] == "url, method, status_code, **kwargs"


def test_show_prints_docstring_kind_module_and_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "failure_rate")
    assert code == 0
    schema = json.dumps(SLA.get("failure_rate").CONFIG_SCHEMA, indent=2)
    assert textwrap.indent(schema, "    ") in out
    assert "NAME\n    failure_rate\n" in out
    assert "KIND\n    sla (plugin base krally.task.sla.SLA)\n" in out
    assert "MODULE\n    krally.plugins.sla.failure_rate (built-in)\n" in out
    code, out, _ = run(capsys, "show", "HttpRequests.check_request")
    assert "    has ``status_code``.\n" in out  # the whole docstring
    assert "url, method, status_code, **kwargs" in out


def test_show_json_and_case_insensitive_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "dummy.DUMMY", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["name"] == "Dummy.dummy" and shown["kind"] == "scenario"
    assert shown["config_schema"]["properties"]["sleep"]["type"] == "number"
    assert shown["docstring"].startswith("Do nothing but sleep")


def test_unknown_name_exits_2_with_closest_matches(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "show", "pod_kil")
    assert code == 2 and out == ""
    assert err.strip() == "error: no plugin 'pod_kil'; did you mean kube.pod_kill?"
    code, _, err = run(capsys, "show", "failure_rat", "--kind", "sla")
    assert code == 2 and "no sla plugin 'failure_rat'; did you mean failure_rate?" in err
    code, _, err = run(capsys, "show", "zzzzzzzz")
    assert code == 2 and "`krally plugin list` lists them" in err
    code, _, err = run(capsys, "show", "event", "--kind", "hook")
    assert code == 2 and "no hook plugin 'event'; it is a trigger plugin" in err


def test_plugin_path_plugins_are_listed_and_shown(
    capsys: pytest.CaptureFixture[str], third_party: Path
) -> None:
    code, out, _ = run(capsys, "list", "--plugin-path", str(third_party), "--kind", "hook")
    rows = table_rows(out)
    assert rows["cli_plugins_test_marker"][1:4] == ["hook", "default", "cli_plugins_third_party"]
    assert rows["cli_plugins_test_marker"][4] == "Write a marker line."
    assert rows["cli_plugins_test_undocumented"][4] == ""  # never the base class's docstring
    assert "kube.pod_kill" in rows  # the built-in ones stay
    entries = {e["name"]: e for e in listed(capsys, "--plugin-path", str(third_party))}
    file = third_party / "cli_plugins_third_party.py"
    assert entries["cli_plugins_test_marker"]["source"] == f"plugin path {file}"
    code, out, _ = run(capsys, "show", "cli_plugins_test_marker", "--plugin-path", str(third_party))
    assert code == 0 and "The second paragraph, shown only by `show`." in out
    assert '"description": "the marker file"' in out


def test_plugin_path_from_the_environment(
    capsys: pytest.CaptureFixture[str], third_party: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRALLY_PLUGIN_PATH", str(third_party))
    assert "cli_plugins_test_marker" in {e["name"] for e in listed(capsys, "--kind", "hook")}


def test_ambiguous_name_asks_for_kind(
    capsys: pytest.CaptureFixture[str], third_party: Path
) -> None:
    code, out, err = run(capsys, "show", "cli_plugins_test_twin", "--plugin-path", str(third_party))
    assert code == 2 and out == ""
    assert "'cli_plugins_test_twin' names 2 plugins: hook cli_plugins_test_twin" in err
    assert "trigger cli_plugins_test_twin" in err and "add --kind hook|trigger" in err
    code, out, _ = run(capsys, "show", "cli_plugins_test_twin", "--kind", "trigger")
    assert code == 0 and "The trigger twin." in out


def test_show_config_prints_a_kube_hooks_rbac_rules(capsys: pytest.CaptureFixture[str]) -> None:
    config = '{"selector": "app=web", "wait_ready": true}'
    code, out, _ = run(capsys, "show", "kube.pod_kill", "--config", config, "-n", "shop", "--json")
    assert code == 0
    rules = {(r["apiGroups"][0], r["resources"][0]): r for r in json.loads(out)["rbac"]}
    assert rules["", "pods"] == {
        "namespace": "shop",
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["delete", "list"],  # the two rules on pods, merged
    }
    assert rules["apps", "deployments"]["verbs"] == ["get"]
    code, out, _ = run(capsys, "show", "kube.node_drain", "--config", "node: n1")
    assert "| (cluster) |" in out and "pods/eviction" in out
    code, out, _ = run(capsys, "show", "kube.scale")
    assert "RBAC\n    depends on the config" in out


def test_show_config_refuses_a_bad_config_naming_the_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys, "show", "kube.pod_kill", "--config", '{"selector": "a", "count": 0}'
    )
    assert code == 2 and out == ""
    assert "error: --config: count: hook 'kube.pod_kill'" in err
    code, _, err = run(capsys, "show", "failure_rate", "--config", "{max: [")
    assert code == 2 and "--config: not JSON or YAML" in err
    code, _, err = run(capsys, "show", "HttpRequests.check_request", "--config", "{}")
    assert code == 2 and "has no CONFIG_SCHEMA" in err


def test_entry_point_plugins_name_their_entry_point(
    capsys: pytest.CaptureFixture[str], third_party: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The module as an installed distribution's entry point would have imported it.
    sys.path.insert(0, str(third_party))
    importlib.import_module("cli_plugins_third_party")
    entry = importlib.metadata.EntryPoint(
        name="acme", value="cli_plugins_third_party", group=plugin.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: [entry] if group == plugin.ENTRY_POINT_GROUP else [],
    )
    entries = {e["name"]: e for e in listed(capsys, "--kind", "hook")}
    assert entries["cli_plugins_test_marker"]["source"] == "entry point acme"
    assert entries["sys_call"]["source"] == "built-in"


def test_a_missing_plugin_path_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "list", "--plugin-path", str(tmp_path / "nowhere"))
    assert code == 2 and out == ""
    assert f"--plugin-path {tmp_path / 'nowhere'}: no such file or directory" in err
