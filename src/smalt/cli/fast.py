"""The everyday loop through a server without Typer: ``smalt job create -f FILE --stream`` and
``smalt job stream -n NAME`` with ``SMALT_URL`` set.

Building the Typer app costs more than running a hello-world job through a warm server (Typer and
its click take about 45 ms to import, the job about 40 ms), so these two commands are read here,
with the standard library, when the command line is one this module understands in full. The
option table below is the Typer commands' own (a test keeps the two the same). Anything else
(``--help``, a usage error, an option written another way, any other command) is left to the full
CLI, which answers as it always does; so is everything when ``SMALT_URL`` is not set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

#: Each fast command's options, by every spelling the Typer command accepts: option -> field.
OPTIONS: dict[tuple[str, str], dict[str, str]] = {
    ("job", "create"): {"--file": "file", "-f": "file", "--name": "name", "-n": "name", "--set": "set",
                        "--stream": "stream", "-s": "stream", "--output": "output", "-o": "output",
                        "--query": "query"},
    ("job", "stream"): {"--name": "name", "-n": "name"},
}  # fmt: skip
#: Options every command accepts besides its own (``smalt.cli.main.command`` adds them to each).
#: Through a server the workspace is the server's, so a ``--workspace`` is read and left unused, as
#: the Typer commands leave it when ``SMALT_URL`` is set. One before the noun goes to Typer.
COMMON = {"--workspace": "workspace", "-w": "workspace"}
#: Fields that are flags (no value), and fields that may be given more than once.
FLAGS = {"stream"}
REPEATED = {"set"}
#: Fields a command cannot run without: a command line missing one goes to Typer for its message.
REQUIRED = {("job", "create"): {"file"}, ("job", "stream"): {"name"}}


def parse(argv: list[str]) -> tuple[tuple[str, str], dict[str, Any]] | None:
    """The command and its option values, or None when ``argv`` is not a fast command in full."""
    if len(argv) < 2 or (argv[0], argv[1]) not in OPTIONS:
        return None
    command = (argv[0], argv[1])
    options, values = OPTIONS[command], dict[str, Any]()
    args = iter(argv[2:])
    for arg in args:
        option, equals, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        field = options.get(option) or COMMON.get(option)
        if field is None:
            return None
        if field in FLAGS:
            if equals:
                return None
            values[field] = True
            continue
        value = inline if equals else next(args, None)
        if value is None or (not equals and value.startswith("-")):
            return None
        if field in REPEATED:
            values.setdefault(field, []).append(value)
        else:
            values[field] = value
    return (command, values) if REQUIRED[command] <= values.keys() else None


def run(argv: list[str]) -> int | None:
    """Run ``argv`` through the server at ``SMALT_URL``: the exit code, or None when this is not a
    fast command (the caller then runs the full CLI)."""
    if not os.environ.get("SMALT_URL"):
        return None
    parsed = parse(argv)
    if parsed is None:
        return None
    from smalt.client.rest import from_environment

    command, values = parsed
    if values.get("query") is not None:
        from smalt.cli.output import compile_query

        compile_query(values["query"])  # before anything is submitted, as the Typer command checks it
    client = from_environment()
    assert client is not None  # SMALT_URL is set
    try:
        if command == ("job", "stream"):
            return report(client.stream_job(values["name"], out=sys.stdout))
        submitted = client.create_job(Path(values["file"]), name=values.get("name"), overrides=values.get("set"))
        if not values.get("stream"):
            from smalt.cli.output import emit

            emit(submitted, values.get("output"), query=values.get("query"))
            return 0
        sys.stderr.write(f"Job {submitted['name']} submitted; streaming its logs.\n")
        return report(client.stream_job(submitted["name"], out=sys.stdout))
    finally:
        client.close()


def report(job: dict[str, Any]) -> int:
    """Say how a followed job ended (and why it failed); the exit code: 0 only if it completed."""
    status = job.get("status")
    sys.stderr.write(f"\nJob {job.get('name', '')} finished: {status}\n")
    error = job.get("error")
    if error:
        sys.stderr.write(f"{error.get('cause', '')} error: {error.get('message', '')}\n")
    return 0 if status == "Completed" else 1
