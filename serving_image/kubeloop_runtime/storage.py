"""Storage URIs (docs/design/contracts.md, "Storage URIs"): where a URI points and how to reach it.

Supported: ``file:///abs/path``, plain absolute paths, ``pvc://<claim>/<path>`` (the claim mounted
at ``$KUBELOOP_PVC_ROOT/<claim>``, default ``/mnt/pvc``), ``http(s)://`` (read only) and ``s3://``
(needs the optional ``s3fs`` package, the ``kubeloop[s3]`` extra; credentials and region from
the ``AWS_*`` variables, the endpoint from ``AWS_ENDPOINT_URL``). ``builtin://`` is not storage:
datasets.py handles it. Everything past `resolve` goes through fsspec, so a remote and a local
location are read the same way; failures become `StorageError` naming the URI.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from kubeloop_runtime.errors import MissingFileError, StorageError

PVC_ROOT_ENV: Final = "KUBELOOP_PVC_ROOT"
DEFAULT_PVC_ROOT: Final = "/mnt/pvc"
# The S3 endpoint of an S3-compatible store (MinIO, Ceph); credentials are botocore's own
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the operator's artifact store Secret, envFrom).
S3_ENDPOINT_ENV: Final = "AWS_ENDPOINT_URL"
REMOTE_PROTOCOLS: Final = frozenset({"http", "https", "s3"})
_COPY_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class Location:
    """A resolved URI: the fsspec protocol and the path that protocol's filesystem expects."""

    uri: str
    protocol: str
    path: str

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def child(self, name: str) -> Location:
        """The location of ``name`` inside this folder."""
        separator = "" if self.path.endswith("/") else "/"
        uri_separator = "" if self.uri.endswith("/") else "/"
        return Location(
            f"{self.uri}{uri_separator}{name}", self.protocol, self.path + separator + name
        )


def resolve(uri: str, pvc_root: str | None = None) -> Location:
    """Map a storage URI to a protocol and path; refuse unknown schemes and relative paths."""
    if not uri:
        raise StorageError("empty storage URI")
    if uri.startswith("/"):
        return Location(uri, "file", uri)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise StorageError(f"{uri}: a file URI needs an absolute path (file:///abs/path)")
        return Location(uri, "file", parts.path)
    if scheme == "pvc":
        if not parts.netloc or not parts.path.strip("/"):
            raise StorageError(f"{uri}: a PVC URI is pvc://<claim>/<path>")
        root = pvc_root or os.environ.get(PVC_ROOT_ENV) or DEFAULT_PVC_ROOT
        return Location(uri, "file", str(Path(root) / parts.netloc / parts.path.lstrip("/")))
    if scheme in ("http", "https"):
        return Location(uri, scheme, uri)
    if scheme == "s3":
        if not parts.netloc:
            raise StorageError(f"{uri}: an S3 URI is s3://<bucket>/<key>")
        return Location(uri, "s3", f"{parts.netloc}{parts.path}")
    raise StorageError(
        f"{uri}: unsupported URI scheme {scheme or '(none)'!r}; use file://, an absolute path, "
        "pvc://, s3://, http:// or https://"
    )


def filesystem(location: Location) -> Any:
    """The fsspec filesystem for a location; a missing optional package is a clear error."""
    import fsspec

    options: dict[str, Any] = {}
    endpoint = os.environ.get(S3_ENDPOINT_ENV)
    if location.protocol == "s3" and endpoint:
        # Passed explicitly: botocore reads AWS_ENDPOINT_URL itself only since 1.31.
        options["endpoint_url"] = endpoint
    try:
        return fsspec.filesystem(location.protocol, **options)
    except ImportError as error:
        if location.protocol == "s3":
            raise StorageError(
                f"{location.uri}: s3:// URIs need the s3fs package "
                "(install the 'kubeloop[s3]' extra)"
            ) from error
        raise StorageError(
            f"{location.uri}: cannot open {location.protocol}:// ({error})"
        ) from error


def read_bytes(location: Location) -> bytes:
    """Return the whole content of a file."""
    fs = filesystem(location)
    try:
        data = fs.cat_file(location.path)
    except FileNotFoundError as error:
        raise MissingFileError(f"{location.uri}: no such file") from error
    except IsADirectoryError as error:
        raise StorageError(f"{location.uri}: is a folder, expected a file") from error
    except Exception as error:  # fsspec backends raise their own types (aiohttp, botocore)
        raise StorageError(
            f"{location.uri}: cannot read ({type(error).__name__}: {error})"
        ) from error
    return bytes(data)


