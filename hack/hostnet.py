"""What the dev cluster's node does to the machine outside its folder, and how it is undone:
the bridge and the Service route, iptables chains, mounts, cgroups, the few files kubelet insists
on, the kernel settings kubelet changes, and the processes a killed run may leave behind.

Every function here is safe to call when there is nothing to clean: `up` calls the cleanup first
to cope with a killed run, `down` calls it last. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import devnode

# Chains our components create: CNI-* (bridge ipMasq, portmap, firewall plugins), KUBE-* (kubelet
# canaries, kube-proxy). No other software on these machines names chains so.
OUR_CHAIN = re.compile(r"^(CNI|KUBE)-")
# Kernel settings kubelet's container manager sets at start (pkg/kubelet/cm setupKernelTunables);
# `up` records them first and `down` puts them back.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# The bridge plugin turns IPv4 forwarding on for a gateway bridge (isGateway).
IP_FORWARD = "net/ipv4/ip_forward"


def run(argv: list[str], check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


# --- processes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    pid: int
    argv: list[str]

    @property
    def name(self) -> str:
        return Path(self.argv[0]).name if self.argv else ""


def processes() -> Iterator[Process]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            yield Process(int(entry.name), raw.rstrip(b"\0").decode(errors="replace").split("\0"))


def node_owner(proc: Process) -> Path | None:
    """The dev-cluster folder a kubelet or containerd of ours runs from, else None."""
    if proc.name == "kubelet":
        for arg in proc.argv:
            if arg.startswith("--root-dir="):
                root = Path(arg.removeprefix("--root-dir="))
                # <devcluster folder>/node/kubelet
                return root.parent.parent if root.parent.name == "node" else None
    if proc.name == "containerd" and "--config" in proc.argv:
        config = Path(proc.argv[proc.argv.index("--config") + 1])
        if config.parts[-3:] == ("node", "containerd", "config.toml"):
            return config.parent.parent.parent
    return None


def other_nodes(ours: Path) -> dict[Path, int]:
    """Running nodes of ours whose folder is not `ours`: folder -> a pid."""
    found: dict[Path, int] = {}
    for proc in processes():
        owner = node_owner(proc)
        if owner is not None and owner.resolve() != ours.resolve():
            found.setdefault(owner, proc.pid)
    return found


# The programs a node of ours runs; a stray one is killed only if it names our folder.
NODE_PROGRAMS = frozenset(
    {
        "containerd",
        "containerd-shim-runc-v2",
        "kubelet",
        "kube-proxy",
        "kube-scheduler",
        "coredns",
        "local-path-provisioner",
    }
)


def stray_processes(node: devnode.NodeLayout) -> list[Process]:
    """Processes of ours a killed run left that still use our folder: containerd shims above all
    (they outlive containerd by design)."""
    marker = str(node.root)
    return [p for p in processes() if p.name in NODE_PROGRAMS and any(marker in a for a in p.argv)]


def kill_containers(node: devnode.NodeLayout) -> None:
    """Stop every container runc still runs from our state, then the shims that watched them."""
    for namespace_root in node.runc_root.glob("*"):
        listing = run(["runc", "--root", str(namespace_root), "list", "--format", "json"])
        try:
            containers = json.loads(listing.stdout or "[]") or []
        except ValueError:
            containers = []
        for container in containers:
            run(["runc", "--root", str(namespace_root), "delete", "--force", container["id"]])
    for proc in stray_processes(node):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)


# --- network --------------------------------------------------------------------------------


def bridge_exists() -> bool:
    return run(["ip", "link", "show", devnode.BRIDGE]).returncode == 0


def setup_bridge() -> None:
    """The bridge with the gateway address, before containerd and the API server start (the API
    server binds the gateway), and the Service range routed through it, so the host's traffic to
    a ClusterIP leaves from the gateway and never falls through to the default route."""
    if not bridge_exists():
        run(["ip", "link", "add", devnode.BRIDGE, "type", "bridge"], check=True)
    address = f"{devnode.GATEWAY}/{devnode.POD_CIDR.split('/')[1]}"
    shown = run(["ip", "-o", "-4", "addr", "show", "dev", devnode.BRIDGE]).stdout
    if address not in shown:
        run(["ip", "addr", "add", address, "dev", devnode.BRIDGE], check=True)
    run(["ip", "link", "set", devnode.BRIDGE, "up"], check=True)
    run(
        [
            "ip", "route", "replace", devnode.SERVICE_CIDR,
            "dev", devnode.BRIDGE, "src", devnode.GATEWAY,
        ],
        check=True,
    )  # fmt: skip


def remove_bridge() -> None:
    run(["ip", "route", "del", devnode.SERVICE_CIDR, "dev", devnode.BRIDGE])
    if bridge_exists():
        run(["ip", "link", "del", devnode.BRIDGE])
    # veth ends whose Pod namespace is gone are deleted with it; one left on no bridge would not be.
    for line in run(["ip", "-o", "link", "show", "type", "veth"]).stdout.splitlines():
        fields = line.split(":")
        if len(fields) > 1 and "master" not in line and fields[1].strip().startswith("veth"):
            name = fields[1].strip().split("@")[0]
            if _is_cni_veth(name):
                run(["ip", "link", "del", name])


def _is_cni_veth(name: str) -> bool:
    # The bridge plugin names host ends veth<8 hex>; Docker names its own veth<7 hex>.
    return re.fullmatch(r"veth[0-9a-f]{8}", name) is not None


def iptables_cleanup_rules(saved: str) -> list[list[str]]:
    """From `iptables-save` output, the commands that remove our chains: first every rule that
    jumps to one of ours from a chain not ours, then flush and delete ours (pure: tests read it)."""
    commands: list[list[str]] = []
    table = ""
    ours: list[str] = []
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            ours = []
        elif line.startswith(":"):
            chain = line[1:].split()[0]
            if OUR_CHAIN.match(chain):
                ours.append(chain)
        elif line.startswith("-A "):
            parts = shlex.split(line)
            chain = parts[1]
            target = parts[parts.index("-j") + 1] if "-j" in parts else ""
            if not OUR_CHAIN.match(chain) and OUR_CHAIN.match(target):
                commands.append(["-t", table, "-D", *parts[1:]])
        elif line.strip() == "COMMIT":
            commands.extend(["-t", table, "-F", chain] for chain in ours)
            commands.extend(["-t", table, "-X", chain] for chain in ours)
    return commands


def remove_iptables_chains() -> None:
    for family in ("iptables", "ip6tables"):
        if shutil.which(f"{family}-save") is None:
            continue
        saved = run([f"{family}-save"]).stdout
        for command in iptables_cleanup_rules(saved):
            run([family, "-w", *command])


def flush_conntrack() -> None:
    if shutil.which("conntrack") is None:
        return
    for flag in ("-s", "-d"):
        for cidr in (devnode.CLUSTER_CIDR, devnode.SERVICE_CIDR):
            run(["conntrack", "-D", flag, cidr])


# --- mounts, cgroups, files -----------------------------------------------------------------


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first."""
    prefix = str(root.resolve())
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_all(root: Path) -> list[str]:
    """Unmount everything below `root`; return what stays mounted."""
    for _ in range(3):
        points = mounts_under(root)
        if not points:
            return []
        for point in points:
            if run(["umount", point]).returncode != 0:
                run(["umount", "-l", point])
    return mounts_under(root)


