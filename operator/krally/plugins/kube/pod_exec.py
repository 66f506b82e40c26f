"""Hook ``kube.exec``: run a command in a pod through the API's exec subresource (like
``kubectl exec``, without kubectl). The target is a named pod or the first Ready pod matching a
selector; an exit code other than 0 fails the hook with the command's stdout and stderr."""

from __future__ import annotations

import re
import time
from typing import Any

from krally import consts
from krally.plugins.kube import api, base, objects
from krally.task import hook

MAX_TEXT = 1000  # characters of stdout/stderr kept (the result must fit 4096 bytes)


def clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else "..." + text[-MAX_TEXT:]


@hook.configure(name="kube.exec")
class PodExec(base.KubeHook):
    """Run ``command`` in a container of a pod."""

    TITLE = "command run"
    COLUMNS = ["pod", "namespace", "container", "command", "exit code", "at", "seconds"]
    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA7,
        "type": "object",
        "additionalProperties": False,
        "required": ["command"],
        "properties": {
            "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "namespace": {"type": "string", "minLength": 1},
            "pod": {"type": "string", "minLength": 1},
            "selector": {"type": "string", "minLength": 1},
            "container": {"type": "string", "minLength": 1},
        },
    }

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[tuple[str, str]]:
        if ("pod" in config) == ("selector" in config):
            return [("pod", "give exactly one of pod and selector")]
        return []

    @classmethod
    def rbac_rules(cls, config: Any, namespace: str) -> list[api.Rule]:
        ns = config.get("namespace") or namespace
        read = "list" if config.get("selector") else "get"
        # The exec websocket is a GET upgrade: authorised as get on pods/exec, and (since
        # Kubernetes 1.31, AuthorizePodWebsocketUpgradeCreatePermission) as create too.
        return [api.rule(ns, "", "pods", read), api.rule(ns, "", "pods/exec", "create", "get")]

    def act(self, kube: api.Kube) -> None:
        ns = self.namespace
        pod = self.target(kube, ns)
        name = pod["metadata"]["name"]
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        container = self.config.get("container") or (containers[0] if containers else "")
        command = list(self.config["command"])
        shown = " ".join(command)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        started, at = time.monotonic(), base.now_iso()
        code, out, err = self.execute(kube, ns, name, container, command)
        seconds = round(time.monotonic() - started, 3)
        self.record(name, ns, container, shown, code, at, seconds)
        self.timings.append(["exec (s)", seconds])
        if code != 0:
            raise api.HookFailure(
                "CommandFailed",
                f"command {shown!r} in pod {ns}/{name} (container {container}) exited {code}",
                f"stdout: {clip(out)}\nstderr: {clip(err)}",
            )

    def target(self, kube: api.Kube, ns: str) -> dict[str, Any]:
        if self.config.get("pod"):
            name = self.config["pod"]
            pod: dict[str, Any] = kube.get(
                api.api_path("", "v1", "pods", ns, name), resource="pods", namespace=ns, name=name
            )
            return pod
        selector = self.config["selector"]
        found = kube.get(
            api.api_path("", "v1", "pods", ns),
            verb="list",
            resource="pods",
            namespace=ns,
            query={"labelSelector": selector},
        )
        items = sorted(found.get("items") or [], key=objects.creation_key)
        for candidate in items:
            if objects.pod_ready(candidate):
                return candidate
        raise api.HookFailure(
            "NoPodsMatch",
            f"no Ready pod matches selector {selector!r} in namespace {ns}"
            + (f" ({len(items)} match, none Ready)" if items else ""),
        )

    def execute(
        self, kube: api.Kube, ns: str, name: str, container: str, command: list[str]
    ) -> tuple[int, str, str]:
        # The Kubernetes client only when the hook runs: `krally run` of other tasks skips it.
        from kubernetes import client  # noqa: PLC0415 (lazy)
        from kubernetes.client.rest import ApiException  # noqa: PLC0415 (lazy)
        from kubernetes.stream import stream  # noqa: PLC0415 (lazy)

        core = client.CoreV1Api(kube.api_client)
        try:
            ws = stream(
                core.connect_get_namespaced_pod_exec,
                name,
                ns,
                command=command,
                container=container or None,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
        except ApiException as exc:
            text = f"{exc.reason or ''} {exc.body or ''}".strip()
            match = re.search(r"Handshake status (\d{3})", text)
            status = int(match.group(1)) if match else int(exc.status or 0)
            if status:
                raise api.api_failure(
                    status, {"message": text}, "create", "pods/exec", ns, name
                ) from None
            raise api.HookFailure(
                "ApiUnreachable", f"exec in pod {ns}/{name}: {text}", ""
            ) from None
        out: list[str] = []
        err: list[str] = []
        try:
            while ws.is_open():
                if self.stopping:
                    raise api.HookFailure("Stopped", "the hook was stopped during the exec")
                ws.update(timeout=0.5)
                if ws.peek_stdout():
                    out.append(ws.read_stdout())
                if ws.peek_stderr():
                    err.append(ws.read_stderr())
            out.append(ws.read_stdout() if ws.peek_stdout() else "")
            err.append(ws.read_stderr() if ws.peek_stderr() else "")
            code = ws.returncode
        finally:
            ws.close()
        return int(code if code is not None else -1), "".join(out), "".join(err)
