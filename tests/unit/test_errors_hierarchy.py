"""errors.py: the text a person reads for each error, and the hierarchy callers catch by."""

from __future__ import annotations

import pytest

from smalt.errors import (
    AlreadyExistsError,
    BackendError,
    ConfigurationError,
    InvalidSpecError,
    InvalidStateError,
    NotFoundError,
    SmaltError,
    SpecProblem,
    UserCodeError,
    VersionConflictError,
)


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (
            SpecProblem("unknown key", "inputs.lr.defualt", "component.yml", 7),
            "component.yml:7: inputs.lr.defualt: unknown key",
        ),
        (SpecProblem("file not found", file="data.yml"), "data.yml: file not found"),
        (SpecProblem("required key is missing", "path"), "path: required key is missing"),
        (SpecProblem("bad", "name", "--set"), "--set: name: bad"),
        (SpecProblem("invalid YAML", file="x.yml", line=1), "x.yml:1: invalid YAML"),
    ],
)
def test_spec_problem_text(problem: SpecProblem, text: str) -> None:
    assert str(problem) == text


def test_invalid_spec_error_lists_every_problem_under_a_summary() -> None:
    error = InvalidSpecError(
        [
            SpecProblem("unknown key", "descripton", "d.yml", 3),
            SpecProblem("required key is missing", "path", "d.yml", 1),
        ],
        summary="Invalid data spec in d.yml (2 problems)",
    )
    assert str(error) == (
        "Invalid data spec in d.yml (2 problems):\n  d.yml:3: descripton: unknown key\n"
        "  d.yml:1: path: required key is missing"
    )
    assert len(error.problems) == 2


def test_invalid_spec_error_default_summary_counts_problems() -> None:
    assert str(InvalidSpecError([SpecProblem("x", "a")])).startswith("1 problem in the spec:\n")
    assert str(InvalidSpecError([SpecProblem("x", "a"), SpecProblem("y", "b")])).startswith("2 problems in the spec:\n")
    assert str(InvalidSpecError([], summary="Nothing to say")) == "Nothing to say"


def test_invalid_spec_error_copies_the_problem_list() -> None:
    problems = [SpecProblem("x", "a")]
    error = InvalidSpecError(problems)
    problems.append(SpecProblem("y", "b"))
    assert len(error.problems) == 1


def test_hint_is_printed_after_the_message() -> None:
    error = NotFoundError("Data asset 'iris:3' not found. Versions: 1, 2.", hint="smalt data list --name iris")
    assert str(error) == "Data asset 'iris:3' not found. Versions: 1, 2. Hint: smalt data list --name iris"
    assert error.message == "Data asset 'iris:3' not found. Versions: 1, 2."
    assert error.hint == "smalt data list --name iris"


def test_without_a_hint_only_the_message_is_printed() -> None:
    error = InvalidStateError("Model 'm:1' is archived.")
    assert error.hint is None
    assert str(error) == "Model 'm:1' is archived."


def test_invalid_spec_error_prints_its_hint() -> None:
    error = InvalidSpecError(
        [SpecProblem("file not found", file="x.yml")], summary="Cannot read x.yml", hint="check -f"
    )
    text = str(error)
    assert text.startswith("Cannot read x.yml:\n  x.yml: file not found")
    assert text.endswith("Hint: check -f")


def test_a_class_level_hint_is_shared_and_an_instance_hint_does_not_leak() -> None:
    class NeedsPostgres(ConfigurationError):
        hint = "set SMALT_DATABASE_URL"

    assert NeedsPostgres("no database").hint == "set SMALT_DATABASE_URL"
    assert NeedsPostgres("x", hint="other").hint == "other"
    assert NeedsPostgres("y").hint == "set SMALT_DATABASE_URL"
    assert ConfigurationError("z").hint is None


@pytest.mark.parametrize(
    "cls",
    [
        NotFoundError,
        AlreadyExistsError,
        VersionConflictError,
        InvalidStateError,
        ConfigurationError,
        BackendError,
        UserCodeError,
    ],
)
def test_every_error_is_a_smalt_error(cls: type[SmaltError]) -> None:
    error = cls("what failed")
    assert isinstance(error, SmaltError) and isinstance(error, Exception)
    assert str(error) == "what failed"


def test_version_conflict_is_an_already_exists() -> None:
    assert issubclass(VersionConflictError, AlreadyExistsError)
    assert issubclass(InvalidSpecError, SmaltError)


def _every_error_class(base: type[SmaltError] = SmaltError) -> list[type[SmaltError]]:
    found = []
    for kind in base.__subclasses__():
        if kind.__module__ == "smalt.errors":  # not the subclasses other tests define
            found += [kind, *_every_error_class(kind)]
    return found


def test_every_error_class_has_a_code_and_status_and_travels_whole() -> None:
    from smalt.errors import WIRE, from_wire, to_wire

    assert {kind for kind, _, _ in WIRE} == set(_every_error_class()), "an error class without a code"
    assert len({code for _, code, _ in WIRE}) == len(WIRE)
    for kind, code, status in WIRE:
        error = kind([SpecProblem("bad", "a.b", "f.yml", 3)], summary="s", hint="h") if kind is InvalidSpecError \
            else kind("it failed", hint="do this")  # type: ignore[call-arg]
        sent_status, body = to_wire(error)
        assert (sent_status, body["error"]["code"]) == (status, code)  # type: ignore[index]
        rebuilt = from_wire(body)
        assert type(rebuilt) is kind and str(rebuilt) == str(error)
        if isinstance(error, InvalidSpecError):
            assert isinstance(rebuilt, InvalidSpecError) and rebuilt.problems == error.problems
    missing = NotFoundError("Environment 'e:1' not found.")
    missing.field = "environment"
    again = from_wire(to_wire(missing)[1])
    assert isinstance(again, NotFoundError) and again.field == "environment"
