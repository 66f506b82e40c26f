"""Pure builders of the objects the operator creates for a BenchmarkTask.

No API calls here: every function takes the task body (a plain dict) and returns a manifest dict,
so unit tests can check names, labels, owner references and the security context directly.
Like k6-operator's ``pkg/resources/jobs``, one module per kind of object:

- :mod:`.labels`: the children's labels (their names are :mod:`krally.api.wire`'s, which the
  pods share);
- :mod:`.pod`: metadata and owner reference, security contexts, the task's env, the Job shell;
- :mod:`.identity`: ServiceAccounts, Roles and RoleBindings of the runner and the hooks;
- :mod:`.runner_job`, :mod:`.hook_job`: the runner Job and the Job of one firing.

This package's namespace is the builders' one face (the planner calls ``kjobs.runner_job``).
"""

from krally.api.wire import (
    child_name,
    hook_job_name,
    hook_service_account_name,
    runner_name,
    task_label,
)
from krally.kube.operator.builders.hook_job import hook_job, hook_payload, hook_timeout, is_armed
from krally.kube.operator.builders.identity import (
    hook_reader_binding,
    hook_reader_role,
    hook_service_account,
    needs_hook_service_account,
    runner_role,
    runner_role_binding,
    runner_service_account,
)
from krally.kube.operator.builders.labels import hook_labels, label_value, task_labels
from krally.kube.operator.builders.pod import (
    container_security_context,
    owner_reference,
    pod_security_context,
    user_env_var,
)
from krally.kube.operator.builders.runner_job import runner_job, runner_parallelism

__all__ = [
    "child_name",
    "container_security_context",
    "hook_job",
    "hook_job_name",
    "hook_labels",
    "hook_payload",
    "hook_reader_binding",
    "hook_reader_role",
    "hook_service_account",
    "hook_service_account_name",
    "hook_timeout",
    "is_armed",
    "label_value",
    "needs_hook_service_account",
    "owner_reference",
    "pod_security_context",
    "runner_job",
    "runner_name",
    "runner_parallelism",
    "runner_role",
    "runner_role_binding",
    "runner_service_account",
    "task_label",
    "task_labels",
    "user_env_var",
]
