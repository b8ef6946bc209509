"""The FastAPI application: error translation, optional bearer-token auth, and the routers."""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from smalt.errors import (
    AccessError,
    AlreadyExistsError,
    AuthenticationError,
    InvalidSpecError,
    InvalidStateError,
    NotFoundError,
    SmaltError,
    SpecProblem,
    to_wire,
)
from smalt.server.access import API_PREFIX
from smalt.services.workspace import WorkspaceContext
from smalt.services.workspaces import WorkspaceService

if TYPE_CHECKING:
    from smalt.server.access import AccessControl



def mlflow_error(status: int, code: str, message: str) -> JSONResponse:
    """MLflow's error body: ``{"error_code": ..., "message": ...}``."""
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _status(exc: SmaltError) -> tuple[int, str]:
    if isinstance(exc, NotFoundError):
        return 404, "RESOURCE_DOES_NOT_EXIST"
    if isinstance(exc, AlreadyExistsError):
        return 400, "RESOURCE_ALREADY_EXISTS"
    if isinstance(exc, InvalidSpecError | InvalidStateError):
        return 400, "INVALID_PARAMETER_VALUE"
    if isinstance(exc, AuthenticationError):
        return 401, "UNAUTHENTICATED"
    if isinstance(exc, AccessError):
        return 403, "PERMISSION_DENIED"
    return 500, "INTERNAL_ERROR"


def api_error(exc: SmaltError) -> JSONResponse:
    """smalt's own error body (``errors.to_wire``), so that a client raises the same error the
    service raised."""
    status, body = to_wire(exc)
    return JSONResponse(body, status_code=status)


def _message(exc: SmaltError) -> str:
    if isinstance(exc, InvalidSpecError) and exc.summary:
        return str(exc.summary)
    return exc.message


def create_app(workspace: WorkspaceContext, *, token: str | None = None, held: WorkspaceService | None = None,
               access: AccessControl | None = None) -> FastAPI:  # fmt: skip
    """The application serving ``workspace`` (MLflow's protocol is its), and under
    ``/api/v1/workspaces`` every workspace ``held`` holds (by default that one alone).
    ``access`` says who may call (server/access.py); without it, with ``token`` every request must
    carry ``Authorization: Bearer <token>`` (the job supervisor gives each job's server one), and
    without either authentication is off."""
    from smalt.server.routes import (
        assets,
        audit,
        computes,
        connections,
        datastores,
        endpoints,
        identities,
        jobs,
        lineage,
        mlflow_artifacts,
        mlflow_experiments,
        mlflow_links,
        mlflow_logged_models,
        mlflow_registry,
        mlflow_runs,
        roles,
        uploads,
        workspaces,
    )

    app = FastAPI(
        title="smalt",
        description="smalt's REST API and MLflow's REST protocol.",
        version="0.1.0",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.workspace = workspace
    app.state.workspaces = held or WorkspaceService(None, primary=workspace)
    app.state.job_services = {}

    from smalt.server.access import AccessControl, AccessMiddleware, check_declared, public

    control = access or AccessControl(workspace, enabled=token is not None, server_token=token)
    app.state.access = control
    app.add_middleware(AccessMiddleware, control=control)

    @app.exception_handler(SmaltError)
    async def _smalt_error(request: Request, exc: SmaltError) -> Response:
        if request.url.path.startswith(API_PREFIX):
            return api_error(exc)
        status, code = _status(exc)
        return mlflow_error(status, code, _message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # What no route serves (404), serves with another method (405), or a body that could not
        # be read (400): in the shape the path's clients read, never FastAPI's {"detail": ...}.
        what = f"{request.method} {request.url.path}"
        missing = exc.status_code in (404, 405)
        said = f"{what}: {exc.detail}; this server does not serve it." if missing else f"{what}: {exc.detail}."
        if request.url.path.startswith(API_PREFIX):
            error: SmaltError = (NotFoundError(said, hint="the routes are listed at /docs") if exc.status_code == 404
                                 else InvalidSpecError.one(said, "body") if exc.status_code in (400, 413, 422)
                                 else InvalidStateError(said))  # fmt: skip
            return JSONResponse(to_wire(error)[1], status_code=exc.status_code, headers=exc.headers)
        code = "ENDPOINT_NOT_FOUND" if missing else "INVALID_PARAMETER_VALUE"
        return mlflow_error(exc.status_code, code, said)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith(API_PREFIX):
            return api_error(InvalidSpecError(
                [SpecProblem(e["msg"], ".".join(str(p) for p in e["loc"][1:]) or "body") for e in exc.errors()],
                summary="Invalid request",
            ))  # fmt: skip
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return mlflow_error(400, "INVALID_PARAMETER_VALUE", f"Invalid request: {problems}")

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> Response:
        # A stray builtin exception is a 500 with a request id, never a guessed 4xx.
        request_id = uuid.uuid4().hex
        import logging

        logging.getLogger("smalt.server").exception("request %s failed", request_id)
        if _request.url.path.startswith(API_PREFIX):
            body = {"code": "Internal", "message": f"Internal error (request id {request_id})."}
            return JSONResponse({"error": body}, status_code=500)
        return mlflow_error(500, "INTERNAL_ERROR", f"Internal error (request id {request_id}).")

    @app.get("/health", include_in_schema=False, dependencies=[public()])
    async def _health() -> Response:
        return Response("OK", media_type="text/plain")

    @app.get("/api/3.0/mlflow/server-info", include_in_schema=False, dependencies=[public()])
    async def _server_info() -> dict[str, Any]:
        # Multipart transfers off: clients PUT and GET artifacts whole through the proxy.
        return {"store_type": "SqlStore", "workspaces_enabled": False, "multipart_uploads_enabled": False,
                "multipart_downloads_enabled": False}  # fmt: skip

    @app.get("/version", include_in_schema=False, dependencies=[public()])
    async def _version() -> Response:
        return Response("3.0.0", media_type="text/plain")

    for module in (mlflow_experiments, mlflow_runs, mlflow_logged_models, mlflow_registry):
        app.include_router(module.router, prefix="/api/2.0/mlflow")
    app.include_router(mlflow_artifacts.router, prefix="/api/2.0/mlflow-artifacts")
    app.include_router(jobs.submissions, prefix=API_PREFIX.rstrip("/"))
    app.include_router(jobs.router, prefix=API_PREFIX.rstrip("/"))
    app.include_router(jobs.entities, prefix=API_PREFIX.rstrip("/"))
    # The same job routes, for each workspace the server holds, by name.
    app.include_router(jobs.router, prefix=f"{API_PREFIX}workspaces/{{workspace}}",
                       dependencies=[Depends(workspaces.held)])  # fmt: skip
    app.include_router(workspaces.router, prefix=API_PREFIX.rstrip("/"))
    for module in (identities, roles, audit):
        app.include_router(module.router, prefix=API_PREFIX.rstrip("/"))
    # Before the assets' routes: `/workspaces/{workspace}/uploads` (and the rest) are no asset kind.
    for module in (uploads, computes, datastores, connections, endpoints, lineage):
        app.include_router(module.router, prefix=API_PREFIX.rstrip("/"))
    app.include_router(assets.router, prefix=API_PREFIX.rstrip("/"))
    app.include_router(mlflow_links.router)
    check_declared(app)
    return app


def finite(value: float) -> Any:
    """A float as proto3 JSON writes it: NaN and infinities as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
