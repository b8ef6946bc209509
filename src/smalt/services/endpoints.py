"""Online endpoints and deployments: records, keys, and the processes that serve them.

Layout under the workspace folder::

    endpoints/<endpoint>/router.json          the router's configuration (0600: it holds secrets)
    endpoints/<endpoint>/router.log
    endpoints/<endpoint>/<deployment>/<generation>/   code snapshot, model files, instance logs

Each create or update of a deployment starts a new generation of its instances beside the one
serving. Only when every new instance has run ``init()`` and listens does the router switch to it;
then the old generation finishes its requests and stops. A generation whose ``init()`` fails
never receives traffic: a new deployment is recorded Failed, an update leaves the old one serving.

Once serving, the instances are the router's to keep alive: it starts a dead one again on the same
socket and says so in ``endpoints/<endpoint>/instances.json`` (see ``smalt.serving.router``). So an
instance's process is the one that file names for its socket, else the one recorded here; ``show``
reports from it (an endpoint with a dead or restarting instance is ``Degraded``, its deployment
``Updating``), and ``stop`` and ``delete`` stop both.
"""

from __future__ import annotations

import json
import secrets
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smalt.artifacts import Location
from smalt.entities import (
    CreationContext,
    Data,
    EndpointAuthKeys,
    EndpointAuthToken,
    Environment,
    InlineEnvironment,
    Model,
    OnlineDeployment,
    OnlineEndpoint,
)
from smalt.entities.connection import references
from smalt.entities.endpoint import InlineModel
from smalt.errors import BackendError, InvalidSpecError, InvalidStateError, NotFoundError, SpecProblem
from smalt.services.assets import AssetService
from smalt.services.datastores import DatastoreService
from smalt.services.model_sources import mlflow_conda
from smalt.services.workspace import WorkspaceContext
from smalt.serving.processes import (
    InstanceSpec,
    Process,
    free_port,
    instance_env,
    invoke,
    port_is_free,
    read_status,
    reload_router,
    socket_path,
    start_instance,
    start_router,
    stop_processes,
    wait_ready,
)
from smalt.specs import parse_datastore_uri
from smalt.store import DeploymentRecord, EndpointRecord
from smalt.store.publish import replace_file

HOST = "127.0.0.1"
TOKEN_LIFETIME = timedelta(hours=1)
_READY_TIMEOUT_S = 600.0

EndpointList = list[OnlineEndpoint]
DeploymentList = list[OnlineDeployment]
Status = dict[str, dict[str, Any]]  # the router's account of its instances, by socket
DeploymentRecords = list[DeploymentRecord]
Processes = list[Process]


def _hint_list(name: str) -> str:
    return f"smalt online-deployment list -e {name}"


