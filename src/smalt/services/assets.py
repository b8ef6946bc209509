"""Versioned assets: data, environments, components and models.

Registering an asset resolves it into what the version pins: local files are uploaded
content-addressed to ``workspaceblobstore`` and replaced by their datastore URI, a conda file is
read and stored inline, references are resolved to concrete versions. Two registrations with the
same resolved content are the same version; nothing is written until all of it has succeeded.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from smalt.entities import Asset, CommandComponent, Data, Environment, Input, Model
from smalt.entities.environment import InlineEnvironment
from smalt.entities.model import AliasMove, AssetAlias
from smalt.entities.pipeline import CommandNode, PipelineComponent
from smalt.environments.curated import curated_reference
from smalt.errors import InvalidSpecError, InvalidStateError, NotFoundError, SpecProblem
from smalt.services.datastores import DatastoreService
from smalt.services.provenance import creation_context
from smalt.services.workspace import WorkspaceContext
from smalt.specs import is_local_path, parse_asset_ref, parse_datastore_uri, prepare
from smalt.specs.references import check_local_data
from smalt.store import AssetVersionRecord, Edge
from smalt.store.assets import NOUNS

A = TypeVar("A", bound=Asset)
MAX_ALIAS = 255
# Aliases: the service has a method named `list`, which shadows the builtin inside the class.
AliasList = list[AssetAlias]
MoveList = list[AliasMove]
_ALIAS = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")


class AssetService(Generic[A]):
    """Create, get, list, archive, restore and download the versions of one kind of asset."""

    def __init__(self, workspace: WorkspaceContext, cls: type[A]) -> None:
        self._ws = workspace
        self._cls = cls
        self.kind = cls.kind
        self._datastores = DatastoreService(workspace)

    # -- writing ---------------------------------------------------------------------------
    def create_or_update(self, asset: A, *, produced_by: tuple[str, str] | None = None) -> A:
        """Register ``asset``; without a version it gets the next integer version. ``produced_by``
        (job, output port) records, in the same transaction, the job that wrote it (lineage)."""
        asset = prepare(asset)
        try:
            resolved = self._resolve(asset)
        except NotFoundError as exc:
            raise asset.locate_error(exc) from None
        spec = resolved.model_copy(update={"creation_context": None}).to_dict()
        digest = resolved.content_digest()
        with self._ws.store.transaction(write=True) as tx:
            record, created = tx.assets.create_version(
                self.kind, asset.name, asset.version, spec, digest, self._ws.user
            )
            job_name, port = produced_by or (getattr(resolved, "job_name", None), None)
            if created and job_name:
                # Lineage: the job that produced this version (a model, or a data output of a job).
                node = f"{self.kind}:{record.name}:{record.version}"
                tx.lineage.add([Edge(f"job:{job_name}", node, "output", port)])
        return self._entity(record)

    def _resolve(self, asset: A) -> A:
        """What the version pins, with local files uploaded. Kind-specific."""
        if isinstance(asset, Data):
            return asset.model_copy(update={"path": self._data_path(asset)})
        if isinstance(asset, Model):
            return asset.model_copy(update=self._model_fields(asset))
        if isinstance(asset, Environment):
            return asset.model_copy(update=self._environment_fields(asset))
        if isinstance(asset, CommandComponent):
            return asset.model_copy(update=self._component_fields(asset))
        if isinstance(asset, PipelineComponent):
            return asset.model_copy(update={"jobs": self._steps_pinned(asset.jobs)})
        return asset

    def _upload(self, path: str, datastore: str | None = None) -> str:
        if datastore is None:
            return str(self._datastores.upload(Path(path)))
        with _naming("datastore"):
            return str(self._datastores.upload(Path(path), datastore.removeprefix("azureml:")))

    def _check_remote(self, path: str, field: str) -> None:
        uri = parse_datastore_uri(path)
        if uri is not None:
            with _naming(field):
                self._datastores.get(uri.datastore)  # an unknown datastore is an error now, not at use
        elif path.startswith("azureml:"):
            raise InvalidSpecError([SpecProblem(
                f"{path!r} is not a path; write a local path, an azureml://datastores/... URI or a URL",
                field,
            )])  # fmt: skip

    def _data_path(self, data: Data) -> str:
        if not is_local_path(data.path):
            self._check_remote(data.path, "path")
            return data.path
        check_local_data(data.type, Path(data.path))
        return self._upload(data.path, data.datastore)

    def _model_fields(self, model: Model) -> dict[str, Any]:
        from smalt.services.model_sources import check_triton, read_mlmodel, resolve_source

        source = resolve_source(self._ws, model)
        fields: dict[str, Any] = {"path": source.path, "job_name": source.job_name}
        if parse_datastore_uri(source.path) is None:
            return fields  # a URL: smalt cannot look inside
        if model.type == "mlflow_model":
            read = read_mlmodel(self._ws, source.path)
            if source.path.rstrip("/").endswith("/MLmodel"):
                fields["path"] = source.path.rstrip("/").removesuffix("/MLmodel")
            fields["flavors"] = model.flavors or read["flavors"]
            fields["mlflow"] = read["mlflow"]
        elif model.type == "triton_model":
            check_triton(self._ws, source.path)
        return fields

    def _conda(self, conda_file: str | dict[str, Any] | None) -> dict[str, Any] | None:
        if conda_file is None or isinstance(conda_file, dict):
            return conda_file
        from smalt.specs.yaml_source import plain, read_yaml

        return dict(plain(read_yaml(Path(conda_file)).data))

    def materialize_environment(self, env: Environment | InlineEnvironment) -> dict[str, Any]:
        """The fields an environment pins once registered: conda file inline, build context uploaded."""
        return self._environment_fields(env)

    def inline_environment(self, env: str | InlineEnvironment | None) -> str | InlineEnvironment | None:
        """What a job or deployment runs in, written out: an ``azureml:<name>:<version>`` (or
        ``@label``) reference becomes that registered version's fields, an inline environment gets
        its conda file and build context pinned; a curated ``azureml://registries/...`` name and
        None come back as they are."""
        if isinstance(env, InlineEnvironment):
            return env.model_copy(update=self._environment_fields(env))
        if isinstance(env, str) and curated_reference(env):
            return curated_reference(env)
        if isinstance(env, str) and env.startswith("azureml:") and not env.startswith("azureml://"):
            fields = self.get_by_ref(env, "environment").to_dict()
            return InlineEnvironment(**{k: v for k, v in fields.items() if k in InlineEnvironment.model_fields})
        return env

    def _environment_fields(self, env: Environment | InlineEnvironment) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if env.conda_file is not None:
            fields["conda_file"] = self._conda(env.conda_file)
        if env.build is not None and is_local_path(env.build.path):
            build = Path(env.build.path)
            if not (build / env.build.dockerfile_path).is_file():
                raise _problem(f"build context '{build}' has no {env.build.dockerfile_path}", "build.path")
            fields["build"] = env.build.model_copy(update={"path": self._upload(str(build))})
        return fields

    def _component_fields(self, component: CommandComponent) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        env = component.environment
        if isinstance(env, InlineEnvironment):
            fields["environment"] = env.model_copy(update=self._environment_fields(env))
        elif isinstance(env, str) and curated_reference(env):
            fields["environment"] = curated_reference(env)
        elif isinstance(env, str) and env.startswith("azureml:") and not env.startswith("azureml://registries"):
            found = AssetService(self._ws, Environment).get_by_ref(env, "environment")
            fields["environment"] = f"azureml:{found.name}:{found.version}"
        if component.code is not None and is_local_path(component.code):
            fields["code"] = self._upload(component.code)
        if component.additional_includes:
            fields["additional_includes"] = [
                self._upload(p) if is_local_path(p) else p for p in component.additional_includes
            ]
        return fields

    def _steps_pinned(self, jobs: dict[str, Any]) -> dict[str, Any]:
        """A pipeline component's steps as the version pins them, as a command component's own
        fields are: local code and inputs uploaded, components and environments named by label
        resolved to the version they name now."""
        pinned: dict[str, Any] = {}
        for key, node in jobs.items():
            update: dict[str, Any] = {}
            component = getattr(node, "component", None)
            if isinstance(component, CommandComponent):
                update["component"] = component.model_copy(update=self._component_fields(component))
            elif isinstance(component, PipelineComponent):
                update["component"] = component.model_copy(update={"jobs": self._steps_pinned(component.jobs)})
            elif isinstance(component, str) and component.startswith("azureml:"):
                found = AssetService(self._ws, CommandComponent).get_by_ref(component, f"jobs.{key}.component")
                update["component"] = f"azureml:{found.name}:{found.version}"
            if isinstance(node, CommandNode):
                if node.code is not None and is_local_path(node.code):
                    update["code"] = self._upload(node.code)
                environment = self.inline_environment(node.environment)
                if environment is not None:
                    update["environment"] = environment
            inputs = getattr(node, "inputs", {})
            if any(isinstance(v, Input) and v.path and is_local_path(v.path) for v in inputs.values()):
                update["inputs"] = {
                    port: value.model_copy(update={"path": self._upload(value.path)})
                    if isinstance(value, Input) and value.path and is_local_path(value.path) else value
                    for port, value in inputs.items()
                }  # fmt: skip
            pinned[key] = node.model_copy(update=update)
        return pinned

    def get_by_ref(self, reference: str, field: str) -> A:
        """The version an ``azureml:<name>:<version>`` or ``azureml:<name>@<label>`` reference names;
        NotFoundError with ``field`` set (where the reference was written) if there is none."""
        ref = parse_asset_ref(reference)
        if ref is None:
            raise _problem(f"{reference!r} is not a reference to a {self.kind}", field,
                           "write azureml:<name>:<version> or azureml:<name>@latest")  # fmt: skip
        with _naming(field):
            return self.get(ref.name, ref.version, None if ref.version else ref.label)

    # -- reading ---------------------------------------------------------------------------
    def _entity(self, record: AssetVersionRecord) -> A:
        # Components are of two classes, told apart by their type, as in a file.
        cls: type[Asset] = PipelineComponent if record.spec.get("type") == "pipeline" else self._cls
        entity = cls.model_validate({**record.spec, "name": record.name, "version": record.version})
        return cast(A, entity.model_copy(update={"creation_context": creation_context(record)}))

    def get(self, name: str, version: str | None = None, label: str | None = None) -> A:
        """One version: by ``version``, or by ``label`` (``latest``: the newest not archived)."""
        if version is not None and label is not None:
            raise _problem("give a version or a label, not both", "version")
        if version is None and label is None:
            raise _problem(
                "give a version or label='latest'", "version", f"smalt {self.kind} show --name {name} --label latest"
            )
        with self._ws.store.transaction() as tx:
            return self._entity(_lookup(tx, self.kind, name, version, label))

    def list(self, name: str | None = None, *, include_archived: bool = False,
             max_results: int | None = None) -> list[A]:  # fmt: skip
        """The latest version of every name, or every version of ``name`` (newest first); the
        first ``max_results`` of them."""
        with self._ws.store.transaction() as tx:
            if name is not None:
                records = tx.assets.list_versions(self.kind, name, include_archived, limit=max_results)
                if not records and not tx.assets.container_exists(self.kind, name):
                    raise _not_found(tx, self.kind, name, None)
                return [self._entity(r) for r in records]
            out: list[A] = []
            for container in tx.assets.list_containers(self.kind, include_archived):
                version = container.latest_version
                record = tx.assets.get(self.kind, container.name, version) if version else None
                if record is None and include_archived:
                    versions = tx.assets.list_versions(self.kind, container.name, True)
                    record = versions[0] if versions else None
                if record is not None:
                    out.append(self._entity(record))
                if max_results is not None and len(out) >= max_results:
                    break
            return out

    def archive(self, name: str, version: str | None = None, label: str | None = None) -> None:
        """Archive one version, or with no version the whole asset (all its versions)."""
        self._set_archived(name, version, label, True)

    def restore(self, name: str, version: str | None = None, label: str | None = None) -> None:
        self._set_archived(name, version, label, False)

    def _set_archived(self, name: str, version: str | None, label: str | None, archived: bool) -> None:
        with self._ws.store.transaction(write=True) as tx:
            if label is not None:
                version = _lookup(tx, self.kind, name, None, label).version
            if version is not None:
                record = _lookup(tx, self.kind, name, version, None)
                if not archived and record.container_archived:
                    raise InvalidStateError(
                        f"{NOUNS[self.kind]} '{name}' is archived as a whole.",
                        hint=f"restore it first: smalt {self.kind} restore --name {name}",
                    )
            elif not tx.assets.container_exists(self.kind, name):
                raise _not_found(tx, self.kind, name, None)
            tx.assets.set_archived(self.kind, name, version, archived)

    # -- aliases ---------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: str | None = None, label: str | None = None) -> AssetAlias:
        """Point ``alias`` at a version (moving it if it pointed elsewhere); ``azureml:<name>@<alias>``
        then names that version anywhere a version is accepted. The move is kept with who and when."""
        check_alias(alias)
        with self._ws.store.transaction(write=True) as tx:
            record = _lookup(tx, self.kind, name, version, None if version else (label or "latest"))
            tx.assets.set_alias(self.kind, record.name, alias, record.version, self._ws.user)
            found = tx.assets.alias(self.kind, record.name, alias)
        assert found is not None
        return AssetAlias(alias=found.alias, version=found.version, set_by=found.set_by, set_at=found.set_at)

    def remove_alias(self, name: str, alias: str) -> None:
        with self._ws.store.transaction(write=True) as tx:
            if not tx.assets.container_exists(self.kind, name):
                raise _not_found(tx, self.kind, name, None)
            if not tx.assets.delete_alias(self.kind, name, alias, self._ws.user):
                raise NotFoundError(f"{NOUNS[self.kind]} '{name}' has no alias {alias!r}.",
                                    hint=f"smalt {self.kind} alias list --name {name}")  # fmt: skip

    def aliases(self, name: str) -> AliasList:
        with self._ws.store.transaction() as tx:
            if not tx.assets.container_exists(self.kind, name):
                raise _not_found(tx, self.kind, name, None)
            return [AssetAlias(alias=a.alias, version=a.version, set_by=a.set_by, set_at=a.set_at)
                    for a in tx.assets.aliases_of(self.kind, [name])]  # fmt: skip

    def alias_history(self, name: str) -> MoveList:
        """Every set, move and removal of the asset's aliases, oldest first, with who and when."""
        with self._ws.store.transaction() as tx:
            if not tx.assets.container_exists(self.kind, name):
                raise _not_found(tx, self.kind, name, None)
            events = tx.assets.alias_history(self.kind, name)
        return [AliasMove(alias=e.alias, version=e.version, previous_version=e.previous_version,
                          set_by=e.set_by, set_at=e.set_at) for e in events]  # fmt: skip

    def download(
        self, name: str, version: str | None = None, label: str | None = None, download_path: str | Path = "."
    ) -> Path:
        """Copy the asset's files to ``download_path/<name>/``; returns the folder or file made."""
        asset = self.get(name, version, None if version else (label or "latest"))
        path = getattr(asset, "path", None)
        if not isinstance(path, str):
            raise InvalidStateError(f"{NOUNS[self.kind]} '{name}' has no files to download.")
        destination = Path(download_path) / name
        if parse_datastore_uri(path) is not None:
            return self._datastores.download(path, destination)
        raise InvalidStateError(
            f"{NOUNS[self.kind]} '{name}:{asset.version}' points at {path}, outside any datastore.",
            hint="download it with the tool of that storage",
        )


