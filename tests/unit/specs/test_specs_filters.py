"""MLflow search filters and order_by clauses: the grammar, each search's rules, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from smalt.errors import InvalidSpecError
from smalt.specs.filters import Comparison, OrderKey, parse_filter, parse_order_by


def C(entity: str, key: str, op: str, value: Any) -> Comparison:  # noqa: N802 - reads like the dataclass
    return Comparison(entity, key, op, value)


# -- the grammar -------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [None, "", "   \n\t"])
def test_no_filter_is_no_comparison(text: str | None) -> None:
    assert parse_filter(text, scope="runs") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc > 0.9", [C("metric", "acc", ">", 0.9)]),
        ("metrics.acc>=1", [C("metric", "acc", ">=", 1.0)]),
        ("metric.loss <= -1e-3", [C("metric", "loss", "<=", -0.001)]),
        ("metrics.loss < .5", [C("metric", "loss", "<", 0.5)]),
        ("metrics.loss != 2.", [C("metric", "loss", "!=", 2.0)]),
        ("metrics.step_10 = 3E2", [C("metric", "step_10", "=", 300.0)]),
        ("params.lr = '0.01'", [C("param", "lr", "=", "0.01")]),
        ('param.lr = "0.01"', [C("param", "lr", "=", "0.01")]),
        ("parameters.opt LIKE 'ad%'", [C("param", "opt", "LIKE", "ad%")]),
        ("parameter.opt ilike 'AD%'", [C("param", "opt", "ILIKE", "AD%")]),
        ("tags.team != 'x'", [C("tag", "team", "!=", "x")]),
        ("tag.team IS NULL", [C("tag", "team", "IS NULL", None)]),
        ("tags.team is not null", [C("tag", "team", "IS NOT NULL", None)]),
        ("params.x IS NULL", [C("param", "x", "IS NULL", None)]),
        # keys with dots, and quoted keys
        ("tags.mlflow.runName = 'a'", [C("tag", "mlflow.runName", "=", "a")]),
        ("tags.`mlflow.source.type` = 'LOCAL'", [C("tag", "mlflow.source.type", "=", "LOCAL")]),
        ('metrics."my acc" > 1', [C("metric", "my acc", ">", 1.0)]),
        ("metrics.`val-acc` > 1", [C("metric", "val-acc", ">", 1.0)]),
        ("`metrics`.acc > 1", [C("metric", "acc", ">", 1.0)]),
        ("metrics.10_fold = 1", [C("metric", "10_fold", "=", 1.0)]),
        # attributes, with and without a prefix, and MLflow's aliases
        ("status = 'RUNNING'", [C("attribute", "status", "=", "RUNNING")]),
        ("attributes.run_id = 'abc'", [C("attribute", "run_id", "=", "abc")]),
        ("attribute.user_id != 'me'", [C("attribute", "user_id", "!=", "me")]),
        ("attr.run_name LIKE 'x%'", [C("attribute", "run_name", "LIKE", "x%")]),
        ("run.artifact_uri = 'u'", [C("attribute", "artifact_uri", "=", "u")]),
        ("`Run name` = 'x'", [C("attribute", "run_name", "=", "x")]),
        ("\"run name\" = 'x'", [C("attribute", "run_name", "=", "x")]),
        ("created > 5", [C("attribute", "start_time", ">", 5)]),
        ("Created > 5", [C("attribute", "start_time", ">", 5)]),
        ("start_time >= 1.5", [C("attribute", "start_time", ">=", 1.5)]),
        ("end_time < 1700000000000", [C("attribute", "end_time", "<", 1700000000000)]),
        ("run_id IN ('a', 'b')", [C("attribute", "run_id", "IN", ("a", "b"))]),
        ("run_id not in ('a',)", [C("attribute", "run_id", "NOT IN", ("a",))]),
        ('run_id IN ("a")', [C("attribute", "run_id", "IN", ("a",))]),
        # datasets
        ("datasets.name = 'iris'", [C("dataset", "name", "=", "iris")]),
        ("dataset.digest IN ('d1', 'd2')", [C("dataset", "digest", "IN", ("d1", "d2"))]),
        ("datasets.context NOT IN ('train')", [C("dataset", "context", "NOT IN", ("train",))]),
        # quotes inside strings
        ("tags.note = 'it''s'", [C("tag", "note", "=", "it's")]),
        ("tags.note = 'it\\'s'", [C("tag", "note", "=", "it's")]),
        ('tags.note = "say ""hi"""', [C("tag", "note", "=", 'say "hi"')]),
        ("tags.note = 'a \"b\"'", [C("tag", "note", "=", 'a "b"')]),
        ("params.p LIKE '50\\%'", [C("param", "p", "LIKE", "50\\%")]),
    ],
)
def test_runs_filter(text: str, expected: list[Comparison]) -> None:
    assert parse_filter(text, scope="runs") == expected


