"""Pipeline jobs: a checked plan of steps, each step a command job, run by one driver process.

Submitting plans the graph (``specs/pipeline.py``: every problem at once, nothing queued when there
is one), resolves each step as a command job would be (code snapshot, environment, assets, output
locations) and records the pipeline and all of its steps, NotStarted, in one transaction. Then a
driver process (forked, like a supervisor) owns the pipeline: it starts each step when what it
waits for has ended, reuses an earlier step's outputs when nothing that decides them changed,
skips the branch of a condition that was not taken, stops on a failure (or goes on, with
``continue_on_step_failure``), and ends the pipeline. Each started step gets its own supervisor, so
a step outlives a killed driver.

A driver holds no state of its own: each round it reads the steps' statuses and acts on them. So a
driver that died is replaced, not mourned: the reaper that finds it dead (its pid, or its heartbeat;
``JobService.reap_stale``) starts a new one, which takes the pipeline (compare-and-set on its
owner) and goes on where the steps are. A driver is in turn the reaper of its steps: every
heartbeat it settles those whose supervisor died, so a pipeline ends without any smalt command.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smalt.entities import CommandComponent, CommandJob, Input, JobStatus, Output, PipelineJob
from smalt.entities.io import PRIMITIVE_TYPES
from smalt.entities.pipeline import PipelineComponent
from smalt.errors import AlreadyExistsError, InvalidSpecError, SpecProblem
from smalt.execution import Doorbell, detached, ring_all
from smalt.services.assets import AssetService
from smalt.services.computes import ComputeService
from smalt.services.datastores import DatastoreService
from smalt.services.jobs import (
    DOORBELL,
    RERUN_OF_TAG,
    WATCHERS,
    JobService,
    Resolved,
    job_folder,
    new_job_name,
    start_detached,
)
from smalt.services.workspace import DEFAULT_DATASTORE, WorkspaceContext, open_kept
from smalt.specs import prepare
from smalt.specs.pipeline import Plan, Step, Upstream, plan
from smalt.store import Edge, JobRecord

HEARTBEAT_S = 2.0
_SETTLED = JobStatus.TERMINAL
_FAILED = frozenset({JobStatus.FAILED, JobStatus.CANCELED})


class PipelineService:
    """Validate and submit pipeline jobs."""

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace
        self._jobs = JobService(workspace)

    def _lookup(self, ref: str) -> CommandComponent | PipelineComponent:
        service: AssetService[CommandComponent] = AssetService(self._ws, CommandComponent)
        return service.get_by_ref(ref, "component")

    def validate(self, job: PipelineJob) -> Plan:
        """The plan of ``job``, or InvalidSpecError with every problem of its graph."""
        computes = [c.name for c in ComputeService(self._ws).list()]
        return plan(job, self._lookup, computes)

    def check(self, job: PipelineJob) -> list[str]:
        """Plan and resolve ``job`` as submitting does, recording nothing; its step names."""
        job = _prepared(job)
        steps = self.validate(job).steps
        self._resolve_steps(job, steps, {key: new_job_name() for key in steps})
        return list(steps)

    def _resolve_steps(self, job: PipelineJob, steps: dict[str, Step], names: dict[str, str]) -> dict[str, Resolved]:
        """Each step resolved as a command job; every problem of every step at once."""
        problems: list[SpecProblem] = []
        resolved = {}
        with self._jobs.resolving_together():
            for key, step in steps.items():
                command = _step_job(step, names[key], job.experiment_name or "Default", job.settings.default_datastore)
                found = self._jobs.resolve(command, names[key], problems, prefix=f"jobs.{key}.")
                if found is not None:
                    resolved[key] = found
        if problems:
            raise InvalidSpecError(job.locate(problems), summary="The pipeline cannot run; nothing was queued")
        return resolved

    def create(self, job: PipelineJob, *, start: bool = True) -> PipelineJob:
        job = _prepared(job)
        name = job.name or new_job_name()
        with self._ws.store.transaction() as tx:
            if tx.jobs.exists(name):
                raise AlreadyExistsError(f"Job '{name}' already exists.", hint="leave out the name to get a new one")
        steps = self.validate(job).steps
        experiment = job.experiment_name or "Default"
        names = {key: new_job_name() for key in steps}
        resolved = self._resolve_steps(job, steps, names)
        spec = {
            "pipeline": {**job.to_dict(), "name": name, "experiment_name": experiment},
            "plan": {"steps": [s.to_dict() for s in steps.values()], "names": names},
            "runtime": {"host": socket.gethostname()},  # as reap_stale compares it
        }  # fmt: skip
        for volatile in ("status", "start_time", "end_time", "error", "creation_context"):
            spec["pipeline"].pop(volatile, None)
        with self._ws.store.transaction(write=True) as tx:
            experiment_id = tx.tracking.ensure_experiment(experiment, int(time.time() * 1000))
            tx.jobs.create(name, "pipeline", JobStatus.NOT_STARTED, job.display_name, experiment,
                           job.compute or job.settings.default_compute or "local", spec, self._ws.user,
                           experiment_id=experiment_id)  # fmt: skip
            tx.tracking.log(name, tags=sorted(job.tags.items()))
            for key in steps:
                retry = steps[key].retry
                meta = {"key": key, "retry": retry.max_retries if retry else 0}
                self._jobs.record(tx, resolved[key], parent_name=name, step=meta)
            tx.lineage.add(_step_edges(steps, names))
        if start:
            self._spawn(name)
        found = self._jobs.get(name)
        assert isinstance(found, PipelineJob)
        return found

    def rerun(self, record: JobRecord, *, start: bool = True) -> PipelineJob:
        """The recorded pipeline again, every step with its recorded code, environment and
        inputs, and ``force_rerun`` set: each step runs."""
        name = new_job_name()
        with self._ws.store.transaction() as tx:
            children = {str(r.spec["step"]["key"]): r for r in tx.jobs.children(record.name)}
            edges = tx.lineage.into([f"job:{r.name}" for r in children.values()])
        old_names: dict[str, str] = record.spec["plan"]["names"]
        names = {key: new_job_name() for key in old_names}
        renamed = {f"job:{old_names[k]}": f"job:{names[k]}" for k in old_names}
        steps: list[tuple[str, Resolved]] = []
        for key, child in children.items():
            # What the step read from outside the pipeline; links between its steps are made anew below.
            sources = {e.port or "": e.src for e in edges if e.dst == f"job:{child.name}" and e.relation == "input"
                       and e.src not in renamed}  # fmt: skip
            steps.append((key, self._jobs.rerun_resolved(child, names[key], sources)))
        spec = json.loads(json.dumps(record.spec))
        spec["pipeline"]["name"] = name
        spec["pipeline"].setdefault("settings", {})["force_rerun"] = True
        spec["plan"]["names"] = names
        spec["runtime"] = {"host": socket.gethostname(), "rerun_of": record.name}
        plan_steps = {d["key"]: Step.from_dict(d) for d in spec["plan"]["steps"]}
        with self._ws.store.transaction(write=True) as tx:
            tx.jobs.create(name, "pipeline", JobStatus.NOT_STARTED, record.display_name, record.experiment_name,
                           record.compute, spec, self._ws.user, experiment_id=record.experiment_id)  # fmt: skip
            tags = {**tx.tracking.run_data([record.name])[record.name].tags, RERUN_OF_TAG: record.name}
            tx.tracking.log(name, tags=sorted((k, v) for k, v in tags.items() if not k.startswith("mlflow.")))
            for key, resolved in steps:
                meta = {"key": key, "retry": (children[key].spec.get("step") or {}).get("retry", 0)}
                self._jobs.record(tx, resolved, parent_name=name, step=meta, rerun_of=children[key].name)
            tx.lineage.add(_step_edges(plan_steps, names))
        if start:
            self._spawn(name)
        found = self._jobs.get(name)
        assert isinstance(found, PipelineJob)
        return found

    def _spawn(self, name: str) -> None:
        folder = job_folder(self._ws, name)
        folder.mkdir(parents=True, exist_ok=True)
        with self._ws.store.transaction(write=True) as tx:
            tx.jobs.touch(name, heartbeat_at=datetime.now(UTC))
        start_detached(self._ws, "smalt.services.pipelines", name, folder / "driver.log")


def _step_edges(steps: dict[str, Step], names: dict[str, str]) -> list[Edge]:
    """Lineage: each step input bound to another step's output."""
    return [
        Edge(f"job:{names[value.step]}", f"job:{names[key]}", "input", port)
        for key, step in steps.items()
        for port, value in step.inputs.items()
        if isinstance(value, Upstream)
    ]


