#!/usr/bin/env python3
"""A real, local Kubernetes cluster for development and tests, built from Go modules by
hack/build-tools.sh and run as plain processes.

    python hack/devcluster.py up              # a single-node cluster (or reuse the running one)
    python hack/devcluster.py up --api-only   # only etcd, kube-apiserver, kube-controller-manager
    python hack/devcluster.py status          # exit 0 when every component is healthy
    python hack/devcluster.py env             # shell exports: KUBECONFIG and PATH with kubectl/helm
    python hack/devcluster.py load IMAGE...   # copy images from the Docker engine to the node
    python hack/devcluster.py down            # drain, stop everything, undo what the node did

The node (the default; `--api-only` or KUBELOOP_DEVCLUSTER_NODE=0 leave it out) adds containerd,
kube-scheduler, kubelet, kube-proxy (iptables), CoreDNS and local-path-provisioner, with Pods on
the bridge `kubeloop0` (10.244.0.0/24, the host is 10.244.0.1): see hack/devnode.py for its
configuration and hack/hostnet.py for what it does to the machine. It needs root, and only one
node runs per machine. Without the node, Pods are created and stay Pending, which is what the
controllers' side of the API needs.

Everything lives under $KUBELOOP_DEVCLUSTER_DIR (default $KUBELOOP_CACHE/devcluster, the cache
being <repo>/.cache/kubeloop): certificates, etcd data, containerd's images, logs, pid files,
kubeconfigs. The API server listens on $KUBELOOP_DEVCLUSTER_PORT (default 16443; on loopback
without the node, on 10.244.0.1 with it), etcd on that port minus 4064 and 4063.

This module must not import anything outside the standard library except `cryptography`
(certificates), so it runs before the project is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devnode
import hostnet
import image_tar

REPO = Path(__file__).resolve().parent.parent
PLANE = ("etcd", "kube-apiserver", "kube-controller-manager")
NODE = (
    "containerd",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "coredns",
    "local-path-provisioner",
)
# The plane's components, in start order (the API-only cluster).
COMPONENTS = PLANE
SERVICE_CIDR = devnode.SERVICE_CIDR
# The first address of SERVICE_CIDR: the in-cluster `kubernetes` Service, which the serving
# certificate must name.
SERVICE_IP = "10.96.0.1"
# Client certificates: file stem -> (user, group). Groups and the default RBAC bindings decide
# what each may do; the add-ons' own roles are in devnode.rbac_objects().
CLIENTS: dict[str, tuple[str, str | None]] = {
    "admin": ("kubeloop-admin", "system:masters"),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
    "kubelet": (f"system:node:{devnode.NODE_NAME}", "system:nodes"),
    "kube-proxy": ("system:kube-proxy", None),
    "kube-scheduler": ("system:kube-scheduler", None),
    "coredns": ("system:coredns", None),
    "local-path-provisioner": ("system:local-path-provisioner", None),
}
NODE_IMAGES = {
    # tag: binary in bin/ (the entrypoint); the pause image runs as 65535 like upstream's.
    devnode.PAUSE_IMAGE: ("pause", "65535"),
    devnode.LOCAL_PATH_HELPER_IMAGE: ("local-path-helper", "0"),
    devnode.TESTKIT_IMAGE: ("testkit", "65532"),
}


@dataclass(frozen=True)
class Layout:
    """Where the cluster keeps its files, its ports, and whether it runs the node."""

    root: Path
    bin: Path
    etcd_port: int
    etcd_peer_port: int
    apiserver_port: int
    node: bool = False

    @classmethod
    def from_env(cls, node: bool | None = None) -> Layout:
        """The layout the environment names. `node` None means: KUBELOOP_DEVCLUSTER_NODE if set,
        else the mode the cluster in that folder was last started in, else the node."""
        cache = Path(os.environ.get("KUBELOOP_CACHE", REPO / ".cache" / "kubeloop"))
        port = int(os.environ.get("KUBELOOP_DEVCLUSTER_PORT", "16443"))
        given = os.environ.get("KUBELOOP_DEVCLUSTER_DIR")
        root = Path(given) if given else cache / "devcluster"
        if node is None:
            node = default_node_mode(root)
        return cls(
            root=root,
            bin=cache / "bin",
            etcd_port=port - 4064,  # 12379 by default
            etcd_peer_port=port - 4063,
            apiserver_port=port,
            node=node,
        )

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def host(self) -> str:
        # With the node, Pods must reach the API server: it listens on the bridge's gateway.
        return devnode.GATEWAY if self.node else "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.apiserver_port}"

    @property
    def mode_file(self) -> Path:
        return self.root / "run" / "mode"

    @property
    def node_layout(self) -> devnode.NodeLayout:
        return devnode.NodeLayout(
            root=self.root, pki=self.pki, bin=self.bin, apiserver_port=self.apiserver_port
        )

    @property
    def components(self) -> tuple[str, ...]:
        return PLANE + NODE if self.node else PLANE

    def pidfile(self, component: str) -> Path:
        return self.root / "run" / f"{component}.pid"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"


def default_node_mode(root: Path) -> bool:
    flag = os.environ.get("KUBELOOP_DEVCLUSTER_NODE")
    if flag is not None:
        return flag not in ("0", "false", "no", "")
    try:
        return (root / "run" / "mode").read_text().strip() != "api-only"
    except OSError:
        return True


class DevClusterError(RuntimeError):
    """The cluster could not be started; the message says which component and where its log is."""


# --- certificates ---------------------------------------------------------------------------


def ensure_pki(pki: Path) -> None:
    """Create the CA, the serving and client certificates and the service-account key, each once:
    a folder made by an older version gains only what it lacks, and keeps its CA."""
    wanted_ips = ["127.0.0.1", "::1", SERVICE_IP, devnode.GATEWAY]
    # The serving certificate's addresses, recorded when it is issued: the common case (nothing
    # to issue) then needs no `cryptography`, as before the node existed.
    sans_record = pki / "apiserver.ips"
    files = ["ca.crt", "ca.key", "apiserver.crt", "sa.key", *(f"{c}.crt" for c in CLIENTS)]
    complete = all((pki / f).exists() for f in (*files, "apiserver.ips"))
    if complete and sans_record.read_text().split() == wanted_ips:
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    years = dt.timedelta(days=3650)

    def write_key(name: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
        (pki / name).write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (pki / name).chmod(0o600)

    def name(common: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    if not (pki / "ca.crt").exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name("kubeloop-devcluster-ca"))
            .issuer_name(name("kubeloop-devcluster-ca"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + years)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_key("ca.key", ca_key)
        (pki / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    loaded_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(loaded_key, ec.EllipticCurvePrivateKey)
    ca_key = loaded_key

    def issue(
        file: str, subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + years)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        write_key(f"{file}.key", key)
        (pki / f"{file}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    dns.append(f"kubernetes.default.svc.{devnode.CLUSTER_DOMAIN}")
    ips = [ipaddress.ip_address(i) for i in wanted_ips]
    if not _names_ips(pki / "apiserver.crt", ips):
        issue(
            "apiserver",
            name("kube-apiserver"),
            ExtendedKeyUsageOID.SERVER_AUTH,
            [x509.DNSName(d) for d in dns] + [x509.IPAddress(i) for i in ips],
        )
    sans_record.write_text(" ".join(wanted_ips) + "\n")
    for file, (user, group) in CLIENTS.items():
        if not (pki / f"{file}.crt").exists():
            issue(file, name(user, group), ExtendedKeyUsageOID.CLIENT_AUTH, [])
    if not (pki / "sa.key").exists():
        # Service-account tokens are signed with RSA: every client library verifies RS256.
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_key("sa.key", sa_key)
        (pki / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def _names_ips(
    cert_file: Path, ips: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address]
) -> bool:
    """Whether a serving certificate exists and names every address (old ones lack the gateway)."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return set(ips) <= set(sans.get_values_for_type(x509.IPAddress))


