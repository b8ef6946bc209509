"""The fast commands (``smalt.cli.fast``): read without Typer, with exactly the Typer commands'
options; any command line they do not understand in full is left to Typer."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from smalt.cli import fast
from smalt.cli.main import build


def test_a_full_command_line_is_read() -> None:
    assert fast.parse(["job", "create", "-f", "job.yml", "--stream", "--set", "a=1", "--set=b=2", "-n", "x"]) == (
        ("job", "create"),
        {"file": "job.yml", "stream": True, "set": ["a=1", "b=2"], "name": "x"},
    )
    assert fast.parse(["job", "create", "--file=job.yml", "-s", "-o", "json"]) == (
        ("job", "create"),
        {"file": "job.yml", "stream": True, "output": "json"},
    )
    assert fast.parse(["job", "stream", "--name", "jolly_maple"]) == (("job", "stream"), {"name": "jolly_maple"})


@pytest.mark.parametrize("argv", [
    [],
    ["job"],
    ["job", "list"],                                   # not a fast command
    ["--workspace", "ws", "job", "create", "-f", "x"],  # an option before the noun
    ["job", "create", "--stream"],                     # a required option is missing: Typer says so
    ["job", "create", "-f"],                           # an option without its value
    ["job", "create", "-f", "--stream"],               # a value that looks like an option
    ["job", "create", "-f", "x", "--help"],
    ["job", "create", "-fx.yml"],                      # spellings Typer accepts and this does not read
    ["job", "create", "-f", "x", "-sn", "y"],
    ["job", "create", "-f", "x", "--stream=yes"],
    ["job", "create", "-f", "x", "--fil", "y"],
    ["job", "stream", "my_job"],                       # a stray argument: Typer's usage error
])  # fmt: skip
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    assert fast.parse(argv) is None


def test_without_a_server_nothing_is_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMALT_URL", raising=False)
    assert fast.run(["job", "stream", "-n", "x"]) is None


def _typer_options(verb: str) -> list[Any]:
    group: Any = typer.main.get_command(build(["job"]))
    return [p for p in group.commands["job"].commands[verb].params if p.name != "help"]


@pytest.mark.parametrize("command", list(fast.OPTIONS))
def test_the_option_table_is_the_typer_commands_own(command: tuple[str, str]) -> None:
    table = fast.OPTIONS[command]
    params = _typer_options(command[1])
    assert set(table) == {spelling for p in params for spelling in (*p.opts, *p.secondary_opts)}
    for param in params:
        fields = {table[spelling] for spelling in param.opts}
        assert len(fields) == 1, f"{param.opts} read into {fields}"
        field = fields.pop()
        assert (field in fast.FLAGS) == bool(param.is_flag), field
        assert (field in fast.REPEATED) == bool(param.multiple), field
        assert (field in fast.REQUIRED[command]) == bool(param.required), field


def test_the_exit_code_says_whether_the_job_completed(capsys: pytest.CaptureFixture[str]) -> None:
    assert fast.report({"name": "j", "status": "Completed"}) == 0
    assert fast.report({"name": "j", "status": "Failed", "error": {"cause": "user", "message": "exit 3"}}) == 1
    assert "Job j finished: Failed\nuser error: exit 3" in capsys.readouterr().err