def _on(datastore: str | None, output: Output) -> Output:
    if output.path is not None or not datastore:
        return output
    ds = datastore.removeprefix("azureml:")
    return output.model_copy(
        update={"path": f"azureml://datastores/{ds}/paths/azureml/${{{{name}}}}/${{{{output_name}}}}/"}
    )


def _prepared(job: PipelineJob) -> PipelineJob:
    """``job`` checked as a YAML file is (paths resolved), keeping where its fields were written."""
    return prepare(job)


def _step_job(step: Step, name: str, experiment: str, datastore: str | None = None) -> CommandJob:
    """The command job a step becomes; inputs bound to other steps wait as their binding; outputs
    with no path of their own go to the pipeline's ``default_datastore``, if it names one."""
    inputs: dict[str, Any] = {}
    for port, value in step.inputs.items():
        declared = step.component.inputs[port]
        if isinstance(value, Upstream):
            binding = f"${{{{parent.jobs.{value.step}.outputs.{value.port}}}}}"
            inputs[port] = Input(type=declared.type, path=binding, mode=declared.mode)
        elif isinstance(value, Input):
            inputs[port] = value.model_copy(update={"type": declared.type}) if value.type != declared.type else value
        elif value is None:
            inputs[port] = Input(type=declared.type, optional=True)
        else:
            inputs[port] = value
    component = step.component
    # retry_settings.timeout bounds each try, as limits.timeout bounds a job.
    timeout = step.retry.timeout if step.retry and step.retry.timeout else step.timeout
    return CommandJob(
        name=name, display_name=step.key, experiment_name=experiment, command=component.command,
        code=component.code, environment=component.environment, environment_variables=step.environment_variables,
        inputs=inputs, outputs={p: _on(datastore, o) for p, o in step.outputs.items()},
        compute=step.compute, resources=step.resources, distribution=step.distribution,
        limits={"timeout": timeout} if timeout else None,
    )  # fmt: skip


