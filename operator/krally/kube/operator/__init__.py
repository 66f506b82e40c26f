"""The krally operator, in small parts (imported by ``krally operator``; kopf only in handlers).

- :mod:`.settings`: the one settings object, read once from the environment and CLI flags.
- :mod:`.store`: the watched store, kopf indices of tasks, their Jobs and pods (plain dicts).
- :mod:`.queue`: the work queue: one reconcile at a time per task, bursts coalesced, deferred
  flushes, background work kept referenced.
- :mod:`.admission`: what a spec must pass before anything runs (schema, plugin configs, the
  service-account policy).
- :mod:`.planner`: **pure** ``plan(task, observed, memory, ...) -> actions``: which Jobs to
  create or delete, which status to write and when.
- :mod:`.apply`: the one place that carries actions out against the API, with one retry policy.
- :mod:`.controller`: ties them together per task (reconcile, the firing fast path).
- :mod:`.handlers`: the kopf wiring alone.
"""
