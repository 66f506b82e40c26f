"""The operator's settings: one explicit object, read once at start and passed where needed.

``Settings.load(os.environ, image=..., hook_timeout=...)`` is the only place that reads the
environment for the operator (``krally operator`` calls it; CLI flags override the variables they
stand for); nothing reads settings at import time. README.md's "Settings" table lists every
``KRALLY_*`` variable with its default and effect; a unit test keeps the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_IMAGE = "krally:0.1.0"
DEFAULT_HOOK_TIMEOUT = 600
DEFAULT_STATUS_MAX_BYTES = 256 * 1024


@dataclass(frozen=True)
class Settings:
    """Defaults for what a task leaves out, and the operator's own knobs."""

    # KRALLY_RUNNER_IMAGE, else KRALLY_IMAGE (--image): image of runner pods.
    runner_image: str = DEFAULT_IMAGE
    # KRALLY_HOOK_IMAGE, else KRALLY_IMAGE (--image): image of hook pods.
    hook_image: str = DEFAULT_IMAGE
    # KRALLY_HOOK_TIMEOUT (--hook-timeout): a hook Job's activeDeadlineSeconds when the task
    # sets no spec.hooks[].job.timeoutSeconds.
    hook_timeout_seconds: int = DEFAULT_HOOK_TIMEOUT
    # KRALLY_IMAGE_PULL_POLICY: imagePullPolicy of runner and hook containers.
    image_pull_policy: str = "IfNotPresent"
    # KRALLY_COMMAND: the command starting krally in those images (split on spaces).
    command: tuple[str, ...] = ("krally",)
    # Extra environment of runner and hook containers (embedders and tests; no variable).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # KRALLY_STATUS_WRITE_PERIOD: seconds between two non-urgent status writes of one task (a
    # phase or condition change is written at once).
    status_write_period: float = 4.0
    # KRALLY_MAX_WORKERS: kopf's thread pool for blocking work (settings.execution.max_workers).
    max_workers: int = 20
    # KRALLY_SCANNING=1: let kopf scan CRDs and namespaces cluster-wide (needs more RBAC).
    scanning: bool = False
    # KRALLY_HOOK_SERVICE_ACCOUNTS: comma list of service accounts hooks may run as; unset or
    # "*" = any. A task naming another one is refused (Accepted=False).
    hook_service_accounts: frozenset[str] | None = None
    # KRALLY_STATUS_MAX_BYTES: a task's status stays under this many bytes (JSON), whatever
    # hooks print: the oldest hook outputs are trimmed first (etcd refuses objects over 1.5 MiB).
    status_max_bytes: int = DEFAULT_STATUS_MAX_BYTES
    # KRALLY_WATCH_TIMEOUT: seconds a watch request lasts before the API server ends it and
    # kopf re-establishes it (settings.watching.server_timeout).
    watch_timeout: int = 300

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings the variables of ``env`` (default: the process environment) give."""
        env = dict(os.environ if env is None else env)
        image = env.get("KRALLY_IMAGE") or DEFAULT_IMAGE
        return cls(
            runner_image=env.get("KRALLY_RUNNER_IMAGE") or image,
            hook_image=env.get("KRALLY_HOOK_IMAGE") or image,
            hook_timeout_seconds=int(env.get("KRALLY_HOOK_TIMEOUT") or DEFAULT_HOOK_TIMEOUT),
            image_pull_policy=env.get("KRALLY_IMAGE_PULL_POLICY") or "IfNotPresent",
            command=tuple((env.get("KRALLY_COMMAND") or "krally").split()),
            status_write_period=float(env.get("KRALLY_STATUS_WRITE_PERIOD") or 4),
            max_workers=int(env.get("KRALLY_MAX_WORKERS") or 20),
            scanning=env.get("KRALLY_SCANNING", "") == "1",
            hook_service_accounts=parse_allowed(env.get("KRALLY_HOOK_SERVICE_ACCOUNTS")),
            status_max_bytes=int(env.get("KRALLY_STATUS_MAX_BYTES") or DEFAULT_STATUS_MAX_BYTES),
            watch_timeout=int(env.get("KRALLY_WATCH_TIMEOUT") or 300),
        )

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        image: str | None = None,
        hook_timeout: int | None = None,
    ) -> Settings:
        """``from_env`` with the CLI flags laid over the variables they stand for
        (``--image`` is ``KRALLY_IMAGE``, ``--hook-timeout`` is ``KRALLY_HOOK_TIMEOUT``)."""
        merged = dict(os.environ if env is None else env)
        if image:
            merged["KRALLY_IMAGE"] = image
        if hook_timeout:
            merged["KRALLY_HOOK_TIMEOUT"] = str(hook_timeout)
        return cls.from_env(merged)


def parse_allowed(text: str | None) -> frozenset[str] | None:
    """``"a, b"`` → {"a", "b"}; unset, empty or ``*`` → None (any service account)."""
    if not text or text.strip() == "*":
        return None
    return frozenset(n.strip() for n in text.split(",") if n.strip())