def test_comparisons_join_with_and_in_any_case() -> None:
    text = "metrics.a > 1 AND params.b = 'x' and tags.c LIKE 'y%' aNd status = 'FINISHED'"
    assert parse_filter(text, scope="runs") == [
        C("metric", "a", ">", 1.0),
        C("param", "b", "=", "x"),
        C("tag", "c", "LIKE", "y%"),
        C("attribute", "status", "=", "FINISHED"),
    ]


def test_what_mlflow_also_takes_a_trailing_and_and_comparisons_side_by_side() -> None:
    assert parse_filter("tags.a = 'x' AND ", scope="runs") == [C("tag", "a", "=", "x")]
    assert parse_filter("metrics.a > 1 metrics.b < 2", scope="runs") == [
        C("metric", "a", ">", 1.0),
        C("metric", "b", "<", 2.0),
    ]


def test_numbers_keep_their_type_for_attributes_and_are_floats_for_metrics() -> None:
    (metric,) = parse_filter("metrics.a = 3", scope="runs")
    (attribute,) = parse_filter("start_time = 3", scope="runs")
    assert isinstance(metric.value, float)
    assert isinstance(attribute.value, int)


# -- the other searches --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scope", "text", "expected"),
    [
        ("experiments", "name = 'x'", [C("attribute", "name", "=", "x")]),
        ("experiments", "attribute.name ILIKE '%X%'", [C("attribute", "name", "ILIKE", "%X%")]),
        ("experiments", "experiment_id IN ('1', '22')", [C("attribute", "experiment_id", "IN", (1, 22))]),
        ("experiments", "experiment_id != '3'", [C("attribute", "experiment_id", "!=", 3)]),
        ("experiments", "creation_time > 17", [C("attribute", "creation_time", ">", 17)]),
        ("experiments", "last_update_time <= 17", [C("attribute", "last_update_time", "<=", 17)]),
        ("experiments", "tags.owner IS NULL", [C("tag", "owner", "IS NULL", None)]),
        ("experiments", "tag.owner = 'me'", [C("tag", "owner", "=", "me")]),
        ("registered_models", "name IN ('a', 'b')", [C("attribute", "name", "IN", ("a", "b"))]),
        ("registered_models", "attribute.name LIKE 'a%'", [C("attribute", "name", "LIKE", "a%")]),
        ("registered_models", "tags.team = 'x'", [C("tag", "team", "=", "x")]),
        ("model_versions", "version_number = 3", [C("attribute", "version_number", "=", 3)]),
        ("model_versions", "version_number > '3'", [C("attribute", "version_number", ">", 3)]),
        ("model_versions", "run_id IN ('r1')", [C("attribute", "run_id", "IN", ("r1",))]),
        ("model_versions", "source_path LIKE 's3://%'", [C("attribute", "source_path", "LIKE", "s3://%")]),
        ("model_versions", "tag.stage ILIKE 'PROD'", [C("tag", "stage", "ILIKE", "PROD")]),
        ("logged_models", "metrics.acc >= 0.5", [C("metric", "acc", ">=", 0.5)]),
        ("logged_models", "params.alpha IN ('1', '2')", [C("param", "alpha", "IN", ("1", "2"))]),
        ("logged_models", "tags.t NOT IN ('x')", [C("tag", "t", "NOT IN", ("x",))]),
        ("logged_models", "attributes.status = 'READY'", [C("attribute", "status", "=", "READY")]),
        ("logged_models", "creation_time > 3", [C("attribute", "creation_timestamp", ">", 3)]),
        ("logged_models", "last_updated_time > 3.5", [C("attribute", "last_updated_timestamp", ">", 3.5)]),
        ("logged_models", "source_run_id = 'r'", [C("attribute", "source_run_id", "=", "r")]),
    ],
)
def test_other_scopes(scope: str, text: str, expected: list[Comparison]) -> None:
    assert parse_filter(text, scope=scope) == expected


