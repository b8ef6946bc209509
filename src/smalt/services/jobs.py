"""Command jobs: submitting resolves a job into an immutable record and starts its supervisor.

Resolution happens before anything is queued, and every problem is reported at once: the code
folder is snapshotted (content-addressed), the environment resolved, inputs turned into datastore
URIs, output locations planned, the compute checked. Then one supervisor process
(``services/supervisor.py``) owns the job's life.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from smalt.entities import CommandJob, Data, Environment, Input, JobStatus, Model, Output, PipelineJob
from smalt.entities.connection import references
from smalt.entities.environment import InlineEnvironment
from smalt.errors import AlreadyExistsError, InvalidSpecError, InvalidStateError, NotFoundError, SpecProblem
from smalt.execution import Doorbell, detached, pid_alive, ring, ring_all, stop_process_groups
from smalt.services.assets import AssetService
from smalt.services.computes import ComputeService
from smalt.services.datastores import DatastoreService
from smalt.services.provenance import creation_context
from smalt.services.workspace import DEFAULT_DATASTORE, WorkspaceContext, keep_open
from smalt.specs import DatastoreUri, is_local_path, parse_asset_ref, parse_datastore_uri, prepare
from smalt.store import Edge, JobRecord
from smalt.store.tracking import MetricRecord, RunData

#: A job whose owner (its supervisor, its pipeline's driver) has not beaten for this long is taken
#: as dead, wherever it runs; on the job's own host a dead pid says so at once.
STALE_AFTER = timedelta(seconds=60)
#: How long a started job may wait for the process started for it to take it (record its pid);
#: past that the start is taken as lost (its starter died first) and made again.
SPAWN_GRACE = timedelta(seconds=5)
#: How many times a pipeline whose driver died gets a new one before it is failed instead.
MAX_NEW_DRIVERS = 3
#: The journal, in a job's folder, of the outputs whose publishing began (supervisor.py, "Publishing").
PUBLISHING = "publishing"
#: The named pipe in a pipeline's job folder that its driver waits on (execution/doorbell.py).
DOORBELL = "driver.bell"
#: The folder of a job holding the doorbells of whoever follows it (rung when it ends).
WATCHERS = "watchers"
# Aliases: JobService has a method named `list`, which shadows the builtin inside the class.
AnyJob = CommandJob | PipelineJob
JobList = list[AnyJob]
PathList = list[Path]
NameList = list[str]
MetricHistory = dict[str, list[MetricRecord]]
_JOB_OUTPUT = "azureml://jobs/"
#: The tag (and run tag) that links a rerun to the job it reproduces.
RERUN_OF_TAG = "smalt.rerunOf"
_MODEL_TYPES = ("mlflow_model", "custom_model", "triton_model")
_ADJECTIVES = ("amber", "brave", "calm", "dapper", "eager", "frosty", "gentle", "honest", "jolly", "keen",
               "lively", "mellow", "nifty", "plucky", "quiet", "rapid", "sunny", "tidy", "vivid", "witty")  # fmt: skip
_NOUNS = ("otter", "heron", "maple", "comet", "pebble", "lantern", "falcon", "cedar", "harbor", "meadow",
          "walrus", "thistle", "quartz", "badger", "willow", "ember", "fjord", "kiwi", "lynx", "orchid")  # fmt: skip


@dataclass(frozen=True)
class Resolved:
    """A job as it will run, and the digest of each file of its code snapshot (for lineage and reuse)."""

    job: CommandJob
    code_files: dict[str, str]
    #: Lineage: the nodes each input came from (``data:<n>:<v>``, ``model:<n>:<v>``, ``job:<name>``), by port.
    sources: dict[str, str] = field(default_factory=dict)
    #: The digest of the environment as built (environments/resolve.py).
    environment_digest: str | None = None
    #: The outputs as written, before their paths were planned: what a rerun plans again.
    declared_outputs: dict[str, Any] = field(default_factory=dict)


def job_folder(workspace: WorkspaceContext, name: str) -> Path:
    return workspace.path / "jobs" / name


def new_job_name() -> str:
    """A name like Azure ML's: two words and a random tail (``brave_otter_k3x9q2``)."""
    tail = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}_{tail}"


_T = TypeVar("_T")