def kubeconfig_for(layout: Layout, user: str) -> dict[str, Any]:
    pki = layout.pki
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubeloop-dev",
                "cluster": {
                    "server": layout.server,
                    "certificate-authority": str(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": f"kubeloop-{user}",
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "kubeloop-dev",
                "context": {"cluster": "kubeloop-dev", "user": f"kubeloop-{user}"},
            }
        ],
        "current-context": "kubeloop-dev",
    }


def write_kubeconfig(layout: Layout, user: str = "admin") -> Path:
    path = layout.root / f"{user}.kubeconfig"
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON is YAML: no YAML library needed before the project is installed.
    path.write_text(json.dumps(kubeconfig_for(layout, user), indent=2) + "\n")
    return path


# --- command lines --------------------------------------------------------------------------


def command_lines(layout: Layout, ports: devnode.NodePorts | None = None) -> dict[str, list[str]]:
    """The exact command line of each component (pure: tests and `status` read it). The node's
    components are included when the layout runs the node and `ports` are given."""
    pki, b = layout.pki, layout.bin
    etcd_url = f"http://127.0.0.1:{layout.etcd_port}"
    admission = [
        "NamespaceLifecycle",
        "ServiceAccount",
        "DefaultStorageClass",
        "ResourceQuota",
        "ValidatingAdmissionPolicy",
        "MutatingAdmissionWebhook",
        "ValidatingAdmissionWebhook",
    ]
    if layout.node:
        # A kubelet may change only its own Node and the Pods bound to it.
        admission.append("NodeRestriction")
        network = [
            # Pods reach the API server through the bridge; the host reaches the same address.
            # It binds one address only: the gateway, not 0.0.0.0 (the machine's interfaces).
            f"--bind-address={devnode.GATEWAY}",
            f"--advertise-address={devnode.GATEWAY}",
            # Publishes the gateway as the `kubernetes` Service's endpoint.
            "--endpoint-reconciler-type=lease",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            # The node's name resolves nowhere: logs, exec and port-forward go to its IP.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ]
    else:
        network = [
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # The default reconciler refuses a loopback advertise address.
            "--endpoint-reconciler-type=none",
        ]
    lines = {
        "etcd": [
            str(b / "etcd"),
            "--name=kubeloop-dev",
            f"--data-dir={layout.root / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{layout.etcd_peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{layout.etcd_peer_port}",
            f"--initial-cluster=kubeloop-dev=http://127.0.0.1:{layout.etcd_peer_port}",
            "--listen-metrics-urls=",
            # A throwaway dev store: durability is not worth fsync's latency.
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=2147483648",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(b / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            *network,
            f"--secure-port={layout.apiserver_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--enable-admission-plugins=" + ",".join(admission),
            f"--cert-dir={layout.root / 'apiserver-certs'}",
            "--profiling=false",
            "--v=1",
        ],
        "kube-controller-manager": [
            str(b / "kube-controller-manager"),
            f"--kubeconfig={layout.kubeconfig}",
            "--leader-elect=false",
            "--controllers=*",
            "--secure-port=0",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            # Without kubelets nothing else would ever delete terminated pods.
            "--terminated-pod-gc-threshold=100",
            # Its default is under /usr/libexec, which it would create.
            f"--flex-volume-plugin-dir={layout.root / 'volume-plugins'}",
            "--v=1",
        ],
    }
    if layout.node and ports is not None:
        node = layout.node_layout
        lines |= {
            "containerd": ["containerd", "--config", str(node.containerd_config)],
            "kube-scheduler": devnode.kube_scheduler_args(node, ports),
            "kubelet": devnode.kubelet_args(node),
            "kube-proxy": devnode.kube_proxy_args(node),
            "coredns": devnode.coredns_args(node),
            "local-path-provisioner": devnode.local_path_args(node),
        }
    return lines


def write_node_files(layout: Layout, ports: devnode.NodePorts) -> None:
    """Every configuration file the node's components read."""
    node = layout.node_layout
    for directory in (
        node.containerd_root,
        node.containerd_state,
        node.cni_conf_dir,
        node.cni_ipam_dir,
        node.kubelet_root,
        node.pod_logs,
        node.local_path_storage,
        node.images,
    ):
        directory.mkdir(parents=True, exist_ok=True)
    node.containerd_config.write_text(devnode.containerd_config(node))
    (node.cni_conf_dir / "10-kubeloop.conflist").write_text(
        json.dumps(devnode.cni_conflist(node), indent=2) + "\n"
    )
    files: dict[Path, Any] = {
        node.kubelet_config: devnode.kubelet_config(node, ports),
        node.proxy_config: devnode.kube_proxy_config(node, ports),
        node.local_path_config: devnode.local_path_config(node),
        node.local_path_helper_pod: devnode.local_path_helper_pod(),
    }
    for path, content in files.items():
        path.write_text(json.dumps(content, indent=2) + "\n")
    node.corefile.write_text(devnode.corefile(node, ports))
    for user in CLIENTS:
        if user not in ("admin", "apiserver-kubelet-client"):
            write_kubeconfig(layout, user)
    node.ports_file.parent.mkdir(parents=True, exist_ok=True)
    node.ports_file.write_text(ports.to_json())


def pick_ports() -> devnode.NodePorts:
    probes = [socket.socket() for _ in range(6)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        numbers = [int(p.getsockname()[1]) for p in probes]
    finally:
        for probe in probes:
            probe.close()
    return devnode.NodePorts(*numbers)


def read_ports(layout: Layout) -> devnode.NodePorts | None:
    try:
        return devnode.NodePorts.from_json(layout.node_layout.ports_file.read_text())
    except (OSError, ValueError, TypeError):
        return None


# --- processes ------------------------------------------------------------------------------


def running_pid(layout: Layout, component: str) -> int | None:
    """The pid recorded for a component, if that process is still alive and is the component."""
    path = layout.pidfile(component)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return None
    return pid if Path(cmdline).name == component else None


def component_env(component: str) -> dict[str, str]:
    """The environment a component runs with: the cluster's own addresses never go through a
    proxy, and containerd's registry traffic goes to a closed loopback port, so a pull fails at
    once instead of leaving the machine (nothing can be pulled; images are loaded)."""
    env = dict(os.environ)
    direct = f"127.0.0.1,localhost,{devnode.CLUSTER_CIDR},{devnode.SERVICE_CIDR}"
    env["NO_PROXY"] = env["no_proxy"] = direct
    if component == "containerd":
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env[name] = "http://127.0.0.1:9"
        env["NO_PROXY"] = env["no_proxy"] = ""
    return env


def start(layout: Layout, component: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.pidfile(component).parent.mkdir(parents=True, exist_ok=True)
    with layout.log(component).open("ab") as log:
        log.write(f"\n--- {dt.datetime.now(dt.UTC).isoformat()} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=component_env(component),
            # Its own session: the cluster outlives the shell or test run that started it.
            start_new_session=True,
        )
    layout.pidfile(component).write_text(f"{proc.pid}\n")
    return proc


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    layout: Layout,
    component: str,
    process: subprocess.Popen[bytes],
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevClusterError(
                f"{component} exited while waiting for {what}; see {layout.log(component)}:\n"
                + tail(layout.log(component))
            )
        if check():
            return
        time.sleep(0.1)
    raise DevClusterError(
        f"timed out after {timeout:.0f}s waiting for {what}; see {layout.log(component)}:\n"
        + tail(layout.log(component))
    )


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(pid: int, grace: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # Reap it if it is our child (when `down` follows `up` in one process).
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop(layout: Layout, components: Sequence[str], quiet: bool) -> None:
    """Stop components: SIGTERM to all at once, then wait for each."""
    pids = {c: running_pid(layout, c) for c in components}
    for pid in pids.values():
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
    for component, pid in pids.items():
        if pid is not None:
            stop_process(pid)
            if not quiet:
                print(f"stopped {component} (pid {pid})")
        layout.pidfile(component).unlink(missing_ok=True)


# --- health ---------------------------------------------------------------------------------


def open_direct(
    request: urllib.request.Request | str, timeout: float, context: ssl.SSLContext | None = None
) -> Any:
    """urlopen that never goes through a proxy from the environment: every address we talk to is
    on this machine (loopback, or the node's gateway)."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers).open(request, timeout=timeout)


@functools.cache
def _admin_ssl(layout: Layout) -> ssl.SSLContext:
    # Built once per cluster: the readiness loops poll every 100 ms.
    context = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
    context.load_cert_chain(str(layout.pki / "admin.crt"), str(layout.pki / "admin.key"))
    return context


def api_request(
    layout: Layout,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """A request to the API server as the admin; (status, body), status 0 when unreachable."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(layout.server + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with open_direct(request, timeout, _admin_ssl(layout)) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ssl.SSLError):
        return 0, b""


def api_get(layout: Layout, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    return api_request(layout, "GET", path, timeout=timeout)


# Where each kind we apply lives in the API (kind -> group-version path prefix, plural).
RESOURCES = {
    "Namespace": ("/api/v1", "namespaces"),
    "Service": ("/api/v1", "services"),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices"),
    "StorageClass": ("/apis/storage.k8s.io/v1", "storageclasses"),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles"),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings"),
}


def object_path(obj: dict[str, Any]) -> str:
    prefix, plural = RESOURCES[obj["kind"]]
    meta = obj["metadata"]
    where = f"/namespaces/{meta['namespace']}" if "namespace" in meta else ""
    return f"{prefix}{where}/{plural}/{meta['name']}"


def apply(layout: Layout, objects: Sequence[dict[str, Any]]) -> None:
    """Server-side apply, as the field manager `devcluster`."""
    for obj in objects:
        status, body = api_request(
            layout,
            "PATCH",
            object_path(obj) + "?fieldManager=devcluster&force=true",
            obj,
            content_type="application/apply-patch+yaml",
        )
        if status not in (200, 201):
            raise DevClusterError(
                f"applying {obj['kind']} {obj['metadata']['name']}: HTTP {status} {body[:300]!r}"
            )


def etcd_healthy(layout: Layout) -> bool:
    try:
        url = f"http://127.0.0.1:{layout.etcd_port}/health"
        with open_direct(url, timeout=1) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def apiserver_ready(layout: Layout) -> bool:
    status, body = api_get(layout, "/readyz")
    return status == 200 and body.strip() == b"ok"


def controllers_ready(layout: Layout) -> bool:
    # The service-account controller creates `default` in every namespace: seeing it means
    # the controller manager is up and acting.
    status, _ = api_get(layout, "/api/v1/namespaces/default/serviceaccounts/default")
    return status == 200


def http_ok(url: str, insecure: bool = False) -> bool:
    context = ssl._create_unverified_context() if insecure else None
    try:
        with open_direct(url, timeout=1, context=context) as response:
            return bool(response.status == 200)
    except (OSError, ssl.SSLError):
        return False


def containerd_ready(layout: Layout) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(layout.node_layout.containerd_socket))
        except OSError:
            return False
    return True


def node_ready(layout: Layout) -> bool:
    status, body = api_get(layout, f"/api/v1/nodes/{devnode.NODE_NAME}")
    if status != 200:
        return False
    conditions = json.loads(body).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def node_checks(
    layout: Layout, ports: devnode.NodePorts
) -> dict[str, tuple[str, Callable[[], bool]]]:
    """For each node component: what its health means, and the check."""
    return {
        "containerd": ("containerd's socket", functools.partial(containerd_ready, layout)),
        "kube-scheduler": (
            "kube-scheduler /healthz",
            functools.partial(http_ok, f"https://127.0.0.1:{ports.scheduler}/healthz", True),
        ),
        "kubelet": ("the Node to be Ready", functools.partial(node_ready, layout)),
        "kube-proxy": (
            "kube-proxy /healthz",
            functools.partial(http_ok, f"http://127.0.0.1:{ports.proxy_healthz}/healthz"),
        ),
        "coredns": (
            "CoreDNS /ready",
            functools.partial(http_ok, f"http://127.0.0.1:{ports.coredns_ready}/ready"),
        ),
        # It has no health endpoint: running is all there is to know.
        "local-path-provisioner": ("local-path-provisioner", lambda: True),
    }


def is_up(layout: Layout) -> bool:
    if not all(running_pid(layout, c) for c in layout.components):
        return False
    if not apiserver_ready(layout):
        return False
    if not layout.node:
        return True
    ports = read_ports(layout)
    return ports is not None and all(check() for _, check in node_checks(layout, ports).values())


# --- images ---------------------------------------------------------------------------------


def ctr(layout: Layout, *args: str, stdin: Any = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["ctr", "--address", str(layout.node_layout.containerd_socket), "-n", "k8s.io", *args],
        stdin=stdin,
        capture_output=True,
        timeout=600,
    )


def normalize_ref(ref: str) -> str:
    """An image reference as containerd stores it: `kubeloop-runtime:dev` is
    `docker.io/library/kubeloop-runtime:dev` (pure)."""
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return f"{name}:{tag}"


def containerd_image_id(layout: Layout, ref: str) -> str | None:
    """The image id (config digest) containerd has under `ref`, or None."""
    listing = ctr(layout, "images", "ls", f"name=={normalize_ref(ref)}")
    lines = listing.stdout.decode().splitlines()[1:]
    if listing.returncode != 0 or not lines:
        return None
    digest = lines[0].split()[2]
    for _ in range(2):  # an index names the manifest, the manifest names the config
        content = ctr(layout, "content", "get", digest)
        if content.returncode != 0:
            return None
        document = json.loads(content.stdout)
        if "config" in document:
            return str(document["config"]["digest"])
        manifests = [
            m
            for m in document.get("manifests", [])
            if m.get("platform", {}).get("architecture") in ("amd64", None)
        ]
        if not manifests:
            return None
        digest = manifests[0]["digest"]
    return None


def checked_unpacked(listing: str) -> bool:
    """Whether the first image of a `ctr images check` listing is unpacked (its last column;
    pure)."""
    rows = listing.splitlines()[1:]
    return bool(rows) and rows[0].split()[-1] == "true"


def containerd_image_unpacked(layout: Layout, ref: str) -> bool:
    """Whether containerd has `ref`'s layers in its snapshotter, so a container can start."""
    checked = ctr(layout, "images", "check", f"name=={normalize_ref(ref)}")
    return checked.returncode == 0 and checked_unpacked(checked.stdout.decode())


def containerd_has(layout: Layout, ref: str, image_id: str) -> bool:
    """containerd has `ref` as the image `image_id`, unpacked."""
    return containerd_image_id(layout, ref) == image_id and containerd_image_unpacked(layout, ref)


def import_images(
    layout: Layout,
    what: str,
    refs: Sequence[str],
    run_import: Callable[[], subprocess.CompletedProcess[bytes]],
) -> None:
    """`ctr images import` (run_import), then every one of `refs` must be unpacked; one more try
    when not. containerd 1.6 can lose a parent snapshot while it unpacks: an import that moves a
    tag lets its garbage collector take the old image's layer chain, which the unpack had found
    and builds on ("parent snapshot ... does not exist: not found", containerd#3787). The content
    stays imported, so the image looks loaded but no container can start from it. On the second
    try the old image is gone and the chain is built afresh."""
    error = ""
    for _ in range(2):
        imported = run_import()
        if imported.returncode == 0 and all(containerd_image_unpacked(layout, r) for r in refs):
            return
        error = imported.stderr.decode().strip() or f"{', '.join(refs)} not unpacked"
    raise DevClusterError(f"importing {what}: {error}")


def import_node_images(layout: Layout) -> None:
    """Pack our own binaries into images and import those containerd does not have yet."""
    node = layout.node_layout
    for tag, (binary, user) in NODE_IMAGES.items():
        spec = image_tar.ImageSpec(
            tag=tag, files={binary: layout.bin / binary}, entrypoint=[f"/{binary}"], user=user
        )
        if containerd_has(layout, tag, image_tar.image_id(spec)):
            continue
        tar = node.images / f"{binary}.tar"
        image_tar.write_image_tar(spec, tar)
        import_images(
            layout, tag, [tag], functools.partial(ctr, layout, "images", "import", str(tar))
        )


def load(layout: Layout, images: Sequence[str]) -> None:
    """Copy images into the node's containerd, like `kind load docker-image`: each IMAGE is a
    Docker engine's image (`docker save IMAGE | ctr images import -`) or a `docker save` tar
    file. An image containerd already has under that name with the same id, unpacked, is
    skipped."""
    if not containerd_ready(layout):
        raise DevClusterError(f"the node's containerd is not running (start it: up); {layout.root}")
    for image in images:
        if Path(image).is_file():
            load_tar(layout, Path(image))
        else:
            load_from_docker(layout, image)


def load_from_docker(layout: Layout, image: str) -> None:
    inspected = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
    )
    if inspected.returncode != 0:
        raise DevClusterError(f"docker has no image {image}: {inspected.stderr.strip()}")
    wanted = inspected.stdout.strip()
    if containerd_has(layout, image, wanted):
        print(f"{image}: already loaded ({wanted[:19]})")
        return
    began = time.monotonic()

    def save_and_import() -> subprocess.CompletedProcess[bytes]:
        with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as save:
            imported = ctr(layout, "images", "import", "-", stdin=save.stdout)
        if save.returncode != 0:
            raise DevClusterError(f"loading {image}: docker save exited {save.returncode}")
        return imported

    import_images(layout, image, [image], save_and_import)
    print(f"{image}: loaded {wanted[:19]} in {time.monotonic() - began:.1f}s")


def load_tar(layout: Layout, tar: Path) -> None:
    import tarfile

    with tarfile.open(tar) as archive:
        member = archive.extractfile("manifest.json")
        manifest = json.loads(member.read()) if member else []
    tagged = [(tag, entry["Config"]) for entry in manifest for tag in entry.get("RepoTags") or []]
    if tagged and all(
        containerd_has(layout, tag, "sha256:" + Path(config).stem.removeprefix("sha256:"))
        for tag, config in tagged
    ):
        print(f"{tar}: already loaded ({', '.join(tag for tag, _ in tagged)})")
        return
    tags = [tag for tag, _ in tagged]
    import_images(
        layout, str(tar), tags, functools.partial(ctr, layout, "images", "import", str(tar))
    )
    print(f"{tar}: loaded {', '.join(tag for tag, _ in tagged) or '(untagged)'}")


# --- commands -------------------------------------------------------------------------------


NODE_BINARIES = ("kubelet", "kube-scheduler", "kube-proxy", "coredns", "local-path-provisioner")
HOST_COMMANDS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip", "iptables")


def ensure_binaries(layout: Layout) -> None:
    wanted = [*PLANE, "kubectl"]
    if layout.node:
        wanted += [*NODE_BINARIES, *(binary for binary, _ in NODE_IMAGES.values())]
    missing = [c for c in wanted if not (layout.bin / c).exists()]
    if missing:
        print(f"building missing tools ({', '.join(missing)}): hack/build-tools.sh", flush=True)
        env = {**os.environ, "KUBELOOP_CACHE": str(layout.bin.parent)}
        subprocess.run(["bash", str(REPO / "hack" / "build-tools.sh")], check=True, env=env)


def node_prerequisites() -> list[str]:
    """Why this machine cannot run the node (empty when it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the node needs root (network, mounts, cgroups)")
    missing = [c for c in HOST_COMMANDS if shutil.which(c) is None]
    if not Path(devnode.CNI_BIN_DIR, "bridge").exists():
        missing.append(f"{devnode.CNI_BIN_DIR}/bridge")
    if missing:
        problems.append(
            f"missing {', '.join(missing)}: apt-get install containerd runc "
            "containernetworking-plugins iptables iproute2 conntrack"
        )
    return problems


# Node components that keep no state of their own: one that died is restarted alone, without
# draining the node (the others, containerd and kubelet above all, restart the whole cluster).
RESTARTABLE = ("kube-scheduler", "kube-proxy", "coredns", "local-path-provisioner")


def heal(layout: Layout) -> bool:
    """Restart the stateless node components that are not running, if everything else is
    healthy; whether the cluster is up afterwards."""
    ports = read_ports(layout)
    if not layout.node or ports is None:
        return False
    dead = [c for c in layout.components if running_pid(layout, c) is None]
    if not dead or not set(dead) <= set(RESTARTABLE):
        return False
    checks = node_checks(layout, ports)
    if not (apiserver_ready(layout) and checks["kubelet"][1]()):
        return False
    argv = command_lines(layout, ports)
    for component in dead:
        process = start(layout, component, argv[component])
        what, check = checks[component]
        wait_until(what, check, 60, layout, component, process)
        print(f"restarted {component}")
    return is_up(layout)


def up(layout: Layout) -> None:
    if is_up(layout) or heal(layout):
        print(f"devcluster already running: {layout.kubeconfig}")
        return
    if not layout.node:
        running = Layout.from_env(node=True)
        if running.root == layout.root and is_up(running):
            # The node is a superset of the API-only cluster: reuse it rather than stop it.
            print(f"devcluster already running (with the node): {running.kubeconfig}")
            return
    else:
        problems = node_prerequisites()
        if problems:
            raise DevClusterError("cannot run the node: " + "; ".join(problems))
        others = hostnet.other_nodes(layout.root)
        if others:
            folder, pid = next(iter(others.items()))
            raise DevClusterError(
                f"another devcluster node is running from {folder} (pid {pid}); only one node "
                f"fits on a machine. Use it (KUBECONFIG={folder / 'admin.kubeconfig'}), stop it "
                f"(KUBELOOP_DEVCLUSTER_DIR={folder} python hack/devcluster.py down), or start "
                "this cluster without the node (up --api-only)"
            )
    ensure_binaries(layout)
    # What a crashed or killed run left (processes, and for the node mounts, chains, the
    # bridge): start clean.
    down(layout, quiet=True)
    began = time.monotonic()
    ensure_pki(layout.pki)
    write_kubeconfig(layout)
    layout.mode_file.parent.mkdir(parents=True, exist_ok=True)
    layout.mode_file.write_text("node\n" if layout.node else "api-only\n")
    ports = pick_ports() if layout.node else None
    argv = command_lines(layout, ports)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    if layout.node and ports is not None:
        write_node_files(layout, ports)
        hostnet.setup_bridge()
        # containerd starts while the plane does: it needs nothing from it.
        processes["containerd"] = start(layout, "containerd", argv["containerd"])

    steps = (
        ("etcd", "etcd /health", etcd_healthy, 30),
        ("kube-apiserver", "kube-apiserver /readyz", apiserver_ready, 90),
        ("kube-controller-manager", "the default ServiceAccount", controllers_ready, 60),
    )
    for component, what, ready, timeout in steps:
        processes[component] = start(layout, component, argv[component])
        wait_until(what, functools.partial(ready, layout), timeout, layout, component,
                   processes[component])  # fmt: skip
    if layout.node and ports is not None:
        start_node(layout, ports, argv, processes)
    print(f"devcluster up in {time.monotonic() - began:.1f}s: {layout.kubeconfig}")


def start_node(
    layout: Layout,
    ports: devnode.NodePorts,
    argv: dict[str, list[str]],
    processes: dict[str, subprocess.Popen[bytes]],
) -> None:
    node = layout.node_layout
    apply(layout, devnode.rbac_objects() + devnode.dns_objects() + devnode.storage_objects())
    checks = node_checks(layout, ports)
    what, check = checks["containerd"]
    wait_until(what, check, 30, layout, "containerd", processes["containerd"])
    import_node_images(layout)
    hostnet.save_sysctls(node.node / "sysctl-before.json")
    began = time.monotonic()
    for component in NODE[1:]:
        processes[component] = start(layout, component, argv[component])
    for component in NODE:
        what, check = checks[component]
        wait_until(what, check, 60, layout, component, processes[component])
        if component == "kubelet":
            print(f"node {devnode.NODE_NAME} Ready {time.monotonic() - began:.1f}s after kubelet")


TERMINAL = ("Succeeded", "Failed")


def pods_on_node(pods: Sequence[dict[str, Any]]) -> list[str]:
    """The Pods kubelet still runs: bound to a node and not in a terminal phase (kubelet reports
    the terminal phase once it has stopped the containers and torn down the sandbox)."""
    return [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in pods
        if p.get("spec", {}).get("nodeName") and p.get("status", {}).get("phase") not in TERMINAL
    ]


def drain(layout: Layout, timeout: float = 60) -> None:
    """Delete every Pod and wait until kubelet has stopped those it ran: a kubelet stopped while
    Pods terminate leaks their network (CNI chains, address leases). The scheduler is stopped
    first, so replacements stay Pending; the controller manager still runs, so finalizers it
    owns (a Job's Pod tracking) do not hold the wait."""
    status, body = api_get(layout, "/api/v1/pods")
    if status != 200:
        return
    namespaces = {p["metadata"]["namespace"] for p in json.loads(body)["items"]}
    for namespace in namespaces:
        api_request(layout, "DELETE", f"/api/v1/namespaces/{namespace}/pods?gracePeriodSeconds=5")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = api_get(layout, "/api/v1/pods")
        if status != 200 or not pods_on_node(json.loads(body)["items"]):
            return
        time.sleep(0.2)


def down(layout: Layout, quiet: bool = False, purge: bool = False) -> None:
    node_here = layout.node or any(running_pid(layout, c) for c in NODE)
    if node_here:
        down_node(layout, quiet)
    else:
        stop(layout, list(reversed(PLANE)), quiet)
    if purge:
        shutil.rmtree(layout.root, ignore_errors=True)
        if not quiet:
            print(f"removed {layout.root}")


def down_node(layout: Layout, quiet: bool) -> None:
    node = layout.node_layout
    # Nothing may place or provision Pods on the node while it is drained.
    stop(layout, ["kube-scheduler", "local-path-provisioner"], quiet)
    if running_pid(layout, "kubelet") and apiserver_ready(layout):
        drain(layout)
    stop(
        layout, ["kube-controller-manager", "kube-proxy", "coredns", "kubelet", "containerd"], quiet
    )
    stop(layout, ["kube-apiserver", "etcd"], quiet)
    hostnet.kill_containers(node)
    alone = not hostnet.other_nodes(layout.root)
    if alone and (layout.bin / "kube-proxy").exists():
        # kube-proxy leaves its rules when it exits; --cleanup removes them (iptables, IPVS).
        subprocess.run([str(layout.bin / "kube-proxy"), "--cleanup"], capture_output=True)
    left = hostnet.unmount_all(node.node)
    if left and not quiet:
        print(f"still mounted under {node.node}: {', '.join(left)}", file=sys.stderr)
    # No container runs any more: every address lease is stale.
    shutil.rmtree(node.cni_ipam_dir, ignore_errors=True)
    if alone:
        hostnet.remove_iptables_chains()
        hostnet.flush_conntrack()
        hostnet.remove_bridge()
        hostnet.remove_cgroups()
        hostnet.remove_fixed_paths()
        hostnet.restore_sysctls(node.node / "sysctl-before.json")
    elif not quiet:
        print("another node runs on this machine: left the bridge and iptables alone")


def rss_mb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def status(layout: Layout) -> bool:
    healthy = True
    memory = 0
    for component in PLANE:
        pid = running_pid(layout, component)
        healthy &= pid is not None
        memory += rss_mb(pid) if pid else 0
        print(f"{component:25} {'running, pid ' + str(pid) if pid else 'stopped'}")
    ready = apiserver_ready(layout)
    healthy &= ready
    print(f"{'/readyz':25} {'ok' if ready else 'not ready'}")
    if layout.node:
        ports = read_ports(layout)
        checks = node_checks(layout, ports) if ports else {}
        for component in NODE:
            pid = running_pid(layout, component)
            what, check = checks.get(component, ("health", lambda: False))
            ok = pid is not None and ready and check()
            healthy &= ok
            memory += rss_mb(pid) if pid else 0
            state = f"running, pid {pid}, " if pid else "stopped, "
            print(f"{component:25} {state}{what}: {'ok' if ok else 'not ok'}")
    print(f"{'memory (RSS, all)':25} {memory} MB")
    print(f"{'kubeconfig':25} {layout.kubeconfig}")
    return healthy


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start the cluster, or reuse a running one")
    up_parser.add_argument(
        "--api-only",
        action="store_true",
        help="no node: etcd, kube-apiserver, kube-controller-manager only",
    )
    down_parser = sub.add_parser("down", help="drain, stop every component, clean the host")
    down_parser.add_argument("--purge", action="store_true", help="also delete certs and data")
    sub.add_parser("status", help="exit 0 when every component is healthy")
    sub.add_parser("env", help="print shell exports for KUBECONFIG and PATH")
    load_parser = sub.add_parser("load", help="copy images from the Docker engine to the node")
    load_parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="a Docker engine's image, or a docker-save tar"
    )
    args = parser.parse_args(argv)
    if args.command == "up":
        # `up` means the node unless told otherwise, whatever mode the folder last ran in.
        flag = os.environ.get("KUBELOOP_DEVCLUSTER_NODE", "1")
        layout = Layout.from_env(node=not args.api_only and flag not in ("0", "false", "no"))
    else:
        layout = Layout.from_env()
    try:
        if args.command == "up":
            up(layout)
        elif args.command == "down":
            down(layout, purge=args.purge)
        elif args.command == "status":
            return 0 if status(layout) else 1
        elif args.command == "env":
            print(f"export KUBECONFIG={layout.kubeconfig}")
            print(f'export PATH="{layout.bin}:$PATH"')
        elif args.command == "load":
            load(layout, args.images)
    except DevClusterError as error:
        print(f"devcluster: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
