"""Constrained scalar types shared by the kinds: digests, durations, storage URIs, names.

Each is an `Annotated` type whose constraints end up in the CRD schema as `pattern`,
`maxLength` and friends, so the API server refuses a bad value at admission. Length bounds
matter twice: they are the user's limit and they keep CEL rules cheap (the API server
estimates a rule's cost from them).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Final

from pydantic import Field

DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"
Digest = Annotated[
    str,
    Field(
        pattern=DIGEST_PATTERN,
        max_length=71,
        description="Content digest: `sha256:` followed by 64 lowercase hex digits.",
        examples=["sha256:" + "0" * 64],
    ),
]

# Go's time.ParseDuration subset users write: 90s, 30m, 1h, 1h30m, 1.5h.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=32,
        description="A duration such as `90s`, `30m`, `1h` or `1h30m`.",
    ),
]
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """A `Duration` value (`90s`, `30m`, `1h30m`, `1.5h`, `250ms`) as a timedelta."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 90s, 30m, 1h30m)")
    return timedelta(seconds=sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts))


BUILTIN_DATASETS = ("iris", "wine", "breast_cancer", "diabetes", "digits")
_PVC = r"pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/.*"
_REMOTE = r"file:///.+|s3://[a-z0-9][-a-z0-9.]*[a-z0-9]/.*|https?://[^/\s]+(/.*)?"
DATA_URI_PATTERN = rf"^(builtin://({'|'.join(BUILTIN_DATASETS)})|{_PVC}|{_REMOTE})$"
DataUri = Annotated[
    str,
    Field(
        pattern=DATA_URI_PATTERN,
        max_length=2048,
        description=(
            "Where the data lives: `builtin://<iris|wine|breast_cancer|diabetes|digits>`, "
            "`file:///abs/path`, `pvc://<claim>/<path>`, `s3://<bucket>/<key>` or "
            "`https://host/path`."
        ),
    ),
]

STORAGE_URI_PATTERN = rf"^({_PVC}|{_REMOTE})$"
StorageUri = Annotated[
    str,
    Field(
        pattern=STORAGE_URI_PATTERN,
        max_length=2048,
        description=(
            "A storage location: `file:///abs/path`, `pvc://<claim>/<path>`, "
            "`s3://<bucket>/<key>` or `https://host/path`."
        ),
    ),
]

# An RFC 1123 label: what a Deployment, Job or Service name part must be.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ObjectName = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description="The name of an object in the same namespace.",
    ),
]
# Model names become parts of object names (`<model>-v<version>`, `<isvc>-blue`): keep them short.
ModelName = Annotated[
    str,
    Field(
        pattern=DNS_LABEL_PATTERN,
        max_length=48,
        description="Model name: lowercase letters, digits and `-`, at most 48 characters.",
    ),
]