class JobService:
    """Submit, read, list, cancel, stream and download jobs."""

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace
        self._datastores = DatastoreService(workspace)
        #: While ``resolving_together``: what the jobs being resolved share, looked up once.
        self._shared: dict[tuple[str, str | None], Any] | None = None

    @contextmanager
    def resolving_together(self) -> Iterator[None]:
        """Resolve several jobs (a pipeline's steps) as one submission: a compute, a datastore or a
        code folder that several name is looked up, or snapshotted, once (a 10-step pipeline with
        one code folder hashed and uploaded it ten times)."""
        self._shared = {}
        try:
            yield
        finally:
            self._shared = None

    def _once(self, kind: str, key: str | None, make: Callable[[], _T]) -> _T:
        if self._shared is None:
            return make()
        if (kind, key) not in self._shared:
            self._shared[kind, key] = make()  # a failure is not kept: each job reports its own
        value: _T = self._shared[kind, key]
        return value

    # -- submitting -------------------------------------------------------------------------
    def create_or_update(self, job: AnyJob, *, start: bool = True) -> AnyJob:
        """Resolve, record and start a job. Nothing is queued when anything is wrong, and every
        reference that does not resolve is reported at once."""
        if isinstance(job, PipelineJob):
            from smalt.services.pipelines import PipelineService

            return PipelineService(self._ws).create(job, start=start)
        job = prepare(job)
        name = job.name or new_job_name()
        with self._ws.store.transaction() as tx:
            if tx.jobs.exists(name):
                raise AlreadyExistsError(f"Job '{name}' already exists.", hint="leave out the name to get a new one")
        problems: list[SpecProblem] = []
        resolved = self.resolve(job, name, problems)
        if problems or resolved is None:
            raise InvalidSpecError(job.locate(problems), summary="The job cannot run; nothing was queued")
        with self._ws.store.transaction(write=True) as tx:
            self.record(tx, resolved)
        if start:
            self._spawn(name)
        return self.get(name)

    def validate(self, job: AnyJob) -> NameList:
        """Check ``job`` as submitting does, recording and starting nothing; a pipeline's step names."""
        if isinstance(job, PipelineJob):
            from smalt.services.pipelines import PipelineService

            return PipelineService(self._ws).check(job)
        problems: list[SpecProblem] = []
        job = prepare(job)
        self.resolve(job, job.name or "validate", problems)
        if problems:
            raise InvalidSpecError(job.locate(problems), summary="The job cannot run")
        return []

    def resolve(self, job: CommandJob, name: str, problems: list[SpecProblem], prefix: str = "") -> Resolved | None:
        """``job`` as it will run: code snapshotted, environment, inputs, outputs and compute
        resolved. What does not resolve is added to ``problems`` (fields under ``prefix``)."""
        found_problems = self._required_inputs(job)
        compute = (job.compute or "local").removeprefix("azureml:")
        environment: str | InlineEnvironment | None = None
        inputs: dict[str, Any] = {}
        outputs: dict[str, Output] = {}
        sources: dict[str, str] = {}
        digest: str | None = None
        with _collect(found_problems, "compute"):
            self._once("compute", compute, lambda: ComputeService(self._ws).get(compute))
        with _collect(found_problems, "environment"):
            found = self._resolve_environment(job.environment)
            environment = InlineEnvironment.model_validate(found) if isinstance(found, dict) else found
            from smalt.environments import resolve

            # A conda package with no PyPI twin, or an unknown curated name, fails now.
            digest = resolve(environment).digest
        for key, value in job.inputs.items():
            with _collect(found_problems, f"inputs.{key}"):
                inputs[key], source = self._resolve_input(key, value)
                if source is not None:
                    sources[key] = source
        for key, output in job.outputs.items():
            with _collect(found_problems, f"outputs.{key}"):
                outputs[key] = self._plan_output(name, key, output)
        if references(job.environment_variables):
            from smalt.services.connections import ConnectionService

            try:
                ConnectionService(self._ws).check_references(job.environment_variables, "environment_variables")
            except InvalidSpecError as exc:
                found_problems.extend(exc.problems)
        problems.extend(SpecProblem(p.message, f"{prefix}{p.field}", p.file, p.line) for p in found_problems)
        if found_problems:
            return None
        code, code_files = self._once("code", job.code, lambda: self._snapshot(job.code))
        experiment = job.experiment_name or (Path(job.code).name if job.code and is_local_path(job.code) else None)
        resolved = job.model_copy(update={
            "name": name, "compute": compute, "environment": environment, "inputs": inputs,
            "outputs": outputs, "code": code, "experiment_name": experiment or "Default",
            "status": None, "creation_context": None,
        })  # fmt: skip
        declared = {port: output.to_dict() for port, output in job.outputs.items()}
        return Resolved(resolved, code_files, sources, digest, declared)

    def record(self, tx: Any, resolved: Resolved, *, parent_name: str | None = None,
               step: dict[str, Any] | None = None, rerun_of: str | None = None) -> None:  # fmt: skip
        """Write a resolved job (NotStarted), its run's tags and its lineage, inside ``tx``."""
        job = resolved.job
        if rerun_of:
            job = job.model_copy(update={"tags": {**job.tags, RERUN_OF_TAG: rerun_of}})
        spec = job.to_dict()
        spec["runtime"] = {
            "host": socket.gethostname(), "code_files": resolved.code_files,
            "environment_digest": resolved.environment_digest, "declared_outputs": resolved.declared_outputs,
            **({"rerun_of": rerun_of} if rerun_of else {}),
        }  # fmt: skip
        if step is not None:
            spec["step"] = step
        experiment_name = job.experiment_name or "Default"
        experiment_id = tx.tracking.ensure_experiment(experiment_name, int(time.time() * 1000))
        assert job.name is not None
        tx.jobs.create(
            job.name, "command", JobStatus.NOT_STARTED, job.display_name, experiment_name, job.compute or "local",
            spec, self._ws.user, experiment_id=experiment_id, parent_name=parent_name,
        )  # fmt: skip
        # The job's tags are its run's tags, so MLflow filters (`tags.team = 'x'`) find it; a
        # pipeline step is a child run of its pipeline, as MLflow marks nested runs.
        tags = {**job.tags, **({"mlflow.parentRunId": parent_name} if parent_name else {})}
        tx.tracking.log(job.name, tags=sorted(tags.items()))
        tx.lineage.add(Edge(src, f"job:{job.name}", "input", port) for port, src in resolved.sources.items())

    # -- reproducing ------------------------------------------------------------------------
    def rerun(self, name: str, *, start: bool = True) -> AnyJob:
        """Submit a new job with exactly the recorded code snapshot, environment and inputs of
        ``name`` (not the files on disk now), linked to it (``smalt.rerunOf``; lineage). A
        pipeline is rerun whole, with reuse turned off."""
        with self._ws.store.transaction() as tx:
            record = tx.jobs.get(name)
            edges = tx.lineage.into([f"job:{name}"])
        if record is None:
            raise NotFoundError(f"Job '{name}' not found.", hint="smalt job list")
        if record.type == "run":
            raise InvalidStateError(f"'{name}' is a run that an MLflow client created; smalt cannot run it again.")
        if record.type == "pipeline":
            from smalt.services.pipelines import PipelineService

            return PipelineService(self._ws).rerun(record, start=start)
        if record.status == JobStatus.NOT_STARTED and record.parent_name:
            raise InvalidStateError(
                f"Job '{name}' is a step that never started; its inputs were never bound.",
                hint=f"rerun its pipeline: smalt job rerun --name {record.parent_name}",
            )
        new_name = new_job_name()
        resolved = self.rerun_resolved(record, new_name, {e.port or "": e.src for e in edges if e.relation == "input"})
        with self._ws.store.transaction(write=True) as tx:
            self.record(tx, resolved, rerun_of=name)
        if start:
            self._spawn(new_name)
        return self.get(new_name)

    def rerun_resolved(self, record: JobRecord, new_name: str, sources: dict[str, str]) -> Resolved:
        """The recorded job ``record`` again as ``new_name``: its resolved code, environment and
        inputs as they were; its outputs planned anew from what was written (an explicit output
        version is left out, so the rerun registers the next version instead of conflicting)."""
        runtime = record.spec.get("runtime") or {}
        spec = {k: v for k, v in record.spec.items() if k not in ("runtime", "step")}
        declared = runtime.get("declared_outputs")
        if declared is None:  # recorded before declared outputs were kept: the planned paths, renamed
            declared = {
                port: {**out, "path": str(out.get("path", "")).replace(f"/{record.name}/", "/${{name}}/")}
                for port, out in (spec.get("outputs") or {}).items()
            }  # fmt: skip
        outputs = {}
        for port, out in declared.items():
            output = Output.model_validate({k: v for k, v in out.items() if k != "version"})
            outputs[port] = self._plan_output(new_name, port, output).to_dict()
        job = CommandJob.model_validate({**spec, "name": new_name, "outputs": outputs})
        return Resolved(job, dict(runtime.get("code_files") or {}), sources, runtime.get("environment_digest"),
                        declared)  # fmt: skip

    @staticmethod
    def _required_inputs(job: CommandJob) -> list[SpecProblem]:
        problems: list[SpecProblem] = []
        for port, value in job.inputs.items():
            if isinstance(value, Input) and value.path is None and value.default is None and not value.optional:
                if value.type in ("string", "integer", "number", "boolean"):
                    problems.append(SpecProblem("required input has no value (give default)", f"inputs.{port}"))
                else:
                    problems.append(SpecProblem("required input has no path", f"inputs.{port}.path"))
        return problems

    def _resolve_environment(self, env: str | InlineEnvironment | None) -> str | dict[str, Any] | None:
        written = AssetService(self._ws, Environment).inline_environment(env)
        return written.to_dict() if isinstance(written, InlineEnvironment) else written

    def _resolve_input(self, port: str, value: Input | str | int | float | bool) -> tuple[Any, str | None]:
        """An input with its path made a datastore URI, and the lineage node it came from."""
        if not isinstance(value, Input):
            return value, None
        if value.path is None:
            return value, None
        path = value.path
        if is_local_path(path):
            return value.model_copy(update={"path": str(self._datastores.upload(Path(path)))}), None
        if path.startswith(_JOB_OUTPUT):
            output_uri, source = self._job_output_uri(path, port)
            return value.model_copy(update={"path": output_uri}), f"job:{source}"
        ref = (
            parse_asset_ref(path)
            if path.startswith("azureml:") and not path.startswith("azureml://datastores")
            else None
        )
        if ref is not None:
            cls: type[Data] | type[Model] = Model if value.type in _MODEL_TYPES else Data
            asset = AssetService(self._ws, cls).get_by_ref(path, f"inputs.{port}.path")
            return value.model_copy(update={"path": asset.path}), f"{cls.kind}:{asset.name}:{asset.version}"
        uri = parse_datastore_uri(path)
        if uri is not None:
            self._datastores.get(uri.datastore)
        return value, None

    def _job_output_uri(self, path: str, port: str) -> tuple[str, str]:
        """The datastore URI of ``azureml://jobs/<job>/outputs/<out>[/paths/<p>]``, and the job."""
        parts = path[len(_JOB_OUTPUT) :].strip("/").split("/")
        if len(parts) < 3 or parts[1] != "outputs":
            raise InvalidSpecError([SpecProblem(
                f"{path!r} is not a job output; write azureml://jobs/<job>/outputs/<output>", f"inputs.{port}.path"
            )])  # fmt: skip
        rest = "/".join(parts[4:]) if len(parts) > 4 and parts[3] == "paths" else ""
        return self.output_uri(parts[0], parts[2], rest) + ("" if rest else "/"), parts[0]

    def output_uri(self, job_name: str, output: str, sub: str = "") -> str:
        """The datastore URI of ``sub`` inside a completed job's ``output``; the output
        ``artifacts`` is the job's run artifacts, as in Azure ML."""
        with self._ws.store.transaction() as tx:
            record = tx.jobs.get(job_name)
        if record is None:
            raise NotFoundError(f"Job '{job_name}' not found.", hint="smalt job list")
        if record.status != JobStatus.COMPLETED:
            raise InvalidStateError(
                f"Job '{job_name}' is {record.status}; only a completed job's outputs can be used.",
                hint=f"smalt job show --name {job_name}",
            )
        outputs = {} if record.type == "run" else (record.spec.get("outputs") or {})
        path = (outputs.get(output) or {}).get("path")
        if path:
            base = str(path).rstrip("/")
        elif output == "artifacts":
            from smalt.services.tracking import run_artifact_path

            base = str(DatastoreUri(DEFAULT_DATASTORE, run_artifact_path(job_name)))
        else:
            raise NotFoundError(
                f"Job '{job_name}' has no output '{output}'. Outputs: {', '.join([*outputs, 'artifacts'])}.",
                hint=f"smalt job show --name {job_name}",
            )
        return f"{base}/{sub}" if sub else base

    def _plan_output(self, job_name: str, port: str, output: Output) -> Output:
        path = output.path or f"azureml://datastores/${{{{default_datastore}}}}/paths/azureml/{job_name}/{port}/"
        for macro, value in (("name", job_name), ("output_name", port), ("default_datastore", DEFAULT_DATASTORE)):
            path = path.replace(f"${{{{{macro}}}}}", value)
        if parse_datastore_uri(path) is None:
            raise InvalidSpecError([SpecProblem(
                f"output path {path!r} must be an azureml://datastores/<datastore>/paths/<path> URI",
                f"outputs.{port}.path",
            )])  # fmt: skip
        datastore = parse_datastore_uri(path).datastore  # type: ignore[union-attr]
        self._once("datastore", datastore, lambda: self._datastores.get(datastore))
        return output.model_copy(update={"path": path})

    def _snapshot(self, code: str | None) -> tuple[str | None, dict[str, str]]:
        """The code folder uploaded (content-addressed), and the digest of each of its files
        (those of a folder a client uploaded over HTTP, too)."""
        if code is not None and not is_local_path(code):
            from smalt.services.uploads import UploadService

            sent = UploadService(self._ws).files_of(code)
            return code, {relative: digest[:16] for relative, digest in (sent or {}).items()}
        if code is None:
            return code, {}
        from smalt.artifacts.content import manifest

        folder = Path(code)
        files = manifest(folder)  # hashed once: for the upload's address and for lineage
        digests = {relative: digest[:16] for relative, digest in files.items()}
        return str(self._datastores.upload(folder, files=files)), digests

    def _spawn(self, name: str, **record: Any) -> None:
        """Queue the job and start its supervisor; ``record``: fields to write in the same
        transaction (a pipeline step's resolved spec and reuse key)."""
        folder = job_folder(self._ws, name)
        folder.mkdir(parents=True, exist_ok=True)
        with self._ws.store.transaction(write=True) as tx:
            if record:
                tx.jobs.touch(name, **record)
            tx.jobs.transition(name, JobStatus.QUEUED, only_from=[JobStatus.NOT_STARTED],
                               heartbeat_at=datetime.now(UTC))  # fmt: skip
        start_detached(self._ws, "smalt.services.supervisor", name, folder / "supervisor.log")

    # -- reading ----------------------------------------------------------------------------
    def entity(self, record: JobRecord, data: RunData | None = None) -> AnyJob:
        """The job a record holds; with ``data``, its metrics, params and tags too."""
        common = {
            "status": record.status, "display_name": record.display_name, "start_time": record.start_time,
            "end_time": record.end_time, "error": record.error,
            "creation_context": creation_context(record).model_dump(),
        }  # fmt: skip
        if record.type == "pipeline":
            return PipelineJob.model_validate({**record.spec["pipeline"], **common})
        spec = {k: v for k, v in record.spec.items() if k not in ("runtime", "step")}
        tracked: dict[str, Any] = {}
        if data is not None:
            tracked = {"metrics": {m.key: m.value for m in data.latest}, "params": dict(data.params)}
        step = record.spec.get("step")
        if step is not None:
            tracked.update(parent_job_name=record.parent_name, reused_from=step.get("reused_from"),
                           run_reason=step.get("run_reason"))  # fmt: skip
        return CommandJob.model_validate({**spec, **common, **tracked})

    def get(self, name: str) -> AnyJob:
        with self._ws.store.transaction() as tx:
            record = tx.jobs.get(name)
            data = tx.tracking.run_data([name])[name] if record is not None else None
        if record is None:
            raise NotFoundError(f"Job '{name}' not found.", hint="smalt job list")
        if record.type == "run":
            raise InvalidStateError(
                f"'{name}' is a run that an MLflow client created, not a command job.",
                hint=f"smalt job metrics --name {name} shows what it logged",
            )
        return self.entity(record, data)

    def list(self, *, status: str | None = None, experiment_name: str | None = None,
             include_archived: bool = False, max_results: int | None = None,
             order_by: str | None = None, parent_job_name: str | None = None) -> JobList:  # fmt: skip
        """Jobs, newest first, or ordered by ``metrics.<key>``, ``params.<key>`` or an attribute
        (``start_time``, ``name``, ``status``...), ``ASC`` by default or ``DESC``, as MLflow's
        ``order_by``; jobs without the key come last. Pipeline steps are listed only with
        ``parent_job_name`` (the steps of that pipeline, in the order they were planned)."""
        order = _order_key(order_by) if order_by else None
        with self._ws.store.transaction() as tx:
            if parent_job_name is not None:
                if not tx.jobs.exists(parent_job_name):
                    raise NotFoundError(f"Job '{parent_job_name}' not found.", hint="smalt job list")
                records = tx.jobs.children(parent_job_name)
            else:
                records = tx.jobs.search(status=status, experiment_name=experiment_name, type_=("command", "pipeline"),
                                         top_level=True, include_archived=include_archived,
                                         limit=None if order else max_results)  # fmt: skip
            data = tx.tracking.run_data([r.name for r in records])
        jobs = [self.entity(r, data[r.name]) for r in records]
        if order is not None:
            jobs = _ordered(jobs, *order)[:max_results]
        return jobs

    def metric_history(self, name: str, key: str | None = None) -> MetricHistory:
        """Every logged value of the job's metrics (or of one), by step."""
        with self._ws.store.transaction() as tx:
            if not tx.jobs.exists(name):
                raise NotFoundError(f"Job '{name}' not found.", hint="smalt job list")
            known = sorted(tx.tracking.metric_keys(name))
            history = {k: tx.tracking.metric_history(name, k) for k in ([key] if key else known)}
        if key and not history[key]:
            listed = f" It logged: {', '.join(known)}." if known else " It logged no metrics."
            raise NotFoundError(f"Job '{name}' logged no metric '{key}'.{listed}",
                                hint=f"smalt job metrics --name {name}")  # fmt: skip
        return history

    def cancel(self, name: str) -> AnyJob:
        """Ask the supervisor to stop the job's whole process tree; a queued job never starts."""
        self.get(name)
        with self._ws.store.transaction(write=True) as tx:
            tx.jobs.transition(
                name, JobStatus.CANCEL_REQUESTED, only_from=JobStatus.ACTIVE - {JobStatus.CANCEL_REQUESTED}
            )
        return self.get(name)

    def archive(self, name: str) -> None:
        self.get(name)
        with self._ws.store.transaction(write=True) as tx:
            tx.jobs.touch(name, archived=True)

    def reap_stale(self, records: Iterable[JobRecord] | None = None) -> NameList:
        """Settle every active job whose owner, its supervisor or its pipeline's driver, is gone, so
        that no job stays active for nothing; the names of the jobs it settled or started again.

        The owner is gone when the pid it recorded is not alive (on the job's host), when its
        heartbeat is older than STALE_AFTER, or, for a job started but never taken (its starter died
        before the process it started took it), after SPAWN_GRACE. Then:

        - a pipeline gets a new driver, which goes on from its steps' statuses: what completed stays
          completed, what runs is waited for, what waits is started (after MAX_NEW_DRIVERS, or on
          another host, it is Failed, NotResponding, and its steps that never started Canceled);
        - a job started but never taken is started again;
        - a job left Finalizing is settled in this process (supervisor.py, "Publishing"):
          Completed with its outputs published, or Failed with none;
        - any other job is Failed (NotResponding), or Canceled if a cancel was asked, and the
          processes it left are killed.

        Taking a job over is a compare-and-set on its owner, so reapers running at once (commands, a
        server, drivers) never settle one job twice. ``records``: only these jobs (a driver reaps its
        own steps); by default every active job.
        """
        now = datetime.now(UTC)
        host = socket.gethostname()
        if records is None:
            with self._ws.store.transaction() as tx:
                records = tx.jobs.in_states(JobStatus.ACTIVE)
        settled: NameList = []
        # Runs that MLflow clients created have no supervisor: their client owns their status.
        for record in (r for r in records if r.type != "run" and r.status in JobStatus.ACTIVE):
            local = (record.spec.get("runtime") or {}).get("host") == host
            gone = _owner_gone(record, local, now)
            if gone is None:
                continue
            try:
                if not self._reap(record, gone, local, now):
                    continue
            except Exception:  # noqa: BLE001, S112 - never fail the command that reaps; the next reaper retries
                continue
            settled.append(record.name)
            if record.parent_name is not None:  # its pipeline's driver decides at once what comes next
                parent = job_folder(self._ws, record.parent_name)
                ring(parent / DOORBELL)
                ring_all(parent / WATCHERS)
        return settled

    def _reap(self, record: JobRecord, gone: str, local: bool, now: datetime) -> bool:
        """Settle one job whose owner is ``gone`` ("dead" or "unstarted"); whether this call did."""
        folder = job_folder(self._ws, record.name)
        runtime = record.spec.get("runtime") or {}
        if record.type == "pipeline":
            # (One recorded but never started, ``start=False``, has no heartbeat: it is not started here.)
            if local and record.heartbeat_at is not None and int(runtime.get("new_drivers", 0)) < MAX_NEW_DRIVERS:
                return self._restart(record, "smalt.services.pipelines", folder / "driver.log", now)
        elif gone == "unstarted" and record.status != JobStatus.CANCEL_REQUESTED:
            return self._restart(record, "smalt.services.supervisor", folder / "supervisor.log", now)
        elif record.status == JobStatus.FINALIZING or (
            record.status == JobStatus.CANCEL_REQUESTED and (folder / PUBLISHING).exists()
        ):
            with self._ws.store.transaction(write=True) as tx:
                if not tx.jobs.claim(record.name, os.getpid(), holder=record.supervisor_pid, heartbeat_at=now,
                                     beat_before=None if record.supervisor_pid else now - SPAWN_GRACE,
                                     only_from=[record.status]):  # fmt: skip
                    return False
            from smalt.services.supervisor import Supervisor

            Supervisor(self._ws, record.name).resolve(died=record.supervisor_pid)
            return True
        canceled = record.status == JobStatus.CANCEL_REQUESTED
        beat = record.heartbeat_at or record.created_at
        error = {
            "cause": "user" if canceled else "platform", "code": JobStatus.NOT_RESPONDING,
            "message": f"NotResponding: the job's supervisor (pid {record.supervisor_pid}) stopped "
            f"without recording a final status; last heartbeat {beat.isoformat()}."
            + (" It was being canceled." if canceled else ""),
        }  # fmt: skip
        with self._ws.store.transaction(write=True) as tx:
            if not tx.jobs.transition(record.name, JobStatus.CANCELED if canceled else JobStatus.FAILED,
                                      only_from=[record.status], error=error, end_time=now):  # fmt: skip
                return False
        if local:
            stop_process_groups(folder / "process_groups")
        if record.type == "pipeline":
            self._cancel_unstarted(record.name, "its pipeline's driver stopped")
        ring_all(folder / WATCHERS)
        return True

    def _restart(self, record: JobRecord, module: str, log: Path, now: datetime) -> bool:
        """Start a new owner (``module``: a supervisor, a driver) for a job whose owner is gone, if
        this call wins the job (compare-and-set on the owner it saw); the new one takes it."""
        with self._ws.store.transaction(write=True) as tx:
            if record.supervisor_pid is None:
                took = tx.jobs.claim(record.name, None, holder=None, beat_before=now - SPAWN_GRACE, heartbeat_at=now,
                                     only_from=[record.status])  # fmt: skip
            else:
                took = tx.jobs.claim(record.name, None, holder=record.supervisor_pid, heartbeat_at=now,
                                     only_from=[record.status])  # fmt: skip
            current = tx.jobs.get(record.name) if took and record.type == "pipeline" else None
            if current is not None:
                runtime = current.spec.get("runtime") or {}
                runtime = {**runtime, "new_drivers": int(runtime.get("new_drivers", 0)) + 1}
                tx.jobs.touch(record.name, spec={**current.spec, "runtime": runtime})
        if took:
            start_detached(self._ws, module, record.name, log)
        return took

    def _cancel_unstarted(self, pipeline: str, why: str) -> None:
        """Mark the steps of ``pipeline`` that never started Canceled, with why as their run reason."""
        now = datetime.now(UTC)
        with self._ws.store.transaction(write=True) as tx:
            for step in tx.jobs.children(pipeline):
                if step.status == JobStatus.NOT_STARTED:
                    error = {"cause": "platform", "message": f"not run: {why}"}
                    if tx.jobs.transition(step.name, JobStatus.CANCELED, only_from=[JobStatus.NOT_STARTED],
                                          end_time=now, error=error):  # fmt: skip
                        meta = {**(step.spec.get("step") or {}), "run_reason": error["message"]}
                        tx.jobs.touch(step.name, spec={**step.spec, "step": meta})

    # -- logs and outputs -------------------------------------------------------------------
    def log_files(self, name: str) -> PathList:
        logs = job_folder(self._ws, name) / "logs"
        return sorted(logs.glob("std_log*.txt"))

    def stream(self, name: str, *, poll_s: float = 0.05) -> Iterator[str]:
        """Yield the job's log output as it is written, until the job has finished. For a pipeline,
        every step's log, each line led by the step's name, and each step's end.

        Polls every 2 ms at first, backing off to ``poll_s``: new log lines are seen within
        ``poll_s``, and a long job costs a read every ``poll_s``. The job's end is seen at once: its
        supervisor rings this stream's doorbell."""
        with self._ws.store.transaction() as tx:
            if not tx.jobs.exists(name):
                raise NotFoundError(f"Job '{name}' not found.", hint="smalt job list")
        watchers = job_folder(self._ws, name) / WATCHERS
        watchers.mkdir(parents=True, exist_ok=True)
        bell = Doorbell(watchers / f"{os.getpid()}-{secrets.token_hex(4)}")
        try:
            yield from self._follow(name, bell, poll_s)
        finally:
            bell.close()

    def _follow(self, name: str, bell: Doorbell, poll_s: float) -> Iterator[str]:
        offsets: dict[Path, int] = {}
        partial: dict[Path, str] = {}
        announced: set[str] = set()  # steps that ended, their logs read after: nothing more comes from them
        delay, next_reap = 0.002, time.monotonic() + 0.5
        with self._ws.store.transaction() as tx:
            record = tx.jobs.get(name)
        if record is None:
            raise NotFoundError(f"Job '{name}' not found.", hint="smalt job list")
        pipeline = record.type == "pipeline"
        while True:
            # Each look reads statuses only (a pipeline's spec and its steps' are not parsed again).
            with self._ws.store.transaction() as tx:
                status = tx.jobs.status(name)
                steps = tx.jobs.step_statuses(name) if pipeline else []
                ended = {step: tx.jobs.get(step) for step, _, state in steps
                         if state in JobStatus.TERMINAL and step not in announced}  # fmt: skip
            if status is None:
                raise NotFoundError(f"Job '{name}' not found.", hint="smalt job list")
            done = status in JobStatus.TERMINAL
            sources = [(f, "") for f in self.log_files(name)] if not pipeline else [
                (f, f"[{shown}] ") for step, shown, _ in steps if step not in announced for f in self.log_files(step)
            ]  # fmt: skip
            out: list[str] = []
            for file, prefix in sources:
                with open(file, "rb") as handle:
                    handle.seek(offsets.get(file, 0))
                    chunk = handle.read()
                    offsets[file] = handle.tell()
                if chunk and not prefix:
                    out.append(chunk.decode(errors="replace"))
                elif chunk:
                    lines = (partial.pop(file, "") + chunk.decode(errors="replace")).split("\n")
                    partial[file] = lines.pop()
                    out.extend(f"{prefix}{line}\n" for line in lines)
            for step, shown, state in steps:
                if step in ended:
                    announced.add(step)
                    found = ended[step]
                    reason = ((found.spec.get("step") or {}).get("run_reason")) if found is not None else None
                    out.append(f"[{shown}] {state}" + (f" ({reason})" if reason else "") + "\n")
            if out:
                yield "".join(out)
            if done:
                return
            # A dead supervisor is looked for twice a second, not on every poll.
            if status in JobStatus.ACTIVE and time.monotonic() >= next_reap:
                next_reap = time.monotonic() + 0.5
                if self.reap_stale():
                    continue
            bell.wait(delay)
            delay = min(delay * 1.5, poll_s)

    def download(self, name: str, download_path: str | Path = ".", output_name: str | None = None,
                 all: bool = False) -> PathList:  # fmt: skip
        """Named outputs to ``<path>/named-outputs/<output>/``; with ``all`` also the logs and
        ``./outputs`` artifacts to ``<path>/artifacts/``, as Azure ML lays them out."""
        job = self.get(name)
        if job.status != JobStatus.COMPLETED and output_name is not None:
            raise InvalidStateError(f"Job '{name}' is {job.status}; it has no outputs to download.")
        names = [output_name] if output_name else list(job.outputs) if all or not output_name else []
        target = Path(download_path)
        made: PathList = []
        for port in names:
            output = job.outputs.get(port)
            if output is None:
                raise NotFoundError(
                    f"Job '{name}' has no output '{port}'. Outputs: {', '.join(job.outputs) or 'none'}."
                )
            if job.status == JobStatus.COMPLETED and output.path:
                made.append(self._download_output(output.path.rstrip("/"), target / "named-outputs", port))
        if all:
            artifacts = f"azureml://datastores/{DEFAULT_DATASTORE}/paths/azureml/{name}/artifacts"
            if self._datastores.exists(artifacts):
                made.append(self._datastores.download(artifacts, target))
        return made

    def _download_output(self, path: str, folder: Path, port: str) -> Path:
        """An output into ``folder/<port>``. A pipeline's output is a step's, stored under the step
        output's name: it is downloaded aside and renamed, as Azure ML names it after the pipeline's."""
        if path.rsplit("/", 1)[-1] == port:
            return self._datastores.download(path, folder)
        import shutil

        aside = folder / f".{port}.download"
        got = self._datastores.download(path, aside)
        final = folder / port
        if final.is_dir() and got.is_dir():
            shutil.copytree(got, final, dirs_exist_ok=True)
        else:
            got.replace(final)
        shutil.rmtree(aside)
        return final


