"""The ``smalt`` command's Typer app: ``smalt <noun> <verb>``, like ``az ml``. Its entry point and
error boundary are ``smalt.cli.run``."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption

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
    "connection": _app("smalt.cli.resources", "connection_app"),
    "online-endpoint": _app("smalt.cli.endpoint", "endpoint_app"),
    "online-deployment": _app("smalt.cli.endpoint", "deployment_app"),
    "user": _app("smalt.cli.access", "user_app"),
    "service-principal": _app("smalt.cli.access", "service_principal_app"),
    "token": _app("smalt.cli.access", "token_app"),
    "role": _app("smalt.cli.access", "role_app"),
    "audit": _app("smalt.cli.access", "audit_app"),
}  # fmt: skip


WORKSPACE_HELP = ("Workspace folder (default: SMALT_WORKSPACE, the nearest .smalt/, else ~/.smalt/default); "
                  "with SMALT_URL, the name of one of that server's workspaces.")


def _print_version(asked: bool) -> None:
    if asked:
        from smalt.cli import version_line

        typer.echo(version_line())
        raise typer.Exit()


def main(
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w",
                     help=WORKSPACE_HELP + " Accepted after any command too, as az takes it."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print smalt's version.")
    ] = False,
) -> None:  # fmt: skip
    # Every command line starts here, before its command reads its own options: a workspace given
    # after the command then wins. None given: SMALT_WORKSPACE's folder (or the default), read where
    # the workspace is opened in-process; through a server (SMALT_URL), the server's workspace.
    context.set_workspace(workspace)


def build(nouns: list[str] | None = None) -> typer.Typer:
    """The ``smalt`` command with the commands of ``nouns`` (default: all of them)."""
    from smalt.cli.access import login, logout
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
    app.command(name="login")(login)
    app.command(name="logout")(logout)
    return app


def command(nouns: list[str] | None = None) -> Any:
    """``build``'s command as click runs it, with ``--workspace/-w`` accepted by every group and
    command as well, as ``az`` takes its global arguments anywhere: ``smalt job list -w ./ws``.

    The option is added to each command's own (rather than lifted out of the command line before
    it is read), so click reads it as it reads every other option: a ``-w`` that is the value of
    ``--set`` or ``--name``, or comes after ``--``, stays theirs."""
    key = tuple(nouns) if nouns is not None else None
    if key not in _built:
        root = typer.main.get_command(build(nouns))
        _add_workspace_option(root)
        _built[key] = root
    return _built[key]


#: Each command built, by its nouns: the CLI's agent builds them all once, before it forks a
#: process per command (a click command keeps no state between runs).
_built: dict[tuple[str, ...] | None, Any] = {}


def warm_up() -> None:
    """Build every noun's command now (the CLI's agent calls it once, before it serves)."""
    for noun in NOUNS:
        command([noun])
    command(None)


def _add_workspace_option(group: Any) -> None:
    if not isinstance(group, TyperGroup):
        return
    for sub in group.commands.values():
        sub.params.append(TyperOption(
            param_decls=["--workspace", "-w"], help=WORKSPACE_HELP, expose_value=False, callback=_workspace_here,
        ))  # fmt: skip
        _add_workspace_option(sub)


def _workspace_here(ctx: Any, param: Any, value: str | None) -> None:
    # Only a value written here: an option left out must not undo one given before the noun.
    if value is not None:
        context.set_workspace(value)


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
