"""What routes get from the application: the workspace's services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from smalt.services.jobs import JobService
from smalt.services.tracking import TrackingService
from smalt.services.workspace import WorkspaceContext


async def workspace(request: Request) -> WorkspaceContext:
    context: WorkspaceContext = request.app.state.workspace
    return context


# Dependencies are coroutines: a plain function would cost each request a trip to the thread pool.
async def _tracking(request: Request) -> TrackingService:
    service: TrackingService | None = getattr(request.app.state, "tracking", None)
    if service is None:
        service = request.app.state.tracking = TrackingService(request.app.state.workspace)
    return service


async def _jobs(request: Request) -> JobService:
    service: JobService | None = getattr(request.app.state, "jobs", None)
    if service is None:
        service = request.app.state.jobs = JobService(request.app.state.workspace)
    return service


Jobs = Annotated[JobService, Depends(_jobs)]
Tracking = Annotated[TrackingService, Depends(_tracking)]
Workspace = Annotated[WorkspaceContext, Depends(workspace)]
