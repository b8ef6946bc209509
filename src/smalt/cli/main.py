"""The ``smalt`` command: ``smalt <noun> <verb>``, like ``az ml``.

One error boundary: a known error prints one clear line (and its hint) on stderr and exits 1; an
unknown one says "internal error" and how to see the traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from smalt.cli import context
from smalt.cli.assets import asset_app
from smalt.cli.endpoint import deployment_app, endpoint_app
from smalt.cli.job import job_app
from smalt.cli.lineage import add_data_commands, add_model_commands
from smalt.cli.package import add_package_command
from smalt.cli.resources import compute_app, datastore_app, workspace_app
from smalt.cli.server import server

app = typer.Typer(
    name="smalt",
    help="smalt: Azure Machine Learning's model on your own machines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(workspace_app, name="workspace")
data_app = asset_app("data", "data assets (uri_file, uri_folder, mltable)")
add_data_commands(data_app)
app.add_typer(data_app, name="data")
app.add_typer(asset_app("environment", "environments (conda file, image, build)"), name="environment")
app.add_typer(asset_app("component", "components"), name="component")
model_app = asset_app("model", "models (custom, MLflow, Triton)")
add_model_commands(model_app)
add_package_command(model_app)
app.add_typer(model_app, name="model")
app.add_typer(job_app, name="job")
app.add_typer(compute_app, name="compute")
app.add_typer(datastore_app, name="datastore")
app.add_typer(endpoint_app, name="online-endpoint")
app.add_typer(deployment_app, name="online-deployment")
app.command(name="server")(server)


@app.callback()
def main(
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w", envvar="SMALT_WORKSPACE",
                     help="Workspace folder (default: nearest .smalt/, else ~/.smalt/default)."),
    ] = None,
) -> None:  # fmt: skip
    context.set_workspace(workspace)


def run() -> None:
    """Entry point of the console script: the CLI's one error boundary."""
    import click

    from smalt.errors import InvalidSpecError, SmaltError

    try:
        try:
            # Without standalone mode click hands back typer.Exit's code instead of raising it.
            code = app(standalone_mode=False)
        finally:
            context.close()
    except SmaltError as exc:
        if isinstance(exc, InvalidSpecError):
            message = str(exc)
        else:
            message = exc.message + (f"\nHint: {exc.hint}" if exc.hint else "")
        if isinstance(exc, InvalidSpecError) and exc.hint:
            message = f"{exc.message}\nHint: {exc.hint}"
        sys.stderr.write(f"Error: {message}\n")
        sys.exit(1)
    except click.exceptions.Abort:
        sys.stderr.write("Aborted.\n")
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    except Exception:
        if os.environ.get("SMALT_DEBUG"):
            raise
        error = sys.exc_info()[1]
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        sys.stderr.write(
            f"Internal error: {type(error).__name__}: {first}\n"
            "Run again with SMALT_DEBUG=1 to see the traceback, and report it.\n"
        )
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
