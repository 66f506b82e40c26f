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

from krally.api import wire

DEFAULT_IMAGE = "krally:0.1.0"
DEFAULT_HOOK_TIMEOUT = 600
DEFAULT_STATUS_MAX_BYTES = 256 * 1024
# The runner records at most this many firings per task: the admission bound may only be lower.
DEFAULT_MAX_FIRINGS = wire.MAX_FIRINGS
DEFAULT_MAX_HOOK_JOBS = 20


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
    # KRALLY_HOOK_SERVICE_ACCOUNTS: an extra, operator-wide limit on the service accounts hooks
    # may name (comma list; unset or "*" = no extra limit). Whatever it says, a named account
    # must also be opted in by its namespace's admin (annotation krally.dev/hooks: allowed).
    hook_service_accounts: frozenset[str] | None = None
    # KRALLY_ALLOWED_IMAGES: images a task may name for its runner or hooks, besides the
    # operator's own runner_image and hook_image (comma list; a trailing "*" matches a prefix,
    # "*" alone any image). A task naming another one is refused.
    allowed_images: tuple[str, ...] = ()
    # -- the validating admission webhook (kube/operator/webhook.py) --
    # KRALLY_WEBHOOK=1 (--webhook): serve it and manage its ValidatingWebhookConfiguration.
    webhook: bool = False
    # KRALLY_WEBHOOK_PORT: the HTTPS port the operator listens on for it.
    webhook_port: int = 9443
    # KRALLY_WEBHOOK_URL: the API server calls this URL (e.g. https://127.0.0.1:9443, an
    # operator run outside the cluster) instead of the Service.
    webhook_url: str | None = None
    # KRALLY_WEBHOOK_SERVICE: the Service (in the operator's namespace) in front of the webhook.
    webhook_service: str = "krally-webhook"
    # KRALLY_WEBHOOK_SECRET: Secret (operator's namespace) keeping the webhook's CA and
    # certificate so replicas serve the same; unset: a new one at every start.
    webhook_secret: str | None = None
    # KRALLY_LEADER_ELECT=1 (--leader-elect): reconcile only while holding a Lease, so several
    # replicas can run (one leads; the others watch, serve the webhook and wait to take over).
    leader_elect: bool = False
    # KRALLY_LEADER_LEASE: the Lease's name.
    leader_lease: str = "krally-operator"
    # KRALLY_LEADER_NAMESPACE: the Lease's namespace (None: the pod's own, else the first
    # watched namespace).
    leader_namespace: str | None = None
    # KRALLY_LEASE_DURATION: seconds a Lease stays valid unrenewed; renewals every fifth of it.
    lease_duration: int = 10
    # KRALLY_POD_NAME: this replica's name in the Lease (downward API; else the host name).
    pod_name: str | None = None
    # KRALLY_STATUS_MAX_BYTES: a task's status stays under this many bytes (JSON), whatever
    # hooks print: the oldest hook outputs are trimmed first (etcd refuses objects over 1.5 MiB).
    status_max_bytes: int = DEFAULT_STATUS_MAX_BYTES
    # KRALLY_WATCH_TIMEOUT: seconds a watch request lasts before the API server ends it and
    # kopf re-establishes it (settings.watching.server_timeout).
    watch_timeout: int = 300
    # KRALLY_MAX_FIRINGS: firings (hook Jobs) one task's triggers may make, at most the
    # runner's own cap; a task that can make more is refused at apply (firing_bound.py).
    max_firings: int = DEFAULT_MAX_FIRINGS
    # KRALLY_MAX_HOOK_JOBS: unfinished hook Jobs of one task at a time; later firings wait for
    # their Job, oldest first (kube/operator/inflight.py).
    max_hook_jobs: int = DEFAULT_MAX_HOOK_JOBS
    # KRALLY_KEEP_HOOK_JOBS=1: keep finished hook Jobs (and their pods) instead of deleting
    # them once the task's status holds their result (e.g. to read their pods' logs).
    keep_hook_jobs: bool = False

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
            allowed_images=tuple(
                p.strip() for p in (env.get("KRALLY_ALLOWED_IMAGES") or "").split(",") if p.strip()
            ),
            webhook=env.get("KRALLY_WEBHOOK", "") == "1",
            webhook_port=int(env.get("KRALLY_WEBHOOK_PORT") or 9443),
            webhook_url=env.get("KRALLY_WEBHOOK_URL") or None,
            webhook_service=env.get("KRALLY_WEBHOOK_SERVICE") or "krally-webhook",
            webhook_secret=env.get("KRALLY_WEBHOOK_SECRET") or None,
            leader_elect=env.get("KRALLY_LEADER_ELECT", "") == "1",
            leader_lease=env.get("KRALLY_LEADER_LEASE") or "krally-operator",
            leader_namespace=env.get("KRALLY_LEADER_NAMESPACE") or None,
            lease_duration=parse_lease_duration(env.get("KRALLY_LEASE_DURATION")),
            pod_name=env.get("KRALLY_POD_NAME") or None,
            status_max_bytes=int(env.get("KRALLY_STATUS_MAX_BYTES") or DEFAULT_STATUS_MAX_BYTES),
            watch_timeout=int(env.get("KRALLY_WATCH_TIMEOUT") or 300),
            max_firings=parse_positive(
                "KRALLY_MAX_FIRINGS", env, DEFAULT_MAX_FIRINGS, maximum=DEFAULT_MAX_FIRINGS
            ),
            max_hook_jobs=parse_positive("KRALLY_MAX_HOOK_JOBS", env, DEFAULT_MAX_HOOK_JOBS),
            keep_hook_jobs=env.get("KRALLY_KEEP_HOOK_JOBS", "") == "1",
        )

    def image_allowed(self, image: str) -> bool:
        """The operator's own images, or one matching KRALLY_ALLOWED_IMAGES."""
        if image in (self.runner_image, self.hook_image):
            return True
        return any(
            image.startswith(p[:-1]) if p.endswith("*") else image == p for p in self.allowed_images
        )

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        image: str | None = None,
        hook_timeout: int | None = None,
        webhook: bool = False,
        leader_elect: bool = False,
    ) -> Settings:
        """``from_env`` with the CLI flags laid over the variables they stand for
        (``--image`` is ``KRALLY_IMAGE``, ``--hook-timeout`` is ``KRALLY_HOOK_TIMEOUT``,
        ``--webhook`` is ``KRALLY_WEBHOOK=1``, ``--leader-elect`` is ``KRALLY_LEADER_ELECT=1``)."""
        merged = dict(os.environ if env is None else env)
        if image:
            merged["KRALLY_IMAGE"] = image
        if hook_timeout:
            merged["KRALLY_HOOK_TIMEOUT"] = str(hook_timeout)
        if webhook:
            merged["KRALLY_WEBHOOK"] = "1"
        if leader_elect:
            merged["KRALLY_LEADER_ELECT"] = "1"
        return cls.from_env(merged)


def parse_allowed(text: str | None) -> frozenset[str] | None:
    """``"a, b"`` → {"a", "b"}; unset, empty or ``*`` → None (any service account)."""
    if not text or text.strip() == "*":
        return None
    return frozenset(n.strip() for n in text.split(",") if n.strip())


def parse_lease_duration(text: str | None) -> int:
    """KRALLY_LEASE_DURATION: whole seconds, at least 3 (renewals need room inside it)."""
    if not text:
        return 10
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 3:
        raise ValueError(
            f"KRALLY_LEASE_DURATION must be a whole number of seconds >= 3, got {text!r}"
        )
    return value


def parse_positive(
    name: str, env: Mapping[str, str], default: int, maximum: int | None = None
) -> int:
    """A whole number >= 1 (and <= ``maximum``) from ``env[name]`` (unset: ``default``)."""
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be a whole number >= 1{upper}, got {text!r}")
    return value
