"""The runner pod (``krally runner``, :mod:`.main`): the task's load and ``status.runner``.

- :mod:`.settings`: its settings, read once from its env (``RunnerSettings.load``);
- :mod:`.writer`: the one writer of ``status.runner`` (throttled progress, firings at once, the
  final write retried through an API outage);
- :mod:`.recorder`: the engine's HookLauncher, recording each firing (and pushing it over
  :mod:`.signal` to the armed pod waiting for it);
- :mod:`.launcher`: one call of the engine, wired to the writer and the metrics (:mod:`.metrics`);
- :mod:`.single`, :mod:`.shards`: a load in one pod, one pod of a distributed load;
- :mod:`.report`: the final state (one rule) and the exit code; :mod:`.translate`: the engine's
  results into the status and back; :mod:`.taskapi`: the task's API.
"""
