"""``smalt compute|datastore|workspace <verb>``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from smalt.cli import context
from smalt.cli.assets import FileOpt, NameOpt, OptName, OutputOpt, QueryOpt, SetOpt, _entity_from
from smalt.cli.output import emit

compute_app = typer.Typer(help="Manage compute targets (all run locally in embedded mode).", no_args_is_help=True)
datastore_app = typer.Typer(help="Manage datastores; credentials are stored encrypted.", no_args_is_help=True)
workspace_app = typer.Typer(help="Create, list, show and delete workspaces.", no_args_is_help=True)
connection_app = typer.Typer(help="Manage workspace connections; their secrets are stored encrypted and never shown.",
                             no_args_is_help=True)  # fmt: skip


@compute_app.command("create")
def compute_create(
    file: FileOpt = None, name: OptName = None,
    type_: Annotated[str | None, typer.Option("--type", "-t", help="amlcompute or local.")] = None,
    size: Annotated[str | None, typer.Option("--size", help="VM size (recorded only).")] = None,
    min_instances: Annotated[int | None, typer.Option("--min-instances")] = None,
    max_instances: Annotated[int | None, typer.Option("--max-instances")] = None,
    idle_time_before_scale_down: Annotated[int | None, typer.Option("--idle-time-before-scale-down")] = None,
    tier: Annotated[str | None, typer.Option("--tier")] = None,
    set_: SetOpt = None, output: OutputOpt = None, query: QueryOpt = None,
) -> None:  # fmt: skip
    """Create or update a compute target."""
    flags: dict[str, Any] = {
        "name": name, "type": type_, "size": size, "min_instances": min_instances,
        "max_instances": max_instances, "idle_time_before_scale_down": idle_time_before_scale_down,
        "tier": tier,
    }  # fmt: skip
    compute = _entity_from("compute", file, set_, flags)
    emit(context.client().compute.begin_create_or_update(compute).result(), output, query=query)


@compute_app.command("show")
def compute_show(name: NameOpt, output: OutputOpt = None, query: QueryOpt = None) -> None:
    """Show a compute target."""
    emit(context.client().compute.get(name), output, query=query)


@compute_app.command("list")
def compute_list(output: OutputOpt = None, query: QueryOpt = None) -> None:
    """List compute targets."""
    columns = ("name", "type", "min_instances", "max_instances", "size")
    emit(context.client().compute.list(), output, columns=columns, query=query)


@compute_app.command("delete")
def compute_delete(name: NameOpt) -> None:
    """Delete a compute target."""
    context.client().compute.delete(name)


@connection_app.command("create")
def connection_create(
    file: FileOpt = None, name: OptName = None, set_: SetOpt = None, output: OutputOpt = None, query: QueryOpt = None
) -> None:
    """Create or update a connection from a YAML file (Azure ML's custom or api_key connection)."""
    connection = _entity_from("connection", file, set_, {"name": name})
    emit(context.client().connections.create_or_update(connection), output, query=query)


@connection_app.command("show")
def connection_show(name: NameOpt, output: OutputOpt = None, query: QueryOpt = None) -> None:
    """Show a connection (never its secrets)."""
    emit(context.client().connections.get(name), output, query=query)


@connection_app.command("list")
def connection_list(output: OutputOpt = None, query: QueryOpt = None) -> None:
    """List connections (never their secrets)."""
    emit(context.client().connections.list(), output, columns=("name", "type", "target", "api_base"), query=query)


@connection_app.command("delete")
def connection_delete(name: NameOpt) -> None:
    context.client().connections.delete(name)


@datastore_app.command("create")
def datastore_create(
    file: FileOpt = None, name: OptName = None, set_: SetOpt = None, output: OutputOpt = None, query: QueryOpt = None
) -> None:
    """Create or update a datastore from a YAML file."""
    datastore = _entity_from("datastore", file, set_, {"name": name})
    emit(context.client().datastores.create_or_update(datastore), output, query=query)


@datastore_app.command("show")
def datastore_show(name: NameOpt, output: OutputOpt = None, query: QueryOpt = None) -> None:
    """Show a datastore (never its secrets)."""
    emit(context.client().datastores.get(name), output, query=query)


@datastore_app.command("list")
def datastore_list(output: OutputOpt = None, query: QueryOpt = None) -> None:
    """List datastores (never their secrets)."""
    columns = ("name", "type", "is_default", "description")
    emit(context.client().datastores.list(), output, columns=columns, query=query)


@datastore_app.command("delete")
def datastore_delete(name: NameOpt) -> None:
    """Delete a datastore definition; its bytes are left where they are."""
    context.client().datastores.delete(name)


@workspace_app.command("sync-keys")
def workspace_sync_keys(
    name: Annotated[str | None, typer.Option("--name", "-n", help="Workspace name (default: this one).")] = None,
    output: OutputOpt = None,
) -> None:
    """Rotate the key that encrypts the workspace's secrets: every datastore credential, connection
    secret and endpoint key is sealed again with a new one. Safe to stop at any moment: run it again."""
    emit(context.client().workspaces.begin_sync_keys(name).result(), output or "json")


@workspace_app.command("create")
def workspace_create(
    path: Annotated[Path | None, typer.Option("--path", help="Folder (default: ./.smalt).")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Workspace name.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="An Azure ML workspace file (not yet).")] = None,
    output: OutputOpt = None,
    query: QueryOpt = None,
) -> None:
    """Create a workspace (here, in ./.smalt, unless --path or --workspace says where)."""
    from smalt.client import MLClient

    if file is not None:
        from smalt.errors import InvalidSpecError, SpecProblem

        # An Azure workspace file names cloud resources (storage, key vault, ...); nothing here reads them.
        raise InvalidSpecError.refusal(
            SpecProblem("an Azure ML workspace file is not supported yet", file=str(file)),
            hint="smalt workspace create --name <name> --path <folder> makes a workspace here",
        )

    if name is not None and path is None and context.workspace() is None:
        # A named workspace: ~/.smalt/<name> here, or one more workspace of the server at SMALT_URL.
        emit(context.client().workspaces.begin_create(name).result(), output, query=query)
        return
    if os.environ.get("SMALT_URL"):
        from smalt.errors import ConfigurationError

        raise ConfigurationError(
            "--path makes a workspace folder on this machine; the server at SMALT_URL names its workspaces.",
            hint="smalt workspace create --name <name>",
        )
    target = path or (Path(context._state["workspace"]) if context._state["workspace"] else Path(".smalt"))
    emit(MLClient(workspace=target.resolve(), workspace_name=name).workspace, output, query=query)


@workspace_app.command("show")
def workspace_show(name: OptName = None, output: OutputOpt = None, query: QueryOpt = None) -> None:
    """Show a workspace: by default the one commands use (see --workspace and SMALT_WORKSPACE)."""
    emit(context.client().workspaces.get(name), output, query=query)


@workspace_app.command("list")
def workspace_list(output: OutputOpt = None, query: QueryOpt = None) -> None:
    """List the workspaces by name: the server's at SMALT_URL, or here those in ~/.smalt."""
    emit(context.client().workspaces.list(), output, columns=("name", "path", "database", "created_at"), query=query)


@workspace_app.command("delete")
def workspace_delete(name: NameOpt) -> None:
    """Set a workspace aside: its folder moves to .deleted/ beside it (nothing is erased)."""
    context.client().workspaces.begin_delete(name)
