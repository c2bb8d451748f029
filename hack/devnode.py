"""The dev cluster's node, as data: every configuration file and command line the node's components
read, and the cluster objects it adds (DNS Service, StorageClass), rendered from a NodeLayout by
pure functions. hack/devcluster.py writes and starts them; hack/hostnet.py touches the host.

The addresses are fixed: one node, one bridge, so one of each per machine.
    10.244.0.0/24   the node's Pods, on the bridge `kubeloop0`, gateway 10.244.0.1 (the host)
    10.96.0.0/16    Services; 10.96.0.1 is `kubernetes`, 10.96.0.10 is `kube-dns`

Standard library only (runs before the project is installed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NODE_NAME = "kubeloop-node"
BRIDGE = "kubeloop0"
CLUSTER_CIDR = "10.244.0.0/16"
POD_CIDR = "10.244.0.0/24"
GATEWAY = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/16"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = "kubeloop.dev/pause:3.10"
LOCAL_PATH_HELPER_IMAGE = "kubeloop.dev/local-path-helper:dev"
TESTKIT_IMAGE = "kubeloop.dev/testkit:dev"
CNI_BIN_DIR = "/usr/lib/cni"
LOCAL_PATH_NAMESPACE = "local-path-storage"
STORAGE_CLASS = "standard"
CNI_NETWORK = "kubeloop"
# Paths the node's components use outside their folder whatever they are told (hard-coded):
KUBELET_DEVICE_PLUGINS = "/var/lib/kubelet/device-plugins"  # kubelet's device-plugin socket
KUBELET_CONTAINER_LOGS = "/var/log/containers"  # kubelet's links to the Pods' logs
CNI_RESULT_CACHE = "/var/lib/cni/results"  # libcni (in containerd) caches each ADD's result
CONTAINERD_SHIM_SOCKETS = "/run/containerd/s"  # containerd 1.6's shim sockets
# The controller manager probes FlexVolume plugins there unless told otherwise (it is told).
FLEXVOLUME_DEFAULT = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
# Folders `down` removes when they are left empty: each with its empty parents up to the
# first folder one of these programs created.
SHARED_FOLDERS = (
    (KUBELET_DEVICE_PLUGINS, "/var/lib/kubelet"),
    (KUBELET_CONTAINER_LOGS, KUBELET_CONTAINER_LOGS),
    (CNI_RESULT_CACHE, "/var/lib/cni"),
    (CONTAINERD_SHIM_SOCKETS, "/run/containerd"),
    (FLEXVOLUME_DEFAULT, "/usr/libexec/kubernetes"),
)


@dataclass(frozen=True)
class NodePorts:
    """Loopback ports of the node's health and metrics endpoints, picked free at `up`."""

    scheduler: int
    kubelet_healthz: int
    proxy_healthz: int
    proxy_metrics: int
    coredns_health: int
    coredns_ready: int

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> NodePorts:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class NodeLayout:
    """Where the node's components keep their files, all under the dev cluster's folder."""

    root: Path  # the dev cluster's folder (devcluster.Layout.root)
    pki: Path
    bin: Path
    apiserver_port: int

    @property
    def server(self) -> str:
        return f"https://{GATEWAY}:{self.apiserver_port}"

    @property
    def node(self) -> Path:
        return self.root / "node"

    @property
    def containerd_root(self) -> Path:
        return self.node / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.node / "containerd" / "state"

    @property
    def containerd_config(self) -> Path:
        return self.node / "containerd" / "config.toml"

    @property
    def containerd_socket(self) -> Path:
        return self.node / "containerd" / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        return self.node / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        return self.node / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.node / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.node / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.node / "kubelet-config.json"

    @property
    def pod_logs(self) -> Path:
        return self.node / "pod-logs"

    @property
    def proxy_config(self) -> Path:
        return self.node / "kube-proxy-config.json"

    @property
    def corefile(self) -> Path:
        return self.node / "Corefile"

    @property
    def local_path_storage(self) -> Path:
        return self.node / "local-path"

    @property
    def local_path_config(self) -> Path:
        return self.node / "local-path-config.json"

    @property
    def local_path_helper_pod(self) -> Path:
        return self.node / "local-path-helper-pod.json"

    @property
    def images(self) -> Path:
        return self.node / "images"

    @property
    def ports_file(self) -> Path:
        return self.root / "run" / "node-ports.json"

    def kubeconfig(self, user: str) -> Path:
        return self.root / f"{user}.kubeconfig"


