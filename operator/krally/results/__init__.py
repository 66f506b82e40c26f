"""krally's results in Rally's own JSON format, the one ``rally task import`` validates.

* ``rally``: the pure conversion of krally's result dicts to Rally's import schema, with
  krally's extras (warnings, timeline, aborted, run errors, unreached trigger values, trigger
  errors, per-firing Job names) moved to a top-level ``"krally"`` section that Rally ignores;
  and back (``inline_extras``) for ``krally report``.
* ``stream``: ``RallyJSONWriter``, which writes that document while the load runs, every
  per-iteration record appended as it finishes, so memory stays flat however long the load.
* ``cluster``: the same document from a BenchmarkTask's (bounded) status.
"""
