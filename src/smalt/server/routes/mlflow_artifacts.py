"""MLflow's artifacts proxy: upload, download, list and delete under the default datastore.

Paths are what follows ``mlflow-artifacts:/`` in an artifact URI; a run's artifacts live at
``azureml/<run>/artifacts`` (where command jobs keep ./outputs and ./logs too).
"""

from __future__ import annotations

import mimetypes
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from smalt.server.access import requires
from smalt.server.deps import Tracking

router = APIRouter(tags=["mlflow artifacts"])


@router.get("/artifacts", dependencies=[requires("workspaces/experiments/runs/read")])
def list_artifacts(tracking: Tracking, path: str = "") -> dict[str, Any]:
    files = []
    for entry in tracking.list_artifacts(path):
        relative = entry.path[len(path.strip("/")) :].lstrip("/") if path.strip("/") else entry.path
        shaped: dict[str, Any] = {"path": relative, "is_dir": entry.is_dir}
        if entry.size:  # MLflow leaves out a size of 0, as proto3 JSON does
            shaped["file_size"] = entry.size
        files.append(shaped)
    return {"files": files} if files else {}


@router.put("/artifacts/{path:path}", dependencies=[requires("workspaces/experiments/runs/write", audited=False)])
async def upload(path: str, request: Request, tracking: Tracking) -> dict[str, Any]:
    # Spooled so that a large model never sits whole in memory (chunked bodies included).
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)

        def chunks() -> Iterator[bytes]:
            while block := spool.read(1 << 20):
                yield block

        await run_in_threadpool(tracking.upload_artifact, path, chunks())
    return {}


@router.get("/artifacts/{path:path}", dependencies=[requires("workspaces/experiments/runs/read")])
async def download(path: str, tracking: Tracking) -> StreamingResponse:
    chunks = await run_in_threadpool(tracking.download_artifact, path)
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"

    async def stream() -> AsyncIterator[bytes]:
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk

    return StreamingResponse(stream(), media_type=media_type)