def copy_to_local(location: Location, target: Path) -> None:
    """Copy one file to a local path, streaming, so large models need no memory."""
    fs = filesystem(location)
    try:
        with fs.open(location.path, "rb") as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, _COPY_CHUNK)
    except FileNotFoundError as error:
        raise StorageError(f"{location.uri}: no such file") from error
    except Exception as error:  # see read_bytes
        raise StorageError(
            f"{location.uri}: cannot read ({type(error).__name__}: {error})"
        ) from error


def upload_folder(source: Path, location: Location) -> None:
    """Copy every file of a local folder to a (remote) folder location."""
    if location.protocol not in ("file", "s3"):
        raise StorageError(f"{location.uri}: cannot write to {location.protocol}://")
    fs = filesystem(location)
    try:
        for path in sorted(source.iterdir()):
            fs.put_file(str(path), location.child(path.name).path)
    except Exception as error:  # see read_bytes
        raise StorageError(
            f"{location.uri}: cannot write ({type(error).__name__}: {error})"
        ) from error


def list_files(location: Location) -> list[tuple[str, Location]]:
    """Every file under a folder, recursively, as (path relative to the folder, location).

    Sorted by relative path, so the order is the same on every filesystem.
    """
    if location.protocol in ("http", "https"):
        raise StorageError(f"{location.uri}: an {location.protocol}:// folder cannot be listed")
    fs = filesystem(location)
    root = location.path.rstrip("/")
    try:
        if not fs.isdir(root):
            raise StorageError(f"{location.uri}: no such folder")
        found = fs.find(root, withdirs=False)
    except StorageError:
        raise
    except Exception as error:  # see read_bytes
        raise StorageError(
            f"{location.uri}: cannot list ({type(error).__name__}: {error})"
        ) from error
    prefix = fs._strip_protocol(root).rstrip("/") + "/"
    folder = Location(location.uri.rstrip("/") + "/", location.protocol, root + "/")
    relative = sorted(str(path)[len(prefix) :] for path in found if str(path).startswith(prefix))
    return [(name, folder.child(name)) for name in relative]


def list_folder(location: Location) -> dict[str, int]:
    """The files directly in a folder (not below it): name -> size in bytes; {} if none."""
    fs = filesystem(location)
    root = location.path.rstrip("/")
    try:
        if not fs.isdir(root):
            return {}
        entries = fs.ls(root, detail=True)
    except Exception as error:  # see read_bytes
        raise StorageError(
            f"{location.uri}: cannot list ({type(error).__name__}: {error})"
        ) from error
    return {
        str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]: int(entry.get("size") or 0)
        for entry in entries
        if entry.get("type") == "file"
    }


def write_file_atomically(location: Location, data: bytes) -> None:
    """Write a whole file so that readers never see part of it.

    Local: written under a hidden temporary name in the same folder, then renamed into place.
    Object stores: one put of the whole object (an object appears whole or not at all).
    """
    if location.protocol not in ("file", "s3"):
        raise StorageError(f"{location.uri}: cannot write to {location.protocol}://")
    if location.is_local:
        target = Path(location.path)
        staging = target.parent / f".{target.name}.tmp-{os.urandom(4).hex()}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.write_bytes(data)
            os.replace(staging, target)
        except OSError as error:
            staging.unlink(missing_ok=True)
            raise StorageError(f"{location.uri}: cannot write ({error})") from error
        return
    fs = filesystem(location)
    try:
        fs.pipe_file(location.path, data)
    except Exception as error:  # see read_bytes
        raise StorageError(
            f"{location.uri}: cannot write ({type(error).__name__}: {error})"
        ) from error


def delete_file(location: Location) -> None:
    """Delete one file; one that is already gone is no error."""
    fs = filesystem(location)
    try:
        fs.rm_file(location.path)
    except FileNotFoundError:
        return
    except Exception as error:  # see read_bytes
        raise StorageError(
            f"{location.uri}: cannot delete ({type(error).__name__}: {error})"
        ) from error
