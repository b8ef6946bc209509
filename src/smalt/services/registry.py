"""MLflow's model registry over smalt's models.

A registered model is the asset ``model`` of that name and a model version is one of its versions,
so what MLflow clients register shows in ``smalt model list`` and what smalt registers shows to
MLflow clients. How MLflow's words map onto a smalt :class:`~smalt.entities.Model`:

=====================  ==========================================================================
MLflow                 smalt
=====================  ==========================================================================
version ``1``          the model version ``1`` (numbered by the store, as MLflow numbers them)
``source``             ``properties["mlflow.source"]`` (the model's own ``path`` when smalt made it)
``run_id``             ``job_name``: a run is a job
``current_stage``      ``stage`` (``"None"`` when unset)
description, tags      the version's ``description`` and ``tags`` (metadata: the digest stays)
delete                 archive (hidden from MLflow; ``smalt model list --include-archived`` shows it)
aliases                the asset's aliases (``asset_aliases``)
=====================  ==========================================================================

Files are never copied: a version's ``path`` is where the source's files already are, e.g. a
logged model's ``mlflow-artifacts:/azureml/models/<id>/artifacts`` is the default datastore's
``azureml://datastores/workspaceblobstore/paths/azureml/models/<id>/artifacts``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from smalt.entities import Model
from smalt.entities.base import is_valid_name
from smalt.errors import AlreadyExistsError, InvalidSpecError, InvalidStateError, NotFoundError, SmaltError
from smalt.services.assets import check_alias as _check_alias
from smalt.services.datastores import DatastoreService
from smalt.services.model_sources import has_files, logged_model_source
from smalt.services.tracking import (
    ARTIFACT_SCHEME,
    Page,
    TrackingService,
    datastore_path,
    next_page_token,
    page_offset,
)
from smalt.services.workspace import DEFAULT_DATASTORE, WorkspaceContext
from smalt.specs import is_local_path, parse_datastore_uri
from smalt.specs.filters import parse_filter, parse_order_by
from smalt.specs.references import confined_path
from smalt.store import AssetVersionRecord, Edge, Transaction
from smalt.store.assets import ContainerDetail

KIND = Model.kind
#: MLflow's stages; a version's stage is one of these (``None`` is stored as no stage).
STAGES = ("None", "Staging", "Production", "Archived")
#: Where the MLflow source of a version is kept in its properties.
SOURCE_PROPERTY = "mlflow.source"
MODEL_ID_PROPERTY = "mlflow.model_id"
MAX_TAG_KEY, MAX_TAG_VALUE = 250, 100_000
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))?/?$")
_RUNS_URI = re.compile(r"^runs:/(?P<run>[^/]+)(?:/(?P<path>.*))?$")


@dataclass(frozen=True)
class ModelVersion:
    """A model version as MLflow sees it; ``model`` is the smalt entity behind it."""

    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    current_stage: str
    description: str
    source: str
    run_id: str
    tags: dict[str, str]
    aliases: list[str]
    model: Model


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str
    tags: dict[str, str]
    #: The newest version in each stage, by version number.
    latest_versions: list[ModelVersion]
    #: alias -> version
    aliases: dict[str, str]


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _number(version: str) -> tuple[int, str]:
    # Versions MLflow made are integers; smalt also allows names such as "v2", sorted after them.
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def canonical_stage(stage: str | None) -> str:
    """MLflow's spelling of a stage (case-insensitive), or an error listing the four."""
    for known in STAGES:
        if (stage or "").lower() == known.lower():
            return known
    raise InvalidSpecError.one(f"Invalid model version stage: {stage!r}. Use one of {', '.join(STAGES)}.", "stage")


def _check_name(name: str, field: str = "name") -> None:
    if not name:
        raise InvalidSpecError.one("Registered model name must not be empty.", field)
    if not is_valid_name(name):
        raise InvalidSpecError.one(
            f"Invalid registered model name {name!r}: a smalt model name starts with a letter or digit and "
            "holds only letters, digits, '-', '_' and '.', at most 255 characters.",
            field,
        )


