"""``smalt user|service-principal|token|role|audit <verb>``, ``smalt login`` and ``smalt logout``.

Run on the server's machine without ``SMALT_URL``, they act on that workspace folder's identities:
that is how the first Owner is made (``smalt user create --name admin --role Owner``). Through a
server, they act as the caller's roles allow."""

from __future__ import annotations

import getpass
import json
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from smalt.cli import context
from smalt.cli.assets import OutputOpt, QueryOpt
from smalt.cli.output import emit

user_app = typer.Typer(help="Manage the users who may call a server.", no_args_is_help=True)
service_principal_app = typer.Typer(help="Manage service principals (identities for CI/CD and services).",
                                    no_args_is_help=True)  # fmt: skip
token_app = typer.Typer(help="Manage personal access tokens.", no_args_is_help=True)
role_app = typer.Typer(help="Manage roles (Azure's built-in ones and custom ones) and their assignments.",
                       no_args_is_help=True)  # fmt: skip
assignment_app = typer.Typer(help="Give roles to users and service principals at a scope.", no_args_is_help=True)
role_app.add_typer(assignment_app, name="assignment")
audit_app = typer.Typer(help="Read the audit log.", no_args_is_help=True)

PrincipalOpt = Annotated[str, typer.Option("--name", "-n", help="The user's or service principal's name.")]
RoleOpt = Annotated[str | None, typer.Option("--role", help="Also give this role (e.g. Owner, Reader, 'AzureML Data "
                                                            "Scientist').")]  # fmt: skip
ScopeOpt = Annotated[str, typer.Option("--scope", help="Where the role applies: / (the server) or /workspaces/<name>.")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]


def _password(from_stdin: bool, *, confirm: bool = True) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        from smalt.errors import InvalidSpecError

        raise InvalidSpecError.one("No password given: pass --password-stdin and write it to standard input.",
                                   "--password-stdin")  # fmt: skip
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Password again: ") != first:
        from smalt.errors import InvalidSpecError

        raise InvalidSpecError.one("The two passwords differ.", "password")
    return first


# -- users ----------------------------------------------------------------------------------------------
@user_app.command("create")
def user_create(name: PrincipalOpt, password_stdin: PasswordStdin = False, role: RoleOpt = None,
                scope: ScopeOpt = "/", output: OutputOpt = None, query: QueryOpt = None) -> None:  # fmt: skip
    """Create a user with a password (prompted, or read with --password-stdin), and give it a role."""
    client = context.client()
    made = client.principals.create_user(name, _password(password_stdin))
    if role:
        client.role_assignments.create(made.name, role, scope)
    emit(made, output, query=query)


@user_app.command("list")
def user_list(output: OutputOpt = None, query: QueryOpt = None) -> None:
    """List users and service principals."""
    emit(context.client().principals.list(), output, columns=("name", "kind", "id", "created_at"), query=query)


@user_app.command("show")
def user_show(name: PrincipalOpt, output: OutputOpt = None, query: QueryOpt = None) -> None:
    emit(context.client().principals.get(name), output, query=query)


@user_app.command("delete")
def user_delete(name: PrincipalOpt) -> None:
    """Delete a user (or service principal), its tokens and its role assignments."""
    context.client().principals.delete(name)


@user_app.command("set-password")
def user_set_password(name: PrincipalOpt, password_stdin: PasswordStdin = False) -> None:
    context.client().principals.reset_secret(name, _password(password_stdin))


# -- service principals -----------------------------------------------------------------------------------
@service_principal_app.command("create")
def service_principal_create(name: PrincipalOpt, role: RoleOpt = None, scope: ScopeOpt = "/",
                             output: OutputOpt = None, query: QueryOpt = None) -> None:  # fmt: skip
    """Create a service principal; prints its client id, secret and tenant, once."""
    client = context.client()
    made = client.principals.create_service_principal(name)
    if role:
        client.role_assignments.create(made.client_id, role, scope)
    emit(made, output or "json", query=query)
    print("Keep the secret now: it is not shown again. CI reads these as AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and "
          "AZURE_TENANT_ID.", file=sys.stderr)  # fmt: skip


