"""Jobs as specs. Running them arrives with the command-jobs work; here they load and validate."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from smalt.entities.base import CreationContext, Entity, StrDict
from smalt.entities.environment import InlineEnvironment
from smalt.entities.io import Input, Output


class JobLimits(Entity):
    timeout: int | None = Field(default=None, gt=0)


class CommandJob(Entity):
    """A command job (Azure ML ``commandJob``)."""

    type: Literal["command"] = "command"
    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    experiment_name: str | None = None
    tags: StrDict = Field(default_factory=dict)
    properties: StrDict = Field(default_factory=dict)
    command: str
    code: str | None = None
    environment: str | InlineEnvironment | None = None
    environment_variables: StrDict = Field(default_factory=dict)
    inputs: dict[str, Input | str | int | float | bool] = Field(default_factory=dict)
    outputs: dict[str, Output] = Field(default_factory=dict)
    compute: str | None = None
    limits: JobLimits | None = None
    resources: dict[str, Any] | None = None
    distribution: dict[str, Any] | None = None
    services: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    queue_settings: dict[str, Any] | None = None
    status: str | None = None
    creation_context: CreationContext | None = None