# --- containerd and CNI ---------------------------------------------------------------------


def containerd_config(node: NodeLayout) -> str:
    """containerd's config (version 2): its own root, state and socket; the CRI plugin as this
    machine needs it."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{node.containerd_root}"
state = "{node.containerd_state}"
# Plugins that would write outside our folder or probe for storage this machine lacks.
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{node.containerd_socket}"

[ttrpc]
  address = ""

[debug]
  address = ""

[metrics]
  address = ""

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # Root here lacks CAP_SYS_RESOURCE: kubelet's oom_score_adj of -998 for the sandbox would make
  # every runc create fail ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  # Pod network namespaces under our state folder, not /run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "runc"
  Root = "{node.runc_root}"
  # cgroup v1 and no systemd here: cgroupfs, like kubelet's cgroupDriver.
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{node.cni_conf_dir}"
  max_conf_num = 1
"""


def cni_conflist(node: NodeLayout) -> dict[str, Any]:
    """The Pod network: a bridge owned by the cluster, host-local addresses, portmap, and the
    firewall plugin (it admits Pod traffic even when a Docker engine set FORWARD to DROP)."""
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(node.cni_ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "firewall"},
        ],
    }


# --- kubelet, kube-proxy, kube-scheduler ----------------------------------------------------


def kubelet_config(node: NodeLayout, ports: NodePorts) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # cgroup v1 without systemd; v1.35 refuses cgroup v1 unless told.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        "imageServiceEndpoint": f"unix://{node.containerd_socket}",
        "address": GATEWAY,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.kubelet_healthz,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(node.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "podCIDR": POD_CIDR,
        "clusterDNS": [DNS_SERVICE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        # No upstream resolver inside Pods: nothing in a Pod queries the machine's DNS.
        "resolvConf": "",
        "podLogsDir": str(node.pod_logs),
        "volumePluginDir": str(node.node / "volume-plugins"),
        "maxPods": 60,
        # A shared development disk: evict only when it is really full, never GC images
        # (every image here was loaded by hand and cannot be pulled back).
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "containerLogMaxSize": "10Mi",
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "shutdownGracePeriod": "0s",
        "logging": {"format": "text"},
    }


def kubelet_args(node: NodeLayout) -> list[str]:
    return [
        str(node.bin / "kubelet"),
        f"--config={node.kubelet_config}",
        f"--kubeconfig={node.kubeconfig('kubelet')}",
        f"--root-dir={node.kubelet_root}",
        f"--cert-dir={node.kubelet_root / 'pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={GATEWAY}",
        "--v=1",
    ]


def kube_proxy_config(node: NodeLayout, ports: NodePorts) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(node.kubeconfig("kube-proxy"))},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "bindAddress": GATEWAY,
        "clusterCIDR": CLUSTER_CIDR,
        "healthzBindAddress": f"127.0.0.1:{ports.proxy_healthz}",
        "metricsBindAddress": f"127.0.0.1:{ports.proxy_metrics}",
        # NodePorts only on the gateway, never on the machine's own interfaces.
        "nodePortAddresses": [f"{GATEWAY}/32"],
        # Zero leaves the machine's conntrack sysctls as they are.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        # Apply endpoint changes at once: tests reach a Service right after it is ready.
        "iptables": {"minSyncPeriod": "0s", "syncPeriod": "30s"},
    }


def kube_proxy_args(node: NodeLayout) -> list[str]:
    return [str(node.bin / "kube-proxy"), f"--config={node.proxy_config}", "--v=1"]


