"""One supervisor process per job: it owns the job's life from Queued to its final status.

Run as ``python -m smalt.services.supervisor WORKSPACE JOB``. It takes the job by recording its
pid, compare-and-set (a second supervisor started for the same job leaves at once), and writes a
heartbeat every few seconds. The job's command runs in its own session, so cancel and timeout stop
the whole process tree, and under a watchdog that stops that tree the moment the supervisor dies
(``execution/local.py``). A job whose supervisor died is settled by a reaper
(``JobService.reap_stale``): the next smalt command, a pipeline's driver for its steps, and
``smalt server`` every few seconds.

Publishing. Outputs are written to local folders (``jobs/<name>/outputs/<port>``) and published
only for a job that ends Completed, in this order:

1. the command succeeded: the job is recorded Finalizing, a claim that its outputs are complete
   in their local folders and are being published;
2. each output's port is added to the journal ``jobs/<name>/publishing``, then the output is
   published (renamed into the datastore, or uploaded with a completion marker); an output with a
   ``name`` is then registered as a data asset or a model;
3. the job is recorded Completed.

A supervisor that dies during 1-3 leaves the job Finalizing, and the reaper that finds it does 2
and 3 again (``Supervisor.resolve``): an output whose local folder is gone was moved into place by
the earlier try, and one registered already (its lineage says so) is not registered again. When
publishing cannot finish (a registration conflicts, an output was lost, the local folders are on
another machine, a cancel came), every output the journal names is deleted and every asset the
job registered is archived *before* the job is recorded Failed (or Canceled). So a published
output always belongs to a job that is Completed or Finalizing, and Finalizing always ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from smalt.entities import CommandJob, Data, Entity, Input, JobStatus, Model
from smalt.entities.connection import references
from smalt.entities.environment import inherited_variables
from smalt.entities.io import PRIMITIVE_TYPES
from smalt.errors import BackendError, NotFoundError, SmaltError
from smalt.execution import ProcessGroup, acquire_slot, ring, ring_all
from smalt.execution.detached import crash_point
from smalt.execution.redaction import Redactor
from smalt.services.assets import AssetService
from smalt.services.computes import ComputeService
from smalt.services.datastores import DatastoreService
from smalt.services.jobs import DOORBELL, PUBLISHING, WATCHERS, JobService, job_folder
from smalt.services.tracking import run_artifact_path
from smalt.services.workspace import DEFAULT_DATASTORE, WorkspaceContext, keep_open, open_kept, open_workspace
from smalt.specs import parse_datastore_uri
from smalt.specs.command import literal, render
from smalt.store import JobRecord

if TYPE_CHECKING:
    from smalt.environments import ResolvedEnvironment

HEARTBEAT_S = 2.0
_FILE_OUTPUTS = ("uri_file", *PRIMITIVE_TYPES)
_MODEL_TYPES = ("mlflow_model", "custom_model", "triton_model")
POLL_S = 0.02
_LOG_TAIL_LINES = 20
#: A failed job's log tail is kept with its record and returned by every list: bounded in bytes
#: too, whatever the command printed (one line of 50 MB included).
_LOG_TAIL_BYTES, _LOG_LINE_CHARS = 4096, 400


def log_tail(log: Path) -> str:
    """The last lines of ``log``, read from its end: at most 20 lines, each cut to 400 characters,
    4 KiB in all."""
    with log.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - _LOG_TAIL_BYTES))
        data = handle.read(_LOG_TAIL_BYTES)
    lines = data.decode("utf-8", "replace").splitlines()[-_LOG_TAIL_LINES:]
    kept = [line if len(line) <= _LOG_LINE_CHARS else line[:_LOG_LINE_CHARS] + " [...]" for line in lines]
    return "\n".join(kept)[-_LOG_TAIL_BYTES:]


class TrackingEndpoint:
    """MLflow's protocol for one job, on 127.0.0.1, started only when the job first connects.

    The port is bound at once, so the job gets its address in ``MLFLOW_TRACKING_URI`` before it
    starts; the server (``python -m smalt.server`` on the inherited socket, with a token only this
    job knows) starts when a connection waits on the socket. A job that never logs pays nothing.
    """

    def __init__(self, workspace: Path, log: Path, job: str) -> None:
        import secrets
        import socket

        self.token = secrets.token_urlsafe(24)
        self._workspace, self._log, self._job = workspace, log, job
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._wake_read, self._wake_write = socket.socketpair()  # close() wakes the watcher at once
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._watch = threading.Thread(target=self._wait_for_client, name="tracking-activation", daemon=True)
        self._watch.start()

    def _wait_for_client(self) -> None:
        import select

        readable, _, _ = select.select([self._sock, self._wake_read], [], [])
        with self._lock:
            if self._sock in readable and not self._stop.is_set():
                self._start_server()

    def _start_server(self) -> None:
        fd = self._sock.fileno()
        with open(self._log, "ab") as handle:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "smalt.server", "--workspace", str(self._workspace), "--fd", str(fd),
                 "--token-env", "SMALT_TRACKING_TOKEN", "--job", self._job],
                pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                env={**os.environ, "SMALT_TRACKING_TOKEN": self.token},
            )  # fmt: skip

    @property
    def started(self) -> bool:
        """Whether the job connected, so that its server ran (and MLflow printed links to it)."""
        return self._process is not None

    def environment(self, run_id: str, experiment_id: int) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.url, "MLFLOW_TRACKING_TOKEN": self.token, "MLFLOW_RUN_ID": run_id,
                "MLFLOW_EXPERIMENT_ID": str(experiment_id)}  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._stop.set()
        self._wake_write.send(b"x")
        self._watch.join(5)
        self._wake_read.close()
        self._wake_write.close()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._sock.close()


class _Stop(Exception):
    """The job was canceled while the supervisor waited or prepared."""


class _NotOurs(Exception):
    """Another supervisor took the job first (one started again by a reaper, and the late first)."""


class Supervisor:
    def __init__(self, workspace: WorkspaceContext, name: str) -> None:
        self.ws = workspace
        self.name = name
        self.jobs = JobService(workspace)
        self.datastores = DatastoreService(workspace, remember=True)
        self.folder = job_folder(workspace, name)
        self.logs = self.folder / "logs"
        self.cancel = threading.Event()
        self._stop_beat = threading.Event()
        #: The job's record as read at the start: its spec, parent and experiment do not change.
        self.record: JobRecord | None = None
        #: The connection secrets the command was given: masked in what it prints.
        self.secrets: list[str] = []

    # -- status -----------------------------------------------------------------------------
    def _move(self, to: str, only_from: set[str] | frozenset[str], **values: Any) -> bool:
        with self.ws.store.transaction(write=True) as tx:
            return tx.jobs.transition(self.name, to, only_from=only_from, **values)

    def _claim(self, *, preparing: bool, environment: str) -> tuple[bool, bool]:
        """Take the job: record this supervisor (pid, heartbeat) as its owner if it has none (else
        _NotOurs), and the job Queued; with ``preparing``, also Preparing. Whether the job was not
        canceled meanwhile, and whether the lineage of the ``environment`` digest is recorded
        already (asked here: one transaction fewer)."""
        now = datetime.now(UTC)
        with self.ws.store.transaction(write=True) as tx:
            if not tx.jobs.claim(self.name, os.getpid(), holder=None, heartbeat_at=now):
                raise _NotOurs
            tx.jobs.transition(self.name, JobStatus.QUEUED, only_from=[JobStatus.NOT_STARTED])
            claimed = not preparing or tx.jobs.transition(self.name, JobStatus.PREPARING, only_from=[JobStatus.QUEUED],
                                                          start_time=now)  # fmt: skip
            return claimed, bool(tx.lineage.environments([environment]))

    def _beat(self) -> None:
        while not self._stop_beat.wait(HEARTBEAT_S):
            try:
                with self.ws.store.transaction(write=True) as tx:
                    tx.jobs.touch(self.name, heartbeat_at=datetime.now(UTC))
                    record = tx.jobs.get(self.name)
                if record is not None and record.status == JobStatus.CANCEL_REQUESTED:
                    self.cancel.set()
            except SmaltError:
                pass  # a missed beat is not fatal; the next one may get through

    def _canceled(self) -> bool:
        if not self.cancel.is_set():
            with self.ws.store.transaction() as tx:
                record = tx.jobs.get(self.name)
            if record is not None and record.status == JobStatus.CANCEL_REQUESTED:
                self.cancel.set()
        return self.cancel.is_set()

    def _finish(self, status: str, error: dict[str, Any] | None = None) -> None:
        self._move(status, JobStatus.ACTIVE, end_time=datetime.now(UTC), error=error)
        ring_all(self.folder / WATCHERS)  # whoever streams the job sees its end at once
        if self.record is None:  # the job could not be read: it may still be a step
            with self.ws.store.transaction() as tx:
                self.record = tx.jobs.get(self.name)
        if self.record is not None and self.record.parent_name is not None:
            parent = job_folder(self.ws, self.record.parent_name)
            ring(parent / DOORBELL)  # the pipeline's driver: a step ended
            ring_all(parent / WATCHERS)

    # -- the job ----------------------------------------------------------------------------
    def _read(self) -> CommandJob:
        """The job as submitted: only its spec (no metrics or params, which it has none of yet)."""
        with self.ws.store.transaction() as tx:
            self.record = tx.jobs.get(self.name)
        if self.record is None:
            raise NotFoundError(f"Job '{self.name}' not found.")
        job = self.jobs.entity(self.record)
        assert isinstance(job, CommandJob)
        return job

    def run(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        beat = threading.Thread(target=self._beat, daemon=True)
        slot = None
        try:
            job = self._read()
            from smalt.environments import resolve

            environment = resolve(job.environment)
            compute = ComputeService(self.ws).get(job.compute or "local")
            slots = self.ws.path / "compute" / compute.name
            # A free slot: claimed, and the job Preparing, in one transaction with this supervisor's
            # pid. Otherwise the pid is recorded first, so that a supervisor that dies while the job
            # waits in the queue is noticed.
            slot = acquire_slot(slots, compute.max_instances, should_stop=lambda: True)
            if slot is None:
                _, recorded = self._claim(preparing=False, environment=environment.digest)
                beat.start()
                slot = acquire_slot(slots, compute.max_instances, should_stop=self._canceled)
                if slot is None or not self._move(JobStatus.PREPARING, {JobStatus.QUEUED},
                                                  start_time=datetime.now(UTC)):  # fmt: skip
                    raise _Stop
            else:
                claimed, recorded = self._claim(preparing=True, environment=environment.digest)
                if not claimed:
                    raise _Stop
                beat.start()
            python = self._prepare_environment(environment, recorded=recorded)
            workdir, inputs, outputs = self._materialise(job)
            # A cancel requested meanwhile left the job CancelRequested: this move then fails.
            if not self._move(JobStatus.RUNNING, {JobStatus.PREPARING}):
                raise _Stop
            tracking = TrackingEndpoint(self.ws.path, self.logs / "tracking_server.txt", self.name)
            try:
                step = (self.record.spec if self.record else {}).get("step") or {}
                tries = 1 + int(step.get("retry") or 0)  # a pipeline step's retry_settings.max_retries
                for attempt in range(1, tries + 1):
                    code, reason = self._execute(job, python, workdir, inputs, outputs, tracking)
                    if code == 0 or reason == "canceled" or attempt == tries:
                        break
                    self._say(f"smalt: try {attempt} of {tries} failed ({reason or f'exit code {code}'}); "
                              "trying again")  # fmt: skip
            finally:
                tracking.close()
            if tracking.started:
                # MLflow's "View run ... at: <url>/#/experiments/..." leads to this server, gone now.
                self._say(f"smalt: this job's MLflow server ({tracking.url}) stopped with the job; "
                          f"see run {self.name} with: smalt job show -n {self.name}")  # fmt: skip
            if reason == "canceled":
                raise _Stop
            if code != 0:
                self._collect_artifacts(workdir)
                message = reason or f"the command exited with code {code}"
                self._finish(JobStatus.FAILED, {"cause": "user", "message": message, "exit_code": code,
                                                "log_tail": self._log_tail()})  # fmt: skip
                return
            # The run's artifacts are not outputs: a failed job has them too.
            self._collect_artifacts(workdir)
            if not self._move(JobStatus.FINALIZING, {JobStatus.RUNNING}):
                raise _Stop
            crash_point("supervisor.finalizing")
            self._finalize(job)
        except _NotOurs:
            print(f"smalt: supervisor {self._owner()} has job {self.name}; this one ({os.getpid()}) leaves")
        except _Stop:
            self._finish(JobStatus.CANCELED)
        except BaseException as exc:  # noqa: BLE001 - every failure must end in a final status
            self._keep_traceback()
            self._finish(JobStatus.FAILED, {"cause": "platform", "message": _message(exc),
                                            "log_tail": self._log_tail()})  # fmt: skip
        finally:
            self._stop_beat.set()
            if slot is not None:
                slot.release()

    def _owner(self) -> int | None:
        with self.ws.store.transaction() as tx:
            record = tx.jobs.get(self.name)
        return record.supervisor_pid if record is not None else None

    def _keep_traceback(self) -> None:
        with open(self.logs / "supervisor_error.txt", "w") as handle:
            traceback.print_exc(file=handle)

    # -- publishing (the module docstring says why in this order) --------------------------------
    def _finalize(self, job: CommandJob) -> None:
        """Publish the outputs and record the job Completed; if they cannot all be published, take
        back what was, then record the job Failed."""
        try:
            self._publish(job)
            crash_point("supervisor.published")
        except BaseException as exc:  # noqa: BLE001 - a job left Finalizing would wait for a reaper
            self._keep_traceback()
            self._give_up(job, JobStatus.FAILED, f"publishing its outputs failed: {_message(exc)}")
            return
        self._finish(JobStatus.COMPLETED)

    def _publish(self, job: CommandJob) -> None:
        """Publish each output; one with a ``name`` is registered as a data asset, or as a model
        when its type is a model type, linked to this job (lineage). Done again after a crash, it
        does only what is left."""
        journal = self.folder / PUBLISHING
        begun = set(journal.read_text().split()) if journal.exists() else set()
        registered: set[str | None] = set()
        if any(o.name and o.type not in PRIMITIVE_TYPES for o in job.outputs.values()):
            with self.ws.store.transaction() as tx:
                registered = {e.port for e in tx.lineage.out_of([f"job:{self.name}"]) if e.relation == "output"}
        for port, output in job.outputs.items():
            assert output.path is not None
            staged = self.folder / "outputs" / port  # a uri_file output is a file inside it
            if staged.exists():
                if port not in begun:
                    with open(journal, "a") as handle:
                        handle.write(port + "\n")
                self.datastores.promote(staged, output.path, consume=True)
            elif port not in begun or not self.datastores.exists(output.path):
                raise BackendError(f"Output '{port}' of job {self.name} was lost: its folder {staged} is gone "
                                   f"and nothing was published at {output.path}.")  # fmt: skip
            if not output.name or output.type in PRIMITIVE_TYPES or port in registered:
                continue
            description = f"Output '{port}' of job {self.name}"
            if output.type in _MODEL_TYPES:
                model = Model(name=output.name, version=output.version, path=output.path, type=output.type,
                              job_name=self.name, description=description)  # fmt: skip
                AssetService(self.ws, Model).create_or_update(model, produced_by=(self.name, port))
                continue
            data_type = output.type if output.type in ("uri_file", "uri_folder", "mltable") else "uri_folder"
            path = output.path.rstrip("/") + f"/{port}" if output.type == "uri_file" else output.path
            registered_data = Data(name=output.name, version=output.version, path=path, type=data_type,
                                   description=description)  # fmt: skip
            AssetService(self.ws, Data).create_or_update(registered_data, produced_by=(self.name, port))

    def _give_up(self, job: CommandJob, status: str, why: str) -> None:
        """Take back every output the journal names (deleted) and every asset the job registered
        (archived), then record ``status``: never the other way round."""
        journal = self.folder / PUBLISHING
        left = []
        for port in journal.read_text().split() if journal.exists() else []:
            output = job.outputs.get(port)
            uri = parse_datastore_uri(output.path) if output is not None and output.path else None
            if uri is None:
                continue
            location = self.datastores.location(uri.datastore)
            target = location.join(uri.path).rstrip("/")
            try:
                if location.fs.exists(target):
                    location.fs.rm(target, recursive=True)
            except OSError:
                left.append(str(output.path) if output is not None else port)
        with self.ws.store.transaction(write=True) as tx:
            for edge in tx.lineage.out_of([f"job:{self.name}"]):
                if edge.relation == "output":
                    kind, _, node = edge.dst.partition(":")
                    asset, _, version = node.rpartition(":")
                    tx.assets.set_archived(kind, asset, version, True)
        unpublished = "nothing it published is left" if not left else f"could not remove {', '.join(left)}"
        cause = "user" if status == JobStatus.CANCELED else "platform"
        self._finish(status, {"cause": cause, "message": f"{why}; {unpublished}", "log_tail": self._log_tail()})

    def resolve(self, *, died: int | None = None) -> None:
        """Settle a job whose supervisor (pid ``died``) died while it was Finalizing (or
        CancelRequested after that), in this process: its caller, a reaper, has taken the job in
        that state. Publishing is done again (Completed) where the outputs' local folders are here;
        otherwise what was published is taken back (Failed, or Canceled if a cancel was asked)."""
        job = self._read()
        assert self.record is not None
        if self.record.status not in (JobStatus.FINALIZING, JobStatus.CANCEL_REQUESTED):
            return  # it ended meanwhile: what it published is its own, and stays
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "supervisor.log", "a") as log:
            log.write(f"smalt: the supervisor (pid {died}) died while it published the "
                      f"outputs; process {os.getpid()} settles the job\n")  # fmt: skip
        here = (self.record.spec.get("runtime") or {}).get("host") == socket.gethostname()
        beat = threading.Thread(target=self._beat, daemon=True)  # a long upload must not look dead
        beat.start()
        try:
            if self.record.status == JobStatus.FINALIZING and here:
                self._finalize(job)
            elif self.record.status == JobStatus.FINALIZING:
                self._give_up(job, JobStatus.FAILED, "its supervisor on another machine died while it published "
                                                     "the outputs, which were staged there")  # fmt: skip
            else:
                self._give_up(job, JobStatus.CANCELED, "canceled while its outputs were published")
        finally:
            self._stop_beat.set()

    def _say(self, line: str) -> None:
        with open(self.logs / "std_log.txt", "a") as handle:
            handle.write(line + "\n")

    def _prepare_environment(self, resolved: ResolvedEnvironment, *, recorded: bool) -> str:
        """Build the environment unless it is built; ``recorded``: its lineage is recorded already.
        uv's output goes to ``build_log.txt``; the build's phases and time to the job's own log,
        which ``job stream`` follows (environments/progress.py)."""
        from smalt.environments import BuildProgress, ensure

        with open(self.logs / "build_log.txt", "a") as log, BuildProgress(resolved, self._say) as progress:
            for warning in resolved.warnings:
                log.write(f"warning: {warning}\n")
            python = ensure(resolved, self.ws.path / "envs", log, progress.phase)
        # Lineage: what the environment holds, recorded by the first job that uses it.
        if not recorded:
            from smalt.environments import installed_packages

            version, packages = installed_packages(python)
            with self.ws.store.transaction(write=True) as tx:
                tx.lineage.record_environment(resolved.digest, version, packages)
        return str(python)

    def _materialise(self, job: CommandJob) -> tuple[Path, dict[str, str | None], dict[str, str]]:
        if job.code:
            snapshot = self.datastores.download(job.code, self.folder / "snapshot", verify=True)
            workdir = snapshot if snapshot.is_dir() else snapshot.parent
        else:
            workdir = self.folder / "wd"
            workdir.mkdir(parents=True, exist_ok=True)
        inputs: dict[str, str | None] = {}
        for port, value in job.inputs.items():
            inputs[port] = self._input_value(port, value)
        outputs: dict[str, str] = {}
        for port, output in job.outputs.items():
            local = self.folder / "outputs" / port
            local.mkdir(parents=True, exist_ok=True)
            # A uri_file output is the file itself, written inside the folder that is published; so
            # is a primitive one (a control output: the command writes its value, e.g. True).
            outputs[port] = str(local / port) if output.type in _FILE_OUTPUTS else str(local)
        return workdir, inputs, outputs

    def _input_value(self, port: str, value: Input | str | int | float | bool) -> str | None:
        if not isinstance(value, Input):
            return literal(value)
        if value.path is None:
            return None if value.default is None else literal(value.default)
        if value.type in ("string", "integer", "number", "boolean"):
            return value.path
        if value.mode == "direct":
            return value.path
        target = self.folder / "inputs" / port
        if parse_datastore_uri(value.path) is not None:
            return str(self.datastores.download(value.path.rstrip("/"), target))
        if value.path.startswith(("http://", "https://")):
            target.mkdir(parents=True, exist_ok=True)
            file = target / (value.path.rstrip("/").rsplit("/", 1)[-1] or "download")
            with urllib.request.urlopen(value.path, timeout=60) as response, open(file, "wb") as out:  # noqa: S310
                shutil.copyfileobj(response, out)
            return str(file)
        return value.path

    def _environment(self, job: CommandJob, python: str, inputs: dict[str, str | None],
                     outputs: dict[str, str], tracking: TrackingEndpoint) -> dict[str, str]:  # fmt: skip
        venv_bin = str(Path(python).parent)
        variables = job.environment_variables
        if references(variables):
            # A connection's secret reaches the command, never a file; its logs are redacted.
            from smalt.services.connections import ConnectionService

            variables, self.secrets = ConnectionService(self.ws).injected(variables, reader=f"job {self.name}")
        env = {**inherited_variables(), **variables}
        env.pop("SMALT_WORKSPACE", None)
        assert self.record is not None
        env.update(tracking.environment(self.name, self.record.experiment_id))
        env.update({
            "PATH": venv_bin + os.pathsep + env.get("PATH", ""), "VIRTUAL_ENV": str(Path(venv_bin).parent),
            "AZUREML_RUN_ID": self.name, "AZUREML_JOB_NAME": self.name,
            "AZUREML_EXPERIMENT_NAME": job.experiment_name or "Default", "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        for port, value in inputs.items():
            if value is not None:
                env[f"AZURE_ML_INPUT_{port}"] = value
        for port, value in outputs.items():
            env[f"AZURE_ML_OUTPUT_{port}"] = value
        return env

    def _ranks(self, job: CommandJob, base: dict[str, str]) -> list[dict[str, str]]:
        dist = job.distribution or {}
        nodes = int((job.resources or {}).get("instance_count", 1) or 1)
        kind = str(dist.get("type", "")).lower()
        if kind in ("pytorch", "mpi"):
            per_node = int(dist.get("process_count_per_instance", 1) or 1)
        elif kind == "tensorflow":
            per_node = int(dist.get("worker_count", 1) or 1)
        else:
            return [base]
        world = per_node * nodes
        port = str(_free_port())
        envs = []
        for rank in range(world):
            env = dict(base)
            env.update({
                "WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank % per_node),
                "NODE_RANK": str(rank // per_node), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
            })  # fmt: skip
            if kind == "mpi":
                env.update({"OMPI_COMM_WORLD_RANK": str(rank), "OMPI_COMM_WORLD_SIZE": str(world),
                            "OMPI_COMM_WORLD_LOCAL_RANK": str(rank % per_node)})  # fmt: skip
            if kind == "tensorflow":
                workers = [f"127.0.0.1:{int(port) + 1 + i}" for i in range(world)]
                env["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers},
                                               "task": {"type": "worker", "index": rank}})  # fmt: skip
            envs.append(env)
        return envs

    def _execute(self, job: CommandJob, python: str, workdir: Path, inputs: dict[str, str | None],
                 outputs: dict[str, str], tracking: TrackingEndpoint) -> tuple[int, str | None]:  # fmt: skip
        command = render(job.command, inputs, outputs)
        (workdir / "outputs").mkdir(exist_ok=True)
        (workdir / "logs").mkdir(exist_ok=True)
        envs = self._ranks(job, self._environment(job, python, inputs, outputs, tracking))
        names = ["std_log.txt"] if len(envs) == 1 else [f"std_log_process_{i}.txt" for i in range(len(envs))]
        handles: list[IO[bytes]] = [open(self.logs / n, "ab") for n in names]  # noqa: SIM115
        redactors = [Redactor(h, self.secrets) for h in handles] if self.secrets else []
        timeout = job.limits.timeout if job.limits else None
        started = time.monotonic()
        group: ProcessGroup | None = None
        try:
            # Recorded so that whoever finds this supervisor dead can stop what it started.
            outputs_to = [r.writer for r in redactors] or handles
            group = ProcessGroup.start(command, workdir, envs, outputs_to, record=self.folder / "process_groups")
            for redactor in redactors:
                redactor.started()
            while True:
                code = group.wait(POLL_S)
                if code is not None:
                    return code, None
                if self.cancel.is_set():
                    group.kill()
                    return -1, "canceled"
                if timeout is not None and time.monotonic() - started > timeout:
                    group.kill()
                    return -1, f"the job ran past its limits.timeout of {timeout} s and was stopped"
        finally:
            if group is not None:
                group.close()
            for redactor in redactors:
                redactor.finish()
            for handle in handles:
                handle.close()

    def _collect_artifacts(self, workdir: Path) -> None:
        """Publish the command's ``./outputs`` and ``./logs`` and the job's own logs as its artifacts,
        each part on its own, so that what the job logged through MLflow stays beside them. The
        working directory is scratch: its parts are moved, not copied, where they can be."""
        root = f"azureml://datastores/{DEFAULT_DATASTORE}/paths/{run_artifact_path(self.name)}"
        for part in ("outputs", "logs"):
            source = workdir / part
            if source.is_dir() and any(source.iterdir()):
                self.datastores.promote(source, f"{root}/{part}", consume=True)
        system_logs = self.folder / "system_logs"  # copies: `job stream` may still read the originals
        for log in self.logs.glob("*.txt"):
            system_logs.mkdir(exist_ok=True)
            shutil.copyfile(log, system_logs / log.name)
        if system_logs.is_dir():
            self.datastores.promote(system_logs, f"{root}/system_logs", consume=True)

    def _log_tail(self) -> str:
        logs = sorted(self.logs.glob("std_log*.txt"))
        if not logs:
            return ""
        return log_tail(logs[-1])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def warm_up() -> None:
    """Make ready, once, what every supervisor needs: a fork server calls this before it forks
    supervisors, so that no job pays for it again (about 50 ms per job here)."""
    import fsspec

    import smalt.environments  # noqa: F401 - every job resolves its environment

    fsspec.filesystem("file")  # fsspec's import, its registry and the local filesystem
    # Validators are built on first use (defer_build): here, every entity's, once for every
    # process forked from this one (a pipeline's driver meets components, inputs and outputs).
    pending: list[type[Entity]] = [Entity]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not Entity:
            cls.model_rebuild(force=True)


def warm_workspace(workspace: Path) -> None:
    """Open ``workspace`` for the supervisors a fork server forks (``open_kept``), with the
    statements they run compiled, by running them on no job at all."""
    context = open_workspace(workspace, create=False)
    nobody, now = "-", datetime.now(UTC)
    with context.store.transaction(write=True) as tx:
        tx.jobs.claim(nobody, 0, holder=None, heartbeat_at=now)
        tx.jobs.transition(nobody, JobStatus.QUEUED, only_from=[JobStatus.NOT_STARTED])
        tx.jobs.transition(nobody, JobStatus.PREPARING, only_from=[JobStatus.QUEUED], start_time=now)
        tx.jobs.transition(nobody, JobStatus.COMPLETED, only_from=JobStatus.ACTIVE, end_time=now, error=None)
        tx.jobs.get(nobody)
        tx.tracking.run_data([nobody])
        tx.lineage.environments([nobody])
    with contextlib.suppress(SmaltError):
        ComputeService(context).get("local")
        JobService(context).get(nobody)
    DatastoreService(context).get(DEFAULT_DATASTORE)
    keep_open(context)


def reap_workspace(workspace: Path) -> None:
    """Settle the jobs of ``workspace`` whose supervisor or driver died: what a fork server runs,
    every few seconds, for the process that keeps it (``smalt server``; execution/detached.py)."""
    JobService(open_kept(workspace)).reap_stale()


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, SmaltError) else f"{type(exc).__name__}: {exc}"


def main(argv: list[str]) -> int:
    workspace_path, name = Path(argv[0]), argv[1]
    workspace = open_kept(workspace_path)
    try:
        Supervisor(workspace, name).run()
    finally:
        workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