@pytest.mark.parametrize(
    ("scope", "text", "fragment"),
    [
        # each search takes its own entities (MLflow's rules, spelling included)
        ("experiments", "attributes.name = 'x'", "unknown entity 'attributes' for experiments"),
        ("experiments", "metrics.a > 1", "unknown entity 'metrics' for experiments"),
        ("experiments", "params.a = 'x'", "unknown entity 'params' for experiments"),
        ("registered_models", "attributes.name = 'x'", "unknown entity 'attributes' for registered models"),
        ("model_versions", "metrics.a > 1", "unknown entity 'metrics' for model versions"),
        ("logged_models", "metric.a > 1", "unknown entity 'metric' for logged models"),
        ("logged_models", "datasets.name = 'x'", "unknown entity 'datasets' for logged models"),
        ("runs", "Metrics.a > 1", "unknown entity 'Metrics' for runs"),
        ("runs", '"metrics".a > 1', "unknown entity '\"metrics\"' for runs"),
        # and its own attributes
        ("runs", "lifecycle_stage = 'active'", "unknown attribute 'lifecycle_stage' for runs"),
        ("runs", "experiment_id = '1'", "unknown attribute 'experiment_id' for runs"),
        ("registered_models", "version_number = 1", "unknown attribute 'version_number' for registered models"),
        ("model_versions", "creation_timestamp > 1", "unknown attribute 'creation_timestamp' for model versions"),
        ("logged_models", "foo = 'x'", "unknown attribute 'foo' for logged models"),
        # and its own operators
        ("runs", "params.a IN ('x')", "operator 'IN' does not apply to params.a"),
        ("runs", "run_name IN ('a')", "operator 'IN' does not apply to run_name"),
        ("runs", "status IN ('RUNNING')", "operator 'IN' does not apply to status"),
        ("runs", "metrics.a IS NULL", "operator 'IS NULL' does not apply to metrics.a"),
        ("runs", "start_time IS NOT NULL", "operator 'IS NOT NULL' does not apply to start_time"),
        ("runs", "metrics.a LIKE '1'", "operator 'LIKE' does not apply to metrics.a"),
        ("runs", "tags.a > 'b'", "operator '>' does not apply to tags.a"),
        ("runs", "datasets.name IS NULL", "operator 'IS NULL' does not apply to datasets.name"),
        ("experiments", "name IN ('a')", "operator 'IN' does not apply to name"),
        ("experiments", "name > 'a'", "operator '>' does not apply to name"),
        ("experiments", "experiment_id LIKE '1%'", "operator 'LIKE' does not apply to experiment_id"),
        ("registered_models", "tags.x IS NULL", "operator 'IS NULL' does not apply to tags.x"),
        ("registered_models", "tags.x IN ('a')", "operator 'IN' does not apply to tags.x"),
        ("model_versions", "source_path IN ('a')", "operator 'IN' does not apply to source_path"),
        ("model_versions", "version_number LIKE '1'", "operator 'LIKE' does not apply to version_number"),
        ("logged_models", "params.a IS NULL", "operator 'IS NULL' does not apply to params.a"),
        ("logged_models", "name < 'x'", "operator '<' does not apply to name"),
        # and its own value types
        ("experiments", "creation_time > 1.5", "creation_time takes a whole number"),
        ("experiments", "creation_time > '1'", "creation_time takes a whole number"),
        ("experiments", "experiment_id = 1", "experiment_id takes a quoted string"),
        ("experiments", "experiment_id = 'one'", "experiment_id takes whole numbers, not 'one'"),
        ("experiments", "experiment_id IN ('1', 'x')", "experiment_id takes whole numbers, not 'x'"),
        ("model_versions", "version_number > 2.5", "version_number takes a whole number"),
        ("model_versions", "version_number = 'v2'", "version_number takes whole numbers, not 'v2'"),
        ("model_versions", "run_id = 3", "run_id takes a quoted string"),
        ("logged_models", "metrics.a = 'x'", "metrics.a takes a number"),
    ],
)
def test_scope_rules_refuse(scope: str, text: str, fragment: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_filter(text, scope=scope)
    assert fragment in caught.value.summary


def test_unknown_scope_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown search scope 'jobs'"):
        parse_filter("a = 'b'", scope="jobs")
    with pytest.raises(ValueError, match="unknown search scope"):
        parse_order_by(["name"], scope="jobs")


# -- refusals: what is wrong, where, and what is allowed ---------------------------------------------
@pytest.mark.parametrize(
    ("text", "problem", "where", "allowed"),
    [
        # identifiers
        ("(metrics.a > 1)", "expected a key to compare", "at character 1, found '('", "metrics.acc, params.lr"),
        ("= 1", "expected a key to compare", "at character 1, found '='", "status"),
        ("tags. x = 'a'", "expected a key after the '.'", "at character 6, found ' '", "in backticks"),
        ("tags.", "expected a key after the '.'", "at its end", "tags.`my-key`"),
        ("tags.`abc = 'x'", "unterminated key", "at character 6, found \"`abc = 'x'\"", ""),
        ('tags."abc = 1', "unterminated string", "at character 6", ""),
        (
            "foo.bar = 'x'",
            "unknown entity 'foo' for runs",
            "at character 1, found 'foo.bar'",
            "metrics., params., tags., attributes., datasets.",
        ),
        ("tags.`` = 'x'", "empty key", "at character 1", ""),
        (
            "colour = 'x'",
            "unknown attribute 'colour' for runs",
            "at character 1, found 'colour'",
            "run_id, run_name, status, user_id, artifact_uri, start_time, end_time",
        ),
        ("datasets.size = 'x'", "unknown dataset key 'size'", "at character 1", "name, digest, context"),
        # operators
        ("metrics.a", "expected an operator", "at its end", "Operators: =, !=, <, <=, >, >=, LIKE"),
        ("tags.my-key = 'x'", "expected an operator", "at character 8, found '-'", "tags.`my-key`"),
        ("params.a <> 'x'", "unknown operator '<>'", "at character 10, found '<>'", "Operators:"),
        ("params.a == 'x'", "unknown operator '=='", "at character 10", "Operators:"),
        ("params.a ! 'x'", "unknown operator '!'", "at character 10", "Operators:"),
        ("params.a NOT 'x'", "expected IN after NOT", "at character 14, found \"'x'\"", "NOT IN"),
        ("params.a IS 'x'", "expected NULL or NOT NULL after IS", "at character 13", "IS NOT NULL"),
        ("params.a IS NOT 'x'", "expected NULL or NOT NULL after IS", "at character 17", "IS NULL"),
        ("params.a BETWEEN 'x'", "expected an operator", "at character 10, found 'BETWEEN'", "ILIKE"),
        ("params.a LIKE 1", "params.a takes a quoted string", "at character 15, found '1'", "params.a LIKE '1'"),
        (
            "metrics.a > 1 OR metrics.b > 1",
            "OR is not supported",
            "at character 15, found 'OR'",
            "comparisons joined by AND",
        ),
        # values
        ("metrics.a >", "expected a value", "at its end", ""),
        ("metrics.a >> 1", "expected a value", "at character 12, found '> 1'".replace("> 1", ">"), "Quote strings"),
        ("params.x = adam", "expected a value", "at character 12, found 'adam'", "params.optimizer = 'adam'"),
        ("params.x = `adam`", "backticks quote keys, not values", "at character 12", "Quote values with '"),
        ("tags.x = 'abc", "unterminated string", 'at character 10, found "\'abc"', ""),
        ("metrics.a > 'high'", "metrics.a takes a number", "at character 13, found \"'high'\"", "no quotes"),
        ("start_time > 'today'", "start_time takes a number", "at character 14", "start_time > 0.5"),
        ("params.x = 1", "params.x takes a quoted string", "at character 12, found '1'", "params.x = '1'"),
        ("metrics.a > 1e", "expected a value", "at character 13, found '1e'", ""),
        # lists
        ("run_id IN ()", "the list is empty", "at character 12, found ')'", "one or more quoted strings"),
        ("run_id IN ('a', 2)", "expected a quoted string in the list", "at character 17, found '2'", "('a', 'b')"),
        ("run_id IN ('a' 'b')", "expected ',' or ')' in the list", "at character 16, found \"'b'\"", ""),
        ("run_id IN ('a'", "expected ',' or ')' in the list", "at its end", ""),
        ("run_id IN 'a'", "IN needs a parenthesised list", "at character 11, found \"'a'\"", "run_id IN ('a', 'b')"),
        ("run_id = ('a')", "a list only goes with IN or NOT IN, not '='", "at character 10, found '('", ""),
        # backslashes: \' is a quote, so it cannot end a string
        ("params.p LIKE 'abc\\'", "unterminated string", "at character 15", ""),
        # between comparisons
        (
            "metrics.a > 1 ; metrics.b > 1",
            "expected AND between comparisons",
            "at character 15, found ';'",
            "e.g. metrics.acc > 0.9 AND",
        ),
        ("metrics.a > 1 AND AND metrics.b > 1", "unknown attribute 'AND'", "at character 19, found 'AND'", ""),
    ],
)
def test_refusals_say_what_where_and_what_is_allowed(text: str, problem: str, where: str, allowed: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_filter(text, scope="runs")
    error = caught.value
    assert error.summary is not None
    assert error.summary.startswith(f"Invalid filter {text!r}: ")
    assert problem in error.summary
    assert where in error.summary
    assert allowed in error.summary
    assert [p.field for p in error.problems] == ["filter"]
    assert str(error).startswith(error.summary)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("params.p = 'a\\\\'", "a\\\\"),  # an escaped backslash ends the string and stays as written
        ("params.p = 'C:\\dir'", "C:\\dir"),  # so does any other backslash
        ("params.p LIKE '50\\%'", "50\\%"),  # the store's LIKE takes it as an escape
        ('params.p = "a\\"b"', 'a"b'),
    ],
)
def test_backslashes(text: str, value: str) -> None:
    assert parse_filter(text, scope="runs")[0].value == value


