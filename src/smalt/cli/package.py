"""``smalt model package``: a model version as a Docker build context."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smalt.cli import context
from smalt.cli.assets import QueryOpt
from smalt.cli.output import choose, emit

NameOpt = Annotated[str, typer.Option("--name", "-n", help="Model name.")]
VersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Model version.")]
LabelOpt = Annotated[str | None, typer.Option("--label", "-l", help="latest (the default), or an alias.")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="How to print the result: json, yaml, table or tsv.")]


def add_package_command(app: typer.Typer) -> None:
    @app.command("package")
    def package(
        name: NameOpt,
        output_dir: Annotated[
            Path, typer.Option("--output", "--output-dir", help="A new or empty folder for the context.")
        ],
        version: VersionOpt = None,
        label: LabelOpt = None,
        deployment_file: Annotated[
            Path | None,
            typer.Option("--deployment-file", help="Online deployment YAML: scoring code, environment, variables."),
        ] = None,
        output: FormatOpt = None,
        query: QueryOpt = None,
    ) -> None:
        """Write a Docker build context that serves a model version: Dockerfile, model, scoring
        code, pinned requirements, and smalt's scoring server as its entry point.

        An MLflow model needs no deployment file; any other model needs one with
        code_configuration. Here --output is the folder, as the issue and az ml's package verb have it;
        --format chooses how the result is printed.

        Example: smalt model package -n credit -v 3 --deployment-file blue.yml --output ./credit-image
        """
        path = context.client().models.package_context(
            name, version, label, deployment_file=deployment_file, output=output_dir
        )
        if query is None and choose(output) == "table":
            typer.echo(str(path))
            return
        files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        emit({"path": str(path), "files": files}, output, query=query)
