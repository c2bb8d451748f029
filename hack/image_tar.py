#!/usr/bin/env python3
"""Pack static binaries into a one-layer container image, written as a `docker save` tar that
`ctr images import` (and `docker load`) read. Nothing can be pulled on the project's machines, so
the dev cluster's own images (the pause image, the local-path helper, the node tests' testkit) are
made this way from binaries hack/build-tools.sh built.

    python hack/image_tar.py OUT.tar TAG ENTRYPOINT_FILE [--user UID]

The tar is byte-for-byte reproducible (fixed timestamps and owners), so the same binary always
gives the same image id and an import can be skipped when containerd already has it.
Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The image's files have this mtime: a constant keeps the layer digest a function of content.
EPOCH = 0


@dataclass(frozen=True)
class ImageSpec:
    """What goes into the image: files by their path in the image, and how it runs."""

    tag: str
    files: dict[str, Path]
    entrypoint: list[str]
    user: str = "65532"
    # Empty world-writable directories (e.g. /tmp) for programs that want scratch space.
    scratch_dirs: tuple[str, ...] = ("tmp",)
    env: list[str] = field(default_factory=lambda: ["PATH=/"])


def layer_bytes(spec: ImageSpec) -> bytes:
    """The uncompressed layer tar: the files (mode 0755, root-owned) and the scratch dirs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as layer:
        for directory in spec.scratch_dirs:
            info = tarfile.TarInfo(directory.strip("/") + "/")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777, EPOCH
            layer.addfile(info)
        for name in sorted(spec.files):
            data = spec.files[name].read_bytes()
            info = tarfile.TarInfo(name.strip("/"))
            info.size, info.mode, info.mtime = len(data), 0o755, EPOCH
            layer.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_config(spec: ImageSpec, layer_digest: str) -> bytes:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": spec.entrypoint, "User": spec.user, "Env": spec.env},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hack/image_tar.py"}],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def image_id(spec: ImageSpec) -> str:
    """The image id (the config's digest) the tar will have: `sha256:<hex>`."""
    layer = layer_bytes(spec)
    config = image_config(spec, hashlib.sha256(layer).hexdigest())
    return "sha256:" + hashlib.sha256(config).hexdigest()


def write_image_tar(spec: ImageSpec, out: Path) -> str:
    """Write the `docker save` tar to `out`; return the image id."""
    layer = layer_bytes(spec)
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = image_config(spec, layer_digest)
    config_digest = hashlib.sha256(config).hexdigest()
    manifest = [
        {
            "Config": f"{config_digest}.json",
            "RepoTags": [spec.tag],
            "Layers": [f"{layer_digest}/layer.tar"],
        }
    ]
    members = {
        f"{layer_digest}/layer.tar": layer,
        f"{config_digest}.json": config,
        "manifest.json": json.dumps(manifest).encode(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, mode="w", format=tarfile.USTAR_FORMAT) as image:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, EPOCH
            image.addfile(info, io.BytesIO(data))
    return f"sha256:{config_digest}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path)
    parser.add_argument("tag")
    parser.add_argument("binary", type=Path, help="the entrypoint, placed at /<its name>")
    parser.add_argument("--user", default="65532")
    args = parser.parse_args(argv)
    name = args.binary.name
    spec = ImageSpec(
        tag=args.tag, files={name: args.binary}, entrypoint=[f"/{name}"], user=args.user
    )
    print(write_image_tar(spec, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
