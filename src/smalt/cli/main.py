"""The ``smalt`` command's Typer app: ``smalt <noun> <verb>``, like ``az ml``. Its entry point and
error boundary are ``smalt.cli.run``."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Annotated

import typer

from smalt.cli import context


def _app(module: str, name: str) -> Callable[[], typer.Typer]:
    return lambda: getattr(import_module(module), name)


def _asset_app(noun: str, what: str, *extras: str) -> Callable[[], typer.Typer]:
    """``smalt <noun>``: the asset verbs, plus the commands each of ``extras`` (``module:function``) adds."""

    def make() -> typer.Typer:
        from smalt.cli.assets import asset_app

        app = asset_app(noun, what)
        for extra in extras:
            module, function = extra.split(":")
            getattr(import_module(module), function)(app)
        return app

    return make


#: ``smalt <noun>``: each noun's commands, built only when they may be needed.
NOUNS: dict[str, Callable[[], typer.Typer]] = {
    "workspace": _app("smalt.cli.resources", "workspace_app"),
    "data": _asset_app("data", "data assets (uri_file, uri_folder, mltable)", "smalt.cli.lineage:add_data_commands"),
    "environment": _asset_app("environment", "environments (conda file, image, build)"),
    "component": _asset_app("component", "components"),
    "model": _asset_app("model", "models (custom, MLflow, Triton)", "smalt.cli.lineage:add_model_commands",
                        "smalt.cli.package:add_package_command"),
    "job": _app("smalt.cli.job", "job_app"),
    "compute": _app("smalt.cli.resources", "compute_app"),
    "datastore": _app("smalt.cli.resources", "datastore_app"),
    "online-endpoint": _app("smalt.cli.endpoint", "endpoint_app"),
    "online-deployment": _app("smalt.cli.endpoint", "deployment_app"),
}  # fmt: skip


def main(
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w", envvar="SMALT_WORKSPACE",
                     help="Workspace folder (default: nearest .smalt/, else ~/.smalt/default)."),
    ] = None,
) -> None:  # fmt: skip
    context.set_workspace(workspace)


def build(nouns: list[str] | None = None) -> typer.Typer:
    """The ``smalt`` command with the commands of ``nouns`` (default: all of them)."""
    from smalt.cli.server import server

    app = typer.Typer(
        name="smalt",
        help="smalt: Azure Machine Learning's model on your own machines.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )
    app.callback()(main)
    for noun in nouns if nouns is not None else list(NOUNS):
        app.add_typer(NOUNS[noun](), name=noun)
    app.command(name="server")(server)
    return app


def invoked_noun(argv: list[str]) -> str | None:
    """The noun a command line names (``smalt -w WS job show`` names ``job``), if any."""
    args = iter(argv)
    for arg in args:
        if arg in ("--workspace", "-w"):
            next(args, None)
        elif not arg.startswith("-"):
            return arg if arg in NOUNS else None
    return None


if __name__ == "__main__":
    from smalt.cli import console

    console()
