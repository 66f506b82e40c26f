"""The plugin registry shared by every plugin kind (hook, trigger, runner, scenario, sla, context).

Each kind is a base class that calls ``Plugin.__init_subclass__`` with ``kind=...``; its
``configure(name=...)`` decorator registers a subclass under that kind. Plugins are looked up by
kind and name and validated against their ``CONFIG_SCHEMA`` with jsonschema, so an error names
the plugin and the failing path.
"""

from __future__ import annotations

import collections
import importlib
import importlib.metadata
import importlib.util
import pkgutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import jsonschema

from krally.api.schema import join_path as join_path  # plugin API (re-exported)
from krally.errors import InvalidConfig, KrallyError, PluginNotFound

P = TypeVar("P", bound=type)

# The built-in plugins, found by name as Rally finds its own: that package imports this one.
BUILTIN_PACKAGE = "krally.plugins"
ENTRY_POINT_GROUP = "krally.plugins"

_REGISTRY: dict[str, dict[str, type[Plugin]]] = {}
_BASES: dict[str, type[Plugin]] = {}  # each kind's base class: "runner" -> ScenarioRunner


class Plugin:
    """Base of all plugins. ``CONFIG_SCHEMA`` defaults to Rally's ``{"type": "null"}``."""

    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"type": "null"}
    _plugin_kind: ClassVar[str] = "plugin"
    _plugin_name: ClassVar[str | None] = None
    _plugin_platform: ClassVar[str] = "default"

    def __init_subclass__(cls, kind: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls._plugin_kind = kind
            _REGISTRY.setdefault(kind, {})
            _BASES[kind] = cls
        # A subclass is only registered by its configure() decorator, never implicitly.
        cls._plugin_name = None

    @classmethod
    def get_name(cls) -> str:
        return cls._plugin_name or cls.__name__

    @classmethod
    def get_platform(cls) -> str:
        return cls._plugin_platform

    @classmethod
    def get_kind(cls) -> str:
        return cls._plugin_kind

    @classmethod
    def get(cls, name: str) -> type[Any]:
        """The plugin of this kind called ``name``; PluginNotFound lists the known names."""
        load_builtin_plugins()
        plugins = _REGISTRY.get(cls._plugin_kind, {})
        try:
            return plugins[name]
        except KeyError:
            raise PluginNotFound(cls._plugin_kind, name, list(plugins)) from None

    @classmethod
    def get_all(cls) -> dict[str, type[Any]]:
        load_builtin_plugins()
        return dict(_REGISTRY.get(cls._plugin_kind, {}))

    @classmethod
    def validate_config(cls, config: Any, path: str = "") -> list[InvalidConfig]:
        """Check ``config`` against this plugin's CONFIG_SCHEMA; every problem with its path."""
        validator_cls = jsonschema.validators.validator_for(
            cls.CONFIG_SCHEMA, default=jsonschema.Draft7Validator
        )
        errors = list(validator_cls(cls.CONFIG_SCHEMA).iter_errors(config))
        if len(errors) > 1:
            # Drop "valid under each of" noise that stands beside a real error.
            errors = [e for e in errors if not (e.validator == "oneOf" and not e.context)]
        problems = []
        for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
            best = closest_error(error)
            where = join_path(path, best.absolute_path)
            problems.append(
                InvalidConfig(where, f"{cls._plugin_kind} {cls.get_name()!r}: {best.message}")
            )
        return problems

    @classmethod
    def validate(cls, name: str, config: Any, path: str = "") -> list[InvalidConfig]:
        """Look up ``name`` of this kind and validate ``config``; returns problems, never raises."""
        try:
            plugin = cls.get(name)
        except PluginNotFound as exc:
            return [InvalidConfig(path, str(exc))]
        return plugin.validate_config(config, path)


def plugin_bases() -> dict[str, type[Plugin]]:
    """Each plugin kind and its base class (``hook``: Hook, ``runner``: ScenarioRunner, ...)."""
    load_builtin_plugins()
    return dict(sorted(_BASES.items()))


def registered_plugins() -> list[type[Plugin]]:
    """Every registered plugin of every kind, sorted by kind, then name."""
    load_builtin_plugins()
    return [cls for kind in sorted(_REGISTRY) for _, cls in sorted(_REGISTRY[kind].items())]


def configure(kind_base: type[Plugin], name: str, platform: str = "default") -> Callable[[P], P]:
    """Register the decorated class as the ``kind_base`` plugin ``name``."""

    def register(plugin_cls: P) -> P:
        if not issubclass(plugin_cls, kind_base):
            raise TypeError(f"{plugin_cls.__name__} must subclass {kind_base.__name__}")
        kind = kind_base._plugin_kind
        existing = _REGISTRY.setdefault(kind, {}).get(name)
        if (
            existing is not None
            and existing is not plugin_cls
            and not _same_class(existing, plugin_cls)
        ):
            raise KrallyError(
                f"{kind} plugin {name!r} is defined twice: "
                f"{existing.__module__}.{existing.__qualname__} and "
                f"{plugin_cls.__module__}.{plugin_cls.__qualname__}"
            )
        plugin_cls._plugin_name = name
        plugin_cls._plugin_platform = platform
        _REGISTRY[kind][name] = plugin_cls
        return plugin_cls

    return register


def _same_class(a: type, b: type) -> bool:
    # A module imported twice (e.g. re-loaded from --plugin-path) re-registers the same class.
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def closest_error(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For oneOf/anyOf, the error of the branch the config meant (its enum/const discriminator
    matched); when no branch matches, the discriminator error with every allowed value."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return error
    branches: dict[Any, list[jsonschema.ValidationError]] = collections.defaultdict(list)
    for sub in error.context:
        branches[sub.relative_schema_path[0]].append(sub)

    def discriminator_failed(errs: list[jsonschema.ValidationError]) -> bool:
        return any(e.validator in ("enum", "const") and len(e.relative_path) == 1 for e in errs)

    meant = [errs for errs in branches.values() if not discriminator_failed(errs)]
    if meant:
        candidates = [e for errs in meant for e in errs]
        best = jsonschema.exceptions.best_match(candidates) or candidates[0]
        return closest_error(best)
    # No branch's discriminator matched (e.g. unknown unit): list the allowed values.
    enum_errors = [e for e in error.context if e.validator in ("enum", "const")]
    paths = {tuple(e.relative_path) for e in enum_errors}
    if len(paths) == 1:
        allowed: list[Any] = []
        for e in enum_errors:
            values = e.validator_value if e.validator == "enum" else [e.validator_value]
            allowed.extend(v for v in values if v not in allowed)
        first = enum_errors[0]
        return jsonschema.ValidationError(
            f"{first.instance!r} is not one of {allowed!r}",
            validator="enum",
            path=first.absolute_path,
            instance=first.instance,
        )
    return jsonschema.exceptions.best_match(error.context) or error


def explain(error: jsonschema.ValidationError) -> str:
    """A one-line reason, from the oneOf/anyOf branch the config meant."""
    return closest_error(error).message


_builtin_loaded = False


_load_lock = threading.RLock()


def load_builtin_plugins() -> None:
    """Import every module under ``krally.plugins`` and ``krally.plugins.kube`` once, then
    third-party entry points."""
    global _builtin_loaded
    if _builtin_loaded:
        return
    # Under a lock: threads (a distributed load's shards run side by side by `krally run`) must
    # not see a half-filled registry.
    with _load_lock:
        if _builtin_loaded:
            return
        builtin = importlib.import_module(BUILTIN_PACKAGE)
        for module in pkgutil.walk_packages(builtin.__path__, builtin.__name__ + "."):
            importlib.import_module(module.name)
        _builtin_loaded = True
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                entry_point.load()
            except Exception as exc:  # a broken third-party plugin must not hide the others
                raise KrallyError(
                    f"plugin entry point {entry_point.name!r} ({entry_point.value}) failed: {exc}"
                ) from exc


def load_plugin_path(path: str | Path) -> list[str]:
    """Import a plugin file, or every module of a folder (which may import its siblings)."""
    path = Path(path)
    if not path.exists():
        raise KrallyError(f"--plugin-path {path}: no such file or directory")
    files = sorted(path.glob("*.py")) if path.is_dir() else [path]
    folder = str((path if path.is_dir() else path.parent).resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    loaded = []
    for file in files:
        name = file.stem
        try:
            if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(
                file.resolve()
            ):
                continue
            spec = importlib.util.spec_from_file_location(name, file)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except KrallyError:
            raise
        except Exception as exc:
            raise KrallyError(f"plugin {file}: {type(exc).__name__}: {exc}") from exc
        loaded.append(str(file))
    return loaded
