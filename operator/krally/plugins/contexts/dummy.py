"""Rally's ``dummy_context``: a context that does nothing, or fails on demand (for tests)."""

from __future__ import annotations

from typing import Any, ClassVar

from krally import consts
from krally.task import context


class DummyContextError(Exception):
    """Raised by dummy_context when asked to fail."""


@context.configure(name="dummy_context", order=750)
class DummyContext(context.Context):
    """Does nothing; ``fail_setup`` / ``fail_cleanup`` make setup or cleanup raise."""

    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {
        "$schema": consts.JSON_SCHEMA,
        "type": "object",
        "properties": {
            "fail_setup": {"type": "boolean"},
            "fail_cleanup": {"type": "boolean"},
        },
        "additionalProperties": False,
    }
    DEFAULT_CONFIG: ClassVar[dict[str, Any]] = {"fail_setup": False, "fail_cleanup": False}

    def setup(self) -> None:
        if self.config.get("fail_setup"):
            raise DummyContextError("Oops...setup is failed")
        # Visible to every iteration, like Rally contexts that publish resources.
        self.context["dummy_context"] = {"set_up": True}

    def cleanup(self) -> None:
        if self.config.get("fail_cleanup"):
            raise DummyContextError("Oops...cleanup is failed")
