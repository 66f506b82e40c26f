"""The base of every ``kube.*`` hook: its config checks, RBAC declarations, the run that turns
failures into clear hook errors, readiness polls and its small outputs (a Rally Table and a
StatsTable of timings)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from krally.errors import InvalidConfig
from krally.plugins.kube.api import (
    MAX_ROWS,
    POLL_SECONDS,
    HookFailure,
    Kube,
    Rule,
    default_namespace,
)
from krally.task import hook

# -- the hook base -------------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class KubeHook(hook.Hook):
    """Base of the ``kube.*`` hooks: ``act(kube)`` does the work; a :class:`HookFailure` ends
    the hook as failed with its error; ``rbac_rules`` declares the rights ``act`` uses."""

    TITLE: ClassVar[str] = "Kubernetes"
    COLUMNS: ClassVar[list[str]] = ["object", "namespace", "action", "at"]

    def __init__(self, task: Any, config: Any, triggered_by: dict[str, Any]) -> None:
        super().__init__(task, config, triggered_by)
        self.rows: list[list[Any]] = []
        self.timings: list[list[Any]] = []  # [[name, seconds], ...]: an additive StatsTable

    @classmethod
    def rbac_rules(cls, config: Any, namespace: str) -> list[Rule]:
        """The rules this hook needs for ``config`` when its task runs in ``namespace``."""
        return []

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[tuple[str, str]]:
        """Cross-field problems the schema cannot say well: [(field, message)]."""
        return []

    @classmethod
    def validate_config(cls, config: Any, path: str = "") -> list[InvalidConfig]:
        problems = super().validate_config(config, path)
        if problems or not isinstance(config, dict):
            return problems
        return [
            InvalidConfig(f"{path}.{field}" if path else field, f"hook {cls.get_name()!r}: {msg}")
            for field, msg in cls.check_config(config)
        ]

    @property
    def namespace(self) -> str:
        return str(self.config.get("namespace") or default_namespace())

    def act(self, kube: Kube) -> None:
        raise NotImplementedError

    _kube: Kube | HookFailure | None = None

    def prepare(self) -> None:
        # An armed pod prepares while it waits: the client's import and credentials (~0.5 s)
        # and a first connection to the API server are then paid before the firing.
        try:
            self._kube = Kube.connect()
            self._kube.warm_up()
        except HookFailure as exc:
            self._kube = exc

    def run(self) -> None:
        try:
            if self._kube is None:
                self.prepare()
            if isinstance(self._kube, HookFailure):
                raise self._kube
            assert self._kube is not None
            self.act(self._kube)
        except HookFailure as exc:
            if not self.stopping:  # stopped (timeout): the Timeout result stands
                self.set_error(exc.etype, exc.msg, exc.details)
        finally:
            self.emit_output()

    def record(self, *row: Any) -> None:
        self.rows.append(list(row))

    def emit_output(self) -> None:
        if not self.rows:
            return
        rows = self.rows[:MAX_ROWS]
        if len(self.rows) > MAX_ROWS:
            rows.append([f"... and {len(self.rows) - MAX_ROWS} more"] + [""] * (len(rows[0]) - 1))
        self.add_output(
            complete={
                "title": f"{self.get_name()}: {self.TITLE}",
                "chart_plugin": "Table",
                "data": {"cols": list(self.COLUMNS), "rows": rows},
            }
        )
        if self.timings:
            self.add_output(
                additive={
                    "title": f"{self.get_name()} timings",
                    "chart_plugin": "StatsTable",
                    "data": self.timings[:MAX_ROWS],
                }
            )

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; the hook's stop (timeout) ends it with a Stopped failure."""
        if seconds > 0 and self.wait(seconds):
            raise HookFailure("Stopped", "the hook was stopped while waiting")

    def poll(
        self,
        check: Callable[[], Any],
        timeout: float,
        what: str,
        interval: float = POLL_SECONDS,
    ) -> Any:
        """``check()``'s first truthy value, polled until ``timeout`` seconds; HookFailure
        ``Timeout`` naming ``what`` (and the last state ``check`` left in ``self.last_state``)."""
        deadline = time.monotonic() + timeout
        self.last_state = ""
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise HookFailure(
                    "Timeout", f"{what}: not reached within {timeout:g} s", str(self.last_state)
                )
            self.sleep(min(interval, max(deadline - time.monotonic(), 0.01)))

    last_state: Any = ""
