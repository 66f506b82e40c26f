"""Context plugins: set up before a workload's load, cleaned up after it (Rally's ``context``).

Rally's API is kept: ``@context.configure(name=..., order=...)``, ``Context.setup()``,
``Context.cleanup()``, ``self.config`` (this context's config) and ``self.context`` (the shared
context dict handed to every scenario iteration). Contexts are set up in ascending ``order``
and cleaned up in the reverse order; only those whose setup ran are cleaned up.

Rally's OpenStack contexts (``users``, ``quotas``, ...) cannot work here. They are recognised by
name and reported as a warning, then skipped, so Rally's own examples run unchanged.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from krally.errors import InvalidConfig, PluginNotFound
from krally.task import plugin

C = TypeVar("C", bound=type)

# rally-openstack's context plugin names (and their common aliases). A task naming one is
# Rally-valid, but there is no OpenStack here: warn and skip instead of failing.
OPENSTACK_CONTEXTS = frozenset(
    {
        "admin_cleanup",
        "allow_ssh",
        "api_versions",
        "audit_templates",
        "ca_certs",
        "ceilometer",
        "cinder_volume_types",
        "cleanup",
        "dummy_context_openstack",
        "ec2_servers",
        "existing_network",
        "flavors",
        "heat_dataplane",
        "image_command_customizer",
        "images",
        "keypair",
        "lbaas",
        "manila_security_services",
        "manila_share_networks",
        "manila_shares",
        "murano_environments",
        "murano_packages",
        "network",
        "networking_agents",
        "quotas",
        "roles",
        "router",
        "sahara_cluster",
        "sahara_image",
        "sahara_input_data_sources",
        "sahara_job_binaries",
        "sahara_output_data_sources",
        "servers",
        "stacks",
        "swift_objects",
        "users",
        "volume_types",
        "volumes",
        "zones",
    }
)


def openstack_warning(name: str) -> str:
    return f"context {name!r} needs OpenStack; ignored when running locally"


class Context(plugin.Plugin, kind="context"):
    """Base of context plugins. Subclasses implement ``setup()`` and ``cleanup()``."""

    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"type": "object"}
    # Merged under a dict config, like Rally's DEFAULT_CONFIG.
    DEFAULT_CONFIG: ClassVar[dict[str, Any]] = {}
    _order: ClassVar[int] = 0
    _hidden: ClassVar[bool] = False

    def __init__(self, ctx: dict[str, Any]):
        self.context = ctx
        config = ctx.get("config", {}).get(self.get_name())
        if isinstance(config, dict) and self.DEFAULT_CONFIG:
            config = {**self.DEFAULT_CONFIG, **config}
        self.config = config if config is not None else dict(self.DEFAULT_CONFIG)

    @classmethod
    def is_hidden(cls) -> bool:
        return cls._hidden

    def setup(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        raise NotImplementedError

    # Contexts set up in ascending order (Rally's ``order``), cleaned up in reverse.
    @classmethod
    def get_order(cls) -> int:
        return cls._order

    def __lt__(self, other: Context) -> bool:
        return self.get_order() < other.get_order()


def configure(
    name: str, order: int = 0, platform: str = "default", hidden: bool = False
) -> Callable[[C], C]:
    """Rally's ``@context.configure(name=..., order=...)``."""
    register = plugin.configure(Context, name, platform)

    def decorate(cls: C) -> C:
        cls._order = order  # type: ignore[attr-defined]
        cls._hidden = hidden  # type: ignore[attr-defined]
        return register(cls)

    return decorate


def validate_contexts(
    contexts: Mapping[str, Any], path: str, warnings: list[str] | None = None
) -> list[InvalidConfig]:
    """Validate every context config; OpenStack contexts become warnings, unknown ones errors."""
    problems: list[InvalidConfig] = []
    known = Context.get_all()
    for name, config in contexts.items():
        where = plugin.join_path(path, [name])
        if name in known:
            problems.extend(known[name].validate_config(config, where))
        elif name in OPENSTACK_CONTEXTS:
            if warnings is not None:
                warnings.append(f"{where}: {openstack_warning(name)}")
        else:
            error = PluginNotFound("context", name, list(known))
            problems.append(InvalidConfig(where, str(error)))
    return problems


def _now() -> float:
    return time.time()


class ContextManager:
    """Sets up a workload's contexts in order and cleans them up in reverse.

    ``results()`` gives Rally's ``contexts_results``: per context its plugin name and config and
    the setup/cleanup start, finish and error.
    """

    def __init__(self, ctx: dict[str, Any], warnings: list[str] | None = None):
        self.context = ctx
        self.warnings = warnings if warnings is not None else []
        self._instances: list[Context] = []
        self._results: dict[str, dict[str, Any]] = {}
        self._set_up: list[Context] = []

    def _build(self) -> list[Context]:
        known = Context.get_all()
        instances = []
        for name in self.context.get("config", {}):
            if name in known:
                instances.append(known[name](self.context))
            elif name in OPENSTACK_CONTEXTS:
                self.warnings.append(openstack_warning(name))
            else:
                raise PluginNotFound("context", name, list(known))
        # sorted() is stable: equal orders keep the task's order.
        return sorted(instances, key=lambda c: c.get_order())

    def setup(self) -> dict[str, Any]:
        self._instances = self._build()
        for ctx in self._instances:
            record = self._results.setdefault(
                ctx.get_name(),
                {"plugin_name": ctx.get_name(), "plugin_cfg": ctx.config},
            )
            # Registered before setup runs so a context that half set up is cleaned up too.
            self._set_up.append(ctx)
            record["setup"] = self._timed(ctx.setup)
            if "error" in record["setup"]:
                error = record["setup"]["error"]
                raise ContextError(f"context {ctx.get_name()!r} setup failed: {error[1]}")
        return self.context

    def cleanup(self) -> None:
        """Clean up, in reverse order, every context whose setup ran; errors are recorded."""
        first_error: str | None = None
        while self._set_up:
            ctx = self._set_up.pop()
            record = self._results[ctx.get_name()]
            record["cleanup"] = self._timed(ctx.cleanup)
            if "error" in record["cleanup"] and first_error is None:
                first_error = record["cleanup"]["error"][1]
        if first_error is not None:
            self.cleanup_error = first_error

    cleanup_error: str | None = None

    @staticmethod
    def _timed(func: Callable[[], Any]) -> dict[str, Any]:
        record: dict[str, Any] = {"started_at": _now(), "atomic_actions": []}
        try:
            func()
        except Exception as exc:
            record["error"] = [type(exc).__name__, str(exc), traceback.format_exc()]
        record["finished_at"] = _now()
        return record

    def results(self) -> list[dict[str, Any]]:
        return list(self._results.values())

    def __enter__(self) -> dict[str, Any]:
        try:
            return self.setup()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc_info: Any) -> None:
        self.cleanup()


class ContextError(Exception):
    """A context's setup failed (a run error, not bad input)."""
