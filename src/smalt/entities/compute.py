"""Compute targets: where jobs run. In embedded mode every compute runs locally."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from smalt.entities.base import CreationContext, Description, Entity, Name, StrDict

_TIERS = {"dedicated": "dedicated", "lowpriority": "low_priority", "low_priority": "low_priority"}


def _tier(value: Any) -> Any:
    # Azure ML's docs write `low_priority`, its REST API `LowPriority`; both mean the same.
    return _TIERS.get(str(value).lower(), value) if isinstance(value, str) else value


_INSTANCE_ONLY = (
    "schedules", "setup_scripts", "create_on_behalf_of", "custom_applications", "idle_time_before_shutdown",
    "idle_time_before_shutdown_minutes", "enable_sso", "enable_root_access", "enable_os_patching",
    "release_quota_on_stop",
)  # fmt: skip

#: Azure ML's managed identity types for computes.
_IDENTITY_TYPES = ("system_assigned", "user_assigned", "none", "system_assigned,user_assigned")


def _check_identity(value: dict[str, Any]) -> dict[str, Any]:
    type_ = value.get("type")
    if not isinstance(type_, str) or type_.lower().replace(" ", "") not in _IDENTITY_TYPES:
        raise ValueError(f"identity type {type_!r} is not one of {', '.join(_IDENTITY_TYPES)}")
    return value


def _check_schedules(value: dict[str, Any]) -> dict[str, Any]:
    for i, schedule in enumerate(value.get("compute_start_stop") or []):
        action = schedule.get("action") if isinstance(schedule, dict) else None
        if not isinstance(action, str) or action.lower() not in ("start", "stop"):
            raise ValueError(f"compute_start_stop[{i}].action {action!r} is not start or stop")
    return value


#: The most nodes (local: concurrent jobs) one compute may have.
MAX_INSTANCES = 1000


class Compute(Entity):
    """A compute target.

    Example::

        Compute(name="cpu-cluster", type="amlcompute", min_instances=0, max_instances=4)
    """

    name: Name
    type: Literal["amlcompute", "local", "computeinstance", "ray"] = "amlcompute"
    description: Description | None = None
    tags: StrDict = Field(default_factory=dict)
    size: str | None = None
    min_instances: int = Field(default=0, ge=0, le=MAX_INSTANCES)
    max_instances: int = Field(default=4, ge=1, le=MAX_INSTANCES)
    idle_time_before_scale_down: int = Field(default=120, ge=0, le=366 * 86400)
    tier: Annotated[Literal["dedicated", "low_priority"], BeforeValidator(_tier)] = "dedicated"
    location: str | None = None
    # Accepted so that Azure ML files load unchanged; they have no effect on local compute.
    identity: Annotated[dict[str, Any], AfterValidator(_check_identity)] | None = None
    ssh_public_access_enabled: bool | None = None
    ssh_settings: dict[str, Any] | None = None
    network_settings: dict[str, Any] | None = None
    enable_node_public_ip: bool | None = None
    address: str | None = None
    resource_id: str | None = None
    # A compute instance's own settings (Azure ML's computeInstance schema), accepted with no effect.
    schedules: Annotated[dict[str, Any], AfterValidator(_check_schedules)] | None = None
    setup_scripts: dict[str, Any] | None = None
    create_on_behalf_of: dict[str, Any] | None = None
    custom_applications: list[dict[str, Any]] | None = None
    idle_time_before_shutdown: str | None = None
    idle_time_before_shutdown_minutes: int | None = None
    enable_sso: bool | None = None
    enable_root_access: bool | None = None
    enable_os_patching: bool | None = None
    release_quota_on_stop: bool | None = None
    creation_context: CreationContext | None = None

    @model_validator(mode="after")
    def _instance_fields(self) -> Compute:
        # Azure's amlcompute schema has none of them: written there, they are a mistake.
        misplaced = sorted(k for k in _INSTANCE_ONLY if getattr(self, k) is not None)
        if misplaced and self.type != "computeinstance":
            raise ValueError(f"{', '.join(misplaced)} apply to a computeinstance, not to type {self.type}")
        return self

    @model_validator(mode="after")
    def _bounds(self) -> Compute:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) is greater than max_instances ({self.max_instances})"
            )
        return self
