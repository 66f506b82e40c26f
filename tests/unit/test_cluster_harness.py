"""The test cluster's own parts that need no cluster: image recipe keys, failure messages,
node configuration (no route or DNS that could leave the machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.cluster import images, realnode


def test_a_failed_image_step_names_the_step_and_its_log(tmp_path: Path) -> None:
    builder = images.Builder(kubectl=tmp_path / "kubectl", cache=tmp_path, quiet=True)
    builder.logs.mkdir(parents=True)
    with pytest.raises(images.ImageError) as failed:
        builder._run("krally: buildah bud", ["sh", "-c", "echo the cause >&2; exit 3"])
    message = str(failed.value)
    assert "krally: buildah bud failed (exit 3)" in message and "\n" not in message
    log = Path(message.rsplit("log: ", 1)[1])
    assert "the cause" in log.read_text()
    with pytest.raises(images.ImageError, match="not-a-tool is not installed"):
        builder._run("base: debootstrap", ["not-a-tool"])


def test_recipe_keys_change_with_their_inputs(tmp_path: Path) -> None:
    source = images.REPO_ROOT / "tests" / "cluster" / "images" / "pause.c"
    key = images._digest(["1"], [source])
    assert key == images._digest(["1"], [source])
    assert key != images._digest(["2"], [source])
    assert key != images._digest(["1"], [source, images.HERE / "alt.Dockerfile"])


def test_the_debian_mirror_comes_from_this_machines_apt_sources() -> None:
    if not any(Path(p).exists() for p in ("/etc/apt/sources.list.d/debian.sources",
                                          "/etc/apt/sources.list")):  # fmt: skip
        pytest.skip("not a Debian machine: no apt sources to read")
    assert images.debian_mirror().startswith(("http://", "https://"))


def test_node_network_configuration_routes_nothing_off_the_machine(tmp_path: Path) -> None:
    net = realnode.NodeNetwork(3)
    assert (net.pod_cidr, net.service_cidr, net.host_ip) == (
        "10.88.3.0/24", "10.89.3.0/24", "10.87.3.1",
    )  # fmt: skip
    cni = json.loads(realnode.cni_config(tmp_path, net))
    bridge = cni["plugins"][0]
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["routes"] == [{"dst": net.service_cidr}]  # no 0.0.0.0/0
    kubelet = yaml.safe_load(realnode.kubelet_config(tmp_path, net, tmp_path / "ca.crt"))
    assert kubelet["resolvConf"] == str(tmp_path / "resolv.conf")
    assert kubelet["cgroupRoot"] == f"/{net.cgroup_name}"
    assert kubelet["authentication"]["anonymous"]["enabled"] is False
    assert kubelet["imageGCHighThresholdPercent"] == 100
    containerd = realnode.containerd_config(tmp_path, tmp_path / "root", "localhost/pause:x")
    assert "restrict_oom_score_adj = true" in containerd
    assert 'sandbox_image = "localhost/pause:x"' in containerd
