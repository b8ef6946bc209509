"""Compute targets: where jobs run. In embedded mode every compute runs locally."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from smalt.entities.base import CreationContext, Description, Entity, Name, StrDict

_TIERS = {"dedicated": "dedicated", "lowpriority": "low_priority", "low_priority": "low_priority"}


def _tier(value: Any) -> Any:
    # Azure ML's docs write `low_priority`, its REST API `LowPriority`; both mean the same.
    return _TIERS.get(str(value).lower(), value) if isinstance(value, str) else value


#: The most nodes (local: concurrent jobs) one compute may have.
MAX_INSTANCES = 1000


class Compute(Entity):
    """A compute target.

    Example::

        Compute(name="cpu-cluster", type="amlcompute", min_instances=0, max_instances=4)
    """

    name: Name
    type: Literal["amlcompute", "local", "computeinstance", "kubernetes", "ray"] = "amlcompute"
    description: Description | None = None
    tags: StrDict = Field(default_factory=dict)
    size: str | None = None
    min_instances: int = Field(default=0, ge=0, le=MAX_INSTANCES)
    max_instances: int = Field(default=4, ge=1, le=MAX_INSTANCES)
    idle_time_before_scale_down: int = Field(default=120, ge=0, le=366 * 86400)
    tier: Annotated[Literal["dedicated", "low_priority"], BeforeValidator(_tier)] = "dedicated"
    location: str | None = None
    # Accepted so that Azure ML files load unchanged; they have no effect on local compute.
    identity: dict[str, Any] | None = None
    ssh_public_access_enabled: bool | None = None
    ssh_settings: dict[str, Any] | None = None
    network_settings: dict[str, Any] | None = None
    enable_node_public_ip: bool | None = None
    address: str | None = None
    creation_context: CreationContext | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Compute:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) is greater than max_instances ({self.max_instances})"
            )
        return self
