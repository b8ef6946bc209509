"""Lineage, model aliases and downloads over REST, under ``/api/v1/workspaces/{workspace}``:
a job's lineage, a model version's lineage and comparison, a data version's impact, a model's
aliases, and the files of an asset version or a job's outputs as a tar stream."""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from smalt.entities import Model
from smalt.server.access import requires
from smalt.server.routes.assets import NOUNS, Noun
from smalt.server.routes.workspaces import Workspace
from smalt.services.assets import AssetService
from smalt.services.jobs import JobService
from smalt.services.lineage import LineageService

router = APIRouter(prefix="/workspaces/{workspace}")
Name = Annotated[str, PathParam(max_length=255)]
VersionQuery = Annotated[str | None, Query(max_length=100)]
Alias = Annotated[str, PathParam(max_length=255)]


@router.get("/jobs/{name}/lineage", dependencies=[requires("workspaces/jobs/read")])
def job_lineage(context: Workspace, name: Name) -> dict[str, Any]:
    return LineageService(context).job_lineage(name).model_dump(mode="json")


@router.get("/models/{name}/lineage", dependencies=[requires("workspaces/models/read")])
def model_lineage(context: Workspace, name: Name, version: VersionQuery = None,
                  label: VersionQuery = None) -> dict[str, Any]:  # fmt: skip
    return LineageService(context).model_lineage(name, version, label).model_dump(mode="json")


@router.get("/models/{name}/compare", dependencies=[requires("workspaces/models/read")])
def compare_models(
    context: Workspace, name: Name, versions: Annotated[list[str], Query(max_length=100)]
) -> dict[str, Any]:
    return LineageService(context).compare(name, versions).model_dump(mode="json")


@router.get("/data/{name}/impact", dependencies=[requires("workspaces/data/read")])
def data_impact(context: Workspace, name: Name, version: VersionQuery = None,
                label: VersionQuery = None) -> dict[str, Any]:  # fmt: skip
    return LineageService(context).data_impact(name, version, label).model_dump(mode="json")


@router.get("/models/{name}/aliases", dependencies=[requires("workspaces/models/read")])
def aliases(context: Workspace, name: Name) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json") for a in AssetService(context, Model).aliases(name)]


@router.get("/models/{name}/alias-history", dependencies=[requires("workspaces/models/read")])
def alias_history(context: Workspace, name: Name) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in AssetService(context, Model).alias_history(name)]


@router.put("/models/{name}/aliases/{alias}", dependencies=[requires("workspaces/models/write")])
def set_alias(context: Workspace, name: Name, alias: Alias, version: VersionQuery = None,
              label: VersionQuery = None) -> dict[str, Any]:  # fmt: skip
    return AssetService(context, Model).set_alias(name, alias, version, label).model_dump(mode="json")


@router.delete("/models/{name}/aliases/{alias}", status_code=204, dependencies=[requires("workspaces/models/write")])
def remove_alias(context: Workspace, name: Name, alias: Alias) -> None:
    AssetService(context, Model).remove_alias(name, alias)


# Before the assets' download: `/jobs/...` would otherwise be read as an asset kind.
@router.get("/jobs/{name}/download", response_class=StreamingResponse, dependencies=[requires("workspaces/jobs/read")])
def download_job(context: Workspace, name: Name, output_name: Annotated[str | None, Query(max_length=255)] = None,
                 all: bool = False) -> StreamingResponse:  # noqa: A002 - Azure ML's name  # fmt: skip
    return _tar_stream(lambda scratch: JobService(context).download(name, scratch, output_name, all))


@router.get(
    "/{noun}/{name}/download", response_class=StreamingResponse, dependencies=[requires("workspaces/{noun}/read")]
)
def download_asset(context: Workspace, noun: Noun, name: Name, version: VersionQuery = None,
                   label: VersionQuery = None) -> StreamingResponse:  # fmt: skip
    """The version's files as a tar stream, laid out as ``download`` lays them out locally."""
    return _tar_stream(lambda scratch: [AssetService(context, NOUNS[noun][1]).download(name, version, label, scratch)])


class PackageRequest(BaseModel):
    #: The online deployment to package the model with (its code uploaded first), or none for an
    #: MLflow model.
    deployment: dict[str, Any] | None = None


@router.post(
    "/models/{name}/package",
    response_class=StreamingResponse,
    dependencies=[requires("workspaces/models/package/action")],
)
def package_model(context: Workspace, name: Name, body: PackageRequest, version: VersionQuery = None,
                  label: VersionQuery = None) -> StreamingResponse:  # fmt: skip
    """A Docker build context serving the version (``smalt model package``), as a tar of one
    folder, ``context``."""
    from smalt import specs
    from smalt.entities.endpoint import PACKAGE_ENDPOINT
    from smalt.services.packaging import PackagingService
    from smalt.specs.loader import refuse_local_paths

    deployment = None
    if body.deployment is not None:
        refuse_local_paths("online-deployment", body.deployment)
        values = {**body.deployment, "endpoint_name": body.deployment.get("endpoint_name") or PACKAGE_ENDPOINT}
        deployment = specs.from_values("online-deployment", values)
    return _tar_stream(lambda scratch: [PackagingService(context).package_deployment(
        name, version, label, deployment, scratch / "context")])  # type: ignore[arg-type]  # fmt: skip


def _tar_stream(download: Callable[[Path], list[Path]]) -> StreamingResponse:
    """What ``download`` writes into a scratch folder, as an uncompressed tar (written to a scratch
    file first, then sent in blocks: nothing is held in memory whole); the folder is removed once
    the tar is made, or the download failed. Links are not followed: a stored link is sent as a
    link, never as what it names. The paths the download made, relative to the folder, travel in
    the ``Smalt-Paths`` header (JSON)."""
    folder = Path(tempfile.mkdtemp(prefix="smalt-download-"))
    archive = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the stream that sends it
    try:
        paths = json.dumps([p.relative_to(folder).as_posix() for p in download(folder)])
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for entry in sorted(folder.iterdir()):
                tar.add(entry, arcname=entry.name)
    except BaseException:
        archive.close()
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    archive.seek(0)

    def chunks() -> Iterator[bytes]:
        with archive:
            while block := archive.read(1 << 20):
                yield block

    return StreamingResponse(chunks(), media_type="application/x-tar", headers={"Smalt-Paths": paths})
