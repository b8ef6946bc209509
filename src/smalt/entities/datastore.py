"""Datastores: named places that hold bytes (a folder, a blob container, a bucket...)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import model_validator

from smalt.entities.base import CreationContext, Description, Entity, Name, StrDict

DatastoreType = Literal["local", "azure_blob", "azure_data_lake_gen2", "azure_file", "s3", "gcs"]

#: Credential fields that are secret: encrypted at rest, never shown.
SECRET_FIELDS = frozenset({"account_key", "sas_token", "client_secret", "secret_access_key", "session_token", "token"})


class DatastoreCredentials(Entity):
    """Credentials of a datastore. Secret values are write-only: reads return ``type`` alone.

    Azure ML's kinds: ``account_key``, ``sas_token``, ``service_principal``; smalt adds
    ``access_key`` (S3) and ``token`` (GCS service-account JSON or a path to it).
    """

    type: str | None = None
    account_key: str | None = None
    sas_token: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    authority_url: str | None = None
    resource_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    token: str | None = None

    @model_validator(mode="after")
    def _kind(self) -> DatastoreCredentials:
        kinds = [
            kind
            for kind, present in (
                ("account_key", self.account_key is not None),
                ("sas_token", self.sas_token is not None),
                ("service_principal", self.client_secret is not None or self.client_id is not None),
                ("access_key", self.secret_access_key is not None or self.access_key_id is not None),
                ("token", self.token is not None),
            )
            if present
        ]
        if len(kinds) > 1:
            raise ValueError(f"give one kind of credentials, not {' and '.join(kinds)}")
        if kinds and self.type is None:
            self.type = kinds[0]
        if (
            self.type == "service_principal"
            and kinds
            and (not self.tenant_id or not self.client_id or not self.client_secret)
        ):
            raise ValueError("service principal credentials need tenant_id, client_id and client_secret")
        if self.type == "access_key" and kinds and (not self.access_key_id or not self.secret_access_key):
            raise ValueError("S3 credentials need access_key_id and secret_access_key")
        return self

    def secrets(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if k in SECRET_FIELDS and v is not None}

    def without_secrets(self) -> DatastoreCredentials:
        return self.model_copy(update={k: None for k in SECRET_FIELDS})


class Datastore(Entity):
    """A datastore.

    Examples::

        Datastore(name="raw", type="local", path="/data/raw")
        Datastore(name="lake", type="azure_blob", account_name="acct", container_name="raw",
                  credentials=DatastoreCredentials(account_key="..."))
        Datastore(name="bucket", type="s3", bucket="ml-data", endpoint_url="http://127.0.0.1:9000")
    """

    #: Which fields each type needs, so a missing one is reported by name.
    REQUIRED: ClassVar[dict[str, tuple[str, ...]]] = {
        "local": ("path",),
        "azure_blob": ("account_name", "container_name"),
        "azure_data_lake_gen2": ("account_name", "filesystem"),
        "azure_file": ("account_name", "file_share_name"),
        "s3": ("bucket",),
        "gcs": ("bucket",),
    }

    name: Name
    type: DatastoreType
    description: Description | None = None
    tags: StrDict = {}
    # local
    path: str | None = None
    # Azure
    account_name: str | None = None
    container_name: str | None = None
    filesystem: str | None = None
    file_share_name: str | None = None
    endpoint: str = "core.windows.net"
    protocol: Literal["https", "http", "wasbs", "abfss", "abfs", "wasb"] = "https"
    # S3 and GCS
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    project: str | None = None
    prefix: str | None = None
    credentials: DatastoreCredentials | None = None
    #: fsspec URL (team set-ups); for workspaceblobstore it names where the bytes live.
    url: str | None = None
    is_default: bool = False
    creation_context: CreationContext | None = None
    # Accepted from Azure ML files; no effect here.
    service_data_access_auth_identity: str | None = None
    extra: dict[str, Any] | None = None

    #: The kinds of credentials each type takes, as Azure ML's datastore schemas (and smalt's own).
    CREDENTIALS: ClassVar[dict[str, tuple[str, ...]]] = {
        "azure_blob": ("account_key", "sas_token"),
        "azure_file": ("account_key", "sas_token"),
        "azure_data_lake_gen2": ("service_principal", "certificate"),
        "s3": ("access_key",),
        "gcs": ("token",),
    }

    @model_validator(mode="after")
    def _required_for_type(self) -> Datastore:
        missing = [f for f in self.REQUIRED[self.type] if getattr(self, f) is None]
        if missing and not (self.type == "local" and self.url):
            raise ValueError(f"a {self.type} datastore needs {', '.join(missing)}")
        taken = self.CREDENTIALS.get(self.type, ())
        kind = self.credentials.type if self.credentials else None
        if kind not in (None, "none", *taken):
            article = "an" if self.type[0] in "aeiou" else "a"
            takes = " or ".join(taken) or "no"
            raise ValueError(f"{article} {self.type} datastore takes {takes} credentials, not {kind}")
        return self


class AzureBlobDatastore(Datastore):
    """Azure ML's SDK class for a blob container datastore."""

    type: Literal["azure_blob"] = "azure_blob"


class AzureDataLakeGen2Datastore(Datastore):
    """Azure ML's SDK class for an ADLS Gen2 filesystem datastore."""

    type: Literal["azure_data_lake_gen2"] = "azure_data_lake_gen2"


class AzureFileDatastore(Datastore):
    """Azure ML's SDK class for an Azure Files share datastore."""

    type: Literal["azure_file"] = "azure_file"


class LocalDatastore(Datastore):
    """A folder on this machine."""

    type: Literal["local"] = "local"


class S3Datastore(Datastore):
    """An S3 (or S3-compatible) bucket."""

    type: Literal["s3"] = "s3"


class GcsDatastore(Datastore):
    """A Google Cloud Storage bucket."""

    type: Literal["gcs"] = "gcs"


def shown_datastore(data: dict[str, Any]) -> Datastore:
    """A datastore as stored or as a server shows it: its credentials hold no secrets, on purpose,
    so they are not checked again as a datastore being created is."""
    spec = dict(data)
    credentials = spec.pop("credentials", None)
    datastore = Datastore.model_validate(spec)
    if credentials is not None:
        datastore.credentials = DatastoreCredentials.model_construct(**credentials)
    return datastore
