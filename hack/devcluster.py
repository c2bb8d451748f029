#!/usr/bin/env python3
"""A real, local Kubernetes control plane for development and tests: etcd, kube-apiserver and
kube-controller-manager, built from Go modules by hack/build-tools.sh, run as plain processes on
loopback.

    python hack/devcluster.py up       # start (or reuse) the plane; prints the kubeconfig path
    python hack/devcluster.py status   # exit 0 when it answers /readyz
    python hack/devcluster.py env      # shell exports: KUBECONFIG and PATH with kubectl/helm
    python hack/devcluster.py down     # stop every process it started (--purge also wipes state)

There is no kubelet and no scheduler: Pods are created and stay Pending, which is what the
controllers' side of the API needs. Everything lives under $KUBELOOP_DEVCLUSTER_DIR (default
<repo>/.cache/kubeloop/devcluster): certificates, etcd data, logs, pid files, kubeconfig. The API
server listens on $KUBELOOP_DEVCLUSTER_PORT (default 16443), etcd on that port minus 4064 and 4063.

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
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
SERVICE_CIDR = "10.96.0.0/16"
# The first address of SERVICE_CIDR: the in-cluster `kubernetes` Service, which the serving
# certificate must name.
SERVICE_IP = "10.96.0.1"


@dataclass(frozen=True)
class Layout:
    """Where the plane keeps its files, and the loopback ports it listens on."""

    root: Path
    bin: Path
    etcd_port: int
    etcd_peer_port: int
    apiserver_port: int

    @classmethod
    def from_env(cls) -> Layout:
        cache = Path(os.environ.get("KUBELOOP_CACHE", REPO / ".cache" / "kubeloop"))
        port = int(os.environ.get("KUBELOOP_DEVCLUSTER_PORT", "16443"))
        root = os.environ.get("KUBELOOP_DEVCLUSTER_DIR")
        return cls(
            root=Path(root) if root else cache / "devcluster",
            bin=cache / "bin",
            etcd_port=port - 4064,  # 12379 by default
            etcd_peer_port=port - 4063,
            apiserver_port=port,
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
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def pidfile(self, component: str) -> Path:
        return self.root / "run" / f"{component}.pid"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"


class DevClusterError(RuntimeError):
    """The plane could not be started; the message says which component and where its log is."""


# --- certificates ---------------------------------------------------------------------------


def ensure_pki(pki: Path) -> None:
    """Create the CA, serving, admin client and service-account keys once; reuse them after."""
    if (pki / "admin.crt").exists():
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
    ips = ["127.0.0.1", "::1", SERVICE_IP]
    issue(
        "apiserver",
        name("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips],
    )
    issue("admin", name("kubeloop-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH, [])
    # Service-account tokens are signed with RSA: every client library verifies RS256.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_key("sa.key", sa_key)
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def write_kubeconfig(layout: Layout) -> None:
    pki = layout.pki
    config = {
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
                "name": "kubeloop-admin",
                "user": {
                    "client-certificate": str(pki / "admin.crt"),
                    "client-key": str(pki / "admin.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "kubeloop-dev",
                "context": {"cluster": "kubeloop-dev", "user": "kubeloop-admin"},
            }
        ],
        "current-context": "kubeloop-dev",
    }
    # JSON is YAML: no YAML library needed before the project is installed.
    layout.kubeconfig.write_text(json.dumps(config, indent=2) + "\n")


# --- processes ------------------------------------------------------------------------------


def command_lines(layout: Layout) -> dict[str, list[str]]:
    """The exact command line of each component (pure: tests and `status` read it)."""
    pki, b = layout.pki, layout.bin
    etcd_url = f"http://127.0.0.1:{layout.etcd_port}"
    return {
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
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={layout.apiserver_port}",
            # The default reconciler refuses a loopback advertise address.
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,"
            "DefaultStorageClass,ResourceQuota,ValidatingAdmissionPolicy,"
            "MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
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
            "--v=1",
        ],
    }


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
            # Its own session: the plane outlives the shell or test run that started it.
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
        time.sleep(0.2)
    raise DevClusterError(
        f"timed out after {timeout:.0f}s waiting for {what}; see {layout.log(component)}:\n"
        + tail(layout.log(component))
    )


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- health ---------------------------------------------------------------------------------


@functools.cache
def _admin_ssl(layout: Layout) -> ssl.SSLContext:
    # Built once per plane: the readiness loops poll every 200 ms.
    context = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
    context.load_cert_chain(str(layout.pki / "admin.crt"), str(layout.pki / "admin.key"))
    return context


def api_get(layout: Layout, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET a path on the API server as the admin; (status, body), status 0 when unreachable."""
    try:
        with urllib.request.urlopen(
            layout.server + path, context=_admin_ssl(layout), timeout=timeout
        ) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ssl.SSLError):
        return 0, b""


