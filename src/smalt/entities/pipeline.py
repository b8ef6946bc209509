"""Pipelines (Azure ML ``pipelineJob`` and pipeline components): steps wired by bindings.

A step's inputs are literals, assets, or bindings to what the pipeline holds: ``${{parent.inputs.x}}``
and ``${{parent.jobs.<step>.outputs.<port>}}``; a step output may be bound to a pipeline output with
``${{parent.outputs.<name>}}``. The graph is checked in ``specs/pipeline.py``; here are the shapes.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, model_validator

from smalt.entities.base import (
    Asset,
    CreationContext,
    Description,
    DisplayName,
    Entity,
    EnvironmentRef,
    ExperimentName,
    Located,
    Name,
    StrDict,
)
from smalt.entities.component import CommandComponent
from smalt.entities.environment import InlineEnvironment
from smalt.entities.io import Input, JobOutput, OutputDecl
from smalt.entities.job import ComputeRef, JobLimits
from smalt.entities.settings import Distribution, JobIdentity, Resources

#: ``${{parent.inputs.x}}``, ``${{parent.outputs.x}}``, ``${{parent.jobs.a.outputs.y}}`` and
#: ``${{parent.jobs.a}}`` (a whole step, as if_else blocks name them).
PARENT_BINDING = re.compile(
    r"^\s*\$\{\{\s*parent\.(?:(?P<group>inputs|outputs)\.(?P<name>[A-Za-z0-9_]+)"
    r"|jobs\.(?P<step>[A-Za-z0-9_\-]+)(?:\.outputs\.(?P<port>[A-Za-z0-9_]+))?)\s*\}\}\s*$"
)

StepInput = Input | bool | int | float | str
StepOutput = OutputDecl | str


class RetrySettings(Entity):
    """How often a failed step is tried again, and how long each try may take (seconds)."""

    max_retries: int = Field(default=0, ge=0, le=100)
    timeout: int | None = Field(default=None, gt=0)


def _default_compute(value: str) -> str:
    if value != "local" and not value.startswith("azureml:"):
        raise ValueError(f"write azureml:{value} for the compute {value!r} (or serverless)")
    return value


class PipelineSettings(Entity):
    """Azure ML's pipeline ``settings``."""

    # A registered compute is written azureml:<name>, as Azure ML requires here; `local` is smalt's.
    default_compute: Annotated[ComputeRef, AfterValidator(_default_compute)] | None = None
    default_datastore: str | None = None
    #: False (Azure ML's default): the first failed step stops the pipeline; True: steps that do
    #: not depend on it go on, and the pipeline ends Failed.
    continue_on_step_failure: bool = False
    #: Run every step, reusing nothing.
    force_rerun: bool = False


class _Node(Entity):
    display_name: DisplayName | None = None
    description: Description | None = None
    tags: StrDict = Field(default_factory=dict)
    compute: ComputeRef | None = None
    inputs: dict[str, StepInput] = Field(default_factory=dict)
    outputs: dict[str, StepOutput] = Field(default_factory=dict)
    #: Steps this one waits for although it reads none of their outputs.
    run_after: list[str] = Field(default_factory=list)


class CommandNode(_Node):
    """A command step: a component (reference, file or inline) or an inline command."""

    type: Literal["command"] = "command"
    component: str | CommandComponent | None = None
    command: str | None = None
    code: str | None = None
    environment: EnvironmentRef | InlineEnvironment | None = None
    environment_variables: StrDict = Field(default_factory=dict)
    resources: Resources | None = None
    distribution: Distribution | None = None
    limits: JobLimits | None = None
    retry_settings: RetrySettings | None = None
    is_deterministic: bool | None = None
    experiment_name: ExperimentName | None = None
    identity: JobIdentity | None = None
    queue_settings: dict[str, Any] | None = None
    #: Interactive services (jupyter, ssh, tensorboard) Azure opens on the node: accepted, not opened.
    services: dict[str, Any] | None = None


class PipelineNode(_Node):
    """A nested pipeline: a pipeline component run as one step of its parent."""

    type: Literal["pipeline"] = "pipeline"
    component: str | PipelineComponent
    settings: dict[str, Any] | None = None


class IfElseNode(Entity):
    """Azure ML's ``if_else`` control flow: the steps of the branch not taken are Skipped."""

    type: Literal["if_else"] = "if_else"
    #: A boolean: ``${{parent.jobs.check.outputs.ok}}``, ``${{parent.inputs.flag}}`` or a literal.
    condition: bool | str
    true_block: str | list[str] | None = None
    false_block: str | list[str] | None = None


def _node_kind(value: Any) -> str:
    type_ = value.get("type", "command") if isinstance(value, dict) else getattr(value, "type", "command")
    return {"pipeline": "PipelineNode", "if_else": "IfElseNode"}.get(str(type_), "CommandNode")


Node = Annotated[
    Annotated[CommandNode, Tag("CommandNode")]
    | Annotated[PipelineNode, Tag("PipelineNode")]
    | Annotated[IfElseNode, Tag("IfElseNode")],
    Discriminator(_node_kind),
]


class PipelineComponent(Asset):
    """A pipeline component (``type: pipeline`` with ``jobs``), usable as a step of another pipeline."""

    kind: ClassVar[str] = "component"

    type: Literal["pipeline"] = "pipeline"
    display_name: DisplayName | None = None
    inputs: dict[str, Input] = Field(default_factory=dict)
    outputs: dict[str, OutputDecl] = Field(default_factory=dict)
    jobs: dict[str, Node] = Field(default_factory=dict)

    def __call__(self, **inputs: Any) -> Any:
        """Inside a ``@dsl.pipeline`` function: add a step running this pipeline with ``inputs``."""
        from smalt.entities.builder import call_component

        return call_component(self, inputs)


class PipelineJob(Located):
    """A pipeline job (Azure ML ``pipelineJob``): ``jobs``, or the top-level ``component:`` form."""

    type: Literal["pipeline"] = "pipeline"
    name: Name | None = None
    display_name: DisplayName | None = None
    description: Description | None = None
    experiment_name: ExperimentName | None = None
    tags: StrDict = Field(default_factory=dict)
    properties: StrDict = Field(default_factory=dict)
    inputs: dict[str, StepInput] = Field(default_factory=dict)
    outputs: dict[str, JobOutput] = Field(default_factory=dict)
    settings: PipelineSettings = Field(default_factory=PipelineSettings)
    jobs: dict[str, Node] = Field(default_factory=dict)
    component: str | PipelineComponent | None = None
    compute: ComputeRef | None = None
    identity: JobIdentity | None = None
    status: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    error: dict[str, Any] | None = None
    creation_context: CreationContext | None = None

    @model_validator(mode="after")
    def _jobs_or_component(self) -> PipelineJob:
        if self.jobs and self.component is not None:
            raise ValueError("a pipeline job has `jobs` or a `component`, not both")
        return self


PipelineNode.model_rebuild()
