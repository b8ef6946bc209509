"""``smalt server``: the REST API and MLflow's protocol over HTTP, for the chosen workspace."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from smalt.cli import context


def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    home: Annotated[
        Path | None,
        typer.Option(help="A folder of named workspaces to hold too, created over REST "
                          "(default: ~/.smalt when serving a workspace there)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="PostgreSQL for the workspaces this server creates, each in a schema "
                                            "of its own (SMALT_DATABASE_URL)."),
    ] = None,
    blobstore_url: Annotated[
        str | None,
        typer.Option("--blobstore-url",
                     help="Object storage (s3://...) for the workspaces this server creates, each under its "
                          "name (SMALT_BLOBSTORE_URL)."),
    ] = None,
) -> None:
    """Serve the workspace over HTTP: smalt's REST API at /api/v1 (set SMALT_URL=http://HOST:PORT
    and `smalt job` commands go through it), MLflow's REST protocol at /api/2.0/mlflow (point
    MLFLOW_TRACKING_URI at it), the artifacts proxy and the OpenAPI document at /docs. With
    SMALT_TOKEN set, every request must carry it as a bearer token."""
    from smalt.services import resolve_path

    workspace = resolve_path(context.workspace())
    named = Path.home() / ".smalt"
    home = home or (named if workspace.parent == named else None)
    # The server is its own program (smalt.server); this command becomes it, so signals reach it.
    argv = [sys.executable, "-m", "smalt.server", "--workspace", str(workspace), "--host", host, "--port", str(port)]
    argv += ["--home", str(home.resolve())] if home else []
    if database_url:
        os.environ["SMALT_DATABASE_URL"] = database_url
    if blobstore_url:
        os.environ["SMALT_BLOBSTORE_URL"] = blobstore_url
    if os.environ.get("SMALT_TOKEN"):
        argv += ["--token-env", "SMALT_TOKEN"]  # every request must then carry it, as clients do
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
