"""Users, service principals, personal access tokens and the short-lived tokens a server signs.

A server's identities live in its own workspace's store (the one it was started on); its tenant id
is that workspace's id. Secrets are shown once, when made, and kept only as hashes: passwords and
client secrets with argon2id (they may be chosen by a person), the random secret of a personal
access token with SHA-256 (256 random bits gain nothing from a slow hash, and a token is checked on
every request). Access tokens are JWTs signed with HMAC-SHA256 by a key in the workspace folder
(``signing.key``, mode 0600), valid for an hour.

Token formats: a personal access token is ``smalt_pat_<id>_<secret>``; anything else presented as
a bearer token is taken for a signed access token.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from smalt.entities.identity import (
    MIN_PASSWORD,
    PRINCIPAL_NAME,
    AccessToken,
    PersonalAccessToken,
    Principal,
    ServicePrincipalSecret,
)
from smalt.errors import AlreadyExistsError, InvalidSpecError, InvalidStateError, NotFoundError
from smalt.services import audit
from smalt.services.workspace import WorkspaceContext
from smalt.store.access import PrincipalRecord, TokenRecord
from smalt.store.publish import publish_file

ACCESS_TOKEN_S = 3600
PAT_PREFIX = "smalt_pat_"
_ISSUER = "smalt"
#: The actions identity changes are recorded under (their routes declare the same ones).
WRITE, DELETE = "Microsoft.Authorization/principals/write", "Microsoft.Authorization/principals/delete"
TOKEN_WRITE, TOKEN_DELETE = (
    "Microsoft.Authorization/principals/tokens/write",
    "Microsoft.Authorization/principals/tokens/delete",
)


@dataclass(frozen=True)
class Caller:
    """Who a request acts for: an authenticated principal (``id`` None for the server's own token and
    for the machine's user when authentication is off, which may do anything)."""

    name: str
    id: str | None
    kind: str = "user"


def _hasher() -> Any:
    from argon2 import PasswordHasher

    # OWASP's argon2id setting (19 MiB, 2 passes): about 20 ms a check here.
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


#: A client id's shape: no name may take it, or it could stand for another service principal.
_CLIENT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _check_name(name: str) -> None:
    if not PRINCIPAL_NAME.match(name):
        raise InvalidSpecError.one(f"Invalid name {name!r}: use up to 128 letters, digits, '.', '_', '@', '+' and '-', "
                                   "starting with a letter or digit", "name")  # fmt: skip
    if _CLIENT_ID.match(name):
        raise InvalidSpecError.one(f"Invalid name {name!r}: a name may not look like a client id", "name")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD or len(password) > 1024:
        raise InvalidSpecError.one(f"A password must have {MIN_PASSWORD} to 1024 characters.", "password")


def _principal(record: PrincipalRecord) -> Principal:
    return Principal(name=record.name, kind=record.kind, id=record.id, created_at=record.created_at,
                     created_by=record.created_by)  # fmt: skip


def _token(record: TokenRecord, principal: str) -> PersonalAccessToken:
    return PersonalAccessToken(id=record.id, name=record.name, principal=principal, created_at=record.created_at,
                               expires_at=record.expires_at, revoked_at=record.revoked_at)  # fmt: skip


class IdentityService:
    """The identities of the server whose own workspace is ``workspace``."""

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace

    @property
    def tenant_id(self) -> str:
        return self._ws.id

    # -- principals ---------------------------------------------------------------------------
    def create_user(self, name: str, password: str) -> Principal:
        _check_password(password)
        return self._create(name, "user", password)

    def create_service_principal(self, name: str) -> ServicePrincipalSecret:
        """A service principal and its client secret, which is shown here and never again."""
        secret = secrets.token_urlsafe(32)
        principal = self._create(name, "service_principal", secret)
        return ServicePrincipalSecret(name=principal.name, client_id=principal.id, client_secret=secret,
                                      tenant_id=self.tenant_id)  # fmt: skip

    def _create(self, name: str, kind: str, secret: str) -> Principal:
        _check_name(name)
        record = PrincipalRecord(
            str(uuid.uuid4()), name, kind, _hasher().hash(secret), datetime.now(UTC), self._ws.user
        )
        with self._ws.store.transaction(write=True) as tx:
            if tx.access.principal(name=name) is not None:
                raise AlreadyExistsError(f"A principal named '{name}' exists already.",
                                         hint="choose another name, or delete that one first")  # fmt: skip
            tx.access.add_principal(record)
            audit.append(tx, audit.entry(self._ws, WRITE, f"/principals/{name}"))
        return _principal(record)

    def reset_secret(self, name: str, password: str | None = None) -> ServicePrincipalSecret | None:
        """A user's new ``password``, or a service principal's new client secret (returned, once)."""
        record = self._record(name)
        if record.kind == "user":
            if password is None:
                raise InvalidSpecError.one("A user's new password is needed.", "password")
            _check_password(password)
            secret = password
        else:
            secret = secrets.token_urlsafe(32)
        with self._ws.store.transaction(write=True) as tx:
            tx.access.set_secret(record.id, _hasher().hash(secret))
            audit.append(tx, audit.entry(self._ws, WRITE, f"/principals/{name}/secret"))
        if record.kind == "user":
            return None
        return ServicePrincipalSecret(name=name, client_id=record.id, client_secret=secret, tenant_id=self.tenant_id)

    def get(self, name: str) -> Principal:
        return _principal(self._record(name))

    def list(self) -> list[Principal]:
        with self._ws.store.transaction() as tx:
            return [_principal(r) for r in tx.access.principals()]

    def delete(self, name: str) -> None:
        """The principal, its tokens and its role assignments."""
        record = self._record(name)
        with self._ws.store.transaction(write=True) as tx:
            tx.access.delete_principal(record.id)
            audit.append(tx, audit.entry(self._ws, DELETE, f"/principals/{name}"))

    def whoami(self) -> str:
        """Who acts: the caller of the request under way, or this process's user."""
        return self._ws.user

    def exists(self, principal_id: str) -> bool:
        with self._ws.store.transaction() as tx:
            return tx.access.principal(id=principal_id) is not None

    def any(self) -> bool:
        with self._ws.store.transaction() as tx:
            return tx.access.any_principal()

    def _record(self, name: str) -> PrincipalRecord:
        with self._ws.store.transaction() as tx:
            record = tx.access.principal(name=name) or tx.access.principal(id=name)
            names = [] if record is not None else [r.name for r in tx.access.principals()]
        if record is None:
            raise NotFoundError(f"Principal '{name}' not found. Principals: {', '.join(names) or 'none'}.",
                                hint="smalt user list; smalt service-principal list")  # fmt: skip
        return record

    # -- personal access tokens ---------------------------------------------------------------
    def create_token(self, principal: str, name: str, *, expires_in_days: int = 30) -> PersonalAccessToken:
        """A named token of ``principal``, valid for ``expires_in_days`` (1 to 366); its secret is in
        ``token`` here and nowhere else."""
        if not 1 <= expires_in_days <= 366:
            raise InvalidSpecError.one("A token lasts 1 to 366 days.", "expires_in_days")
        owner = self._record(principal)
        secret, now = secrets.token_urlsafe(32), datetime.now(UTC)
        record = TokenRecord(uuid.uuid4().hex[:16], owner.id, name, _digest(secret), now,
                             now + timedelta(days=expires_in_days), None)  # fmt: skip
        # The name checked as the entity bounds it, before anything is stored.
        PersonalAccessToken(id=record.id, name=name, principal=owner.name, created_at=now, expires_at=record.expires_at)
        with self._ws.store.transaction(write=True) as tx:
            if any(t.name == name for t in tx.access.tokens(owner.id)):
                raise AlreadyExistsError(f"'{owner.name}' has a token named '{name}' already.",
                                         hint="choose another name (a revoked token keeps its name)")  # fmt: skip
            tx.access.add_token(record)
            audit.append(tx, audit.entry(self._ws, TOKEN_WRITE, f"/principals/{owner.name}/tokens/{name}"))
        return _token(record, owner.name).model_copy(update={"token": f"{PAT_PREFIX}{record.id}_{secret}"})

    def list_tokens(self, principal: str | None = None) -> builtins.list[PersonalAccessToken]:
        owner = self._record(principal) if principal is not None else None
        with self._ws.store.transaction() as tx:
            names = {r.id: r.name for r in tx.access.principals()}
            records = tx.access.tokens(owner.id if owner else None)
        return [_token(r, names.get(r.principal_id, r.principal_id)) for r in records]

    def revoke_token(self, principal: str, name: str) -> None:
        owner = self._record(principal)
        with self._ws.store.transaction(write=True) as tx:
            found = next((t for t in tx.access.tokens(owner.id) if t.name == name), None)
            if found is None:
                raise NotFoundError(f"'{owner.name}' has no token named '{name}'.",
                                    hint=f"smalt token list --principal {owner.name}")  # fmt: skip
            if not tx.access.revoke_token(found.id, datetime.now(UTC)):
                raise InvalidStateError(f"'{owner.name}''s token '{name}' was revoked already.")
            audit.append(tx, audit.entry(self._ws, TOKEN_DELETE, f"/principals/{owner.name}/tokens/{name}"))

    # -- authentication -------------------------------------------------------------------------
    def check_secret(self, name_or_client_id: str, secret: str) -> Caller | None:
        """The principal whose name (or client id) and password (or client secret) these are."""
        from argon2.exceptions import InvalidHashError, VerificationError

        with self._ws.store.transaction() as tx:
            record = tx.access.principal(name=name_or_client_id) or tx.access.principal(id=name_or_client_id)
        if record is None:
            _hasher().hash(secret)  # as slow as a wrong secret: the answer's time tells nothing
            return None
        try:
            _hasher().verify(record.secret_hash, secret)
        except (VerificationError, InvalidHashError):
            return None
        return Caller(record.name, record.id, record.kind)

    def check_pat(self, token: str) -> tuple[Caller, datetime] | None:
        """The principal a personal access token acts for, and when it expires; None for one that
        is unknown, expired or revoked."""
        token_id, _, secret = token.removeprefix(PAT_PREFIX).partition("_")
        with self._ws.store.transaction() as tx:
            record = tx.access.token(token_id)
            owner = tx.access.principal(id=record.principal_id) if record is not None else None
        if record is None or owner is None or record.revoked_at is not None:
            return None
        if not hmac.compare_digest(record.secret_hash, _digest(secret)) or record.expires_at <= datetime.now(UTC):
            return None
        return Caller(owner.name, owner.id, owner.kind), record.expires_at

    def issue(self, caller: Caller) -> AccessToken:
        """A signed access token for ``caller``, valid for an hour."""
        import jwt

        now = int(datetime.now(UTC).timestamp())
        claims = {"iss": _ISSUER, "tid": self.tenant_id, "sub": caller.id, "name": caller.name, "kind": caller.kind,
                  "iat": now, "exp": now + ACCESS_TOKEN_S, "jti": uuid.uuid4().hex}  # fmt: skip
        return AccessToken(access_token=jwt.encode(claims, self._signing_key, algorithm="HS256"),
                           expires_in=ACCESS_TOKEN_S)  # fmt: skip

    def check_jwt(self, token: str) -> tuple[Caller, float] | None:
        """The principal a signed access token names, and when it expires (epoch seconds); None for
        one this server did not sign, or that expired."""
        import jwt

        try:
            claims = jwt.decode(token, self._signing_key, algorithms=["HS256"], issuer=_ISSUER,
                                options={"require": ["exp", "sub", "iss"]})  # fmt: skip
        except jwt.PyJWTError:
            return None
        if claims.get("tid") != self.tenant_id:
            return None
        return Caller(str(claims.get("name", "")), str(claims["sub"]), str(claims.get("kind", "user"))), float(
            claims["exp"]
        )

    @cached_property
    def _signing_key(self) -> bytes:
        path = self._ws.path / "signing.key"
        if not path.exists():
            publish_file(path, secrets.token_bytes(32).hex().encode(), mode=0o600)
        return path.read_bytes().strip()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