@service_principal_app.command("list")
def service_principal_list(output: OutputOpt = None, query: QueryOpt = None) -> None:
    found = [p for p in context.client().principals.list() if p.kind == "service_principal"]
    emit(found, output, columns=("name", "id", "created_at", "created_by"), query=query)


@service_principal_app.command("delete")
def service_principal_delete(name: PrincipalOpt) -> None:
    context.client().principals.delete(name)


@service_principal_app.command("reset-secret")
def service_principal_reset(name: PrincipalOpt, output: OutputOpt = None) -> None:
    """A new client secret (the old one stops working), printed once."""
    emit(context.client().principals.reset_secret(name), output or "json")


# -- personal access tokens -----------------------------------------------------------------------------
@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", "-n", help="The token's name.")],
    principal: Annotated[str | None, typer.Option("--principal", help="Whose token (default: the caller).")] = None,
    expires_in_days: Annotated[int, typer.Option("--expires-in-days")] = 30,
    output: OutputOpt = None, query: QueryOpt = None,
) -> None:  # fmt: skip
    """Create a personal access token; prints it once."""
    client = context.client()
    made = client.principals.create_token(principal, name, expires_in_days=expires_in_days)
    emit(made, output or "json", query=query)


@token_app.command("list")
def token_list(principal: Annotated[str | None, typer.Option("--principal")] = None, output: OutputOpt = None,
               query: QueryOpt = None) -> None:  # fmt: skip
    columns = ("name", "principal", "created_at", "expires_at", "revoked_at")
    emit(context.client().principals.list_tokens(principal), output, columns=columns, query=query)


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Option("--name", "-n")],
                 principal: Annotated[str | None, typer.Option("--principal")] = None) -> None:  # fmt: skip
    context.client().principals.revoke_token(principal, name)


# -- roles ----------------------------------------------------------------------------------------------------
@role_app.command("create")
def role_create(
    role_definition: Annotated[str, typer.Option("--role-definition", help="A JSON or YAML file (or JSON text) as "
                                                                           "Azure writes a custom role.")],
    output: OutputOpt = None, query: QueryOpt = None,
) -> None:  # fmt: skip
    """Create or update a custom role (``az role definition create --role-definition``)."""
    emit(context.client().roles.create_or_update(_role_file(role_definition)).to_azure(), output or "json", query=query)


def _role_file(text: str) -> dict[str, Any]:
    from smalt.errors import InvalidSpecError

    path = Path(text)
    source = path.read_text() if not text.lstrip().startswith("{") and path.is_file() else text
    try:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError

        value = YAML(typ="safe", pure=True).load(source)
    except YAMLError as exc:
        raise InvalidSpecError.one(f"{text}: not JSON or YAML: {exc}", "--role-definition") from None
    if not isinstance(value, dict):
        raise InvalidSpecError.one(f"{text}: a role definition is an object (Name, Actions, ...)", "--role-definition")
    return value


@role_app.command("list")
def role_list(custom_only: Annotated[bool, typer.Option("--custom-role-only")] = False, output: OutputOpt = None,
              query: QueryOpt = None) -> None:  # fmt: skip
    roles = [r.to_azure() for r in context.client().roles.list() if r.is_custom or not custom_only]
    emit(roles, output, columns=("Name", "IsCustom", "Description"), query=query)


@role_app.command("show")
def role_show(name: Annotated[str, typer.Option("--name", "-n")], output: OutputOpt = None) -> None:
    emit(context.client().roles.get(name).to_azure(), output or "json")


@role_app.command("delete")
def role_delete(name: Annotated[str, typer.Option("--name", "-n")]) -> None:
    context.client().roles.delete(name)


@assignment_app.command("create")
def assignment_create(
    assignee: Annotated[str, typer.Option("--assignee", help="A user's or service principal's name or client id.")],
    role: Annotated[str, typer.Option("--role")], scope: ScopeOpt = "/",
    output: OutputOpt = None, query: QueryOpt = None,
) -> None:  # fmt: skip
    emit(context.client().role_assignments.create(assignee, role, scope), output, query=query)


