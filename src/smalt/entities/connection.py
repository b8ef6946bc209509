"""Workspace connections: named secrets a job or deployment uses without seeing them in a file.

Azure ML's connection YAML (``az ml connection create -f``): ``type: custom`` holds ``configs``
(plain) and ``secrets`` (or ``credentials: {type: custom_keys, keys: {...}}``); ``type: api_key``
and the other key-based types hold a ``target`` (``api_base``, ``endpoint``) and an ``api_key``.
Secrets are write-only: a connection read back has none (``shown``), only its credential type.

A job or deployment names a secret in its ``environment_variables`` as Azure ML writes it,
``${{azureml://connections/<name>/credentials/<key>}}``; an api_key connection's key is ``key``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from smalt.entities.base import CreationContext, Description, Entity, Name, StrDict

ConnectionType = Literal["custom", "api_key", "open_ai", "azure_open_ai", "azure_ai_services", "azure_ai_search",
                         "azure_content_safety", "azure_speech_services", "serverless", "serp"]  # fmt: skip
Url = Annotated[str, Field(max_length=2048)]
Secret = Annotated[str, Field(min_length=1, max_length=32_768)]
#: A reference to a connection's secret inside a value (``environment_variables``).
REFERENCE = re.compile(r"\$\{\{\s*azureml://connections/(?P<name>[^/}\s]+)/credentials/(?P<key>[^/}\s]+)\s*\}\}")


class ConnectionCredentials(Entity):
    """Azure's credential block of a connection; shown with ``type`` alone."""

    type: str | None = None
    keys: dict[Annotated[str, Field(max_length=256)], Secret] | None = Field(None, max_length=100)
    key: Secret | None = None


class WorkspaceConnection(Entity):
    """A connection: where a service is, and the secrets that open it."""

    name: Name
    type: ConnectionType
    description: Description | None = None
    tags: StrDict = Field(default_factory=dict)
    target: Url | None = None
    api_base: Url | None = None
    endpoint: Url | None = None
    azure_endpoint: Url | None = None
    api_version: Annotated[str, Field(max_length=64)] | None = None
    open_ai_resource_id: Url | None = None
    ai_services_resource_id: Url | None = None
    configs: StrDict = Field(default_factory=dict)
    metadata: StrDict = Field(default_factory=dict)
    is_shared: bool = True
    secrets: dict[Annotated[str, Field(max_length=256)], Secret] | None = Field(None, max_length=100)
    api_key: Secret | None = None
    credentials: ConnectionCredentials | None = None
    creation_context: CreationContext | None = None

    @model_validator(mode="after")
    def _secrets(self) -> WorkspaceConnection:
        if self.type == "custom" and self.credentials is not None and self.credentials.key is not None:
            raise ValueError("a custom connection's credentials are keys (credentials.keys), not one key")
        if self.type != "custom" and (self.secrets or (self.credentials and self.credentials.keys)):
            raise ValueError(f"a {self.type} connection holds an api_key, not secrets")
        return self

    def secret_values(self) -> dict[str, str]:
        """Every secret it holds, by the key a reference names (``key`` for an api_key)."""
        found: dict[str, str] = {**(self.secrets or {})}
        if self.credentials is not None:
            found.update(self.credentials.keys or {})
            if self.credentials.key is not None:
                found["key"] = self.credentials.key
        if self.api_key is not None:
            found["key"] = self.api_key
        return found

    @property
    def credential_type(self) -> str:
        return "custom_keys" if self.type == "custom" else "api_key"

    def shown(self) -> WorkspaceConnection:
        """The connection as show and list answer it: no secret, the credential type alone."""
        return self.model_copy(update={"secrets": None, "api_key": None,
                                       "credentials": ConnectionCredentials(type=self.credential_type)})  # fmt: skip


def references(values: dict[str, str]) -> list[tuple[str, str, str]]:
    """Each ``(variable, connection, key)`` that ``values`` names."""
    return [(variable, m["name"], m["key"]) for variable, value in values.items() for m in REFERENCE.finditer(value)]


def inject(values: dict[str, str], secret: Any) -> dict[str, str]:
    """``values`` with each reference replaced by ``secret(connection, key)``."""
    return {variable: REFERENCE.sub(lambda m: str(secret(m["name"], m["key"])), value)
            for variable, value in values.items()}  # fmt: skip
