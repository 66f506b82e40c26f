"""Rally's output items (``add_output``), checked the way Rally's ``charts.validate_output`` does.

An output item is one chart: ``{"title", "chart_plugin", "data"}`` plus optional
``description``/``label``/``axis_label``. ``additive`` items contribute one data point per run and
are merged across runs in a report; ``complete`` items are a whole chart per run. Used by hooks
(``Hook.add_output``) and scenarios (``Scenario.add_output``).
"""

from __future__ import annotations

from typing import Any

from krally.errors import KrallyError

OUTPUT_KINDS = ("additive", "complete")

CHART_PLUGINS = (
    "StatsTable",
    "StackedArea",
    "Lines",
    "Pie",
    "Table",
    "TextArea",
    "EmbeddedChart",
    "EmbeddedExternalChart",
)

_REQUIRED: dict[str, tuple[type, ...]] = {
    "title": (str,),
    "chart_plugin": (str,),
    "data": (list, dict),
}
_OPTIONAL: dict[str, tuple[type, ...]] = {
    "description": (str,),
    "label": (str,),
    "axis_label": (str,),
}


class InvalidOutput(KrallyError):
    """An ``add_output`` item does not follow Rally's output format."""


def _type_names(types: tuple[type, ...]) -> str:
    names: dict[type, str] = {list: "list", dict: "dict", str: "str"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def validate_output(kind: str, item: Any) -> None:
    """Raise InvalidOutput (one line, naming the kind and the key) unless ``item`` is valid."""
    if kind not in OUTPUT_KINDS:
        raise InvalidOutput(f"output kind {kind!r} is not one of {', '.join(OUTPUT_KINDS)}")
    if not isinstance(item, dict):
        raise InvalidOutput(f"{kind} output must be a dict, got {type(item).__name__}")
    title = item.get("title")
    where = f"{kind} output {title!r}" if isinstance(title, str) else f"{kind} output"
    missing = [key for key in _REQUIRED if key not in item]
    if missing:
        raise InvalidOutput(f"{where}: missing required key(s) {', '.join(missing)}")
    unknown = sorted(str(key) for key in item if key not in _REQUIRED and key not in _OPTIONAL)
    if unknown:
        allowed = ", ".join([*_REQUIRED, *_OPTIONAL])
        raise InvalidOutput(f"{where}: unexpected key(s) {', '.join(unknown)} (allowed: {allowed})")
    for key, types in (*_REQUIRED.items(), *_OPTIONAL.items()):
        # bool is an int subclass but never a valid type here; exact types keep messages honest.
        if key in item and not isinstance(item[key], types):
            raise InvalidOutput(
                f"{where}: {key} must be {_type_names(types)}, got {type(item[key]).__name__}"
            )
    if item["chart_plugin"] not in CHART_PLUGINS:
        raise InvalidOutput(
            f"{where}: unknown chart_plugin {item['chart_plugin']!r}; "
            f"known: {', '.join(CHART_PLUGINS)}"
        )
