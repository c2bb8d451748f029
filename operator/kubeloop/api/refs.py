"""References from one Kubeloop object to another in the same namespace."""

from __future__ import annotations

from pydantic import Field

from kubeloop.api.base import ApiModel
from kubeloop.api.scalars import ObjectName


class LocalObjectRef(ApiModel):
    """A reference to an object in the same namespace, by name."""

    name: ObjectName = Field(description="Name of the referenced object.")