def _owner_gone(record: JobRecord, local: bool, now: datetime) -> str | None:
    """Why the owner of active job ``record`` is gone: "dead" (its pid is not alive, or it stopped
    beating), "unstarted" (the process started for it never took it); None while it is there."""
    if record.supervisor_pid is not None:
        if local and not pid_alive(record.supervisor_pid):
            return "dead"
        return "dead" if now - (record.heartbeat_at or record.created_at) >= STALE_AFTER else None
    if record.parent_name is not None and record.status == JobStatus.NOT_STARTED:
        return None  # a step that has not started is its driver's to start (or to cancel)
    if record.heartbeat_at is None:  # recorded but never started
        return "dead" if now - record.created_at >= STALE_AFTER else None
    if now - record.heartbeat_at < SPAWN_GRACE:
        return None
    if local:
        return "unstarted"
    return "dead" if now - record.heartbeat_at >= STALE_AFTER else None


def _order_key(order_by: str) -> tuple[str, str, bool]:
    words = order_by.split()
    if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
        raise InvalidSpecError(
            [SpecProblem(f"Invalid order {order_by!r}", field="order_by")],
            summary=f"Cannot order by {order_by!r}",
            hint="use e.g. 'metrics.acc DESC', 'params.lr' or 'start_time DESC'",
        )
    entity, _, key = words[0].partition(".")
    if entity not in ("metrics", "params", "attributes") or not key:
        entity, key = "attributes", words[0]
    return entity, key, len(words) == 1 or words[1].upper() == "ASC"


