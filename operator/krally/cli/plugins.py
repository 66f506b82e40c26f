"""``krally plugin list`` and ``krally plugin show NAME``, as Rally's ``rally plugin list`` and
``rally plugin show``: every registered plugin of every kind (built in, entry points,
``--plugin-path`` and ``$KRALLY_PLUGIN_PATH``)."""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import inspect
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from krally.cli.output import EXIT_INVALID, EXIT_OK, error
from krally.errors import KrallyError
from krally.results.text_table import ascii_table
from krally.task import plugin

# The table's description column is cut here; `show` and --json give it whole.
DESCRIPTION_WIDTH = 80
MAX_SUGGESTIONS = 5


# --- commands ----------------------------------------------------------------------------------


def cmd_plugin_list(args: argparse.Namespace) -> int:
    sources = _load_plugins(args)
    kind = _kind(args.kind)
    infos = [
        _info(cls, sources)
        for cls in plugin.registered_plugins()
        if kind is None or cls.get_kind() == kind
    ]
    if args.name:
        infos = [i for i in infos if args.name.lower() in i["name"].lower()]
    if args.json:
        print(json.dumps(infos, indent=2))
        return EXIT_OK
    if not infos:
        print("no plugin matches")
        return EXIT_OK
    rows = [
        [i["name"], i["kind"], i["platform"], i["module"], _shorten(i["description"])]
        for i in infos
    ]
    sys.stdout.write(ascii_table(["name", "kind", "platform", "module", "description"], rows))
    return EXIT_OK


def cmd_plugin_show(args: argparse.Namespace) -> int:
    sources = _load_plugins(args)
    cls = find_plugin(args.name, _kind(args.kind))
    info = _info(cls, sources)
    info["docstring"] = _docstring(cls)
    if args.config is not None:
        config = _parse_config(args.config)
        problems = _config_problems(cls, config)
        if problems:
            for problem in problems:
                error(f"--config: {problem}")
            return EXIT_INVALID
        rbac_rules = getattr(cls, "rbac_rules", None)  # kube.* hooks declare their rights
        if callable(rbac_rules):
            info["rbac"] = _merged_rules(rbac_rules(config, args.namespace))
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        sys.stdout.write(_show_text(cls, info))
    return EXIT_OK


# --- loading and describing --------------------------------------------------------------------


def _load_plugins(args: argparse.Namespace) -> dict[str, str]:
    """Load every plugin; returns where each third-party module came from (module -> source)."""
    plugin.load_builtin_plugins()
    sources = {
        entry.module: f"entry point {entry.name}"
        for entry in importlib.metadata.entry_points(group=plugin.ENTRY_POINT_GROUP)
    }
    paths = list(args.plugin_path or [])
    # What the operator and its pods load too, so `kubectl exec` into one lists its plugins.
    paths += [p for p in os.environ.get("KRALLY_PLUGIN_PATH", "").split(os.pathsep) if p]
    for path in paths:
        folder = Path(path)
        files = sorted(folder.glob("*.py")) if folder.is_dir() else [folder]
        plugin.load_plugin_path(path)
        sources.update({file.stem: f"plugin path {file}" for file in files})
    return sources


def _source(module: str, sources: dict[str, str]) -> str:
    if module == "krally" or module.startswith("krally."):
        return "built-in"
    for name, source in sources.items():
        if module == name or module.startswith(name + "."):
            return source
    return "imported"