def kube_scheduler_args(node: NodeLayout, ports: NodePorts) -> list[str]:
    kubeconfig = node.kubeconfig("kube-scheduler")
    return [
        str(node.bin / "kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        f"--cert-dir={node.node / 'scheduler-certs'}",
        "--v=1",
    ]


# --- cluster DNS ----------------------------------------------------------------------------


def corefile(node: NodeLayout, ports: NodePorts) -> str:
    """CoreDNS serves only the cluster's zones, on the gateway: Pods reach it through the kube-dns
    Service; there is no `forward`, so nothing is ever asked of a resolver outside."""
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 {{
    bind {GATEWAY}
    errors
    health 127.0.0.1:{ports.coredns_health}
    ready 127.0.0.1:{ports.coredns_ready}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa {{
        kubeconfig {node.kubeconfig("coredns")} kubeloop-dev
        pods insecure
        ttl 5
    }}
    cache 5
    loadbalance
}}
"""


def coredns_args(node: NodeLayout) -> list[str]:
    return [str(node.bin / "coredns"), "-conf", str(node.corefile)]


def dns_objects() -> list[dict[str, Any]]:
    """The conventional kube-dns Service, without a selector, and its EndpointSlice pointing at
    CoreDNS on the host (the gateway address Pods reach)."""
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kube-dns",
                "namespace": "kube-system",
                "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
            },
            "spec": {"clusterIP": DNS_SERVICE_IP, "ports": ports},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kube-dns-host",
                "namespace": "kube-system",
                "labels": {
                    "kubernetes.io/service-name": "kube-dns",
                    "endpointslice.kubernetes.io/managed-by": "devcluster.kubeloop.dev",
                },
            },
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": [GATEWAY], "conditions": {"ready": True}, "nodeName": NODE_NAME}
            ],
            "ports": ports,
        },
    ]


# --- storage --------------------------------------------------------------------------------


def local_path_config(node: NodeLayout) -> dict[str, Any]:
    return {
        "nodePathMap": [
            {
                "node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                "paths": [str(node.local_path_storage)],
            }
        ],
        # Our helper binary instead of upstream's busybox script (nothing can be pulled).
        "setupCommand": "/local-path-helper",
        "teardownCommand": "/local-path-helper",
        "cmdTimeoutSeconds": 60,
    }


def local_path_helper_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "helper-pod"},
        "spec": {
            "priorityClassName": "system-node-critical",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/disk-pressure",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ],
            "containers": [
                {
                    "name": "helper-pod",
                    "image": LOCAL_PATH_HELPER_IMAGE,
                    "imagePullPolicy": "Never",
                    # It creates and removes directories on the host path as root.
                    "securityContext": {"runAsUser": 0},
                }
            ],
        },
    }


def local_path_args(node: NodeLayout) -> list[str]:
    return [
        str(node.bin / "local-path-provisioner"),
        "start",
        f"--kubeconfig={node.kubeconfig('local-path-provisioner')}",
        f"--config={node.local_path_config}",
        f"--helper-pod-file={node.local_path_helper_pod}",
        f"--namespace={LOCAL_PATH_NAMESPACE}",
        f"--helper-image={LOCAL_PATH_HELPER_IMAGE}",
        "--service-account-name=default",
        "--provisioner-name=rancher.io/local-path",
    ]


def storage_objects() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": LOCAL_PATH_NAMESPACE},
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete",
        },
    ]


def rbac_objects() -> list[dict[str, Any]]:
    """What the host-process add-ons may do, each as its own user (its client certificate's CN)."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "kubeloop:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        _cluster_role_binding("kubeloop:coredns", "kubeloop:coredns", "system:coredns"),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "kubeloop:local-path-provisioner"},
            # Upstream's role (deploy/local-path-storage.yaml): it creates PersistentVolumes and
            # runs helper Pods, and reads the helper Pods' logs.
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "persistentvolumeclaims", "configmaps", "pods/log"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["pods"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["persistentvolumes"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["events"],
                    "verbs": ["create", "patch"],
                },
                {
                    "apiGroups": ["storage.k8s.io"],
                    "resources": ["storageclasses"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
        _cluster_role_binding(
            "kubeloop:local-path-provisioner",
            "kubeloop:local-path-provisioner",
            "system:local-path-provisioner",
        ),
    ]


def _cluster_role_binding(name: str, role: str, user: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
