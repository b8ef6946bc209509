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
    file: Annotated[Path, typer.Option("--file", "-f", help="Job YAML file (Azure ML commandJob).")],
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


@job_app.command("show")
def show(name: NameOpt, output: OutputOpt = None) -> None:
    """Show a job: status, inputs, outputs, times, and why it failed."""
    emit(context.client().jobs.get(name), output)


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
    output: OutputOpt = None,
) -> None:
    """List jobs, newest first, or ordered by a metric, param or attribute."""
    jobs = context.client().jobs.list(status=status, experiment_name=experiment, include_archived=include_archived,
                                      max_results=max_results, order_by=order_by)  # fmt: skip
    if not columns:
        emit(jobs, output, columns=_COLUMNS)
        return
    extra = [c.strip() for c in columns.split(",") if c.strip()]
    rows = []
    for job in jobs:
        row: dict[str, Any] = {"name": job.name, "display_name": job.display_name, "status": job.status}
        for column in extra:
            entity, _, key = column.partition(".")
            source = {"metrics": job.metrics, "params": job.params, "tags": job.tags}.get(entity)
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