def etcd_healthy(layout: Layout) -> bool:
    try:
        url = f"http://127.0.0.1:{layout.etcd_port}/health"
        with urllib.request.urlopen(url, timeout=1) as response:
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


def is_up(layout: Layout) -> bool:
    return all(running_pid(layout, c) for c in COMPONENTS) and apiserver_ready(layout)


# --- commands -------------------------------------------------------------------------------


def ensure_binaries(layout: Layout) -> None:
    missing = [c for c in (*COMPONENTS, "kubectl") if not (layout.bin / c).exists()]
    if missing:
        print(f"building missing tools ({', '.join(missing)}): hack/build-tools.sh", flush=True)
        subprocess.run(["bash", str(REPO / "hack" / "build-tools.sh")], check=True)


def up(layout: Layout) -> None:
    if is_up(layout):
        print(f"devcluster already running: {layout.kubeconfig}")
        return
    ensure_binaries(layout)
    down(layout, quiet=True)  # a half-running plane from a crash: start clean
    began = time.monotonic()
    ensure_pki(layout.pki)
    write_kubeconfig(layout)
    argv = command_lines(layout)

    steps = (
        ("etcd", "etcd /health", etcd_healthy, 30),
        ("kube-apiserver", "kube-apiserver /readyz", apiserver_ready, 90),
        ("kube-controller-manager", "the default ServiceAccount", controllers_ready, 60),
    )
    for component, what, ready, timeout in steps:
        process = start(layout, component, argv[component])
        wait_until(what, functools.partial(ready, layout), timeout, layout, component, process)
    print(f"devcluster up in {time.monotonic() - began:.1f}s: {layout.kubeconfig}")


def down(layout: Layout, quiet: bool = False, purge: bool = False) -> None:
    for component in reversed(COMPONENTS):
        pid = running_pid(layout, component)
        if pid is not None:
            stop_process(pid)
            if not quiet:
                print(f"stopped {component} (pid {pid})")
        layout.pidfile(component).unlink(missing_ok=True)
    if purge:
        import shutil

        shutil.rmtree(layout.root, ignore_errors=True)
        if not quiet:
            print(f"removed {layout.root}")


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
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def status(layout: Layout) -> bool:
    for component in COMPONENTS:
        pid = running_pid(layout, component)
        print(f"{component:25} {'running, pid ' + str(pid) if pid else 'stopped'}")
    ready = apiserver_ready(layout)
    print(f"{'/readyz':25} {'ok' if ready else 'not ready'}")
    print(f"{'kubeconfig':25} {layout.kubeconfig}")
    return ready and all(running_pid(layout, c) for c in COMPONENTS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the plane, or reuse a running one")
    down_parser = sub.add_parser("down", help="stop every component")
    down_parser.add_argument("--purge", action="store_true", help="also delete certs and data")
    sub.add_parser("status", help="exit 0 when the plane is up and ready")
    sub.add_parser("env", help="print shell exports for KUBECONFIG and PATH")
    args = parser.parse_args(argv)
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
    except DevClusterError as error:
        print(f"devcluster: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
