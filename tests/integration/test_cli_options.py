"""The options a newcomer from ``az ml`` types without thinking: ``--workspace/-w`` anywhere on the
line, ``--query`` (JMESPath), ``-o tsv`` and ``--version``, driven through the CLI as a user would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import RunningServer, cli_probe

from smalt.cli.main import command
from smalt.cli.output import emit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Smalt = Callable[..., Any]
SMALT_SCRIPT = str(Path(sys.executable).with_name("smalt"))


def ok(smalt: Smalt, *args: str, workspace: bool = True) -> str:
    """Run a command that must succeed; what it printed."""
    result = smalt(*args, workspace=workspace)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return str(result.stdout)


def register_two(smalt: Smalt, isolated: Path) -> None:
    """Data assets iris:1 (from the example file) and notes:1, in the test's workspace."""
    (isolated / "notes.txt").write_text("some notes\n")
    ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))
    ok(smalt, "data", "create", "--name", "notes", "--path", "notes.txt", "--type", "uri_file")


# -- --workspace / -w anywhere --------------------------------------------------------------


@pytest.mark.embedded_only  # which local workspace folder a command opens
@pytest.mark.parametrize(
    "placed",
    [
        ["-w", "{ws}", "data", "list"],
        ["--workspace", "{ws}", "data", "list"],
        ["data", "-w", "{ws}", "list"],
        ["data", "list", "-w", "{ws}"],
        ["data", "list", "--workspace", "{ws}"],
        ["data", "list", "--workspace={ws}"],
    ],
)
def test_the_workspace_option_is_read_anywhere_on_the_line(
    smalt: Smalt, isolated: Path, workspace_path: Path, placed: list[str]
) -> None:
    register_two(smalt, isolated)
    args = [arg.format(ws=workspace_path) for arg in placed]

    assert ok(smalt, *args, "--query", "[].name", "-o", "tsv", workspace=False) == "iris\nnotes\n"
    # without it the default workspace (under the test's HOME) is used: it has no data
    assert ok(smalt, "data", "list", "-o", "tsv", workspace=False) == ""


