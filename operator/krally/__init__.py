"""krally: Rally-style scheduled disruption benchmarks, locally or as a Kubernetes operator."""

__version__ = "0.1.0"