class EndpointService:
    """Create, change, serve and remove online endpoints and their deployments."""

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace
        self._models: AssetService[Model] = AssetService(workspace, Model)

    # -- records ---------------------------------------------------------------------------------

    def _folder(self, endpoint: str) -> Path:
        return self._ws.path / "endpoints" / endpoint

    @contextmanager
    def _locked(self, endpoint: str) -> Iterator[None]:
        from filelock import FileLock

        folder = self._folder(endpoint)
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / ".lock"), timeout=_READY_TIMEOUT_S):
            yield

    def _record(self, name: str) -> EndpointRecord:
        with self._ws.store.transaction() as tx:
            record = tx.endpoints.get(name)
            names = [] if record is not None else [r.name for r in tx.endpoints.list()]
        if record is None:
            raise NotFoundError(
                f"Online endpoint '{name}' not found. Endpoints: {', '.join(names) or 'none'}.",
                hint=f"smalt online-endpoint create --name {name}",
            )
        return record

    def _deployment_record(self, endpoint: str, name: str) -> DeploymentRecord:
        self._record(endpoint)
        with self._ws.store.transaction() as tx:
            record = tx.endpoints.get_deployment(endpoint, name)
            names = [] if record is not None else [r.name for r in tx.endpoints.deployments(endpoint)]
        if record is None:
            raise NotFoundError(
                f"Deployment '{name}' not found in online endpoint '{endpoint}'. "
                f"Deployments: {', '.join(names) or 'none'}.",
                hint=_hint_list(endpoint),
            )
        return record

    def _endpoint(self, record: EndpointRecord) -> OnlineEndpoint:
        port = record.runtime.get("port")
        state = "Stopped"
        if self._router_alive(record):
            with self._ws.store.transaction() as tx:
                deployments = tx.endpoints.deployments(record.name)
            state = "Degraded" if self._restarting(record.name, deployments) else "Running"
        return OnlineEndpoint.model_validate(record.spec).model_copy(update={
            "scoring_uri": f"http://{HOST}:{port}/score" if port else None,
            "openapi_uri": None,
            "provisioning_state": record.provisioning_state,
            "state": state,
            "creation_context": CreationContext(created_at=record.created_at, created_by=record.created_by,
                                                last_modified_at=record.last_modified_at),
        })  # fmt: skip

    def _deployment(self, record: DeploymentRecord, *, restarting: bool = False) -> OnlineDeployment:
        # A deployment whose router is starting a dead instance again is being provisioned anew.
        state = "Updating" if restarting and record.provisioning_state == "Succeeded" else record.provisioning_state
        return OnlineDeployment.model_validate(record.spec).model_copy(update={
            "provisioning_state": state,
            "model_ref": record.runtime.get("model_ref"),
            "creation_context": CreationContext(created_at=record.created_at, created_by=record.created_by,
                                                last_modified_at=record.last_modified_at),
        })  # fmt: skip

    def get(self, name: str) -> OnlineEndpoint:
        return self._endpoint(self._record(name))

    def list(self) -> EndpointList:
        with self._ws.store.transaction() as tx:
            records = tx.endpoints.list()
        return [self._endpoint(r) for r in records]  # each reads its deployments: not inside that transaction

    def get_deployment(self, endpoint: str, name: str) -> OnlineDeployment:
        record = self._deployment_record(endpoint, name)
        restarting = self._router_alive(self._record(endpoint)) and bool(self._restarting(endpoint, [record]))
        return self._deployment(record, restarting=restarting)

    def list_deployments(self, endpoint: str) -> DeploymentList:
        serving = self._router_alive(self._record(endpoint))
        with self._ws.store.transaction() as tx:
            records = tx.endpoints.deployments(endpoint)
        restarting = self._restarting(endpoint, records) if serving else set()
        return [self._deployment(r, restarting=r.name in restarting) for r in records]

    # -- endpoints -------------------------------------------------------------------------------

    def create_or_update(self, endpoint: OnlineEndpoint) -> OnlineEndpoint:
        """Create an endpoint (with new keys and a port of its own) or change one: description,
        tags, auth mode, traffic and mirror traffic. A change the endpoint cannot take is refused
        whole, before anything is written."""
        with self._locked(endpoint.name):
            with self._ws.store.transaction() as tx:
                existing = tx.endpoints.get(endpoint.name)
                deployments = {r.name: r for r in tx.endpoints.deployments(endpoint.name)}
            self._check_traffic(endpoint, deployments)
            spec = endpoint.model_copy(update={
                "scoring_uri": None, "openapi_uri": None, "provisioning_state": None, "state": None,
                "creation_context": None,
            }).to_dict()  # fmt: skip
            if existing is None:
                sealed = self._ws.secrets.seal({
                    "primary": secrets.token_urlsafe(32), "secondary": secrets.token_urlsafe(32),
                    "signing": secrets.token_urlsafe(48),
                })  # fmt: skip
                runtime: dict[str, Any] = {"port": free_port(HOST), "version": 0}
                with self._ws.store.transaction(write=True) as tx:
                    record = tx.endpoints.put(endpoint.name, spec, self._ws.user, secrets=sealed, runtime=runtime,
                                              provisioning_state="Creating")  # fmt: skip
            else:
                with self._ws.store.transaction(write=True) as tx:
                    tx.endpoints.set(endpoint.name, spec=spec)
                record = self._record(endpoint.name)
            try:
                self._apply(record)
            except BaseException:
                if existing is None:
                    with self._ws.store.transaction(write=True) as tx:
                        tx.endpoints.delete(endpoint.name)
                else:
                    with self._ws.store.transaction(write=True) as tx:
                        tx.endpoints.set(endpoint.name, spec=existing.spec)
                raise
            with self._ws.store.transaction(write=True) as tx:
                tx.endpoints.set(endpoint.name, provisioning_state="Succeeded")
        return self.get(endpoint.name)

    @staticmethod
    def _check_traffic(endpoint: OnlineEndpoint, deployments: dict[str, DeploymentRecord]) -> None:
        problems = []
        for field in ("traffic", "mirror_traffic"):
            for name, weight in getattr(endpoint, field).items():
                record = deployments.get(name)
                if record is None:
                    known = ", ".join(deployments) or "none yet"
                    problems.append(SpecProblem(f"deployment '{name}' does not exist (deployments: {known})",
                                                f"{field}.{name}"))  # fmt: skip
                elif weight > 0 and record.provisioning_state == "Failed":
                    problems.append(SpecProblem(f"deployment '{name}' is Failed and takes no traffic; "
                                                f"see smalt online-deployment get-logs -n {name} -e {endpoint.name}",
                                                f"{field}.{name}"))  # fmt: skip
        for name, weight in endpoint.mirror_traffic.items():
            if weight > 0 and endpoint.traffic.get(name, 0) > 0:
                problems.append(SpecProblem(f"deployment '{name}' takes live traffic and cannot also be mirrored to",
                                            f"mirror_traffic.{name}"))  # fmt: skip
        if problems:
            raise InvalidSpecError(problems, summary=f"Traffic of online endpoint '{endpoint.name}' refused")

    def delete(self, name: str) -> None:
        record = self._record(name)
        with self._locked(name):
            with self._ws.store.transaction(write=True) as tx:
                tx.endpoints.set(name, provisioning_state="Deleting")
            self._stop_all(record)
            with self._ws.store.transaction(write=True) as tx:
                tx.endpoints.delete(name)
        shutil.rmtree(self._folder(name), ignore_errors=True)

    def stop(self, name: str) -> OnlineEndpoint:
        """Stop the router and every instance; the records stay, ``start`` brings them back."""
        record = self._record(name)
        with self._locked(name):
            self._stop_all(record)
        return self.get(name)

    def start(self, name: str) -> OnlineEndpoint:
        """Start whatever of the endpoint is not running: the router, and a new generation of each
        deployment with an instance that is not running, which replaces the old one whole (as an
        update does: no request is dropped, and no instance is left beside its replacement)."""
        record = self._record(name)
        with self._locked(name):
            status = read_status(self._folder(name))
            with self._ws.store.transaction() as tx:
                deployments = tx.endpoints.deployments(name)
            replaced = []
            failure: BackendError | None = None
            for deployment in deployments:
                if deployment.provisioning_state == "Succeeded" and not self._live(deployment.runtime, status):
                    spec = self._deployment(deployment)
                    runtime = self._start_generation(record, spec, deployment.runtime)
                    if runtime.get("error"):
                        failure = BackendError(f"Deployment '{deployment.name}' did not start: {runtime['error']}")
                        break
                    with self._ws.store.transaction(write=True) as tx:
                        tx.endpoints.set_deployment(name, deployment.name, runtime=runtime)
                    replaced.append(deployment.runtime)
            if failure is None or replaced:
                self._apply(self._record(name))
                for runtime in replaced:
                    self._stop_instances(name, runtime, status)
            if failure is not None:
                raise failure
        return self.get(name)

    def start_all(self) -> EndpointList:
        return [self.start(endpoint.name) for endpoint in self.list()]

    def _stop_all(self, record: EndpointRecord) -> None:
        """Stop the router first, so that it starts no instance again, then every instance: those
        recorded here and those the router started, which its last ``instances.json`` names."""
        folder = self._folder(record.name)
        before = read_status(folder)
        router = Process.from_dict(record.runtime.get("router"))
        if router is not None:
            router.stop()
        after = read_status(folder)
        with self._ws.store.transaction() as tx:
            deployments = tx.endpoints.deployments(record.name)
        processes = [p for d in deployments for p in self._processes(d.runtime, before, after)]
        processes += [Process(int(entry["pid"]), float(entry["started"]))
                      for status in (before, after) for entry in status.values() if entry.get("pid")]  # fmt: skip
        stop_processes(processes)

    # -- keys and tokens -------------------------------------------------------------------------

    def _secrets(self, record: EndpointRecord) -> dict[str, str]:
        assert record.secrets is not None
        return self._ws.secrets.open(record.secrets)

    def get_keys(self, name: str) -> EndpointAuthKeys | EndpointAuthToken:
        """The endpoint's keys (``key`` mode) or a new short-lived token (``aml_token`` mode)."""
        record = self._record(name)
        sealed = self._secrets(record)
        if record.spec.get("auth_mode", "key") == "key":
            return EndpointAuthKeys(primary_key=sealed["primary"], secondary_key=sealed["secondary"])
        import jwt

        now = datetime.now(UTC)
        expiry = now + TOKEN_LIFETIME
        token = jwt.encode({"aud": name, "iat": now, "exp": expiry, "sub": self._ws.user}, sealed["signing"],
                           algorithm="HS256")  # fmt: skip
        return EndpointAuthToken(access_token=token, expiry_time_utc=expiry.timestamp(),
                                 refresh_after_time_utc=(now + TOKEN_LIFETIME / 2).timestamp())  # fmt: skip

    def regenerate_keys(self, name: str, key_type: str = "primary") -> None:
        if key_type not in ("primary", "secondary"):
            raise InvalidStateError(f"key type {key_type!r} is not known; use primary or secondary")
        record = self._record(name)
        if record.spec.get("auth_mode", "key") != "key":
            raise InvalidStateError(
                f"Online endpoint '{name}' uses aml_token auth; it has no keys to regenerate.",
                hint=f"smalt online-endpoint get-credentials -n {name} gives a new token",
            )
        with self._locked(name):
            sealed = {**self._secrets(record), key_type: secrets.token_urlsafe(32)}
            with self._ws.store.transaction(write=True) as tx:
                tx.endpoints.set(name, secrets=self._ws.secrets.seal(sealed))
            self._apply(self._record(name))

    # -- deployments -----------------------------------------------------------------------------

    def create_or_update_deployment(
        self, deployment: OnlineDeployment, *, all_traffic: bool = False
    ) -> OnlineDeployment:
        """Start the deployment's instances in its environment; switch the router to them once
        every one has run ``init()``; then stop the instances they replace."""
        endpoint = deployment.endpoint_name
        record = self._record(endpoint)
        if references(deployment.environment_variables):
            from smalt.services.connections import ConnectionService

            ConnectionService(self._ws).check_references(deployment.environment_variables, "environment_variables")
        with self._locked(endpoint):
            with self._ws.store.transaction() as tx:
                previous = tx.endpoints.get_deployment(endpoint, deployment.name)
            try:
                deployment, model_ref = self._resolve_model(deployment)
            except NotFoundError as exc:
                raise deployment.locate_error(exc) from None
            spec = deployment.model_copy(update={"provisioning_state": None, "model_ref": None,
                                                 "creation_context": None}).to_dict()  # fmt: skip
            if previous is None:
                with self._ws.store.transaction(write=True) as tx:
                    tx.endpoints.put_deployment(endpoint, deployment.name, spec, self._ws.user,
                                                runtime={"model_ref": model_ref},
                                                provisioning_state="Creating")  # fmt: skip
            else:
                with self._ws.store.transaction(write=True) as tx:
                    tx.endpoints.set_deployment(endpoint, deployment.name, provisioning_state="Updating")
            try:
                runtime = self._start_generation(record, deployment, {"model_ref": model_ref})
            except BaseException as exc:
                runtime = {"model_ref": model_ref, "error": str(exc)}
                if not isinstance(exc, Exception):
                    raise
            error = runtime.get("error")
            if error:
                if previous is None or previous.provisioning_state == "Failed":
                    with self._ws.store.transaction(write=True) as tx:
                        tx.endpoints.put_deployment(endpoint, deployment.name, spec, self._ws.user, runtime=runtime,
                                                    provisioning_state="Failed")  # fmt: skip
                else:  # the deployment that serves stays as it was
                    with self._ws.store.transaction(write=True) as tx:
                        tx.endpoints.set_deployment(endpoint, deployment.name,
                                                    provisioning_state=previous.provisioning_state)  # fmt: skip
                raise BackendError(
                    f"Deployment '{deployment.name}' of endpoint '{endpoint}' failed: {error}",
                    hint=f"smalt online-deployment get-logs -n {deployment.name} -e {endpoint}",
                )
            status = read_status(self._folder(endpoint))
            with self._ws.store.transaction(write=True) as tx:
                tx.endpoints.put_deployment(endpoint, deployment.name, spec, self._ws.user, runtime=runtime,
                                            provisioning_state="Succeeded")  # fmt: skip
                # As in Azure ML, every deployment has a weight, 0 until traffic is given to it.
                traffic = {**record.spec.get("traffic", {})}
                traffic.setdefault(deployment.name, 0)
                if all_traffic:
                    traffic = {name: 100 if name == deployment.name else 0 for name in traffic}
                tx.endpoints.set(endpoint, spec={**record.spec, "traffic": traffic})
            self._apply(self._record(endpoint))
            if previous is not None:
                self._stop_instances(endpoint, previous.runtime, status)
            self._register_capture(deployment)
        return self.get_deployment(endpoint, deployment.name)

    def delete_deployment(self, endpoint: str, name: str) -> None:
        record = self._deployment_record(endpoint, name)
        spec = self._record(endpoint).spec
        if spec.get("traffic", {}).get(name, 0) > 0 or spec.get("mirror_traffic", {}).get(name, 0) > 0:
            raise InvalidStateError(
                f"Deployment '{name}' still takes traffic in endpoint '{endpoint}'.",
                hint=f"smalt online-endpoint update -n {endpoint} --traffic '{name}=0 <other>=100' first",
            )
        with self._locked(endpoint):
            status = read_status(self._folder(endpoint))
            with self._ws.store.transaction(write=True) as tx:
                tx.endpoints.delete_deployment(endpoint, name)
                endpoint_spec = self._record(endpoint).spec
                for field in ("traffic", "mirror_traffic"):
                    endpoint_spec[field] = {k: v for k, v in endpoint_spec.get(field, {}).items() if k != name}
                tx.endpoints.set(endpoint, spec=endpoint_spec)
            self._apply(self._record(endpoint))
            self._stop_instances(endpoint, record.runtime, status)
        shutil.rmtree(self._folder(endpoint) / name, ignore_errors=True)

    def get_logs(self, endpoint: str, name: str, lines: int | None = None) -> str:
        """The output of the deployment's instances (the latest attempt, failed or serving)."""
        record = self._deployment_record(endpoint, name)
        texts = []
        for log in record.runtime.get("logs", []):
            text = Path(log).read_text(errors="replace") if Path(log).exists() else ""
            texts.append(f"=== {Path(log).stem} ===\n{text}" if len(record.runtime["logs"]) > 1 else text)
        text = "\n".join(texts)
        if lines is not None:
            text = "\n".join(text.splitlines()[-lines:])
        return text

    def invoke(self, name: str, body: bytes, deployment: str | None = None) -> tuple[int, bytes]:
        """POST ``body`` to the endpoint's scoring URI with its credentials, as a client would."""
        endpoint = self.get(name)
        if endpoint.state == "Stopped":
            raise InvalidStateError(
                f"Online endpoint '{name}' is stopped.", hint=f"smalt online-endpoint start -n {name}"
            )
        if deployment is not None:
            self._deployment_record(name, deployment)
        credentials = self.get_keys(name)
        token = credentials.primary_key if isinstance(credentials, EndpointAuthKeys) else credentials.access_token
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        if deployment:
            headers["azureml-model-deployment"] = deployment
        assert endpoint.scoring_uri is not None
        status, answer, _ = invoke(endpoint.scoring_uri, body, headers)
        return status, answer

    # -- serving -----------------------------------------------------------------------------------

    def _resolve_model(self, deployment: OnlineDeployment) -> tuple[OnlineDeployment, str | None]:
        """The deployment with an inline model registered (as ``<endpoint>-<deployment>``)."""
        model = deployment.model
        if model is None:
            return deployment, None
        if isinstance(model, InlineModel):
            name = model.name or f"{deployment.endpoint_name}-{deployment.name}"
            registered = self._models.create_or_update(
                Model(name=name, version=model.version, path=model.path, type=model.type, tags=model.tags,
                      properties=model.properties, flavors=model.flavors, stage=model.stage,
                      description=model.description or f"Deployed by {deployment.endpoint_name}/{deployment.name}")
            )  # fmt: skip
            return deployment.model_copy(update={"model": registered.ref}), registered.ref
        found = self._models.get_by_ref(model, "model")
        return deployment, found.ref

    def _environment(self, deployment: OnlineDeployment, model: Model | None, folder: Path) -> str:
        """The Python the instances run with: the deployment's environment built, an MLflow model's
        own requirements when it names none, else smalt's own interpreter."""
        import sys

        from smalt.environments import ensure, resolve

        env = deployment.environment
        if env is None and model is not None and model.type == "mlflow_model" and deployment.code_configuration is None:
            conda = mlflow_conda(folder / "model")
            if conda is None:
                return sys.executable
            env = InlineEnvironment(conda_file=str(conda))
        if env is None:
            return sys.executable
        resolved = resolve(AssetService(self._ws, Environment).inline_environment(env))
        with open(folder / "build_log.txt", "a") as log:
            return str(ensure(resolved, self._ws.path / "envs", log))

    def _start_generation(self, record: EndpointRecord, deployment: OnlineDeployment,
                          runtime: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        """Start the instances of a new generation; the runtime record, with ``error`` if one failed."""
        generation = uuid.uuid4().hex[:8]
        folder = self._folder(record.name) / deployment.name / generation
        folder.mkdir(parents=True)
        model = self._models.get_by_ref(runtime["model_ref"], "model") if runtime.get("model_ref") else None
        extra_env = {**deployment.environment_variables}  # what a restart by the router needs besides its own
        extra_env["AZUREML_ENDPOINT_NAME"], extra_env["AZUREML_DEPLOYMENT_NAME"] = record.name, deployment.name
        mlflow_model: str | None = None
        if model is not None:
            models = folder / "azureml-models" / model.name / str(model.version)
            local = DatastoreService(self._ws).download(model.path, models)
            extra_env["AZUREML_MODEL_DIR"] = str(models)
            if model.type == "mlflow_model":
                mlflow_model = str(local)
            (folder / "model").symlink_to(models)
        code: Path | None = None
        script: str | None = None
        if deployment.code_configuration is not None:
            code = folder / "code"
            source = deployment.code_configuration.code
            if parse_datastore_uri(source) is not None:  # sent over HTTP: uploaded by the client
                shutil.move(DatastoreService(self._ws).download(source, folder / "code-download", verify=True), code)
                shutil.rmtree(folder / "code-download", ignore_errors=True)
            else:
                shutil.copytree(source, code)
            script = deployment.code_configuration.scoring_script
            if not (code / script).is_file():
                raise InvalidSpecError(
                    [
                        SpecProblem(
                            f"scoring script '{script}' is not in {deployment.code_configuration.code}",
                            "code_configuration.scoring_script",
                        )
                    ]  # fmt: skip
                )
        elif mlflow_model is None:
            raise InvalidSpecError([SpecProblem(
                "a deployment without code_configuration needs an mlflow_model; give code and scoring_script",
                "code_configuration")])  # fmt: skip
        python = self._environment(deployment, model, folder)
        # A connection's secret reaches the instances, never a record: the router's restarts read it
        # sealed (``sealed_env``), and the instances mask it in what they print (``SMALT_REDACT``).
        secret_vars = [variable for variable, _, _ in references(extra_env)]
        resolved, sealed = extra_env, None
        if secret_vars:
            from smalt.services.connections import ConnectionService

            reader = f"deployment {record.name}/{deployment.name}"
            resolved, _ = ConnectionService(self._ws).injected(extra_env, reader=reader)
            extra_env = {**extra_env, "SMALT_REDACT": ",".join(secret_vars)}
            resolved = {**resolved, "SMALT_REDACT": ",".join(secret_vars)}
            values = {variable: resolved[variable] for variable in secret_vars}
            sealed = {"token": self._ws.secrets.seal(values), "folder": str(self._ws.path)}
        env = instance_env(resolved)
        specs = [
            InstanceSpec(python=python, socket=socket_path(str(self._ws.path), record.name, deployment.name,
                                                           generation, str(i)),
                         log=folder / f"instance-{i}.log", cwd=code or folder, env=env,
                         code=str(code) if code else None, script=script, mlflow_model=mlflow_model)
            for i in range(deployment.instance_count)
        ]  # fmt: skip
        started = [(start_instance(spec), spec) for spec in specs]
        probe = deployment.readiness_probe
        timeout = _READY_TIMEOUT_S if probe is None else probe.initial_delay + probe.period * probe.failure_threshold
        error = wait_ready(started, timeout)
        result: dict[str, Any] = {
            **{k: v for k, v in runtime.items() if k not in ("instances", "error")},
            "generation": generation, "python": python, "logs": [str(spec.log) for spec in specs],
            "instances": [{**process.to_dict(), "socket": spec.socket, "log": str(spec.log)}
                          for process, spec in started],
            "launch": specs[0].launch(extra_env, sealed=sealed), "ready_timeout_s": timeout,
            "max_concurrent": deployment.request_settings.max_concurrent_requests_per_instance,
            "timeout_ms": deployment.request_settings.request_timeout_ms,
            "max_queue_wait_ms": deployment.request_settings.max_queue_wait_ms,
        }  # fmt: skip
        if error:
            for process, _ in started:
                process.stop(5)
            result["error"] = error
            result["instances"] = []
        return result

    def _router_alive(self, record: EndpointRecord) -> bool:
        router = Process.from_dict(record.runtime.get("router"))
        return router is not None and router.alive()

    @staticmethod
    def _restarted(instance: dict[str, Any], status: Status) -> Process | None:
        """The process the router last started for an instance, if it started one."""
        told = status.get(instance["socket"])
        return Process(int(told["pid"]), float(told["started"])) if told and told.get("pid") else None

    def _current(self, instance: dict[str, Any], status: Status) -> tuple[Process, str]:
        """The process serving one instance now, and its state: the router's word, if it has one."""
        restarted = self._restarted(instance, status)
        if restarted is not None:
            return restarted, str(status[instance["socket"]].get("state", "Running"))
        return Process(instance["pid"], instance["started"]), "Running"

    def _live(self, runtime: dict[str, Any], status: Status) -> bool:
        """Every instance of the generation runs and is in rotation."""
        instances = runtime.get("instances") or []
        current = [self._current(i, status) for i in instances]
        return bool(current) and all(state == "Running" and process.alive() for process, state in current)

    def _restarting(self, endpoint: str, deployments: DeploymentRecords) -> set[str]:
        """The deployments the router serves that have an instance dead or starting again."""
        status = read_status(self._folder(endpoint))
        return {d.name for d in deployments if d.provisioning_state in ("Succeeded", "Updating")
                and d.runtime.get("instances") and not self._live(d.runtime, status)}  # fmt: skip

    def _processes(self, runtime: dict[str, Any], *statuses: Status) -> Processes:
        """Every process that may serve the generation's instances: each one started here and the
        one the router started last for its socket, in any of ``statuses``."""
        found = []
        for instance in runtime.get("instances") or []:
            found.append(Process(instance["pid"], instance["started"]))
            found.extend(p for status in statuses if (p := self._restarted(instance, status)) is not None)
        return found

    def _stop_instances(self, endpoint: str, runtime: dict[str, Any], before: Status) -> None:
        """Stop a generation the router no longer routes to; ``before`` is ``instances.json`` as it
        was before the router took its new configuration (a router started anew forgets the old)."""
        stop_processes(self._processes(runtime, before, read_status(self._folder(endpoint))))

    def _capture_config(self, endpoint: str, deployment: OnlineDeployment) -> dict[str, Any] | None:
        collector = deployment.data_collector
        if collector is None or not collector.enabled():
            return None
        from smalt.specs import parse_datastore_uri

        datastores = DatastoreService(self._ws)
        opened: dict[str, Location] = {}
        folders: dict[str, str] = {}
        location = None
        for name in collector.enabled():
            parsed = parse_datastore_uri(self._capture_uri(endpoint, deployment.name, name,
                                                           collector.collections[name].data))  # fmt: skip
            assert parsed is not None
            if parsed.datastore not in opened:  # each opening reads the record and decrypts its secrets
                opened[parsed.datastore] = datastores.location(parsed.datastore)
            location = opened[parsed.datastore]
            folders[name] = location.join(parsed.path)
        assert location is not None
        return {"fs": location.fs.to_json(), "collections": folders, "sampling_rate": collector.sampling_rate}

    @staticmethod
    def _capture_uri(endpoint: str, deployment: str, collection: str, data: Any) -> str:
        if data is not None and data.path:
            return str(data.path)
        return f"azureml://datastores/workspaceblobstore/paths/modelDataCollector/{endpoint}/{deployment}/{collection}"

    def _register_capture(self, deployment: OnlineDeployment) -> None:
        """Each capture collection is a uri_folder data asset, as Azure ML names them."""
        collector = deployment.data_collector
        if collector is None:
            return
        data: AssetService[Data] = AssetService(self._ws, Data)
        for name in collector.enabled():
            ref = collector.collections[name].data
            asset = (ref.name if ref and ref.name else None) or f"{deployment.endpoint_name}-{deployment.name}-{name}"
            version = (ref.version if ref and ref.version else None) or "1"
            uri = self._capture_uri(deployment.endpoint_name, deployment.name, name, ref)
            try:
                data.get(asset, version)
                continue
            except NotFoundError:
                pass
            DatastoreService(self._ws).location("workspaceblobstore")  # the datastore must exist
            about = f"Requests captured by {deployment.endpoint_name}/{deployment.name}"
            data.create_or_update(Data(name=asset, version=version, type="uri_folder", path=uri, description=about))

    def _apply(self, record: EndpointRecord) -> None:
        """Write the router's configuration from the records and make the router route by it:
        started if it is not running, reloaded (and waited for) if it is."""
        folder = self._folder(record.name)
        config_path = folder / "router.json"
        previous = json.loads(config_path.read_text()) if config_path.exists() else {}
        with self._ws.store.transaction() as tx:
            deployments = [r for r in tx.endpoints.deployments(record.name) if r.provisioning_state == "Succeeded"
                           or (r.provisioning_state == "Updating" and r.runtime.get("instances"))]  # fmt: skip
        sealed = self._secrets(record)
        status = read_status(folder)
        auth_mode = record.spec.get("auth_mode", "key")
        import hashlib

        auth: dict[str, Any] = (
            {"mode": "key", "key_digests": [hashlib.sha256(sealed[k].encode()).hexdigest()
                                            for k in ("primary", "secondary")]}
            if auth_mode == "key" else {"mode": "aml_token", "secret": sealed["signing"], "audience": record.name}
        )  # fmt: skip
        version = int(record.runtime.get("version", 0)) + 1
        config = {
            "endpoint": record.name, "host": HOST, "port": record.runtime["port"], "version": version,
            "admin_token": previous.get("admin_token") or secrets.token_urlsafe(24), "auth": auth,
            "traffic": record.spec.get("traffic", {}), "mirror_traffic": record.spec.get("mirror_traffic", {}),
            "deployments": {
                r.name: {
                    # The process the router last started for an instance, where it did: a router
                    # started anew must not take the one recorded here, long dead, for it.
                    "instances": [{**i, **self._current(i, status)[0].to_dict()} for i in r.runtime["instances"]],
                    "launch": r.runtime.get("launch"), "ready_timeout_s": r.runtime.get("ready_timeout_s", 600.0),
                    "max_concurrent": r.runtime.get("max_concurrent", 1),
                    "timeout_ms": r.runtime.get("timeout_ms", 5000),
                    "max_queue_wait_ms": r.runtime.get("max_queue_wait_ms", 500),
                    "capture": self._capture_config(record.name, self._deployment(r)),
                }
                for r in deployments if r.runtime.get("instances")
            },
        }  # fmt: skip
        replace_file(config_path, json.dumps(config, indent=1).encode())
        router = Process.from_dict(record.runtime.get("router"))
        runtime = {**record.runtime, "version": version}
        if router is not None and router.alive():
            reload_router(HOST, record.runtime["port"], config["admin_token"])
        else:
            port = record.runtime["port"]
            if not port_is_free(HOST, port):
                raise BackendError(
                    f"Port {port}, the address of online endpoint '{record.name}', is taken by another program.",
                    hint=f"stop that program, or delete and create the endpoint again (smalt online-endpoint "
                    f"delete -n {record.name})",
                )
            router = start_router(config_path, folder / "router.log")
            runtime["router"] = router.to_dict()
        with self._ws.store.transaction(write=True) as tx:
            tx.endpoints.set(record.name, runtime=runtime)

