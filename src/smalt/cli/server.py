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
    """Serve the workspace over HTTP: MLflow's REST protocol at /api/2.0/mlflow (point
    MLFLOW_TRACKING_URI at http://HOST:PORT), the artifacts proxy and the OpenAPI document at /docs."""
    from smalt.services import resolve_path

    workspace = resolve_path(context.workspace())
    # The server is its own program (smalt.server); this command becomes it, so signals reach it.
    argv = [sys.executable, "-m", "smalt.server", "--workspace", str(workspace), "--host", host, "--port", str(port)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
