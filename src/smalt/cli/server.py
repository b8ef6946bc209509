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
    auth: Annotated[
        bool | None,
        typer.Option("--auth/--no-auth",
                     help="Require every request to authenticate (default: on when the server has a user, a service "
                          "principal or SMALT_TOKEN; always on when listening beyond this machine)."),
    ] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="The certificate's private key (PEM).")] = None,
    max_request_mb: Annotated[int, typer.Option(help="The largest request body, uploads aside (MiB).")] = 64,
    max_upload_gb: Annotated[int, typer.Option(help="The largest single upload or artifact (GiB).")] = 50,
) -> None:
    """Serve the workspace over HTTP: smalt's REST API at /api/v1 (set SMALT_URL=http://HOST:PORT
    and `smalt job` commands go through it), MLflow's REST protocol at /api/2.0/mlflow (point
    MLFLOW_TRACKING_URI at it), the artifacts proxy and the OpenAPI document at /docs. With
    authentication on (a user or service principal exists, SMALT_TOKEN is set, or --auth), every
    request must carry a credential: `smalt login`, a personal access token, a service principal's
    token (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID), or SMALT_TOKEN itself. Create the
    first Owner on the server's machine: `smalt user create --name admin --role Owner`."""
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
    if auth is not None:
        argv += ["--auth" if auth else "--no-auth"]
    if ssl_certfile or ssl_keyfile:
        argv += ["--ssl-certfile", str(ssl_certfile or ""), "--ssl-keyfile", str(ssl_keyfile or "")]
    argv += ["--max-request-mb", str(max_request_mb), "--max-upload-gb", str(max_upload_gb)]
    if os.environ.get("SMALT_TOKEN"):
        argv += ["--token-env", "SMALT_TOKEN"]  # every request must then carry it, as clients do
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