# -- order_by ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scope", "clauses", "expected"),
    [
        ("runs", [], []),
        ("runs", None, []),
        ("runs", ["metrics.acc DESC"], [OrderKey("metric", "acc", False)]),
        ("runs", ["metrics.`my acc` desc"], [OrderKey("metric", "my acc", False)]),
        (
            "runs",
            ["params.lr asc", "tags.mlflow.runName"],
            [OrderKey("param", "lr", True), OrderKey("tag", "mlflow.runName", True)],
        ),
        (
            "runs",
            ["attributes.start_time", "  end_time DESC  "],
            [OrderKey("attribute", "start_time"), OrderKey("attribute", "end_time", False)],
        ),
        ("runs", ["created DESC"], [OrderKey("attribute", "start_time", False)]),
        (
            "runs",
            ["run_name", "status", "user_id", "run_id", "artifact_uri"],
            [OrderKey("attribute", k) for k in ("run_name", "status", "user_id", "run_id", "artifact_uri")],
        ),
        (
            "experiments",
            ["creation_time DESC", "attribute.name"],
            [OrderKey("attribute", "creation_time", False), OrderKey("attribute", "name")],
        ),
        ("registered_models", ["timestamp DESC"], [OrderKey("attribute", "last_updated_timestamp", False)]),
        (
            "registered_models",
            ["name", "creation_timestamp"],
            [OrderKey("attribute", "name"), OrderKey("attribute", "creation_timestamp")],
        ),
        (
            "model_versions",
            ["version_number DESC", "last_updated_timestamp"],
            [OrderKey("attribute", "version_number", False), OrderKey("attribute", "last_updated_timestamp")],
        ),
        (
            "logged_models",
            ["metrics.acc DESC", "creation_time"],
            [OrderKey("metric", "acc", False), OrderKey("attribute", "creation_timestamp")],
        ),
        (
            "logged_models",
            [
                {"field_name": "metrics.acc", "ascending": False, "dataset_name": "eval", "dataset_digest": "d1"},
                {"field_name": "name"},
                {"field_name": "model_id", "ascending": None},
            ],
            [
                OrderKey("metric", "acc", False, "eval", "d1"),
                OrderKey("attribute", "name"),
                OrderKey("attribute", "model_id"),
            ],
        ),
    ],
)
def test_order_by(scope: str, clauses: list[Any] | None, expected: list[OrderKey]) -> None:
    assert parse_order_by(clauses, scope=scope) == expected


