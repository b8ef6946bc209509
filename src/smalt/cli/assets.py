"""``smalt data|environment|component|model <verb>``: one factory, since the verbs are shared."""

from pathlib import Path
from typing import Annotated, Any

import typer

from smalt.cli import context
from smalt.cli.output import emit

FileOpt = Annotated[Path | None, typer.Option("--file", "-f", help="YAML file (Azure ML CLI v2 schema).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a field: --set tags.stage=dev (repeatable).")]
NameOpt = Annotated[str, typer.Option("--name", "-n", help="Asset name.")]
OptName = Annotated[str | None, typer.Option("--name", "-n", help="Asset name.")]
VersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Asset version.")]
LabelOpt = Annotated[str | None, typer.Option("--label", "-l", help="Version label: latest.")]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="json, yaml, table or tsv.")]
ArchivedOpt = Annotated[bool, typer.Option("--include-archived", help="Also list archived assets.")]


def _checked_query(expression: str | None) -> str | None:
    """A bad --query stops the command as its line is read, before it creates anything."""
    if expression is not None:
        from smalt.cli.output import compile_query

        compile_query(expression)
    return expression


#: ``--query``, on every command that prints a result: a JMESPath expression, as ``az`` has it.
QueryOpt = Annotated[
    str | None,
    typer.Option("--query", help='JMESPath query applied to the result, e.g. "[].name".', callback=_checked_query),
]

_COLUMNS = {
    "data": ("name", "version", "type", "path", "created_at"),
    "environment": ("name", "version", "image", "description", "created_at"),
    "component": ("name", "version", "display_name", "type", "created_at"),
    "model": ("name", "version", "type", "stage", "job_name", "path", "created_at"),
}
_PATH_HELP = {"data": "Local file or folder, or a URI.", "model": "Local file or folder, or a URI."}


def _operations(kind: str) -> Any:
    client = context.client()
    return {
        "data": client.data, "environment": client.environments,
        "component": client.components, "model": client.models,
    }[kind]  # fmt: skip


def _entity_from(kind: str, file: Path | None, overrides: list[str] | None, flags: dict[str, Any]) -> Any:
    from smalt import specs

    if file is not None:
        return specs.load(kind, file, overrides=overrides, params=flags)
    return specs.from_values(kind, flags, overrides=overrides)


def asset_app(kind: str, title: str) -> typer.Typer:
    """The sub-command group for one asset kind."""
    app = typer.Typer(help=f"Manage {title}.", no_args_is_help=True)
    has_path = kind in ("data", "model")

    if has_path:

        @app.command("create")
        def create_with_path(
            file: FileOpt = None, name: OptName = None, version: VersionOpt = None,
            path: Annotated[str | None, typer.Option("--path", "-p", help=_PATH_HELP[kind])] = None,
            type_: Annotated[str | None, typer.Option("--type", "-t", help="Asset type.")] = None,
            description: Annotated[str | None, typer.Option("--description", "-d")] = None,
            set_: SetOpt = None, output: OutputOpt = None, query: QueryOpt = None,
        ) -> None:  # fmt: skip
            """Register a version, from a YAML file or from flags alone."""
            flags = {"name": name, "version": version, "path": path, "type": type_, "description": description}
            emit(_operations(kind).create_or_update(_entity_from(kind, file, set_, flags)), output, query=query)

    elif kind == "environment":

        @app.command("create")
        def create_environment(
            file: FileOpt = None, name: OptName = None, version: VersionOpt = None,
            image: Annotated[str | None, typer.Option("--image", "-i", help="Docker image.")] = None,
            conda_file: Annotated[str | None, typer.Option("--conda-file", help="Conda YAML file.")] = None,
            description: Annotated[str | None, typer.Option("--description", "-d")] = None,
            set_: SetOpt = None, output: OutputOpt = None, query: QueryOpt = None,
        ) -> None:  # fmt: skip
            """Register a version, from a YAML file or from flags alone."""
            flags = {
                "name": name,
                "version": version,
                "image": image,
                "conda_file": conda_file,
                "description": description,
            }
            emit(_operations(kind).create_or_update(_entity_from(kind, file, set_, flags)), output, query=query)

    else:

        @app.command("create")
        def create_from_file(
            file: Annotated[Path, typer.Option("--file", "-f", help="YAML file (Azure ML CLI v2 schema).")],
            name: OptName = None, version: VersionOpt = None, set_: SetOpt = None, output: OutputOpt = None,
            query: QueryOpt = None,
        ) -> None:  # fmt: skip
            """Register a version from a YAML file."""
            flags = {"name": name, "version": version}
            emit(_operations(kind).create_or_update(_entity_from(kind, file, set_, flags)), output, query=query)

    @app.command("show")
    def show(
        name: NameOpt, version: VersionOpt = None, label: LabelOpt = None, output: OutputOpt = None,
        query: QueryOpt = None,
    ) -> None:  # fmt: skip
        """Show one version (--version, or --label latest)."""
        emit(_operations(kind).get(name, version=version, label=label), output, query=query)

    @app.command("list")
    def list_(
        name: OptName = None, include_archived: ArchivedOpt = False,
        max_results: Annotated[int | None, typer.Option("--max-results", "-r", min=1, help="At most this many.")]
        = None,
        output: OutputOpt = None, query: QueryOpt = None,
    ) -> None:  # fmt: skip
        """List every asset (its latest version), or every version of --name, newest first."""
        listed = _operations(kind).list(name, include_archived=include_archived, max_results=max_results)
        emit(listed, output, columns=_COLUMNS[kind], query=query)

    @app.command("archive")
    def archive(name: NameOpt, version: VersionOpt = None, label: LabelOpt = None) -> None:
        """Archive a version, or with no --version the whole asset. Archived ones stay usable."""
        _operations(kind).archive(name, version=version, label=label)

    @app.command("restore")
    def restore(name: NameOpt, version: VersionOpt = None, label: LabelOpt = None) -> None:
        """Restore an archived version, or the whole asset."""
        _operations(kind).restore(name, version=version, label=label)

    if has_path:

        @app.command("download")
        def download(
            name: NameOpt, version: VersionOpt = None, label: LabelOpt = None,
            download_path: Annotated[Path, typer.Option("--download-path", "-p", help="Folder.")] = Path("."),
        ) -> None:  # fmt: skip
            """Download the files to DOWNLOAD_PATH/<name>/."""
            target = _operations(kind).download(name, version=version, label=label, download_path=download_path)
            typer.echo(str(target))

    return app
