"""Asset.content_digest: what makes two registrations of one version the same."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from smalt.entities import CommandComponent, CreationContext, Data, Environment, Input, Model


def test_digest_ignores_name_version_and_creation_context() -> None:
    first = Data(name="iris", version="1", path="/data/iris.csv", tags={"k": "v"})
    second = Data(
        name="flowers",
        version="7",
        path="/data/iris.csv",
        tags={"k": "v"},
        creation_context=CreationContext(created_at=datetime(2024, 1, 1, tzinfo=UTC), created_by="ada"),
    )
    assert first.content_digest() == second.content_digest()


def test_digest_changes_with_content() -> None:
    base = Data(name="iris", version="1", path="/data/iris.csv", tags={"k": "v"})
    changed = [
        base.model_copy(update={"path": "/data/iris2.csv"}),
        base.model_copy(update={"tags": {"k": "w"}}),
        base.model_copy(update={"description": "flowers"}),
        base.model_copy(update={"type": "uri_file"}),
        base.model_copy(update={"properties": {"p": "1"}}),
    ]
    digests = {base.content_digest(), *(c.content_digest() for c in changed)}
    assert len(digests) == len(changed) + 1


def test_digest_is_independent_of_key_order() -> None:
    a = Data(name="d", path="/x", tags={"a": "1", "b": "2"})
    b = Data(name="d", path="/x", tags={"b": "2", "a": "1"})
    assert a.content_digest() == b.content_digest()


def test_digest_is_sha256_of_canonical_json() -> None:
    # Stored digests must stay comparable across releases: the formula is part of the contract.
    model = Model(name="m", version="1", path="/models/m", tags={"b": "2", "a": "1"})
    canonical = json.dumps(
        {"path": "/models/m", "properties": {}, "tags": {"a": "1", "b": "2"}, "type": "custom_model"},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert model.content_digest() == hashlib.sha256(canonical.encode()).hexdigest()


def test_digest_of_nested_content() -> None:
    def component(default: int) -> CommandComponent:
        return CommandComponent(
            name="train", command="python t.py ${{inputs.n}}", inputs={"n": Input(type="integer", default=default)}
        )

    assert component(1).content_digest() == component(1).model_copy(update={"version": "2"}).content_digest()
    assert component(1).content_digest() != component(2).content_digest()


def test_content_leaves_out_identity_and_ref_names_the_version() -> None:
    environment = Environment(name="e", version="2", image="python:3.11")
    assert environment.content() == {"image": "python:3.11", "os_type": "linux", "tags": {}, "properties": {}}
    assert environment.ref == "azureml:e:2"