@pytest.mark.parametrize(
    ("scope", "clauses", "fragments"),
    [
        ("runs", ["metrics.a DOWN"], ["expected ASC or DESC after the field", "found 'DOWN'", "'metrics.acc DESC'"]),
        ("runs", ["metrics.a DESC ASC"], ["expected nothing after ASC or DESC", "at character 16, found 'ASC'"]),
        ("runs", [""], ["Invalid order_by clause ''", "expected a field to sort by", "at its end"]),
        ("runs", ["datasets.name"], ["unknown entity 'datasets' for runs", "metrics., params., tags., attributes."]),
        ("runs", ["lifecycle_stage"], ["unknown attribute 'lifecycle_stage'", "Attributes to order by"]),
        (
            "runs",
            ["metrics.a", "metrics.a DESC"],
            ["'metrics.a DESC' sorts by the same field as 'metrics.a'", "Each field may appear once"],
        ),
        ("runs", ["start_time", "created"], ["'created' sorts by the same field as 'start_time'"]),
        ("runs", [{"field_name": "x"}], ["runs are sorted by strings such as"]),
        ("runs", [3], ["Invalid order_by clause 3: expected a string"]),
        ("experiments", ["tags.owner"], ["unknown entity 'tags' for experiments"]),
        (
            "registered_models",
            ["timestamp", "last_updated_timestamp DESC"],
            ["'last_updated_timestamp DESC' sorts by the same field as 'timestamp'"],
        ),
        ("model_versions", ["tags.x"], ["unknown entity 'tags' for model versions"]),
        ("model_versions", ["run_id"], ["unknown attribute 'run_id' for model versions"]),
        ("logged_models", ["params.a"], ["unknown entity 'params' for logged models", "metrics."]),
        ("logged_models", [{"ascending": True}], ["`field_name` must be given"]),
        ("logged_models", [{"field_name": "name", "ascending": "yes"}], ["`ascending` must be true or false"]),
        (
            "logged_models",
            [{"field_name": "metrics.a", "dataset_digest": "d"}],
            ["`dataset_digest` can only be given with `dataset_name`"],
        ),
        ("logged_models", [{"field_name": "name", "dataset_name": "d"}], ["`dataset_name` only narrows a metric"]),
        ("logged_models", [{"field_name": "name DESC"}], ["expected only a field name", "`ascending`"]),
    ],
)
def test_order_by_refusals(scope: str, clauses: list[Any], fragments: list[str]) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_order_by(clauses, scope=scope)
    assert caught.value.summary is not None
    for fragment in fragments:
        assert fragment in caught.value.summary
    assert [p.field for p in caught.value.problems] == ["order_by"]
