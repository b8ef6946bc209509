"""Command expressions as Azure ML writes them: ``${{inputs.x}}``, ``${{outputs.y}}`` and optional
``$[[ ... ]]`` segments. Rendered commands are run by bash, so some checks run them through bash."""

from __future__ import annotations

import subprocess

import pytest

from smalt.specs.command import bindings, literal, render


def bash_words(command: str) -> list[str]:
    """The words bash passes to a program for ``command`` (one per line, as printf prints them)."""
    done = subprocess.run(["bash", "-c", f"printf '%s\\n' {command}"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return [f"<bash exited {done.returncode}: {done.stderr.strip()}>"]
    return done.stdout.splitlines()


# -- bindings ---------------------------------------------------------------------------------
def test_bindings_are_listed_in_order_with_their_group_and_whether_they_are_optional() -> None:
    command = (
        "python train.py --data ${{inputs.data}} $[[--lr ${{inputs.lr}} --epochs ${{ inputs.epochs }}]] "
        "--model ${{outputs.model}} $[[--seed ${{inputs.seed}}]] --c ${{search_space.c}}"
    )
    assert bindings(command) == [
        ("inputs", "data", False),
        ("inputs", "lr", True),
        ("inputs", "epochs", True),
        ("outputs", "model", False),
        ("inputs", "seed", True),
        ("search_space", "c", False),
    ]


def test_a_binding_used_twice_is_listed_twice_and_text_that_only_looks_alike_is_not_a_binding() -> None:
    command = "echo ${{inputs.x}} ${{inputs.x}} ${{parent.inputs.y}} ${inputs.z} {{inputs.w}} $[[ plain ]]"
    assert bindings(command) == [("inputs", "x", False), ("inputs", "x", False)]


def test_an_optional_segment_spanning_lines_marks_every_binding_in_it() -> None:
    command = "python run.py $[[\n  --a ${{inputs.a}}\n  --b ${{inputs.b}}\n]] --c ${{inputs.c}}"
    assert bindings(command) == [("inputs", "a", True), ("inputs", "b", True), ("inputs", "c", False)]


# -- literal ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "rendered"),
    [(True, "True"), (False, "False"), (3, "3"), (0, "0"), (-2, "-2"), (0.25, "0.25"), (1e-05, "1e-05"),
     ("text", "text"), ("", "")],
)  # fmt: skip
def test_literals_render_as_azure_ml_writes_them(value: object, rendered: str) -> None:
    assert literal(value) == rendered


def test_booleans_in_a_command_read_true_and_false_not_one_and_zero() -> None:
    command = "train --shuffle ${{inputs.shuffle}} --dry-run ${{inputs.dry}}"
    inputs: dict[str, str | None] = {"shuffle": literal(True), "dry": literal(False)}
    assert render(command, inputs, {}) == "train --shuffle True --dry-run False"


# -- render: optional segments ----------------------------------------------------------------
def test_a_segment_with_several_inputs_stays_only_when_every_one_has_a_value() -> None:
    command = "run $[[--lr ${{inputs.lr}} --momentum ${{inputs.momentum}}]] --data ${{inputs.data}}"
    both = {"lr": "0.1", "momentum": "0.9", "data": "/d"}
    assert render(command, both, {}) == "run --lr 0.1 --momentum 0.9 --data /d"
    assert render(command, {**both, "momentum": None}, {}) == "run  --data /d"
    assert render(command, {"data": "/d"}, {}) == "run  --data /d"  # not given at all


def test_segments_are_kept_or_dropped_independently() -> None:
    command = "run $[[--a ${{inputs.a}}]] $[[--b ${{inputs.b}} --c ${{inputs.c}}]] $[[--d ${{inputs.d}}]] end"
    rendered = render(command, {"a": "1", "b": "2", "c": None, "d": "4"}, {})
    assert rendered.split() == ["run", "--a", "1", "--d", "4", "end"]


def test_a_segment_mixing_an_output_and_inputs_needs_all_of_them() -> None:
    command = "run $[[--report ${{outputs.report}} --every ${{inputs.every}}]]"
    assert render(command, {"every": "5"}, {"report": "/out/report"}) == "run --report /out/report --every 5"
    assert render(command, {"every": "5"}, {}) == "run "
    assert render(command, {"every": None}, {"report": "/out/report"}) == "run "


def test_an_empty_string_is_a_value_and_keeps_its_segment() -> None:
    assert bash_words(render("run $[[--tag=${{inputs.tag}}]]", {"tag": ""}, {})) == ["run", "--tag="]


def test_a_segment_without_bindings_is_kept_as_text() -> None:
    assert render("run $[[--verbose]] --x ${{inputs.x}}", {"x": "1"}, {}) == "run --verbose --x 1"


# -- render: multi-line commands and outputs --------------------------------------------------
def test_a_multi_line_command_keeps_its_lines_and_indentation() -> None:
    command = (
        "set -e\n"
        "python prep.py --in ${{inputs.raw}} --out ${{outputs.clean}}\n"
        "  $[[--sample ${{inputs.sample}}]]\n"
        "python train.py --data ${{outputs.clean}} \\\n"
        "    --model ${{outputs.model}}\n"
    )
    rendered = render(command, {"raw": "/in/raw.csv", "sample": None}, {"clean": "/o/clean", "model": "/o/model"})
    assert rendered == (
        "set -e\n"
        "python prep.py --in /in/raw.csv --out /o/clean\n"
        "  \n"
        "python train.py --data /o/clean \\\n"
        "    --model /o/model\n"
    )


def test_a_dropped_segment_spanning_lines_takes_all_its_lines_with_it() -> None:
    command = "python run.py $[[\n  --a ${{inputs.a}}\n  --b ${{inputs.b}}\n]]\necho done"
    assert render(command, {"a": "1", "b": None}, {}) == "python run.py \necho done"
    assert render(command, {"a": "1", "b": "2"}, {}) == "python run.py \n  --a 1\n  --b 2\n\necho done"


def test_outputs_are_bound_by_name_and_may_repeat() -> None:
    command = "mkdir -p ${{outputs.model}} && cp a ${{outputs.model}}/ && echo ${{outputs.metrics}}"
    rendered = render(command, {}, {"model": "/jobs/x/outputs/model", "metrics": "/jobs/x/outputs/metrics"})
    assert rendered == ("mkdir -p /jobs/x/outputs/model && cp a /jobs/x/outputs/model/ && echo /jobs/x/outputs/metrics")


def test_a_required_binding_without_a_value_is_an_error_naming_it() -> None:
    with pytest.raises(KeyError, match="inputs.data"):
        render("cat ${{inputs.data}}", {}, {})
    with pytest.raises(KeyError, match="outputs.model"):
        render("cp a ${{outputs.model}}", {}, {})


def test_an_input_and_an_output_of_the_same_name_are_told_apart() -> None:
    assert render("${{inputs.x}} ${{outputs.x}}", {"x": "in"}, {"x": "out"}) == "in out"


# -- render: values as bash sees them ---------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    ["plain", "/data/my file.csv", "hello world", "it's", "a;b", "two  spaces", "$(echo injected)", "$HOME"],
)
def test_a_value_reaches_the_program_as_one_argument_exactly_as_given(value: str) -> None:
    assert bash_words(render("${{inputs.x}}", {"x": value}, {})) == [value]


def test_a_binding_the_author_quoted_is_not_quoted_twice() -> None:
    """Azure ML components often write "${{inputs.x}}"; the program must get the value, not quotes."""
    assert bash_words(render('"${{inputs.x}}"', {"x": "hello world"}, {})) == ["hello world"]
    assert bash_words(render("'${{inputs.x}}'", {"x": "hello world"}, {})) == ["hello world"]