def check_alias(alias: str) -> None:
    if not alias:
        raise InvalidSpecError.one("Registered model alias name must not be empty.", "alias")
    if not _ALIAS.match(alias) or len(alias) > MAX_ALIAS:
        raise InvalidSpecError.one(
            f"Invalid alias name {alias!r}: aliases hold only letters, digits, '_' and '-', "
            f"at most {MAX_ALIAS} characters.",
            "alias",
        )
    if alias.lower() == "latest":
        raise InvalidSpecError.one(
            "The alias 'latest' (in any case) is reserved: it always means the newest version.", "alias"
        )
    if _VERSION_ALIAS.match(alias):
        raise InvalidSpecError.one(f"The alias {alias!r} is reserved: v<number> names a version.", "alias")


def _lookup(tx: Any, kind: str, name: str, version: str | None, label: str | None) -> AssetVersionRecord:
    if version is not None:
        record: AssetVersionRecord | None = tx.assets.get(kind, name, str(version))
    elif label in (None, "latest"):
        record = tx.assets.latest(kind, name)
    else:
        # Any other label is an alias (`smalt model alias set`, or MLflow's registered model aliases).
        assert label is not None
        alias = tx.assets.alias(kind, name, label)
        if alias is None:
            if not tx.assets.container_exists(kind, name):
                raise _not_found(tx, kind, name, None)
            known = [a.alias for a in tx.assets.aliases_of(kind, [name])]
            raise NotFoundError(
                f"{NOUNS[kind]} '{name}' has no alias {label!r}. Aliases: {', '.join(['latest', *known])}.",
                hint=f"smalt {kind} alias set --name {name} --version <v> --alias {label}",
            )
        record = tx.assets.get(kind, name, alias.version)
    if record is None:
        raise _not_found(tx, kind, name, version)
    return record


