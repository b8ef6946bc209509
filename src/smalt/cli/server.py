"""``smalt server``: the REST API and MLflow's protocol over HTTP, for the chosen workspace."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from smalt.cli import context


def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve the workspace over HTTP: smalt's REST API at /api/v1 (set SMALT_URL=http://HOST:PORT
    and `smalt job` commands go through it), MLflow's REST protocol at /api/2.0/mlflow (point
    MLFLOW_TRACKING_URI at it), the artifacts proxy and the OpenAPI document at /docs. With
    SMALT_TOKEN set, every request must carry it as a bearer token."""
    from smalt.services import resolve_path

    workspace = resolve_path(context.workspace())
    # The server is its own program (smalt.server); this command becomes it, so signals reach it.
    argv = [sys.executable, "-m", "smalt.server", "--workspace", str(workspace), "--host", host, "--port", str(port)]
    if os.environ.get("SMALT_TOKEN"):
        argv += ["--token-env", "SMALT_TOKEN"]  # every request must then carry it, as clients do
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
