"""``smalt job <verb>``: command jobs, like ``az ml job``."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smalt.cli import context
from smalt.cli.assets import OutputOpt, SetOpt
from smalt.cli.output import emit

job_app = typer.Typer(help="Run and follow command jobs.", no_args_is_help=True)
NameOpt = Annotated[str, typer.Option("--name", "-n", help="Job name.")]
_COLUMNS = ("name", "display_name", "status", "experiment_name", "compute", "created_at")


@job_app.command("create")
def create(
    file: Annotated[Path, typer.Option("--file", "-f", help="Job YAML file (Azure ML commandJob or pipelineJob).")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Job name (default: generated).")] = None,
    set_: SetOpt = None,
    stream: Annotated[
        bool, typer.Option("--stream", "-s", help="Follow the logs; exit 0 only if it completed.")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Submit a job. Everything is checked first: nothing is queued when anything is wrong."""
    from smalt import specs

    job = specs.load("job", file, overrides=set_, params={"name": name})
    client = context.client()
    submitted = client.jobs.create_or_update(job)  # type: ignore[arg-type]
    if not stream:
        emit(submitted, output)
        return
    sys.stderr.write(f"Job {submitted.name} submitted; streaming its logs.\n")
    finished = client.jobs.stream(submitted.name or "")
    _report(finished)


def _report(job: object) -> None:
    status = getattr(job, "status", None)
    sys.stderr.write(f"\nJob {getattr(job, 'name', '')} finished: {status}\n")
    error = getattr(job, "error", None)
    if error:
        sys.stderr.write(f"{error.get('cause', '')} error: {error.get('message', '')}\n")
    if status != "Completed":
        raise typer.Exit(1)


@job_app.command("validate")
def validate(
    file: Annotated[Path, typer.Option("--file", "-f", help="Job YAML file (Azure ML commandJob or pipelineJob).")],
    set_: SetOpt = None,
) -> None:
    """Check a job without running it: every problem at once, with its file, line and field."""
    from smalt import specs

    job = specs.load("job", file, overrides=set_)
    steps = context.client().jobs.validate(job)  # type: ignore[arg-type]
    what = f"a pipeline of {len(steps)} step{'s' if len(steps) != 1 else ''}" if steps else "a command job"
    sys.stdout.write(f"{file} is valid: {what}.\n")


@job_app.command("show")
def show(name: NameOpt, output: OutputOpt = None) -> None:
    """Show a job: status, inputs, outputs, times, and why it failed; a pipeline as a tree of steps."""
    from smalt.cli.output import choose

    client = context.client()
    job = client.jobs.get(name)
    if getattr(job, "type", None) != "pipeline" or choose(output) != "table":
        emit(job, output)
        return
    _tree(job, client.jobs.list(parent_job_name=name))


def _tree(pipeline: Any, steps: list[Any]) -> None:
    from rich.console import Console
    from rich.tree import Tree

    def duration(job: Any) -> str:
        if job.start_time is None or job.end_time is None:
            return ""
        return f" {(job.end_time - job.start_time).total_seconds():.1f}s"

    tree = Tree(f"[bold]{pipeline.display_name or pipeline.name}[/bold] {pipeline.name} {pipeline.status}"
                f"{duration(pipeline)}")  # fmt: skip
    nodes: dict[str, Any] = {}
    for step in steps:
        *outer, _ = (step.display_name or "").split(".")
        parent = tree
        for depth in range(1, len(outer) + 1):
            key = ".".join(outer[:depth])
            if key not in nodes:
                nodes[key] = parent.add(f"[bold]{outer[depth - 1]}[/bold] (pipeline)")
            parent = nodes[key]
        reuse = f" reused {step.reused_from}" if step.reused_from else ""
        reason = f" - {step.run_reason}" if step.run_reason and not step.reused_from else ""
        parent.add(f"{step.display_name} {step.name} {step.status}{duration(step)}{reuse}{reason}")
    Console().print(tree)