def _info(cls: type[plugin.Plugin], sources: dict[str, str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": cls.get_name(),
        "kind": cls.get_kind(),
        "base": plugin.plugin_bases()[cls.get_kind()].__name__,
        "platform": cls.get_platform(),
        "module": cls.__module__,
        "source": _source(cls.__module__, sources),
        "description": _summary(_docstring(cls)),
        "config_schema": cls.CONFIG_SCHEMA if _has_schema(cls) else None,
    }
    if not _has_schema(cls):
        info["arguments"] = _run_arguments(cls)
    return info


def _docstring(cls: type) -> str:
    # The plugin's own docstring only: an inherited one describes its base, not the plugin.
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _summary(doc: str) -> str:
    """The docstring's first paragraph as one line (a first line may stop mid-sentence)."""
    return " ".join(doc.split("\n\n", 1)[0].split())


def _shorten(text: str) -> str:
    return text if len(text) <= DESCRIPTION_WIDTH else text[: DESCRIPTION_WIDTH - 3] + "..."


def _has_schema(cls: type[plugin.Plugin]) -> bool:
    """False for a scenario without a CONFIG_SCHEMA of its own: its args are checked against
    ``run()``'s signature instead (as Rally does)."""
    if cls.get_kind() != "scenario":
        return True
    return any("CONFIG_SCHEMA" in vars(k) for k in cls.__mro__ if k is not plugin.Plugin)


def _run_arguments(cls: type) -> str:
    """``run()``'s arguments, e.g. ``url, method, status_code, **kwargs``."""
    try:
        params = list(inspect.signature(cls.run).parameters.values())[1:]  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return ""
    shown = []
    for p in params:
        prefix = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else ""
        default = "" if p.default is p.empty else f"={p.default!r}"
        shown.append(f"{prefix}{p.name}{default}")
    return ", ".join(shown)


# --- finding one plugin ------------------------------------------------------------------------


def _kind(text: str | None) -> str | None:
    """A --kind value: a kind (``hook``), its plural, or its base class (``ScenarioRunner``)."""
    if text is None:
        return None
    bases = plugin.plugin_bases()
    wanted = text.strip().lower()
    for kind, base in bases.items():
        if wanted in (kind, kind + "s", base.__name__.lower()):
            return kind
    raise KrallyError(f"--kind {text!r}: no such plugin kind; the kinds: {', '.join(bases)}")


def find_plugin(name: str, kind: str | None = None) -> type[plugin.Plugin]:
    """The plugin called ``name`` (of ``kind``); a KrallyError names the closest matches, or
    the kinds to choose from when the name is in several."""
    everything = plugin.registered_plugins()
    candidates = [c for c in everything if kind is None or c.get_kind() == kind]
    found = [c for c in candidates if c.get_name() == name]
    if not found:  # `dummy.dummy` finds Dummy.dummy, unless that is ambiguous
        found = [c for c in candidates if c.get_name().lower() == name.lower()]
    if len(found) == 1:
        return found[0]
    if found:
        listing = ", ".join(f"{c.get_kind()} {c.get_name()} ({c.__module__})" for c in found)
        kinds = "|".join(c.get_kind() for c in found)
        raise KrallyError(f"{name!r} names {len(found)} plugins: {listing}; add --kind {kinds}")
    elsewhere = sorted({c.get_kind() for c in everything if c.get_name() == name})
    if elsewhere:
        raise KrallyError(
            f"no {kind} plugin {name!r}; it is a {' and a '.join(elsewhere)} plugin "
            f"(--kind {elsewhere[0]})"
        )
    close = _closest(name, sorted({c.get_name() for c in candidates}))
    what = f"{kind} plugin" if kind else "plugin"
    hint = f"did you mean {', '.join(close)}?" if close else "`krally plugin list` lists them"
    raise KrallyError(f"no {what} {name!r}; {hint}")


def _closest(name: str, names: list[str]) -> list[str]:
    """Names containing ``name``, then the closest by difflib, case-insensitively."""
    by_lower = {n.lower(): n for n in names}
    wanted = name.lower()
    containing = [n for low, n in by_lower.items() if wanted in low]
    similar = [
        by_lower[low]
        for low in difflib.get_close_matches(wanted, list(by_lower), n=MAX_SUGGESTIONS)
    ]
    return list(dict.fromkeys(containing + similar))[:MAX_SUGGESTIONS]


# --- show's config and text --------------------------------------------------------------------


def _parse_config(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KrallyError(f"--config: not JSON or YAML: {exc}") from None


def _config_problems(cls: type[plugin.Plugin], config: Any) -> list[str]:
    if not _has_schema(cls):
        raise KrallyError(
            f"--config: scenario {cls.get_name()!r} has no CONFIG_SCHEMA (its args are checked "
            "against run()'s signature by `krally validate`)"
        )
    return [str(problem) for problem in cls.validate_config(config)]


def _show_text(cls: type[plugin.Plugin], info: dict[str, Any]) -> str:
    base = plugin.plugin_bases()[info["kind"]]
    sections = [
        ("NAME", info["name"]),
        ("KIND", f"{info['kind']} (plugin base {base.__module__}.{base.__name__})"),
        ("PLATFORM", info["platform"]),
        ("MODULE", f"{info['module']} ({info['source']})"),
        ("DESCRIPTION", info["docstring"] or "(no docstring)"),
    ]
    if info["config_schema"] is not None:
        sections.append(("CONFIG_SCHEMA", json.dumps(info["config_schema"], indent=2)))
    else:
        sections.append(("ARGUMENTS (run()'s signature; no CONFIG_SCHEMA)", info["arguments"]))
    if "rbac" in info:
        sections.append(("RBAC (for --config)", _rbac_text(info["rbac"])))
    elif callable(getattr(cls, "rbac_rules", None)):
        sections.append(
            (
                "RBAC",
                "depends on the config: add --config '{...}' (and -n NS), "
                "or run `krally rbac TASK.yaml`",
            )
        )
    return "".join(f"{title}\n{textwrap.indent(body, '    ')}\n" for title, body in sections)


def _merged_rules(rules: list[tuple[str | None, dict[str, list[str]]]]) -> list[dict[str, Any]]:
    """One rule per (namespace, API group, resource), its verbs merged."""
    verbs: dict[tuple[str | None, str, str], set[str]] = {}
    for namespace, rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                verbs.setdefault((namespace, group, resource), set()).update(rule["verbs"])
    return [
        {"namespace": ns, "apiGroups": [group], "resources": [resource], "verbs": sorted(v)}
        for (ns, group, resource), v in verbs.items()
    ]


def _rbac_text(rules: list[dict[str, Any]]) -> str:
    if not rules:
        return "no rights needed"
    rows = [
        [
            r["namespace"] or "(cluster)",
            ",".join(g or '""' for g in r["apiGroups"]),
            ",".join(r["resources"]),
            ",".join(r["verbs"]),
        ]
        for r in rules
    ]
    return ascii_table(["namespace", "apiGroups", "resources", "verbs"], rows).rstrip("\n")
