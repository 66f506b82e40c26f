"""The impact analysis' config: :class:`ImpactConfig` from BenchmarkTask ``spec.impact`` (schema:
:mod:`krally.api.spec_schema`), or from the ``impact`` of a Rally v1 entry / v2 workload, where
the snake_case spellings (``baseline_seconds``, ``tolerance.error_rate``, ...) are accepted too
(:func:`rally_problems`, :func:`normalise`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from krally.api.spec_schema import SPEC_SCHEMA
from krally.errors import InvalidConfig
from krally.task.plugin import explain, join_path


@dataclass(frozen=True)
class ImpactConfig:
    enabled: bool = True
    baseline_seconds: float = 10.0
    after_seconds: float = 10.0
    window_seconds: float = 2.0
    resolution_seconds: float = 0.25
    max_seconds: float = 300.0
    error_rate: float = 0.01
    p95_ratio: float = 1.5
    throughput_ratio: float = 0.8

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> ImpactConfig:
        """From ``spec.impact`` (camelCase, schema-valid; absent fields take the defaults)."""
        spec = normalise(spec or {})
        tolerance = spec.get("tolerance") or {}
        defaults = cls()

        def pick(source: Mapping[str, Any], key: str, default: float) -> float:
            value = source.get(key)
            return float(value) if value is not None else default

        return cls(
            enabled=bool(spec.get("enabled", True)),
            baseline_seconds=pick(spec, "baselineSeconds", defaults.baseline_seconds),
            after_seconds=pick(spec, "afterSeconds", defaults.after_seconds),
            window_seconds=pick(spec, "windowSeconds", defaults.window_seconds),
            resolution_seconds=pick(spec, "resolutionSeconds", defaults.resolution_seconds),
            max_seconds=pick(spec, "maxSeconds", defaults.max_seconds),
            error_rate=pick(tolerance, "errorRate", defaults.error_rate),
            p95_ratio=pick(tolerance, "p95Ratio", defaults.p95_ratio),
            throughput_ratio=pick(tolerance, "throughputRatio", defaults.throughput_ratio),
        )

    @property
    def resolution(self) -> float:
        """The bucket width actually used: never wider than the sliding window."""
        return min(self.resolution_seconds, self.window_seconds)


# -- Rally formats: the same config, snake_case accepted ------------------------------------------

_SNAKE = {
    "baselineSeconds": "baseline_seconds",
    "afterSeconds": "after_seconds",
    "windowSeconds": "window_seconds",
    "resolutionSeconds": "resolution_seconds",
    "maxSeconds": "max_seconds",
    "errorRate": "error_rate",
    "p95Ratio": "p95_ratio",
    "throughputRatio": "throughput_ratio",
}
_CAMEL = {snake: camel for camel, snake in _SNAKE.items()}


def _both_spellings(schema: dict[str, Any]) -> dict[str, Any]:
    """The spec's impact schema, closed, each field also under its snake_case name."""
    out = {k: v for k, v in schema.items() if k != "properties"}
    if "properties" in schema:
        properties: dict[str, Any] = {}
        for name, sub in schema["properties"].items():
            properties[name] = _both_spellings(sub)
            if name in _SNAKE:
                properties[_SNAKE[name]] = properties[name]
        out["properties"] = properties
        out["additionalProperties"] = False
    return out


def rally_schema() -> dict[str, Any]:

    return _both_spellings(SPEC_SCHEMA["properties"]["impact"])


def rally_problems(value: Any, path: str) -> list[Any]:
    """Problems of a Rally workload's ``impact`` (either spelling), each naming its field."""

    validator = jsonschema.Draft7Validator(rally_schema())
    problems = [
        InvalidConfig(join_path(path, error.absolute_path), explain(error))
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    ]
    if not problems:
        for where, mapping in ((path, value), (f"{path}.tolerance", value.get("tolerance"))):
            for camel, snake in _SNAKE.items():
                if isinstance(mapping, dict) and camel in mapping and snake in mapping:
                    problems.append(InvalidConfig(where, f"both {camel!r} and {snake!r} given"))
    return problems


def normalise(value: Mapping[str, Any]) -> dict[str, Any]:
    """snake_case keys → camelCase (BenchmarkTask's), recursively; others unchanged."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        out[_CAMEL.get(key, key)] = normalise(item) if isinstance(item, Mapping) else item
    return out
