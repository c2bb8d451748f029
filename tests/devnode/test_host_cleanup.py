"""The host clean-up helpers on a scratch folder: what they remove and what they must leave."""

from __future__ import annotations

import socket
from pathlib import Path

import hostnet


def test_remove_empty_up_stops_at_the_first_folder_in_use_and_at_the_top(tmp_path: Path) -> None:
    top = tmp_path / "var" / "lib" / "cni"
    (top / "results").mkdir(parents=True)
    (top / "networks").mkdir()
    hostnet.remove_empty_up(top / "results", top)
    assert not (top / "results").exists()
    assert top.exists()  # `networks` is still there

    (top / "networks").rmdir()
    hostnet.remove_empty_up(top / "results", top)  # already gone: climbs on
    assert not top.exists()
    assert (tmp_path / "var" / "lib").exists()  # above the top: never touched


def test_stale_sockets_go_and_listening_ones_stay(tmp_path: Path) -> None:
    stale, live = tmp_path / "stale.sock", tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX) as gone:
        gone.bind(str(stale))
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(live))
        listening.listen()
        (tmp_path / "plain-file").write_text("not a socket")
        hostnet.remove_stale_sockets(tmp_path)
        assert not stale.exists()
        assert live.exists()
        assert (tmp_path / "plain-file").exists()


def test_a_cni_veth_is_told_from_dockers() -> None:
    assert hostnet._is_cni_veth("veth04dc23ff")
    assert not hostnet._is_cni_veth("veth1a2b3c4")  # Docker's: seven hex digits
    assert not hostnet._is_cni_veth("eth0")


def test_a_node_of_ours_is_recognised_by_its_kubelet_or_containerd_and_nothing_else() -> None:
    kubelet = hostnet.Process(1, ["/c/bin/kubelet", "--root-dir=/c/devcluster/node/kubelet"])
    containerd = hostnet.Process(
        2, ["containerd", "--config", "/c/devcluster/node/containerd/config.toml"]
    )
    dockers = hostnet.Process(
        3, ["containerd", "--config", "/var/run/docker/containerd/containerd.toml"]
    )
    foreign = hostnet.Process(4, ["/usr/bin/kubelet", "--root-dir=/var/lib/kubelet"])
    assert hostnet.node_owner(kubelet) == Path("/c/devcluster")
    assert hostnet.node_owner(containerd) == Path("/c/devcluster")
    assert hostnet.node_owner(dockers) is None
    assert hostnet.node_owner(foreign) is None
