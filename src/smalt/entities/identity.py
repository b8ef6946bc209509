"""Who may call a server: users, service principals and personal access tokens, and what the audit
log records of them. Secrets never live in these entities: a password, a client secret or a token
is shown once, when made, and stored only as a hash (services/identities.py)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from smalt.entities.base import Entity

#: A user's or service principal's name: what ``created_by`` records and ``--assignee`` names
#: (an e-mail address is one).
PRINCIPAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
PrincipalName = Annotated[str, Field(pattern=PRINCIPAL_NAME.pattern)]
TokenName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
PrincipalKind = Literal["user", "service_principal"]
#: The shortest password a user may set (NIST SP 800-63B asks for at least 8).
MIN_PASSWORD = 8


class Principal(Entity):
    """A user or a service principal. ``id`` is a service principal's client id (Azure's appId)."""

    name: PrincipalName
    kind: PrincipalKind
    id: str
    created_at: datetime
    created_by: str


class ServicePrincipalSecret(Entity):
    """What ``smalt service-principal create`` prints, once: Azure's ``az ad sp create-for-rbac``
    answer (``appId``, ``password``, ``tenant``), by the names a CI's variables take them."""

    name: str
    client_id: str
    client_secret: str
    tenant_id: str


class PersonalAccessToken(Entity):
    """A named token of one principal; ``token`` is set only in the answer that made it."""

    id: str
    name: TokenName
    principal: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    token: str | None = None


class AccessToken(Entity):
    """A short-lived signed token, as OAuth 2's token endpoint answers the client-credentials grant."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int


class AuditEntry(Entity):
    """One line of the audit log: who did what to which resource, and how it ended."""

    id: int
    at: datetime
    principal: str
    action: str
    resource: str
    outcome: Literal["succeeded", "failed", "denied"]
    status: int
    request_id: str
    client: str
    workspace: str | None = None
