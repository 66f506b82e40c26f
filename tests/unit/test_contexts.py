"""Context plugins: order, setup/cleanup, failures, OpenStack placeholders, unknown names."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from krally.errors import PluginNotFound
from krally.task import context
from krally.task.context import (
    OPENSTACK_CONTEXTS,
    Context,
    ContextError,
    ContextManager,
    validate_contexts,
)

CALLS: list[str] = []


@context.configure(name="test_ctx_late", order=900)
class LateContext(context.Context):
    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"type": "object"}

    def setup(self) -> None:
        CALLS.append("setup late")

    def cleanup(self) -> None:
        CALLS.append("cleanup late")


@context.configure(name="test_ctx_early", order=10)
class EarlyContext(context.Context):
    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"type": "integer"}

    def setup(self) -> None:
        CALLS.append(f"setup early {self.config}")
        self.context["early"] = self.config

    def cleanup(self) -> None:
        CALLS.append("cleanup early")


@pytest.fixture(autouse=True)
def _clear() -> None:
    CALLS.clear()


def test_setup_in_order_cleanup_in_reverse() -> None:
    ctx: dict[str, Any] = {"config": {"test_ctx_late": {}, "test_ctx_early": 7}}
    with ContextManager(ctx) as shared:
        assert shared["early"] == 7
        CALLS.append("load")
    assert CALLS == ["setup early 7", "setup late", "load", "cleanup late", "cleanup early"]


def test_dummy_context_and_results() -> None:
    assert Context.get("dummy_context").get_order() == 750
    manager = ContextManager({"config": {"dummy_context": {}}})
    shared = manager.setup()
    assert shared["dummy_context"] == {"set_up": True}
    manager.cleanup()
    (result,) = manager.results()
    assert result["plugin_name"] == "dummy_context"
    assert result["plugin_cfg"] == {"fail_setup": False, "fail_cleanup": False}
    assert result["setup"]["finished_at"] >= result["setup"]["started_at"]
    assert "error" not in result["setup"] and "error" not in result["cleanup"]


def test_failed_setup_cleans_up_what_was_set_up() -> None:
    ctx = {"config": {"dummy_context": {"fail_setup": True}, "test_ctx_early": 1}}
    manager = ContextManager(ctx)
    with pytest.raises(ContextError, match=r"dummy_context.*setup is failed"):
        manager.__enter__()
    # early (order 10) was set up and is cleaned up; the failing dummy too (Rally cleans it).
    assert CALLS == ["setup early 1", "cleanup early"]
    results = {r["plugin_name"]: r for r in manager.results()}
    assert results["dummy_context"]["setup"]["error"][0] == "DummyContextError"


def test_failed_cleanup_is_recorded_not_raised() -> None:
    manager = ContextManager({"config": {"dummy_context": {"fail_cleanup": True}}})
    manager.setup()
    manager.cleanup()
    assert manager.cleanup_error == "Oops...cleanup is failed"
    assert manager.results()[0]["cleanup"]["error"][0] == "DummyContextError"


def test_openstack_contexts_are_warnings() -> None:
    assert {"users", "roles", "quotas", "network", "images", "flavors"} <= OPENSTACK_CONTEXTS
    warnings: list[str] = []
    manager = ContextManager({"config": {"users": {"tenants": 1}}}, warnings)
    manager.setup()
    manager.cleanup()
    assert warnings == ["context 'users' needs OpenStack; ignored when running locally"]
    assert manager.results() == []


def test_unknown_context_is_an_error_listing_known_ones() -> None:
    with pytest.raises(PluginNotFound, match="dummy_context"):
        ContextManager({"config": {"nope": {}}}).setup()


def test_validate_contexts() -> None:
    warnings: list[str] = []
    problems = validate_contexts(
        {"users": {}, "nope": 1, "dummy_context": {"fail_setup": "yes"}, "test_ctx_early": 3},
        "spec.contexts",
        warnings,
    )
    assert [p.path for p in problems] == [
        "spec.contexts.nope",
        "spec.contexts.dummy_context.fail_setup",
    ]
    assert "known context plugins" in problems[0].message
    assert "dummy_context" in problems[0].message
    assert warnings == [
        "spec.contexts.users: context 'users' needs OpenStack; ignored when running locally"
    ]
