"""The BenchmarkTask API, defined once: what ``task`` (the engine) and ``kube`` (the operator,
runner and hook pods) both import.

- :mod:`.names`: group, version, kind, plural, short names; the labels and annotations of
  child objects.
- :mod:`.types`: the vocabulary (phases, hook statuses, runner states, condition types) and the
  shapes (``TypedDict``) of spec, status, runner report, firing and hook result; the builders of
  hook results and errors.
- :mod:`.spec_schema`, :mod:`.status_schema`: the OpenAPI schemas the CRD is made of (the engine
  validates specs with the first); :mod:`.schema` walks them.
- :mod:`.times`: the one time format.
- :mod:`.crd`: the CustomResourceDefinition generator (``python -m krally.api.crd --write``).
"""