@job_app.command("list")
def list_(
    status: Annotated[str | None, typer.Option("--status", help="Only jobs in this status.")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "--experiment-name", help="Only this experiment.")
    ] = None,
    max_results: Annotated[int | None, typer.Option("--max-results", "-r")] = None,
    include_archived: Annotated[bool, typer.Option("--include-archived")] = False,
    columns: Annotated[
        str | None,
        typer.Option("--columns", help="Extra columns to compare runs, e.g. metrics.acc,params.lr."),
    ] = None,
    order_by: Annotated[
        str | None, typer.Option("--order-by", help="e.g. 'metrics.acc DESC' (jobs without it come last).")
    ] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", "--parent-job-name", help="The steps of this pipeline job.")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """List jobs, newest first, or ordered by a metric, param or attribute; or a pipeline's steps."""
    jobs = context.client().jobs.list(status=status, experiment_name=experiment, include_archived=include_archived,
                                      max_results=max_results, order_by=order_by,
                                      parent_job_name=parent)  # fmt: skip
    if parent is not None and not columns:
        steps = [{**job.to_dict(), "reused_from": getattr(job, "reused_from", None),
                  "run_reason": getattr(job, "run_reason", None)} for job in jobs]  # fmt: skip
        emit(steps, output, columns=("name", "display_name", "status", "reused_from", "run_reason"))
        return
    if not columns:
        emit(jobs, output, columns=_COLUMNS)
        return
    extra = [c.strip() for c in columns.split(",") if c.strip()]
    rows = []
    for job in jobs:
        row: dict[str, Any] = {"name": job.name, "display_name": job.display_name, "status": job.status}
        for column in extra:
            entity, _, key = column.partition(".")
            source = {"metrics": getattr(job, "metrics", None), "params": getattr(job, "params", None),
                      "tags": job.tags}.get(entity)  # fmt: skip
            row[column] = (source or {}).get(key) if source is not None else getattr(job, column, None)
        rows.append(row)
    emit(rows, output, columns=("name", "display_name", "status", *extra))


@job_app.command("metrics")
def metrics(
    name: NameOpt,
    key: Annotated[str | None, typer.Option("--key", "-k", help="Only this metric.")] = None,
    output: OutputOpt = None,
) -> None:
    """Print the history of a job's metrics: every value with its step and time."""
    history = context.client().jobs.get_metrics(name, key)
    rows = [{"key": k, **point} for k, points in history.items() for point in points]
    emit(rows, output, columns=("key", "step", "value", "timestamp"))


@job_app.command("stream")
def stream(name: NameOpt) -> None:
    """Follow a job's logs until it finishes; exit 0 only if it completed."""
    _report(context.client().jobs.stream(name))


@job_app.command("rerun")
def rerun(
    name: NameOpt,
    stream: Annotated[
        bool, typer.Option("--stream", "-s", help="Follow the logs; exit 0 only if it completed.")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Run a job again with exactly its recorded code snapshot, environment and inputs (not the
    files on disk now); a pipeline reruns every step. The new job links back to NAME."""
    client = context.client()
    submitted = client.jobs.rerun(name)
    if not stream:
        emit(submitted, output)
        return
    sys.stderr.write(f"Job {submitted.name} (rerun of {name}) submitted; streaming its logs.\n")
    _report(client.jobs.stream(submitted.name or ""))


@job_app.command("cancel")
def cancel(name: NameOpt, output: OutputOpt = None) -> None:
    """Cancel a job: its whole process tree is stopped; a queued job never starts."""
    emit(context.client().jobs.cancel(name), output)


@job_app.command("archive")
def archive(name: NameOpt) -> None:
    """Hide a job from `job list` (it stays readable by name)."""
    context.client().jobs.archive(name)


@job_app.command("download")
def download(
    name: NameOpt,
    output_name: Annotated[str | None, typer.Option("--output-name", help="One named output.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every output, plus logs and ./outputs.")] = False,
    download_path: Annotated[Path, typer.Option("--download-path", "-p")] = Path("."),
) -> None:
    """Download outputs to DOWNLOAD_PATH/named-outputs/<output>/ (and artifacts/ with --all)."""
    for path in context.client().jobs.download(name, download_path, output_name, all_):
        typer.echo(str(path))
