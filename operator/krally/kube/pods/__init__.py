"""The processes the operator starts in pods: the runner (:mod:`.runner`) and the hook pod
(:mod:`.hook`). They share the task's lean client (:mod:`.taskwatch`) and signal handling
(:mod:`.podsignals`), and import nothing of the operator (what both sides agree on is
:mod:`krally.api.wire`)."""
