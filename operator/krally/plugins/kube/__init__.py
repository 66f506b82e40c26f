"""Hook plugins that disrupt a cluster through the Kubernetes API (``kube.pod_kill``,
``kube.scale``, ``kube.rollout_restart``, ``kube.node_cordon``, ``kube.node_drain``,
``kube.exec``, ``kube.apply``, ``kube.delete``), each declaring the RBAC rules it needs
(``krally rbac`` prints them). Loaded with the built-in plugins."""