@pytest.mark.embedded_only  # a local datastore / a local workspace folder
def test_a_workspace_given_after_the_command_wins_over_one_before_it_and_the_environment(
    smalt: Smalt, isolated: Path, workspace_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_two(smalt, isolated)
    empty = tmp_path / "empty-ws"
    monkeypatch.setenv("SMALT_WORKSPACE", str(empty))

    assert ok(smalt, "data", "list", "--query", "[].name", "-o", "tsv", workspace=False) == ""
    assert ok(smalt, "workspace", "show", "--query", "path", "-o", "tsv", workspace=False) == f"{empty}\n"
    listed = ok(smalt, "-w", str(empty), "data", "list", "-w", str(workspace_path), "--query", "[].name", "-o", "tsv",
                workspace=False)  # fmt: skip
    assert listed == "iris\nnotes\n"


def test_job_create_takes_the_workspace_after_its_options(smalt: Smalt, tmp_path: Path, workspace_path: Path) -> None:
    spec = tmp_path / "job.yml"
    spec.write_text("command: echo hi\n")

    name = ok(smalt, "job", "create", "-f", str(spec), "--name", "placed", f"--workspace={workspace_path}",
              "--query", "name", "-o", "tsv", workspace=False)  # fmt: skip

    assert name == "placed\n"
    assert ok(smalt, "job", "list", "--query", "[].name", "-o", "tsv") == "placed\n"


def test_a_dash_w_that_is_another_options_value_stays_that_options(smalt: Smalt, isolated: Path) -> None:
    (isolated / "notes.txt").write_text("some notes\n")

    created = ok(smalt, "data", "create", "--name", "notes", "--path", "notes.txt", "--type", "uri_file",
                 "--description", "-w", "--query", "description", "-o", "tsv")  # fmt: skip

    assert created == "-w\n"
    after_dashes = smalt("data", "list", "--", "-w", "elsewhere")
    assert after_dashes.exit_code == 2
    assert "unexpected extra argument(s) (-w elsewhere)" in after_dashes.stderr


def test_every_group_and_command_takes_the_workspace_option_once() -> None:
    def walk(cmd: Any, path: str) -> list[tuple[str, int]]:
        found = [(path, sum("-w" in param.opts for param in cmd.params))]
        for name, sub in getattr(cmd, "commands", {}).items():
            found += walk(sub, f"{path} {name}")
        return found

    counts = walk(command(), "smalt")

    assert len(counts) > 60  # every noun was built
    assert [(path, n) for path, n in counts if n != 1] == []


def test_through_a_server_a_job_takes_query_and_workspace_after_the_verb(
    remote: RunningServer, tmp_path: Path
) -> None:
    spec = tmp_path / "job.yml"
    spec.write_text("command: echo hi\n")
    server = {"SMALT_URL": remote.url}
    # Through a server, --workspace names one of the server's workspaces (this one is "ws").
    line = ("job", "create", "-f", str(spec), "--name", "via_server", "-w", "ws", "-o", "tsv")

    out, err, report = cli_probe(*line, "--query", "name", watched=(), env=server)
    assert (out, report["code"]) == ("via_server\n", 0), err

    out, err, report = cli_probe(*line, "--query", "[[", watched=(), env=server)
    assert (out, report["code"]) == ("", 1)
    assert err.startswith("Error: Invalid option:\n  --query: '[[' is not a JMESPath expression: it ends too early\n")
    listed, _, _ = cli_probe("job", "list", "--query", "[].name", "-o", "tsv", watched=(), env=server)
    assert listed == "via_server\n"  # the second line submitted nothing
    _, err, report = cli_probe("job", "list", "-w", str(tmp_path / "elsewhere"), watched=(), env=server)
    assert report["code"] == 1 and "not found" in err
    assert not (tmp_path / "elsewhere").exists()  # through a server, no local workspace is opened


@pytest.mark.embedded_only  # a local workspace folder
def test_the_installed_command_takes_the_workspace_after_the_command(
    smalt: Smalt, isolated: Path, workspace_path: Path
) -> None:
    register_two(smalt, isolated)

    done = subprocess.run(
        [SMALT_SCRIPT, "data", "list", "--query", "[].name", "-o", "tsv", "-w", str(workspace_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert (done.returncode, done.stdout, done.stderr) == (0, "iris\nnotes\n", "")


# -- --query --------------------------------------------------------------------------------


def test_query_picks_from_the_json_before_it_is_printed(smalt: Smalt, isolated: Path) -> None:
    register_two(smalt, isolated)

    assert ok(smalt, "data", "list", "--query", "[].name", "-o", "json") == '[\n  "iris",\n  "notes"\n]\n'
    assert ok(smalt, "data", "list", "--query", "[?name=='notes'].[name, version, type]", "-o", "tsv") == (
        "notes\t1\turi_file\n"
    )
    assert ok(smalt, "data", "show", "-n", "iris", "-v", "1", "--query", "{v: version, n: name}", "-o", "json") == (
        '{\n  "v": "1",\n  "n": "iris"\n}\n'
    )
    # dates are read as the JSON shows them, as strings
    created = ok(smalt, "data", "show", "-n", "iris", "-v", "1", "--query", "creation_context.created_at", "-o", "tsv")
    assert created.startswith("20") and created.endswith("\n")


def test_query_on_a_table_shows_the_columns_it_names(
    smalt: Smalt, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    register_two(smalt, isolated)

    table = ok(smalt, "data", "list", "--query", "[].{Version: version, Asset: name}", "-o", "table")

    header, *rows = [line for line in table.splitlines() if "Asset" in line or "iris" in line or "notes" in line]
    assert header.index("Version") < header.index("Asset")
    assert [row.split()[1:4:2] for row in rows] == [["1", "iris"], ["1", "notes"]]
    assert "created_at" not in table and "uri_file" not in table


def test_a_bad_query_is_one_clear_error_and_nothing_is_created(smalt: Smalt) -> None:
    result = smalt("data", "create", "-f", str(EXAMPLES / "data.yml"), "--query", "[[")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: Invalid option:\n"
        "  --query: '[[' is not a JMESPath expression: it ends too early\n"
        'Hint: --query takes a JMESPath expression, as az does: --query "[].name" (https://jmespath.org/tutorial.html)\n'
    )
    assert ok(smalt, "data", "list", "-o", "json") == "[]\n"


def test_a_query_that_fails_on_the_result_names_query(smalt: Smalt) -> None:
    ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))

    result = smalt("data", "show", "-n", "iris", "-v", "1", "--query", "sum(name)")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        "Error: Invalid option:",
        "  --query: 'sum(name)' failed on the result: In function sum(), invalid type for value: iris, "
        "expected one of: ['array-number'], received: \"string\"",
    ]
    assert "Traceback" not in result.stderr


# -- -o tsv ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ("iris", "iris\n"),
        (3, "3\n"),
        (None, "\n"),
        (["a", "b", 2], "a\nb\n2\n"),
        ({"name": "iris", "version": "1", "stage": None, "archived": False}, "iris\t1\t\tfalse\n"),
        ([{"name": "a", "version": "1"}, {"name": "b", "version": "2"}], "a\t1\nb\t2\n"),
        ([["a", 1], ["b", 2]], "a\t1\nb\t2\n"),
        # nested values are not spelled out, as in az: an object is an empty field, a list its length
        ({"name": "iris", "tags": {"k": "v"}, "files": ["x", "y", "z"], "path": "/p"}, "iris\t\t3\t/p\n"),
        ([], ""),
    ],
)
def test_tsv_prints_as_az_does(value: Any, printed: str, capsys: pytest.CaptureFixture[str]) -> None:
    emit(value, "tsv")
    assert capsys.readouterr().out == printed


def test_tsv_of_a_listing_keeps_the_json_field_order(smalt: Smalt, isolated: Path) -> None:
    register_two(smalt, isolated)

    first_fields = ok(smalt, "data", "list", "-o", "tsv").splitlines()[0].split("\t")[:2]

    assert first_fields == ["iris", "1"]


def test_an_unknown_output_format_names_tsv_among_the_choices(smalt: Smalt) -> None:
    result = smalt("data", "list", "-o", "csv")

    assert result.exit_code == 1
    assert "unknown output format 'csv'; one of json, yaml, table, tsv" in result.stderr


# -- --version ------------------------------------------------------------------------------


def test_version_prints_the_installed_version_without_building_the_commands() -> None:
    out, err, report = cli_probe("--version", watched=("typer", "smalt.cli.main", "smalt.errors"))

    assert (out, err, report) == (f"smalt {version('smalt')}\n", "", {"code": 0, "loaded": []})


def test_the_installed_command_prints_its_version(tmp_path: Path) -> None:
    done = subprocess.run([SMALT_SCRIPT, "--version"], capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stdout, done.stderr) == (0, f"smalt {version('smalt')}\n", "")


def test_version_after_the_workspace_option_and_in_help(smalt: Smalt) -> None:
    assert ok(smalt, "--version") == f"smalt {version('smalt')}\n"  # the fixture puts --workspace first
    helped = ok(smalt, "--help", workspace=False)
    assert "--version" in helped and "--workspace" in helped and "SMALT_WORKSPACE" in helped
