"""Jobs as specs. Running them arrives with the command-jobs work; here they load and validate."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from smalt.entities.base import (
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
from smalt.entities.expressions import binding_problems
from smalt.entities.io import Input, JobOutput, Output
from smalt.entities.settings import Distribution, JobIdentity, Resources

#: What Azure ML calls serverless compute is, here, this machine: the built-in ``local`` compute.
SERVERLESS = frozenset({"serverless", "azureml:serverless"})


def serverless_is_local(value: Any) -> Any:
    return "local" if isinstance(value, str) and value.strip().lower() in SERVERLESS else value


#: A compute a job or step names (``azureml:cpu-cluster``, ``serverless``).
ComputeRef = Annotated[str, BeforeValidator(serverless_is_local)]


#: The input type a literal value declares when a command is made a component.
_LITERAL_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}


class JobLimits(Entity):
    timeout: int | None = Field(default=None, gt=0, le=2**31 - 1)


class CommandJob(Located):
    """A command job (Azure ML ``commandJob``)."""

    type: Literal["command"] = "command"
    name: Name | None = None
    display_name: DisplayName | None = None
    description: Description | None = None
    experiment_name: ExperimentName | None = None
    tags: StrDict = Field(default_factory=dict)
    properties: StrDict = Field(default_factory=dict)
    code: str | None = None
    environment: EnvironmentRef | InlineEnvironment | None = None
    environment_variables: StrDict = Field(default_factory=dict)
    inputs: dict[str, Input | str | int | float | bool] = Field(default_factory=dict)
    outputs: dict[str, JobOutput] = Field(default_factory=dict)
    command: str
    compute: ComputeRef | None = None
    limits: JobLimits | None = None
    resources: Resources | None = None
    distribution: Distribution | None = None
    services: dict[str, Any] | None = None
    identity: JobIdentity | None = None
    queue_settings: dict[str, Any] | None = None
    status: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    #: Why a job failed: ``{"cause": "user" | "platform", "message": ..., "log_tail": ...}``.
    error: dict[str, Any] | None = None
    creation_context: CreationContext | None = None
    #: What the job's run logged (read-only): the latest value of each metric, and the params.
    metrics: dict[str, float] | None = None
    params: dict[str, str] | None = None
    #: For a pipeline step (read-only): its pipeline, the job whose outputs it reused, and in
    #: plain words why it ran (or was reused, or skipped).
    parent_job_name: str | None = None
    reused_from: str | None = None
    run_reason: str | None = None

    def __call__(self, **inputs: Any) -> Any:
        """Inside a ``@dsl.pipeline`` function: add a step running this command, with ``inputs``
        over its own (``train = command(...)`` then ``train(data=prep.outputs.out)``)."""
        from smalt.entities.builder import call_command

        return call_command(self, inputs)

    def as_component(self) -> tuple[CommandComponent, dict[str, Any]]:
        """This command as a component (its inputs declared by the values it was given), and
        those values."""
        declared: dict[str, Input] = {}
        values: dict[str, Any] = {}
        for port, value in self.inputs.items():
            if isinstance(value, Input):
                declared[port] = Input(type=value.type, optional=value.optional or value.path is None,
                                       mode=value.mode, description=value.description)  # fmt: skip
                if value.path is not None:
                    values[port] = value
                elif value.default is not None:
                    values[port] = value.default
            else:
                declared[port] = Input(type=_LITERAL_TYPES.get(type(value), "string"))
                values[port] = value
        outputs = {port: Output(type=o.type, mode=o.mode) for port, o in self.outputs.items()}
        component = CommandComponent(
            name=self.name or "command", display_name=self.display_name, command=self.command, code=self.code,
            environment=self.environment, inputs=declared, outputs=outputs, resources=self.resources,
            distribution=self.distribution,
        )  # fmt: skip
        return component, values

    @field_validator("command")
    @classmethod
    def _bindings_resolve(cls, command: str, info: ValidationInfo) -> str:
        # Declared after inputs and outputs, so that both are known here and the problem is
        # reported at the command's own line.
        if "inputs" in info.data and "outputs" in info.data:
            problems = binding_problems(command, dict(info.data["inputs"]), dict(info.data["outputs"]))
            if problems:
                raise ValueError("; ".join(problems))
        return command


class JobStatus:
    """Azure ML's job statuses, in the order a job moves through them."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    CANCEL_REQUESTED = "CancelRequested"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    #: A pipeline step on the branch of a condition that was not taken, or depending only on such.
    SKIPPED = "Skipped"
    NOT_RESPONDING = "NotResponding"

    ACTIVE = frozenset({NOT_STARTED, QUEUED, PREPARING, RUNNING, FINALIZING, CANCEL_REQUESTED})
    TERMINAL = frozenset({COMPLETED, FAILED, CANCELED, SKIPPED})


#: MLflow's run status for each job status (a run is a job).
RUN_STATUS = {
    JobStatus.NOT_STARTED: "SCHEDULED", JobStatus.QUEUED: "SCHEDULED", JobStatus.PREPARING: "SCHEDULED",
    JobStatus.RUNNING: "RUNNING", JobStatus.FINALIZING: "RUNNING", JobStatus.CANCEL_REQUESTED: "RUNNING",
    JobStatus.COMPLETED: "FINISHED", JobStatus.FAILED: "FAILED", JobStatus.CANCELED: "KILLED",
    JobStatus.SKIPPED: "KILLED", JobStatus.NOT_RESPONDING: "FAILED",
}  # fmt: skip
#: The job status an MLflow client's run status update means, for runs MLflow clients created.
JOB_STATUS = {
    "SCHEDULED": JobStatus.QUEUED, "RUNNING": JobStatus.RUNNING, "FINISHED": JobStatus.COMPLETED,
    "FAILED": JobStatus.FAILED, "KILLED": JobStatus.CANCELED,
}  # fmt: skip


def command(
    *,
    command: str,
    code: str | None = None,
    environment: EnvironmentRef | InlineEnvironment | None = None,
    inputs: dict[str, Input | str | int | float | bool] | None = None,
    outputs: dict[str, Output] | None = None,
    compute: str | None = None,
    environment_variables: dict[str, str] | None = None,
    experiment_name: str | None = None,
    display_name: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    name: str | None = None,
    distribution: dict[str, Any] | None = None,
    instance_count: int | None = None,
    timeout: int | None = None,
) -> CommandJob:
    """Azure ML's ``command(...)`` builder: a command job ready for ``ml_client.jobs.create_or_update``.

    Example::

        job = command(command="python train.py --lr ${{inputs.lr}}", code="./src",
                      environment="azureml:sklearn@latest", inputs={"lr": 0.1})
    """
    return CommandJob(
        command=command, code=code, environment=environment, inputs=inputs or {}, outputs=outputs or {},
        compute=compute, environment_variables=environment_variables or {}, experiment_name=experiment_name,
        display_name=display_name, description=description, tags=tags or {}, name=name,
        distribution=distribution, resources={"instance_count": instance_count} if instance_count else None,
        limits=JobLimits(timeout=timeout) if timeout else None,
    )  # fmt: skip