@assignment_app.command("list")
def assignment_list(
    assignee: Annotated[str | None, typer.Option("--assignee")] = None,
    role: Annotated[str | None, typer.Option("--role")] = None,
    scope: Annotated[str | None, typer.Option("--scope")] = None,
    output: OutputOpt = None, query: QueryOpt = None,
) -> None:  # fmt: skip
    found = context.client().role_assignments.list(assignee=assignee, role=role, scope=scope)
    emit(found, output, columns=("id", "principal", "role", "scope"), query=query)


@assignment_app.command("delete")
def assignment_delete(
    assignment_id: Annotated[str, typer.Option("--ids", "--id", help="The assignment's id.")],
) -> None:
    context.client().role_assignments.delete(assignment_id)


# -- the audit log -----------------------------------------------------------------------------------------
@audit_app.command("list")
def audit_list(
    since: Annotated[datetime | None, typer.Option("--since", help="Entries from this time on (ISO 8601).")] = None,
    principal: Annotated[str | None, typer.Option("--principal")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Actions starting with this.")] = None,
    max_results: Annotated[int, typer.Option("--max-results")] = 100,
    output: OutputOpt = None, query: QueryOpt = None,
) -> None:  # fmt: skip
    """Newest first: who did what, to which resource, and how it ended."""
    found = context.client().audit.list(since=since, principal=principal, action=action, max_results=max_results)
    emit(found, output, columns=("at", "principal", "action", "resource", "outcome", "status"), query=query)


# -- signing in ----------------------------------------------------------------------------------------------
def login(
    url: Annotated[str | None, typer.Option("--url", help="The server (default: SMALT_URL).")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", help="A user, or with --service-principal "
                                                                          "a client id.")] = None,
    service_principal: Annotated[bool, typer.Option("--service-principal")] = False,
    password_stdin: PasswordStdin = False,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Keep this token (a personal access token) as "
                                                              "it is.")] = None,
    expires_in_days: Annotated[int, typer.Option("--expires-in-days")] = 30,
) -> None:  # fmt: skip
    """Sign in to a server: keeps a personal access token for it in ~/.config/smalt/credentials.json
    (readable by you alone), which every later command to that server uses."""
    import os

    from smalt.client import MLClient
    from smalt.client.credentials import request_token, store_login
    from smalt.errors import ConfigurationError

    server = url or os.environ.get("SMALT_URL")
    if not server:
        raise ConfigurationError("Which server? Pass --url or set SMALT_URL.")
    if token is None:
        name = username or (input("User: ") if sys.stdin.isatty() else "")
        secret = _password(password_stdin, confirm=False)
        grant = {"grant_type": "password", "username": name, "password": secret}
        if service_principal:
            grant = {"grant_type": "client_credentials", "client_id": name, "client_secret": secret,
                     "tenant_id": tenant or ""}  # fmt: skip
        access = str(request_token(server, grant)["access_token"])
        with MLClient(url=server, token=access) as client:
            me = client.principals.get(name)
            label = f"login-{socket.gethostname()[:30]}-{int(time.time())}"
            made = client.principals.create_token(me.name, label, expires_in_days=expires_in_days)
        assert made.token is not None
        path = store_login(server, made.token, me.name, made.expires_at.timestamp())
        print(f"Signed in to {server} as {me.name}; a token named {label} is kept in {path}.", file=sys.stderr)
        return
    with MLClient(url=server, token=token) as client:
        client.workspaces.list()  # the token works
    path = store_login(server, token, "", None)
    print(f"Signed in to {server}; the token is kept in {path}.", file=sys.stderr)


def logout(url: Annotated[str | None, typer.Option("--url", help="The server (default: SMALT_URL).")] = None) -> None:
    """Forget the token kept for a server (it stays valid until revoked: smalt token revoke)."""
    import os

    from smalt.client.credentials import forget_login

    server = url or os.environ.get("SMALT_URL", "")
    done = forget_login(server)
    print(json.dumps({"server": server, "forgotten": done}))
