"""Datastores: the required fields of each type, and credentials whose secrets are write-only."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from smalt.entities import Datastore, DatastoreCredentials
from smalt.entities.datastore import SECRET_FIELDS
from smalt.errors import InvalidSpecError

#: Python callers may meet pydantic's error or smalt's translation of it; the rule is what is tested.
REJECTED = (ValidationError, InvalidSpecError)

SERVICE_PRINCIPAL = {"tenant_id": "tenant", "client_id": "client", "client_secret": "sp-secret"}
S3_KEYS = {"access_key_id": "AKIA", "secret_access_key": "s3-secret"}


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"account_key": "a2V5"}, "account_key"),
        ({"sas_token": "sv=2024&sig=x"}, "sas_token"),
        (SERVICE_PRINCIPAL, "service_principal"),
        (S3_KEYS, "access_key"),
        ({**S3_KEYS, "session_token": "sess-3x9q"}, "access_key"),
        ({"token": '{"type": "service_account"}'}, "token"),
    ],
)
def test_each_kind_of_credentials_is_recognised(fields: dict[str, str], kind: str) -> None:
    assert DatastoreCredentials(**fields).type == kind


def test_no_credentials_is_allowed() -> None:
    assert DatastoreCredentials().type is None


@pytest.mark.parametrize("missing", ["tenant_id", "client_id", "client_secret"])
def test_service_principal_needs_all_three_fields(missing: str) -> None:
    fields = {k: v for k, v in SERVICE_PRINCIPAL.items() if k != missing}
    with pytest.raises(REJECTED, match="service principal credentials need tenant_id, client_id and client_secret"):
        DatastoreCredentials(**fields)


@pytest.mark.parametrize("missing", ["access_key_id", "secret_access_key"])
def test_s3_needs_both_keys(missing: str) -> None:
    fields = {k: v for k, v in S3_KEYS.items() if k != missing}
    with pytest.raises(REJECTED, match="S3 credentials need access_key_id and secret_access_key"):
        DatastoreCredentials(**fields)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"account_key": "k", "sas_token": "s"}, "account_key and sas_token"),
        ({"account_key": "k", **SERVICE_PRINCIPAL}, "account_key and service_principal"),
        ({"sas_token": "s", **S3_KEYS}, "sas_token and access_key"),
    ],
)
def test_two_kinds_at_once_are_rejected(fields: dict[str, str], named: str) -> None:
    with pytest.raises(REJECTED, match=f"give one kind of credentials, not {named}"):
        DatastoreCredentials(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"account_key": "a2V5"},
        {"sas_token": "sv=2024&sig=x"},
        SERVICE_PRINCIPAL,
        {**S3_KEYS, "session_token": "sess-3x9q"},
        {"token": "gcs-json"},
    ],
)
def test_without_secrets_drops_every_secret(fields: dict[str, str]) -> None:
    creds = DatastoreCredentials(**fields)
    public = creds.without_secrets()
    assert public.secrets() == {}
    dumped = public.model_dump_json()
    for field in SECRET_FIELDS:
        assert getattr(public, field) is None
    for value in creds.secrets().values():
        assert value not in dumped
    assert public.type == creds.type
    # The secrets are still there for sealing before they are dropped.
    assert set(creds.secrets()) == set(fields) & SECRET_FIELDS


def test_without_secrets_keeps_identifiers() -> None:
    public = DatastoreCredentials(**SERVICE_PRINCIPAL).without_secrets()
    assert (public.tenant_id, public.client_id) == ("tenant", "client")


@pytest.mark.parametrize(
    ("type_", "fields", "missing"),
    [
        ("local", {}, "path"),
        ("azure_blob", {"account_name": "acct"}, "container_name"),
        ("azure_blob", {}, "account_name, container_name"),
        ("azure_data_lake_gen2", {"account_name": "acct"}, "filesystem"),
        ("azure_file", {"account_name": "acct"}, "file_share_name"),
        ("s3", {}, "bucket"),
        ("gcs", {}, "bucket"),
    ],
)
def test_each_type_names_its_missing_fields(type_: str, fields: dict[str, Any], missing: str) -> None:
    with pytest.raises(REJECTED, match=f"datastore needs {missing}"):
        Datastore(name="d", type=type_, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("type_", "fields"),
    [
        ("local", {"path": "/data/raw"}),
        ("local", {"url": "memory://bucket"}),
        ("azure_blob", {"account_name": "acct", "container_name": "raw"}),
        ("azure_data_lake_gen2", {"account_name": "acct", "filesystem": "lake"}),
        ("azure_file", {"account_name": "acct", "file_share_name": "share"}),
        ("s3", {"bucket": "b", "endpoint_url": "http://127.0.0.1:9000"}),
        ("gcs", {"bucket": "b", "project": "p"}),
    ],
)
def test_complete_datastores_are_accepted(type_: str, fields: dict[str, Any]) -> None:
    assert Datastore(name="d", type=type_, **fields).type == type_  # type: ignore[arg-type]


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(REJECTED):
        Datastore(name="d", type="ftp")  # type: ignore[arg-type]


def test_redacted_credentials_are_not_valid_new_credentials() -> None:
    # `datastore show` output fed back to `create` must not make a datastore without its secret.
    public = DatastoreCredentials(**S3_KEYS).without_secrets().to_dict()
    with pytest.raises(REJECTED, match="S3 credentials need"):
        DatastoreCredentials.model_validate(public)
