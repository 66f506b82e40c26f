"""The one place a krally process finds its Kubernetes identity and builds its clients.

In a pod: the mounted ServiceAccount token and the ``kubernetes`` Service's address (in-cluster
configuration); elsewhere (``krally run`` or the operator on a laptop): the kubeconfig
(``$KUBECONFIG``, else ``~/.kube/config``). In-cluster comes first, as kopf's own login does.

Two kinds of client are built from it: the ``kubernetes`` package's ApiClient (the operator, the
``kube.*`` hooks, a runner outside a pod) and :class:`ApiEndpoint`, the standard library's
HTTPS to the API server that the runner's status writes and the armed hook pods' watch use (a
waiting pod stays at a fraction of the memory the package costs).
"""

from __future__ import annotations

import http.client
import os
import ssl
from dataclasses import dataclass
from typing import Any

from krally.errors import KrallyError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class NoCredentials(KrallyError):
    """Neither an in-cluster identity nor a readable kubeconfig."""


def in_pod() -> bool:
    """The kubelet put the ``kubernetes`` Service's address in this process's environment."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def token_file() -> str | None:
    """The mounted ServiceAccount token, when there is a non-empty one."""
    path = os.path.join(SERVICE_ACCOUNT_DIR, "token")
    try:
        return path if os.path.getsize(path) > 0 else None
    except OSError:
        return None


def in_cluster() -> bool:
    """In a pod with its ServiceAccount's token mounted."""
    return in_pod() and token_file() is not None


def kubeconfig_file() -> str | None:
    """The first existing file of ``$KUBECONFIG``, else ``~/.kube/config`` if it exists."""
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    paths.append(os.path.expanduser("~/.kube/config"))
    for path in paths:
        if os.path.isfile(path):
            return path
    return None


def own_namespace() -> str | None:
    """The namespace of the pod this process runs in (its ServiceAccount's), if any."""
    try:
        with open(os.path.join(SERVICE_ACCOUNT_DIR, "namespace"), encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def configuration() -> Any:
    """The ``kubernetes`` package's Configuration of this process's identity (a new one each
    call: no process-wide default is changed); NoCredentials when there is none."""
    # Imported here: the runner and armed hook pods never need the package (tens of MB).
    from kubernetes import client, config  # noqa: PLC0415 (lazy)

    configuration = client.Configuration()
    if in_cluster():
        config.load_incluster_config(client_configuration=configuration)
        return configuration
    path = kubeconfig_file()
    if path is None:
        raise NoCredentials("no ServiceAccount token is mounted and there is no kubeconfig")
    try:
        config.load_kube_config(config_file=path, client_configuration=configuration)
    except Exception as exc:  # the package raises many kinds for one unreadable file
        raise NoCredentials(f"cannot load kubeconfig {path}: {exc}") from None
    return configuration


def api_client() -> Any:
    """A ``kubernetes.client.ApiClient`` with this process's identity."""
    from kubernetes import client  # noqa: PLC0415 (lazy)

    return client.ApiClient(configuration())


@dataclass(frozen=True)
class ApiEndpoint:
    """Where and as whom to reach the API server with the standard library alone."""

    host: str
    port: int
    token_path: str
    ca_path: str | None

    @classmethod
    def in_cluster(cls) -> ApiEndpoint:
        """The pod's own: the ``kubernetes`` Service's address (always in a pod's environment,
        whatever ``enableServiceLinks`` says) and the mounted service account token."""
        try:
            host = os.environ["KUBERNETES_SERVICE_HOST"]
            port = int(os.environ.get("KUBERNETES_SERVICE_PORT") or 443)
        except (KeyError, ValueError) as exc:
            raise NoCredentials(f"not in a pod: KUBERNETES_SERVICE_HOST/PORT: {exc}") from exc
        token = os.path.join(SERVICE_ACCOUNT_DIR, "token")
        if not os.path.exists(token):
            raise NoCredentials(f"no service account token at {token} (not mounted)")
        return cls(host, port, token, os.path.join(SERVICE_ACCOUNT_DIR, "ca.crt"))

    def connect(self, timeout: float) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=self.ca_path)
        host = self.host.strip("[]")
        return http.client.HTTPSConnection(host, self.port, timeout=timeout, context=context)

    def token(self) -> str:
        # Read at every connect: the kubelet rotates projected tokens.
        with open(self.token_path, encoding="utf-8") as handle:
            return handle.read().strip()
