"""``smalt job <verb>``: command jobs, like ``az ml job``."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smalt.cli import context
from smalt.cli.assets import OutputOpt, QueryOpt, SetOpt
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
    query: QueryOpt = None,
) -> None:
    """Submit a job. Everything is checked first: nothing is queued when anything is wrong."""
    from smalt import specs

    job = specs.load("job", file, overrides=set_, params={"name": name})
    submitted = context.client().jobs.create_or_update(job).to_dict()  # type: ignore[arg-type]
    if not stream:
        emit(submitted, output, query=query)
        return
    sys.stderr.write(f"Job {submitted['name']} submitted; streaming its logs.\n")
    _report(_stream(submitted["name"]))


def _stream(name: str) -> dict[str, Any]:
    return context.client().jobs.stream(name).to_dict()


def _report(job: dict[str, Any]) -> None:
    """Say how a followed job ended (and why it failed); exit 0 only if it completed."""
    status = job.get("status")
    sys.stderr.write(f"\nJob {job.get('name', '')} finished: {status}\n")
    if error := job.get("error"):
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
def show(name: NameOpt, output: OutputOpt = None, query: QueryOpt = None) -> None:
    """Show a job: status, inputs, outputs, times, and why it failed; a pipeline as a tree of steps."""
    from smalt.cli.output import choose

    job = _get(name)
    if job.get("type") != "pipeline" or query is not None or choose(output) != "table":
        emit(job, output, query=query)
        return
    _tree(job, _list(parent_job_name=name))


def _get(name: str) -> dict[str, Any]:
    return context.client().jobs.get(name).to_dict()


def _list(**filters: Any) -> list[dict[str, Any]]:
    return [job.to_dict() for job in context.client().jobs.list(**filters)]


def _tree(pipeline: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    from datetime import datetime

    from rich.console import Console
    from rich.tree import Tree

    def duration(job: dict[str, Any]) -> str:
        if not job.get("start_time") or not job.get("end_time"):
            return ""
        seconds = (datetime.fromisoformat(job["end_time"]) - datetime.fromisoformat(job["start_time"])).total_seconds()
        return f" {seconds:.1f}s"

    tree = Tree(f"[bold]{pipeline.get('display_name') or pipeline['name']}[/bold] {pipeline['name']} "
                f"{pipeline.get('status')}{duration(pipeline)}")  # fmt: skip
    nodes: dict[str, Any] = {}
    for step in steps:
        *outer, _ = (step.get("display_name") or "").split(".")
        parent = tree
        for depth in range(1, len(outer) + 1):
            key = ".".join(outer[:depth])
            if key not in nodes:
                nodes[key] = parent.add(f"[bold]{outer[depth - 1]}[/bold] (pipeline)")
            parent = nodes[key]
        reused = step.get("reused_from")
        reuse = f" reused {reused}" if reused else ""
        reason = f" - {step['run_reason']}" if step.get("run_reason") and not reused else ""
        parent.add(f"{step.get('display_name')} {step['name']} {step.get('status')}{duration(step)}{reuse}{reason}")
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
    query: QueryOpt = None,
) -> None:
    """List jobs, newest first, or ordered by a metric, param or attribute; or a pipeline's steps."""
    jobs = _list(status=status, experiment_name=experiment, include_archived=include_archived,
                 max_results=max_results, order_by=order_by, parent_job_name=parent)  # fmt: skip
    if parent is not None and not columns:
        steps = [{"reused_from": None, "run_reason": None, **job} for job in jobs]
        emit(steps, output, columns=("name", "display_name", "status", "reused_from", "run_reason"), query=query)
        return
    if not columns:
        emit(jobs, output, columns=_COLUMNS, query=query)
        return
    extra = [c.strip() for c in columns.split(",") if c.strip()]
    rows = []
    for job in jobs:
        row: dict[str, Any] = {"name": job["name"], "display_name": job.get("display_name"),
                               "status": job.get("status")}  # fmt: skip
        for column in extra:
            entity, _, key = column.partition(".")
            if entity in ("metrics", "params", "tags"):
                row[column] = (job.get(entity) or {}).get(key)
            else:
                row[column] = job.get(column)
        rows.append(row)
    emit(rows, output, columns=("name", "display_name", "status", *extra), query=query)


@job_app.command("metrics")
def metrics(
    name: NameOpt,
    key: Annotated[str | None, typer.Option("--key", "-k", help="Only this metric.")] = None,
    output: OutputOpt = None,
    query: QueryOpt = None,
) -> None:
    """Print the history of a job's metrics: every value with its step and time."""
    history = context.client().jobs.get_metrics(name, key)
    rows = [{"key": k, **point} for k, points in history.items() for point in points]
    emit(rows, output, columns=("key", "step", "value", "timestamp"), query=query)


@job_app.command("stream")
def stream(name: NameOpt) -> None:
    """Follow a job's logs until it finishes; exit 0 only if it completed."""
    _report(_stream(name))


@job_app.command("rerun")
def rerun(
    name: NameOpt,
    stream: Annotated[
        bool, typer.Option("--stream", "-s", help="Follow the logs; exit 0 only if it completed.")
    ] = False,
    output: OutputOpt = None,
    query: QueryOpt = None,
) -> None:
    """Run a job again with exactly its recorded code snapshot, environment and inputs (not the
    files on disk now); a pipeline reruns every step. The new job links back to NAME."""
    submitted = context.client().jobs.rerun(name).to_dict()
    if not stream:
        emit(submitted, output, query=query)
        return
    sys.stderr.write(f"Job {submitted['name']} (rerun of {name}) submitted; streaming its logs.\n")
    _report(_stream(submitted["name"]))


@job_app.command("cancel")
def cancel(name: NameOpt, output: OutputOpt = None, query: QueryOpt = None) -> None:
    """Cancel a job: its whole process tree is stopped; a queued job never starts."""
    emit(context.client().jobs.cancel(name), output, query=query)


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