def _check_tag(key: str, value: str | None) -> None:
    if not key or len(key) > MAX_TAG_KEY:
        raise InvalidSpecError.one(f"Invalid tag key {key!r}: it must have 1 to {MAX_TAG_KEY} characters.", "key")
    if value is not None and len(value) > MAX_TAG_VALUE:
        raise InvalidSpecError.one(f"Tag {key!r} is longer than {MAX_TAG_VALUE} characters.", "value")


class RegistryService:
    """Registered models and model versions, as MLflow's registry API offers them."""

    def __init__(self, workspace: WorkspaceContext, *, local_sources: bool = True) -> None:
        """``local_sources``: whether a version may be registered from a path on this machine.
        A server says no: a client names what it may reach (a run's artifacts, a logged model, a
        datastore, an http(s) URL), never a file of the server's."""
        self._ws = workspace
        self._local_sources = local_sources

    # -- reading helpers --------------------------------------------------------------------
    @staticmethod
    def _entity(record: AssetVersionRecord) -> Model:
        return Model.model_validate({**record.spec, "name": record.name, "version": record.version})

    def _version(self, record: AssetVersionRecord, aliases: Sequence[str] = ()) -> ModelVersion:
        model = self._entity(record)
        return ModelVersion(
            name=record.name, version=record.version, creation_timestamp=_ms(record.created_at),
            last_updated_timestamp=_ms(record.last_modified_at), current_stage=model.stage or "None",
            description=model.description or "", source=model.properties.get(SOURCE_PROPERTY, model.path),
            run_id=model.job_name or "", tags=dict(model.tags), aliases=list(aliases), model=model,
        )  # fmt: skip

    def _registered(self, tx: Transaction, containers: Sequence[ContainerDetail]) -> list[RegisteredModel]:
        names = [c.name for c in containers]
        versions: dict[str, list[AssetVersionRecord]] = {n: [] for n in names}
        for record in tx.assets.versions_of(KIND, names):
            versions[record.name].append(record)
        aliases: dict[str, dict[str, str]] = {n: {} for n in names}
        for alias in tx.assets.aliases_of(KIND, names):
            aliases[alias.name][alias.alias] = alias.version
        out = []
        for container in containers:
            latest: dict[str, ModelVersion] = {}
            for record in sorted(versions[container.name], key=lambda r: _number(r.version)):
                version = self._version(record)
                latest[version.current_stage] = version
            out.append(RegisteredModel(
                name=container.name, creation_timestamp=_ms(container.created_at),
                last_updated_timestamp=_ms(container.last_modified_at), description=container.description or "",
                tags=container.tags, aliases=aliases[container.name],
                latest_versions=sorted(latest.values(), key=lambda v: _number(v.version)),
            ))  # fmt: skip
        return out

    def _container(self, tx: Transaction, name: str) -> ContainerDetail:
        found = tx.assets.container(KIND, name)
        if found is None or found.archived:
            live = [c.name for c in tx.assets.list_containers(KIND)]
            close = difflib.get_close_matches(name, live, n=1)
            meant = f" Did you mean '{close[0]}'?" if close else ""
            raise NotFoundError(f"Registered model '{name}' not found.{meant}", hint="smalt model list")
        return found

    def _record(self, tx: Transaction, name: str, version: str) -> AssetVersionRecord:
        self._container(tx, name)
        record = tx.assets.get(KIND, name, str(version))
        if record is None or record.hidden:
            live = [v.version for v in reversed(tx.assets.list_versions(KIND, name))]
            raise NotFoundError(
                f"Model version '{name}' version {version} not found. Versions: {', '.join(live) or 'none'}.",
                hint=f"smalt model list --name {name}",
            )
        return record

    def _version_aliases(self, tx: Transaction, name: str, version: str) -> list[str]:
        return [a.alias for a in tx.assets.aliases_of(KIND, [name]) if a.version == version]

    # -- registered models ------------------------------------------------------------------
    def create_registered_model(self, name: str, *, description: str | None = None,
                                tags: dict[str, str] | None = None) -> RegisteredModel:  # fmt: skip
        """A model with no versions yet. A name MLflow deleted (smalt archived) can be taken
        again: the old versions stay archived and numbering continues after them."""
        _check_name(name)
        for key, value in (tags or {}).items():
            _check_tag(key, value)
        with self._ws.store.transaction(write=True) as tx:
            if not tx.assets.create_container(KIND, name, description=description or None, tags=tags):
                existing = tx.assets.container(KIND, name)
                if existing is None or not existing.archived:
                    raise AlreadyExistsError(
                        f"Registered model '{name}' already exists.",
                        hint="register a new version of it, or choose another name",
                    )
                tx.assets.revive_container(KIND, name, description=description or None, tags=tags)
            return self._registered(tx, [self._container(tx, name)])[0]

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self._ws.store.transaction() as tx:
            return self._registered(tx, [self._container(tx, name)])[0]

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        with self._ws.store.transaction(write=True) as tx:
            self._container(tx, name)
            tx.assets.update_container(KIND, name, description=description or "")
            return self._registered(tx, [self._container(tx, name)])[0]

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a model; its versions and aliases follow."""
        _check_name(new_name, "new_name")
        with self._ws.store.transaction(write=True) as tx:
            self._container(tx, name)
            if new_name != name:
                taken = tx.assets.container(KIND, new_name)
                if taken is not None:
                    raise AlreadyExistsError(
                        f"Cannot rename registered model '{name}' to '{new_name}': that name is taken"
                        + (" by an archived (deleted) model." if taken.archived else "."),
                        hint="choose another name",
                    )
                tx.assets.rename_container(KIND, name, new_name)
            return self._registered(tx, [self._container(tx, new_name)])[0]

    def delete_registered_model(self, name: str) -> None:
        """MLflow's delete is smalt's archive: the model and its versions are hidden, not erased."""
        with self._ws.store.transaction(write=True) as tx:
            self._container(tx, name)
            for record in tx.assets.list_versions(KIND, name):
                tx.assets.set_archived(KIND, name, record.version, True)
            tx.assets.delete_aliases(KIND, name, deleted_by=self._ws.user)
            tx.assets.set_archived(KIND, name, None, True)
            tx.assets.update_container(KIND, name)

    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None:
        _check_tag(key, value)
        with self._ws.store.transaction(write=True) as tx:
            tags = self._container(tx, name).tags
            tags[key] = value or ""
            tx.assets.update_container(KIND, name, tags=tags, touch=False)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        with self._ws.store.transaction(write=True) as tx:
            tags = self._container(tx, name).tags
            # Like MLflow: deleting a tag that is not there is not an error.
            if tags.pop(key, None) is not None:
                tx.assets.update_container(KIND, name, tags=tags, touch=False)

    def search_registered_models(self, *, filter_string: str | None = None, max_results: int = 100,
                                 order_by: Sequence[str] = (), page_token: str | None = None,
                                 ) -> Page[RegisteredModel]:  # fmt: skip
        from smalt.store.search import search_registered_models

        if not 1 <= max_results <= 1000:
            raise InvalidSpecError.one(f"Invalid value {max_results} for max_results; use 1 to 1000.", "max_results")
        comparisons = parse_filter(filter_string, scope="registered_models")
        order = parse_order_by(list(order_by), scope="registered_models")
        offset = page_offset(page_token)
        with self._ws.store.transaction() as tx:
            names = search_registered_models(tx.connection, comparisons, order, max_results, offset)
            found = self._registered(tx, tx.assets.container_details(KIND, names))
        return Page(found, next_page_token(offset, len(found), max_results))

    # -- model versions ---------------------------------------------------------------------
    def create_model_version(self, name: str, source: str, *, run_id: str | None = None,
                             tags: dict[str, str] | None = None, description: str | None = None,
                             model_id: str | None = None) -> ModelVersion:  # fmt: skip
        """Register ``source`` as the next version of ``name``. Sources: ``models:/m-<id>`` (a
        logged model), ``models:/<name>/<version>``, ``runs:/<run>/<path>``, ``mlflow-artifacts:/<path>``,
        ``azureml://datastores/...``, a path on this machine (uploaded), or another URL."""
        for key, value in (tags or {}).items():
            _check_tag(key, value)
        if not source:
            raise InvalidSpecError.one(
                "A model version needs a source, e.g. models:/m-<id> or runs:/<run_id>/model.", "source"
            )
        with self._ws.store.transaction() as tx:
            self._container(tx, name)  # before any upload: a missing model is the first thing to hear of
        path, found_run, found_model_id = self._resolve_source(source)
        run_id = run_id or found_run
        model_id = model_id or found_model_id
        model_type, flavors, info = self._flavors(path)
        properties = {SOURCE_PROPERTY: source, **({MODEL_ID_PROPERTY: model_id} if model_id else {})}
        model = Model(
            name=name, path=path, type=model_type, flavors=flavors, job_name=run_id or None,
            description=description or None, tags={k: v or "" for k, v in (tags or {}).items()},
            properties=properties, mlflow=info,
        )  # fmt: skip
        spec = model.to_dict()
        with self._ws.store.transaction(write=True) as tx:
            self._container(tx, name)
            record, _ = tx.assets.create_version(KIND, name, None, spec, model.content_digest(), self._ws.user)
            tx.assets.update_container(KIND, name)
            if run_id:  # lineage: the run that logged the model
                tx.lineage.add([Edge(f"job:{run_id}", f"{KIND}:{name}:{record.version}", "output")])
            return self._version(record)

    def _resolve_source(self, source: str) -> tuple[str, str | None, str | None]:
        """Where a source's files are (a path smalt's Model takes), and the run and logged model it names."""
        tracking = TrackingService(self._ws)
        models = _MODELS_URI.match(source)
        if models is not None:
            if models["name"].startswith("m-") and models["version"] is None and models["alias"] is None:
                logged = tracking.get_logged_model(models["name"]).record
                return _path(logged.artifact_location), logged.source_run_id, logged.model_id
            other = (
                self.get_model_version_by_alias(models["name"], models["alias"]) if models["alias"]
                else self.get_model_version(models["name"], models["version"] or "")
            )  # fmt: skip
            return other.model.path, other.run_id or None, other.model.properties.get(MODEL_ID_PROPERTY)
        if source.startswith("models:"):
            raise InvalidSpecError.one(
                f"Invalid model version source {source!r}: write models:/m-<model_id> or models:/<name>/<version>.",
                "source",
            )
        runs = _RUNS_URI.match(source)
        if runs is not None:
            run = tracking.get_run(runs["run"])
            base = run.info.artifact_uri.rstrip("/")
            sub = confined_path(runs["path"] or "", source, field="source")
            path = _path(f"{base}/{sub}" if sub else base)
            # As MLflow 3 resolves it: what the run's artifacts hold there, else the model the run
            # logged under that name (log_model(name="model") keeps its files with the model).
            if sub and parse_datastore_uri(path) is not None and not has_files(DatastoreService(self._ws), path):
                found = logged_model_source(self._ws, run.info.run_id, sub)
                if found is not None:
                    return found[0], run.info.run_id, found[1]
            return path, run.info.run_id, None
        if source.startswith(ARTIFACT_SCHEME):
            return _path(source), None, None
        if is_local_path(source) and not self._local_sources:
            raise InvalidSpecError.one(
                f"Invalid model version source {source!r}: a server registers no file of its own machine. "
                "Log the model with the run (mlflow.<flavor>.log_model) and register models:/m-<id> or "
                "runs:/<run_id>/<path>, or name an azureml://datastores/... or https:// URI.",
                "source",
            )
        if is_local_path(source):
            local = Path(source.removeprefix("file://").removeprefix("file:")).expanduser()
            if not local.is_absolute() or not local.exists():
                raise InvalidSpecError.one(
                    f"Invalid model version source {source!r}: no such file or folder on the smalt server's machine. "
                    "Upload the model with the run (mlflow.<flavor>.log_model) and register models:/m-<id>.",
                    "source",
                )
            return str(DatastoreService(self._ws).upload(local)), None, None
        datastore = parse_datastore_uri(source)
        if datastore is not None:
            DatastoreService(self._ws).get(datastore.datastore)  # an unknown datastore is an error now
            return str(datastore), None, None
        if not self._local_sources and not source.lower().startswith(("http://", "https://")):
            raise InvalidSpecError.one(
                f"Invalid model version source {source!r}: write models:/m-<id>, runs:/<run_id>/<path>, "
                "mlflow-artifacts:/<path>, azureml://datastores/<datastore>/paths/<path> or an http(s) URL.",
                "source",
            )
        return source, None, None

    def _flavors(self, path: str) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
        """``mlflow_model`` with what its MLmodel says when one is at ``path``, else ``custom_model``."""
        from smalt.services.model_sources import read_mlmodel

        if parse_datastore_uri(path) is None:
            return "custom_model", None, None
        try:
            read = read_mlmodel(self._ws, path)
        except SmaltError:
            exists = DatastoreService(self._ws).exists(f"{path.rstrip('/')}/MLmodel")
            return ("mlflow_model" if exists else "custom_model"), None, None
        return "mlflow_model", read["flavors"] or None, read["mlflow"]

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        with self._ws.store.transaction() as tx:
            record = self._record(tx, name, version)
            return self._version(record, self._version_aliases(tx, name, record.version))

    def _update_version(self, name: str, version: str, *, touch: bool, **changes: Any) -> ModelVersion:
        """Change a version's metadata (None removes a field); the digest of its content stays."""
        with self._ws.store.transaction(write=True) as tx:
            record = self._record(tx, name, version)
            spec = dict(record.spec)
            for key, value in changes.items():
                if value is None:
                    spec.pop(key, None)
                else:
                    spec[key] = value
            tx.assets.update_spec(KIND, name, record.version, spec, touch=touch)
            updated = tx.assets.get(KIND, name, record.version)
            assert updated is not None
            return self._version(updated, self._version_aliases(tx, name, record.version))

    def update_model_version(self, name: str, version: str, description: str | None) -> ModelVersion:
        return self._update_version(name, version, touch=True, description=description or None)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str | None) -> None:
        _check_tag(key, value)
        tags = dict(self.get_model_version(name, version).tags)
        tags[key] = value or ""
        self._update_version(name, version, touch=False, tags=tags)

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        tags = dict(self.get_model_version(name, version).tags)
        if tags.pop(key, None) is not None:
            self._update_version(name, version, touch=False, tags=tags)

    def delete_model_version(self, name: str, version: str) -> None:
        """Archive the version (hidden from MLflow) and drop the aliases that pointed at it."""
        with self._ws.store.transaction(write=True) as tx:
            record = self._record(tx, name, version)
            tx.assets.set_archived(KIND, name, record.version, True)
            tx.assets.delete_aliases(KIND, name, record.version, self._ws.user)
            tx.assets.update_container(KIND, name)

    def transition_model_version_stage(self, name: str, version: str, stage: str,
                                       archive_existing_versions: bool = False) -> ModelVersion:  # fmt: skip
        """Move a version to a stage; with ``archive_existing_versions`` the others in that stage
        (Staging or Production) move to Archived."""
        target = canonical_stage(stage)
        if archive_existing_versions and target not in ("Staging", "Production"):
            raise InvalidSpecError.one(
                f"archive_existing_versions only applies to the stages Staging and Production, not {target!r}.",
                "archive_existing_versions",
            )
        with self._ws.store.transaction(write=True) as tx:
            record = self._record(tx, name, version)
            if archive_existing_versions:
                for other in tx.assets.list_versions(KIND, name):
                    if other.version != record.version and other.spec.get("stage") == target:
                        tx.assets.update_spec(KIND, name, other.version, {**other.spec, "stage": "Archived"})
            spec = {k: v for k, v in record.spec.items() if k != "stage"}
            if target != "None":
                spec["stage"] = target
            tx.assets.update_spec(KIND, name, record.version, spec)
            tx.assets.update_container(KIND, name)
            updated = tx.assets.get(KIND, name, record.version)
            assert updated is not None
            return self._version(updated, self._version_aliases(tx, name, record.version))

    def get_latest_versions(self, name: str, stages: Sequence[str] = ()) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (every stage when none are given)."""
        wanted = {canonical_stage(s) for s in stages} or set(STAGES)
        with self._ws.store.transaction() as tx:
            registered = self._registered(tx, [self._container(tx, name)])[0]
            by_version: dict[str, list[str]] = {}
            for alias, version in registered.aliases.items():
                by_version.setdefault(version, []).append(alias)
        return [
            replace(v, aliases=by_version.get(v.version, []))
            for v in registered.latest_versions
            if v.current_stage in wanted
        ]

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        """Where an MLflow client fetches the version's files: ``mlflow-artifacts:/<path>`` for the
        default datastore (served by this server's artifacts proxy), or the URL itself."""
        model = self.get_model_version(name, version).model
        return self.download_uri(model)

    @staticmethod
    def download_uri(model: Model) -> str:
        uri = parse_datastore_uri(model.path)
        if uri is None:
            return model.path
        if uri.datastore != DEFAULT_DATASTORE:
            raise InvalidStateError(
                f"Model '{model.name}' version {model.version} is in datastore '{uri.datastore}'; MLflow clients "
                f"can only fetch files of '{DEFAULT_DATASTORE}' through the smalt server.",
                hint=f"smalt model download --name {model.name} --version {model.version}",
            )
        return f"{ARTIFACT_SCHEME}/{uri.path}"

    def search_model_versions(self, *, filter_string: str | None = None, max_results: int = 10000,
                              order_by: Sequence[str] = (), page_token: str | None = None,
                              ) -> Page[ModelVersion]:  # fmt: skip
        from smalt.store.search import search_model_versions

        if not 1 <= max_results <= 200_000:
            raise InvalidSpecError.one(f"Invalid value {max_results} for max_results; use 1 to 200000.", "max_results")
        comparisons = parse_filter(filter_string, scope="model_versions")
        order = parse_order_by(list(order_by), scope="model_versions")
        offset = page_offset(page_token)
        with self._ws.store.transaction() as tx:
            keys = search_model_versions(tx.connection, comparisons, order, max_results, offset)
            found = [r for n, v in keys if (r := tx.assets.get(KIND, n, v)) is not None and not r.hidden]
        versions = [self._version(r) for r in found]
        return Page(versions, next_page_token(offset, len(versions), max_results))

    # -- aliases ----------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        _check_alias(alias)
        with self._ws.store.transaction(write=True) as tx:
            record = self._record(tx, name, version)
            tx.assets.set_alias(KIND, name, alias, record.version, self._ws.user)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        _check_alias(alias)
        with self._ws.store.transaction(write=True) as tx:
            self._container(tx, name)
            tx.assets.delete_alias(KIND, name, alias, self._ws.user)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at. A missing alias is an invalid parameter (400), as MLflow has it."""
        with self._ws.store.transaction() as tx:
            self._container(tx, name)
            found = tx.assets.alias(KIND, name, alias)
            if found is None:
                known = [a.alias for a in tx.assets.aliases_of(KIND, [name])]
                raise InvalidSpecError.one(
                    f"Registered model alias {alias!r} not found on model '{name}'. "
                    f"Aliases: {', '.join(known) or 'none'}.",
                    "alias",
                )
            record = self._record(tx, name, found.version)
            return self._version(record, self._version_aliases(tx, name, record.version))


def _path(uri: str) -> str:
    """A Model path for an MLflow artifact URI: ``mlflow-artifacts:/X`` is the default datastore's X."""
    return datastore_path(uri, field="source")


__all__ = ["STAGES", "ModelVersion", "RegisteredModel", "RegistryService", "canonical_stage"]