def cgroup_dirs(name: str = "kubepods") -> list[Path]:
    """kubelet's cgroup trees in every v1 hierarchy (and v2's root), deepest first."""
    found: list[Path] = []
    base = Path("/sys/fs/cgroup")
    for top in [base / name, *(p / name for p in base.iterdir() if p.is_dir())]:
        if top.is_dir():
            found.extend(d for d in top.rglob("*") if d.is_dir())
            found.append(top)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_cgroups() -> None:
    for directory in cgroup_dirs():
        with contextlib.suppress(OSError):
            directory.rmdir()  # only empty ones go: a cgroup with tasks refuses


def remove_fixed_paths() -> None:
    """Remove what the node leaves outside its folder because the path is hard-coded:
    kubelet's device-plugin socket folder and /var/log/containers links, libcni's result cache
    (/var/lib/cni/results/<network>-<container>-<if>), containerd's shim socket folder
    (/run/containerd/s), and the FlexVolume folder the controller manager probes. Folders go
    only when empty: another program may share them."""
    shutil.rmtree(devnode.KUBELET_DEVICE_PLUGINS, ignore_errors=True)
    containers = Path(devnode.KUBELET_CONTAINER_LOGS)
    if containers.is_dir():
        for link in containers.iterdir():
            if link.is_symlink():
                link.unlink()
    remove_stale_sockets(Path(devnode.CONTAINERD_SHIM_SOCKETS))
    results = Path(devnode.CNI_RESULT_CACHE)
    if results.is_dir():
        for cached in results.glob(f"{devnode.CNI_NETWORK}-*"):
            cached.unlink(missing_ok=True)
    for folder, top in devnode.SHARED_FOLDERS:
        remove_empty_up(Path(folder), Path(top))


def remove_stale_sockets(folder: Path) -> None:
    """Remove the socket files in `folder` no process listens on: a shim killed with SIGKILL
    leaves its socket. Live ones (ours or another containerd's) are in /proc/net/unix."""
    if not folder.is_dir():
        return
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return
    bound = {fields[7] for fields in (line.split() for line in lines) if len(fields) > 7}
    for entry in folder.iterdir():
        if entry.is_socket() and str(entry) not in bound:
            entry.unlink(missing_ok=True)


def remove_empty_up(folder: Path, top: Path) -> None:
    """rmdir `folder` and its parents up to `top`, stopping at the first that is not empty."""
    while folder == top or top in folder.parents:
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            return
        folder = folder.parent


# --- kernel settings ------------------------------------------------------------------------


def read_sysctls(names: Iterable[str]) -> dict[str, str]:
    values = {}
    for name in names:
        with contextlib.suppress(OSError):
            values[name] = (Path("/proc/sys") / name).read_text().strip()
    return values


def save_sysctls(record: Path) -> None:
    """Record the settings kubelet and the bridge plugin will change, unless a record exists:
    after a killed run the current values are theirs, the record holds the machine's."""
    if not record.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
        values = read_sysctls((*KUBELET_SYSCTLS, IP_FORWARD))
        record.write_text(json.dumps(values, indent=2) + "\n")


def restore_sysctls(record: Path) -> None:
    """Put back what `save_sysctls` recorded. IPv4 forwarding stays on while a Docker engine
    runs: it needs it too, and it turned it on itself if it started after us."""
    try:
        values = json.loads(record.read_text())
    except (OSError, ValueError):
        return
    if any(p.name == "dockerd" for p in processes()):
        values.pop(IP_FORWARD, None)
    for name, value in values.items():
        with contextlib.suppress(OSError):
            (Path("/proc/sys") / name).write_text(value + "\n")
    record.unlink(missing_ok=True)


def wait_gone(pids: Iterable[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