def _not_found(tx: Any, kind: str, name: str, version: str | None) -> NotFoundError:
    noun = NOUNS[kind]
    versions = tx.assets.version_names(kind, name)
    if versions and version is not None:
        return NotFoundError(
            f"{noun} '{name}:{version}' not found. Versions: {', '.join(versions)}.",
            hint=f"smalt {kind} list --name {name}",
        )
    if versions:
        return NotFoundError(
            f"{noun} '{name}' has no version that is not archived.",
            hint=f"smalt {kind} restore --name {name}, or give --version",
        )
    close = difflib.get_close_matches(name, tx.assets.all_names(kind), n=1)
    meant = f" Did you mean '{close[0]}'?" if close else ""
    target = f"'{name}:{version}'" if version is not None else f"'{name}'"
    return NotFoundError(f"{noun} {target} not found.{meant}", hint=f"smalt {kind} list")


def _problem(message: str, field: str, hint: str | None = None) -> InvalidSpecError:
    return InvalidSpecError([SpecProblem(message, field)], summary="Invalid spec", hint=hint)


@contextmanager
def _naming(field: str) -> Iterator[None]:
    """A NotFoundError raised inside says which field of the spec named what was not found."""
    try:
        yield
    except NotFoundError as exc:
        exc.field = exc.field or field
        raise
