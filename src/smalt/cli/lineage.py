"""``smalt model lineage|compare|alias``, ``smalt data impact`` and how they print."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from smalt.cli import context
from smalt.cli.assets import OutputOpt, QueryOpt
from smalt.cli.output import choose, emit

NameOpt = Annotated[str, typer.Option("--name", "-n", help="Asset name.")]
VersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Version.")]
LabelOpt = Annotated[str | None, typer.Option("--label", "-l", help="latest, or an alias.")]


def add_model_commands(app: typer.Typer) -> None:
    @app.command("lineage")
    def lineage(
        name: NameOpt, version: VersionOpt = None, label: LabelOpt = None, output: OutputOpt = None,
        query: QueryOpt = None,
    ) -> None:  # fmt: skip
        """The chain from a model version back to its jobs, data, code and environment."""
        graph = context.client().models.lineage(name, version, label)
        _graph(graph, output, query, upstream=True)

    @app.command("compare", context_settings={"allow_extra_args": True})
    def compare(
        ctx: typer.Context,
        name: NameOpt,
        versions: Annotated[list[str], typer.Option("--versions", help="Two or more versions: --versions 2 3.")],
        output: OutputOpt = None,
        query: QueryOpt = None,
    ) -> None:
        """What differs between versions: params, inputs, metrics, data, packages and code files."""
        from smalt.errors import InvalidSpecError

        # As in `az ml`, the versions follow one --versions: the first is the option's, the rest extra.
        versions = [*versions, *ctx.args]
        if len(versions) < 2:
            raise InvalidSpecError.one("give at least two versions: --versions 2 3", "--versions")
        result = context.client().models.compare(name, list(versions))
        if query is not None or choose(output) != "table":
            emit(result, output, query=query)
            return
        _comparison(result)

    alias_app = typer.Typer(help="Name versions: production, staging, champion...", no_args_is_help=True)
    app.add_typer(alias_app, name="alias")

    @alias_app.command("set")
    def alias_set(
        name: NameOpt, alias: Annotated[str, typer.Option("--alias", "-a", help="The alias.")],
        version: VersionOpt = None, label: LabelOpt = None, output: OutputOpt = None, query: QueryOpt = None,
    ) -> None:  # fmt: skip
        """Point an alias at a version (moving it); azureml:<name>@<alias> then names that version."""
        emit(context.client().models.set_alias(name, alias, version, label), output, query=query)

    @alias_app.command("remove")
    def alias_remove(name: NameOpt, alias: Annotated[str, typer.Option("--alias", "-a")]) -> None:
        """Remove an alias."""
        context.client().models.remove_alias(name, alias)

    @alias_app.command("list")
    def alias_list(
        name: NameOpt,
        history: Annotated[bool, typer.Option("--history", help="Every move, with who and when.")] = False,
        output: OutputOpt = None,
        query: QueryOpt = None,
    ) -> None:
        """The aliases of a model, or with --history every move of them."""
        models = context.client().models
        if history:
            columns = ("alias", "version", "previous_version", "set_by", "set_at")
            emit(models.alias_history(name), output, columns=columns, query=query)
        else:
            emit(models.aliases(name), output, columns=("alias", "version", "set_by", "set_at"), query=query)


def add_data_commands(app: typer.Typer) -> None:
    @app.command("impact")
    def impact(
        name: NameOpt, version: VersionOpt = None, label: LabelOpt = None, output: OutputOpt = None,
        query: QueryOpt = None,
    ) -> None:  # fmt: skip
        """Every job, data version and model derived from a data version, transitively."""
        graph = context.client().data.impact(name, version, label)
        _graph(graph, output, query, upstream=False)


def _graph(graph: Any, output: str | None, query: str | None, *, upstream: bool) -> None:
    if query is not None or choose(output) != "table":
        emit(graph, output, query=query)
        return
    from rich.console import Console

    if upstream:
        console = Console()
        # Piped, lines are not cut at 80 columns: long URIs stay whole, for grep.
        (console if console.is_terminal else Console(width=4096)).print(_lineage_tree(graph))
        return
    rows = [
        {"kind": n.kind, "name": n.name, "version": n.version or "", "status": n.properties.get("status", ""),
         "from": ", ".join(sorted({e.source for e in graph.sources_of(n.id)}))}
        for n in graph.nodes if n.id != graph.root
    ]  # fmt: skip
    emit(rows, "table", columns=("kind", "name", "version", "status", "from"))


def _label(node: Any) -> str:
    """One line for a node, as rich markup (the values escaped: a step key like [prep] is text)."""
    from rich.markup import escape

    p = {k: escape(v) if isinstance(v, str) else v for k, v in node.properties.items()}
    if node.kind == "job":
        step = f" \\[{p['display_name']}]" if p.get("display_name") else ""  # \\[ is a bracket, not markup
        where = f", in pipeline {p['parent_job_name']}" if p.get("parent_job_name") else ""
        rerun = f", rerun of {p['rerun_of']}" if p.get("rerun_of") else ""
        context_ = f"compute {p.get('compute')}{where}{rerun}"
        return f"[bold]job[/bold] {escape(node.name)}{step} {p.get('status', '')} ({context_})"
    if node.kind in ("model", "data"):
        what = f"{escape(node.name)}:{node.version} ({p.get('type', '')}) {p.get('path', '')}"
        return f"[bold]{node.kind}[/bold] {what}"
    if node.kind == "code":
        files = p.get("files") or {}
        shown = escape(", ".join(sorted(files)[:5])) + (", ..." if len(files) > 5 else "")
        return f"[bold]code[/bold] {p.get('uri')} ({len(files)} files: {shown})"
    packages = p.get("packages") or []
    named = f"{p['name']}:{p.get('version', '')} " if p.get("name") else ""
    named = named or (f"{p['reference']} " if p.get("reference") else "")
    return (f"[bold]environment[/bold] {named}digest {str(p.get('digest'))[:12]}, python {p.get('python') or '?'}, "
            f"{len(packages)} packages")  # fmt: skip


def _lineage_tree(graph: Any) -> Any:
    from rich.markup import escape
    from rich.tree import Tree

    def add(branch: Any, node_id: str, seen: frozenset[str]) -> None:
        node = graph.node(node_id)
        if node.kind == "job":
            p = node.properties
            for key in ("params", "metrics"):
                if p.get(key):
                    branch.add(f"{key}: " + escape(", ".join(f"{k}={v}" for k, v in sorted(p[key].items()))))
            literals = {k: v for k, v in (p.get("inputs") or {}).items() if not isinstance(v, dict)}
            if literals:
                branch.add("inputs: " + escape(", ".join(f"{k}={v}" for k, v in sorted(literals.items()))))
            for port, value in sorted((p.get("inputs") or {}).items()):
                fed = [e for e in graph.sources_of(node_id) if e.port == port and e.relation == "input"]
                if isinstance(value, dict) and not fed:
                    branch.add(f"input {port}: " + escape(str(value.get("path", ""))))
        for edge in graph.sources_of(node_id):
            via = f"{edge.relation} {edge.port}: " if edge.relation == "input" and edge.port else ""
            child = branch.add(via + _label(graph.node(edge.source)))
            if edge.source not in seen:
                add(child, edge.source, seen | {edge.source})

    tree = Tree(_label(graph.node(graph.root)))
    add(tree, graph.root, frozenset({graph.root}))
    return tree


def _comparison(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("", *[f"version {v}" for v in result.versions], title=f"model {result.name}")
    table.add_row("job", *[j or "" for j in result.jobs])
    empty = True
    for section in ("params", "inputs", "metrics", "data", "packages", "code"):
        for key, values in getattr(result, section).items():
            empty = False
            table.add_row(f"{section}.{key}", *["" if v is None else str(v) for v in values])
    Console().print(table)
    if empty:
        Console().print("No differences in params, inputs, metrics, data, packages or code.")
