"""The CLI's entry point: usage errors are Typer's own message, not an "internal error"; each
command line builds only the noun it names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smalt.cli.main import NOUNS, invoked_noun


def test_a_missing_option_is_a_usage_error(smalt: Callable[..., Any]) -> None:
    result = smalt("job", "show")
    assert result.exit_code == 2
    assert "Missing option '--name'" in result.stderr
    assert "Internal error" not in result.stderr


def test_an_unknown_command_is_a_usage_error(smalt: Callable[..., Any]) -> None:
    result = smalt("jobs", "list")
    assert result.exit_code == 2
    assert "No such command 'jobs'" in result.stderr


def test_the_invoked_noun_is_found_past_the_workspace_option() -> None:
    assert invoked_noun(["--workspace", "ws", "job", "show"]) == "job"
    assert invoked_noun(["-w", "job", "data", "list"]) == "data"  # "job" is the workspace's name here
    assert invoked_noun(["--help"]) is None
    assert invoked_noun(["server", "--port", "1"]) is None
    assert set(NOUNS) >= {"job", "data", "model", "online-endpoint"}