# -- the driver ---------------------------------------------------------------------------------
class _Replaced(Exception):
    """Another driver has taken the pipeline over from this one."""


class Driver:
    """Runs one pipeline: starts, reuses, skips and cancels its steps, and ends it."""

    def __init__(self, workspace: WorkspaceContext, name: str) -> None:
        self.ws = workspace
        self.name = name
        self.jobs = JobService(workspace)
        self.datastores = DatastoreService(workspace)
        with workspace.store.transaction() as tx:
            record = tx.jobs.get(name)
        assert record is not None
        self.record = record
        self.steps = {d["key"]: Step.from_dict(d) for d in record.spec["plan"]["steps"]}
        self.names: dict[str, str] = record.spec["plan"]["names"]
        settings = record.spec["pipeline"].get("settings") or {}
        self.continue_on_failure = bool(settings.get("continue_on_step_failure", False))
        self.force_rerun = bool(settings.get("force_rerun", False))
        self._beat_at = 0.0
        self.bell: Doorbell | None = None

    def _beat(self, children: list[JobRecord] | None = None) -> None:
        """The heartbeat, every HEARTBEAT_S; with ``children`` (the steps as just read), the steps
        whose supervisor died are settled too."""
        if time.monotonic() - self._beat_at >= HEARTBEAT_S:
            self._beat_at = time.monotonic()
            with self.ws.store.transaction(write=True) as tx:
                mine = tx.jobs.claim(self.name, os.getpid(), holder=os.getpid(), heartbeat_at=datetime.now(UTC))
            if not mine:  # taken as dead (it hung past STALE_AFTER) and replaced: the new driver goes on
                raise _Replaced
            if children:
                self.jobs.reap_stale(children)

    def _connect(self) -> None:
        """What the spare child does ahead of its step: connect, and open the default datastore."""
        with self.ws.store.transaction():
            pass
        self.datastores.location(DEFAULT_DATASTORE)

    def run(self) -> None:
        now = datetime.now(UTC)
        with self.ws.store.transaction(write=True) as tx:
            # Another driver has the pipeline (a new one started by a reaper, and a late first one).
            if not tx.jobs.claim(self.name, os.getpid(), holder=None, heartbeat_at=now):
                return
            tx.jobs.transition(self.name, JobStatus.RUNNING, only_from=[JobStatus.NOT_STARTED], start_time=now)
            status = tx.jobs.status(self.name)
        self._beat_at = time.monotonic()
        if status not in JobStatus.ACTIVE:
            return
        # Running (this driver replaces one that died) or CancelRequested: the loop goes on from there.
        try:
            folder = job_folder(self.ws, self.name)
            folder.mkdir(parents=True, exist_ok=True)
            self.bell = Doorbell(folder / DOORBELL)
            # Each step's supervisor is forked, and connected to the store, while the step before runs.
            detached.keep_spare(warm=self._connect)
            self._loop()
        except _Replaced:
            self.bell = None  # left as it is: the path is the new driver's bell too (its fds go with this process)
        except BaseException as exc:  # noqa: BLE001 - every failure must end in a final status
            import traceback

            traceback.print_exc()
            self._stop_steps("the pipeline's driver failed")
            self._end(JobStatus.FAILED, {"cause": "platform", "message": f"{type(exc).__name__}: {exc}"})
        finally:
            if self.bell is not None:
                self.bell.close()

    def _loop(self) -> None:
        while True:
            with self.ws.store.transaction() as tx:
                pipeline_status = tx.jobs.status(self.name)
                children = {r.spec.get("step", {}).get("key", r.display_name): r for r in tx.jobs.children(self.name)}
            self._beat(list(children.values()))
            if pipeline_status == JobStatus.CANCEL_REQUESTED:
                self._finish_canceled()
                return
            status = {key: children[key].status for key in self.steps}
            changed = self._cancel_requested_unstarted(children, status)
            failed = _culprits(status)
            if failed and not self.continue_on_failure:
                self._stop_steps(f"step {failed[0]} failed and continue_on_step_failure is false")
                self._wait_for_steps()
                self._end(JobStatus.FAILED, _failure(failed, children))
                return
            for key, step in self.steps.items():
                if status[key] != JobStatus.NOT_STARTED:
                    continue
                decision = self._decide(step, status, children)
                if decision is None:
                    continue
                changed = True
                kind, why = decision
                if kind == "start":
                    status[key] = self._start(step, children)
                else:
                    self._settle(key, JobStatus.SKIPPED if kind == "skip" else JobStatus.CANCELED, why)
                    status[key] = JobStatus.SKIPPED if kind == "skip" else JobStatus.CANCELED
            if all(s in _SETTLED for s in status.values()):
                failed = _culprits(status)
                if failed:
                    self._end(JobStatus.FAILED, _failure(failed, children))
                else:
                    self._publish_outputs()
                    self._end(JobStatus.COMPLETED, None)
                return
            # Supervisors ring the bell when a step ends, and a round that changed something is
            # followed by another at once; the timeout is for cancel requests and heartbeats.
            if not changed:
                assert self.bell is not None
                self.bell.wait(0.2)

    def _cancel_requested_unstarted(self, children: dict[str, JobRecord], status: dict[str, str]) -> bool:
        """A step canceled before it started is Canceled at once (it has no supervisor to do it)."""
        changed = False
        for key, record in children.items():
            if record.status == JobStatus.CANCEL_REQUESTED and record.supervisor_pid is None:
                with self.ws.store.transaction(write=True) as tx:
                    if tx.jobs.transition(record.name, JobStatus.CANCELED, only_from=[JobStatus.CANCEL_REQUESTED],
                                          end_time=datetime.now(UTC)):  # fmt: skip
                        status[key] = JobStatus.CANCELED
                        changed = True
        return changed

    def _decide(self, step: Step, status: dict[str, str], children: dict[str, JobRecord]) -> tuple[str, str] | None:
        """("start" | "skip" | "cancel", why) once the step can be decided; None while it waits."""
        if any(status.get(dep) not in _SETTLED for dep in step.after):
            return None
        failed = sorted(d for d in step.after if status.get(d) in _FAILED)
        if failed:
            return "cancel", f"not run: step {failed[0]} did not complete"
        for condition, wanted in step.when:
            if isinstance(condition, Upstream):
                if status.get(condition.step) == JobStatus.SKIPPED:
                    return "skip", f"skipped: the condition's step {condition.step} was skipped"
                value = self._control_value(children[condition.step], condition.port)
            else:
                value = condition
            if value != wanted:
                return "skip", f"skipped: the condition is {value}, this step runs when it is {wanted}"
        if step.after and all(status.get(d) == JobStatus.SKIPPED for d in step.after):
            return "skip", "skipped: every step it waits for was skipped"
        for port, value in step.inputs.items():
            spec = step.component.inputs[port]
            if isinstance(value, Upstream) and status.get(value.step) == JobStatus.SKIPPED and not spec.optional:
                return "skip", f"skipped: required input {port} comes from skipped step {value.step}"
        return "start", ""

    def _control_value(self, record: JobRecord, port: str) -> Any:
        """The value a step wrote to its primitive output (a file holding e.g. ``True``)."""
        output = (record.spec.get("outputs") or {}).get(port) or {}
        path = str(output.get("path", "")).rstrip("/")
        text = ""
        for candidate in (f"{path}/{port}", f"{path}/output"):
            try:
                text = self.datastores.read_bytes(candidate).decode().strip()
                break
            except Exception:  # noqa: BLE001, S112 - try the next place Azure ML writes it
                continue
        return _parse_literal(text, output.get("type", "string"))

    # -- starting a step ---------------------------------------------------------------------
    def _start(self, step: Step, children: dict[str, JobRecord]) -> str:
        record = children[step.key]
        spec = dict(record.spec)
        inputs = dict(spec.get("inputs") or {})
        for port, value in step.inputs.items():
            if isinstance(value, Upstream):
                upstream = children[value.step]
                produced = (upstream.spec.get("outputs") or {}).get(value.port) or {}
                declared = step.component.inputs[port]
                if upstream.status == JobStatus.SKIPPED:
                    inputs[port] = {"type": declared.type, "optional": True}
                elif declared.type in PRIMITIVE_TYPES:
                    inputs[port] = self._control_value(upstream, value.port)
                else:
                    path = str(produced.get("path", ""))
                    if produced.get("type") == "uri_file":
                        path = path.rstrip("/") + f"/{value.port}"
                    inputs[port] = {**(inputs.get(port) or {}), "path": path}
        spec["inputs"] = inputs
        parts = self._reuse_parts(spec)
        key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        meta = dict(spec.get("step") or {})
        meta["reuse"] = parts
        reused = None
        if not step.is_deterministic:
            meta["run_reason"] = "the component is not deterministic (is_deterministic: false)"
        elif self.force_rerun:
            meta["run_reason"] = "force_rerun is set"
        else:
            with self.ws.store.transaction() as tx:  # one read for both questions
                candidates = tx.jobs.with_reuse_key(key, JobStatus.COMPLETED)
                earlier = tx.jobs.earlier_steps(record.experiment_id, record.display_name or "", record.created_at)
            reused = self._reusable(candidates, record.name)
            original = ((reused.spec.get("step") or {}).get("reused_from") or reused.name) if reused else None
            meta["run_reason"] = (f"reused: nothing changed since {original}" if reused is not None
                                  else self._why_run(record, parts, earlier))  # fmt: skip
        now = datetime.now(UTC)
        if reused is not None:
            # A step that was itself reused names the job that ran.
            meta["reused_from"] = (reused.spec.get("step") or {}).get("reused_from") or reused.name
            spec["outputs"] = reused.spec.get("outputs") or {}
            spec["step"] = meta
            with self.ws.store.transaction(write=True) as tx:
                tx.jobs.touch(record.name, spec=spec, reuse_key=key)
                tx.jobs.transition(record.name, JobStatus.COMPLETED, only_from=[JobStatus.NOT_STARTED],
                                   start_time=now, end_time=now)  # fmt: skip
                # Steps decided later in this round read the outputs it now has.
                children[step.key] = tx.jobs.get(record.name) or record
            return JobStatus.COMPLETED
        spec["step"] = meta
        # Only a deterministic step that ran is a candidate for reuse later.
        self.jobs._spawn(record.name, spec=spec, reuse_key=key if step.is_deterministic else None)
        return JobStatus.QUEUED

    def _reuse_parts(self, spec: dict[str, Any]) -> dict[str, Any]:
        """What decides a step's outputs, field by field (DESIGN: Pipelines, reuse)."""
        from smalt.environments import resolve

        environment = spec.get("environment")
        resolved_env = resolve(_environment_entity(environment))
        parts: dict[str, Any] = {
            "command": spec.get("command"), "code": spec.get("code"), "environment": resolved_env.digest,
            "environment_variables": spec.get("environment_variables") or {},
            "distribution": spec.get("distribution"), "resources": spec.get("resources"),
        }  # fmt: skip
        for port, value in sorted((spec.get("inputs") or {}).items()):
            parts[f"inputs.{port}"] = self._fingerprint(value)
        for port, value in sorted((spec.get("outputs") or {}).items()):
            settings = {k: v for k, v in value.items() if k != "path"}
            if not str(value.get("path", "")).rstrip("/").endswith(f"/{spec.get('name')}/{port}"):
                settings["path"] = value.get("path")  # a path the user chose
            parts[f"outputs.{port}"] = settings
        return parts

    def _fingerprint(self, value: Any) -> Any:
        """An input as reuse sees it: literals as they are; a path by its content where it is
        content-addressed (uploads, earlier outputs), else by the listing of its files."""
        if not isinstance(value, dict):
            return value
        path = value.get("path")
        if not isinstance(path, str) or "/paths/LocalUpload/" in path or "/paths/azureml/" in path:
            return {"type": value.get("type"), "path": path}
        try:
            from smalt.specs import parse_datastore_uri

            uri = parse_datastore_uri(path)
            if uri is None:
                return {"type": value.get("type"), "path": path}
            location = self.datastores.location(uri.datastore)
            target = location.join(uri.path)
            listing = sorted((k, v.get("size"), str(v.get("mtime", v.get("ETag", ""))))
                             for k, v in location.fs.find(target, detail=True).items())  # fmt: skip
            digest = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
            return {"type": value.get("type"), "path": path, "listing": digest}
        except Exception:  # noqa: BLE001 - a path that cannot be listed is fingerprinted by name
            return {"type": value.get("type"), "path": path}

    def _reusable(self, candidates: list[JobRecord], this: str) -> JobRecord | None:
        """The first of ``candidates`` (completed jobs with this step's reuse key) whose outputs
        all still exist."""
        for candidate in candidates:
            if candidate.name == this:
                continue
            outputs = (candidate.spec.get("outputs") or {}).values()
            if all(self.datastores.exists(str(o["path"]).rstrip("/")) for o in outputs if o.get("path")):
                return candidate
        return None

    def _why_run(self, record: JobRecord, parts: dict[str, Any], earlier: list[JobRecord]) -> str:
        """The first field that differs from ``earlier`` (the latest earlier run of this step, if
        any), in plain words."""
        if not earlier:
            return "first run: no earlier run of this step to reuse"
        previous = earlier[0]
        if not (previous.spec.get("step") or {}).get("reuse"):
            return f"the earlier run {previous.name} never started ({previous.status})"
        before = previous.spec["step"]["reuse"]
        for field, value in parts.items():
            if before.get(field) != value:
                return _changed(field, before.get(field), value, previous, record)
        if previous.status != JobStatus.COMPLETED:
            return f"the earlier run {previous.name} did not complete ({previous.status})"
        # A reused step's outputs are those of the job that ran.
        ran = previous.spec["step"].get("reused_from") or previous.name
        return f"the outputs of the earlier run {ran} no longer exist"

    # -- ending ------------------------------------------------------------------------------
    def _settle(self, key: str, status: str, why: str) -> None:
        name = self.names[key]
        now = datetime.now(UTC)
        with self.ws.store.transaction(write=True) as tx:
            record = tx.jobs.get(name)
            assert record is not None
            spec = dict(record.spec)
            spec["step"] = {**(spec.get("step") or {}), "run_reason": why}
            tx.jobs.touch(name, spec=spec)
            error = {"cause": "user", "message": why} if status == JobStatus.CANCELED else None
            tx.jobs.transition(name, status, only_from=[JobStatus.NOT_STARTED], end_time=now, error=error)

    def _stop_steps(self, why: str) -> None:
        """Cancel the steps that run, and mark those that never started Canceled."""
        with self.ws.store.transaction() as tx:
            children = tx.jobs.children(self.name)
        for child in children:
            if child.status in JobStatus.ACTIVE - {JobStatus.NOT_STARTED}:
                with self.ws.store.transaction(write=True) as tx:
                    running = JobStatus.ACTIVE - {JobStatus.NOT_STARTED, JobStatus.CANCEL_REQUESTED}
                    tx.jobs.transition(child.name, JobStatus.CANCEL_REQUESTED, only_from=running)
        self.jobs._cancel_unstarted(self.name, why)

    def _finish_canceled(self) -> None:
        self._stop_steps("the pipeline was canceled")
        self._wait_for_steps()
        self._end(JobStatus.CANCELED, None)

    def _wait_for_steps(self) -> None:
        """Until the steps told to stop have stopped: the pipeline ends after its steps (30 s at
        most; a step's supervisor that hangs is found by the next smalt command)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.ws.store.transaction() as tx:
                active = [c for c in tx.jobs.children(self.name) if c.status in JobStatus.ACTIVE]
            if not active:
                return
            self._beat(active)
            time.sleep(0.05)

    def _publish_outputs(self) -> None:
        """The pipeline's outputs are the step outputs bound to them (a pipeline without any
        has nothing to record)."""
        if not any(step.publishes for step in self.steps.values()):
            return
        with self.ws.store.transaction() as tx:
            record = tx.jobs.get(self.name)
            children = {r.spec.get("step", {}).get("key"): r for r in tx.jobs.children(self.name)}
        assert record is not None
        spec = dict(record.spec)
        pipeline = dict(spec["pipeline"])
        outputs = dict(pipeline.get("outputs") or {})
        for key, step in self.steps.items():
            for port, name in step.publishes.items():
                produced = (children[key].spec.get("outputs") or {}).get(port) or {}
                outputs[name] = {
                    **(outputs.get(name) or {}),
                    **{k: produced[k] for k in ("type", "path") if k in produced},
                }
        pipeline["outputs"] = outputs
        spec["pipeline"] = pipeline
        with self.ws.store.transaction(write=True) as tx:
            tx.jobs.touch(self.name, spec=spec)

    def _end(self, status: str, error: dict[str, Any] | None) -> None:
        # From any active status: a cancel asked for as the last step ended must not leave the
        # pipeline CancelRequested with no driver left to end it.
        with self.ws.store.transaction(write=True) as tx:
            tx.jobs.transition(self.name, status, only_from=JobStatus.ACTIVE, end_time=datetime.now(UTC),
                               error=error)  # fmt: skip
        ring_all(job_folder(self.ws, self.name) / WATCHERS)


def _culprits(status: dict[str, str]) -> list[str]:
    """The steps that make the pipeline fail: those that failed; else those canceled (by hand)."""
    failed = [k for k, s in status.items() if s == JobStatus.FAILED]
    return failed or [k for k, s in status.items() if s in _FAILED]


def _failure(failed: list[str], children: dict[str, JobRecord]) -> dict[str, Any]:
    first = children[failed[0]]
    message = (first.error or {}).get("message", first.status)
    return {"cause": "user", "message": f"step {failed[0]} ({first.name}) {first.status.lower()}: {message}",
            "failed_steps": failed}  # fmt: skip


def _changed(field: str, before: Any, after: Any, previous: JobRecord, record: JobRecord) -> str:
    if field == "code":
        old = (previous.spec.get("runtime") or {}).get("code_files") or {}
        new = (record.spec.get("runtime") or {}).get("code_files") or {}
        files = sorted(f for f in set(old) | set(new) if old.get(f) != new.get(f))
        return f"code changed: {', '.join(files[:3])}{' and more' if len(files) > 3 else ''}" if files \
            else "code changed"  # fmt: skip
    if field == "environment":
        return f"environment changed: {str(before)[:12]} -> {str(after)[:12]}"
    if field.startswith("inputs."):
        port = field.removeprefix("inputs.")
        if isinstance(after, dict) or isinstance(before, dict):
            old_path = (before or {}).get("path") if isinstance(before, dict) else before
            new_path = (after or {}).get("path") if isinstance(after, dict) else after
            if old_path == new_path:
                return f"input {port} changed: its content is different"
            return f"input {port} changed: {new_path}"
        return f"input {port} changed: {before!r} -> {after!r}"
    if field.startswith("outputs."):
        return f"output settings changed: {field.removeprefix('outputs.')}"
    return f"{field.replace('_', ' ')} changed"


def _parse_literal(text: str, type_: str) -> Any:
    if type_ == "boolean":
        return text.lower() in ("true", "1", "yes")
    if type_ == "integer":
        return int(text)
    if type_ == "number":
        return float(text)
    return text


def _environment_entity(value: Any) -> Any:
    from smalt.entities import InlineEnvironment

    return InlineEnvironment.model_validate(value) if isinstance(value, dict) else value


def main(argv: list[str]) -> int:
    workspace = open_kept(Path(argv[0]))
    try:
        Driver(workspace, argv[1]).run()
    finally:
        workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

__all__ = ["Driver", "PipelineService"]
