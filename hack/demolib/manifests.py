"""The objects the demo makes itself (pure): its namespace, the Job that seeds the base data, and
one-shot Jobs on the artifact claim (the e2e tests copy and tamper with artifacts that way).

Everything else it applies is examples/demo/iris-loop.yaml, as a user would.
"""

from __future__ import annotations

from typing import Any

# The seed Job writes the 150 iris rows where the demo Dataset's folder is. Written under a dot
# name and renamed: the folder reader skips dot files, so a half-written file is never read.
SEED_SCRIPT = """
import os, sys
from sklearn.datasets import load_iris
folder = sys.argv[1]
os.makedirs(os.path.join(folder, "captures"), exist_ok=True)
data = load_iris(as_frame=True)
frame = data.frame
# The species by name: the model's classes, its answers and the feedback labels read as words.
frame["target"] = data.target_names[data.target]
temporary = os.path.join(folder, ".base.csv.tmp")
frame.to_csv(temporary, index=False)
os.replace(temporary, os.path.join(folder, "base.csv"))
print(f"wrote {len(frame)} rows to {folder}/base.csv")
"""

RESTRICTED_CONTAINER: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def namespace(name: str) -> dict[str, Any]:
    """The demo's namespace, with the restricted Pod Security level enforced like production."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/part-of": "kubeloop-demo",
                "pod-security.kubernetes.io/enforce": "restricted",
            },
        },
    }


def pvc_mount(uri: str) -> tuple[str, str]:
    """`pvc://claim/some/folder/` → (claim, path of the folder inside a Pod)."""
    if not uri.startswith("pvc://"):
        raise ValueError(f"{uri}: the demo seeds a pvc:// folder")
    claim, _, rest = uri.removeprefix("pvc://").partition("/")
    return claim, f"/mnt/pvc/{claim}/{rest.rstrip('/')}"


def seed_job(name: str, namespace: str, image: str, folder_uri: str) -> dict[str, Any]:
    """A Job of the runtime image that writes builtin iris as `base.csv` into `folder_uri`."""
    claim, folder = pvc_mount(folder_uri)
    command = ["python", "-c", SEED_SCRIPT, folder]
    return claim_job(name, namespace, image, claim, command, container="seed")


def claim_job(
    name: str,
    namespace: str,
    image: str,
    claim: str,
    command: list[str],
    *,
    container: str = "main",
) -> dict[str, Any]:
    """A one-shot Job of `image` running `command` with the claim mounted read-write at
    /mnt/pvc/<claim>, restricted like every Pod of the demo (and of the e2e tests)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "kubeloop-demo"},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 300,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/part-of": "kubeloop-demo"}},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": container,
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": command,
                            "env": [{"name": "HOME", "value": "/tmp"}],
                            "securityContext": RESTRICTED_CONTAINER,
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "volumeMounts": [
                                {"name": "data", "mountPath": f"/mnt/pvc/{claim}"},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": claim}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