def _ordered(jobs: JobList, entity: str, key: str, ascending: bool) -> JobList:
    def value(job: AnyJob) -> Any:
        if entity in ("metrics", "params"):
            return (getattr(job, entity, None) or {}).get(key)
        found = getattr(job, key, None)
        return found.isoformat() if isinstance(found, datetime) else found

    present = [j for j in jobs if value(j) is not None]
    missing = [j for j in jobs if value(j) is None]
    return sorted(present, key=value, reverse=not ascending) + missing


def start_detached(workspace: WorkspaceContext, module: str, name: str, log: Path) -> None:
    """Run ``<module>.main([workspace, name])`` (a job's supervisor, a pipeline's driver) detached
    from this process and warm (see ``execution/detached.py``), its output appended to ``log``."""
    detached.start(module, [str(workspace.path), name], log, before_fork=lambda: keep_open(workspace))


@contextmanager
def _collect(problems: list[SpecProblem], field: str) -> Iterator[None]:
    """Turn a reference that does not resolve into one problem among all those of the job."""
    try:
        yield
    except InvalidSpecError as exc:
        problems.extend(p if p.field else SpecProblem(p.message, field, p.file, p.line) for p in exc.problems)
    except NotFoundError as exc:
        problems.append(SpecProblem(str(exc), exc.field or field))
    except InvalidStateError as exc:
        problems.append(SpecProblem(str(exc), field))
