"""The operator's one ApiClient: in-cluster credentials, else a kubeconfig file.

The client is built once (`connect`) and passed to the edge functions; tests build their own from
the test cluster's kubeconfig. The dynamic client's discovery is cached per process.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient


def connect(kubeconfig: str | None = None, *, connections: int | None = None) -> k8s.ApiClient:
    """An ApiClient: the given kubeconfig, else in-cluster, else `$KUBECONFIG`/~/.kube/config.

    `connections` sizes the pool of kept-alive connections (the client's default is 5 per CPU):
    give the number of threads that use the client at once, or their requests queue for one."""
    configuration = k8s.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    elif os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(client_configuration=configuration)
    if connections is not None:
        configuration.connection_pool_maxsize = max(connections, 1)
    return k8s.ApiClient(configuration)


@lru_cache(maxsize=8)
def dynamic(api: k8s.ApiClient) -> DynamicClient:
    """The dynamic client over `api` (discovery done lazily, once per group)."""
    return DynamicClient(api)


def resource(api: k8s.ApiClient, api_version: str, kind: str) -> Any:
    """The discovered resource of (apiVersion, kind), cached."""
    return _resource(dynamic(api), api_version, kind)


@lru_cache(maxsize=64)
def _resource(client: DynamicClient, api_version: str, kind: str) -> Any:
    return client.resources.get(api_version=api_version, kind=kind)


def credentials(api: k8s.ApiClient) -> dict[str, Any]:
    """The server and credentials of `api`, as the keyword arguments of `kopf.ConnectionInfo`,
    so Kopf's watches and our requests use one identity."""
    configuration = api.configuration
    authorization = (configuration.api_key or {}).get("authorization") or (
        configuration.api_key or {}
    ).get("BearerToken")
    scheme, token = None, None
    if authorization:
        if configuration.api_key_prefix.get("authorization"):
            scheme, token = configuration.api_key_prefix["authorization"], authorization
        else:
            scheme, _, token = str(authorization).partition(" ")
    return {
        "server": configuration.host,
        "ca_path": configuration.ssl_ca_cert,
        "insecure": not configuration.verify_ssl,
        "scheme": scheme,
        "token": token,
        "certificate_path": configuration.cert_file,
        "private_key_path": configuration.key_file,
    }
