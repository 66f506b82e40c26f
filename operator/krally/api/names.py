"""Group, version, kind and the label/annotation keys of the BenchmarkTask API: defined once."""

from __future__ import annotations

from typing import Final

GROUP: Final = "krally.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "BenchmarkTask"
LIST_KIND: Final = f"{KIND}List"
PLURAL: Final = "benchmarktasks"
SINGULAR: Final = "benchmarktask"
SHORT_NAMES: Final = ("bt",)
CATEGORIES: Final = ("krally",)
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

# Labels on every child object (DESIGN.md "Names").
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGER: Final = "krally"
LABEL_TASK: Final = "krally.dev/task"
LABEL_ROLE: Final = "krally.dev/role"
LABEL_HOOK_INDEX: Final = "krally.dev/hook-index"
LABEL_TRIGGER_UNIT: Final = "krally.dev/trigger-unit"
LABEL_TRIGGER_VALUE: Final = "krally.dev/trigger-value"
ROLE_RUNNER: Final = "runner"
ROLE_HOOK: Final = "hook"
# The operator's own clock when it sent the create request (ms precision): creationTimestamp has
# 1 s resolution, too coarse to measure the firing → Job lag.
ANNOTATION_CREATED_AT: Final = "krally.dev/created-at"
ANNOTATION_FIRED_AT: Final = "krally.dev/fired-at"
