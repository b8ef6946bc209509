"""``smalt online-endpoint <verb>`` and ``smalt online-deployment <verb>``, as ``az ml`` has them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smalt.cli import context
from smalt.cli.assets import FileOpt, OutputOpt, QueryOpt, SetOpt, _entity_from
from smalt.cli.output import emit

endpoint_app = typer.Typer(help="Online endpoints: a stable, authenticated scoring address.", no_args_is_help=True)
deployment_app = typer.Typer(help="Deployments behind an online endpoint.", no_args_is_help=True)

EndpointName = Annotated[str, typer.Option("--name", "-n", help="Endpoint name.")]
OptEndpointName = Annotated[str | None, typer.Option("--name", "-n", help="Endpoint name.")]
DeploymentName = Annotated[str, typer.Option("--name", "-n", help="Deployment name.")]
OptDeploymentName = Annotated[str | None, typer.Option("--name", "-n", help="Deployment name.")]
EndpointOf = Annotated[str, typer.Option("--endpoint-name", "-e", help="Endpoint name.")]
OptEndpointOf = Annotated[str | None, typer.Option("--endpoint-name", "-e", help="Endpoint name.")]
NoWait = Annotated[bool, typer.Option("--no-wait", help="Accepted for az ml; smalt always waits.")]
Traffic = Annotated[str | None, typer.Option("--traffic", "-r", help='Weights: "blue=90 green=10".')]
Mirror = Annotated[str | None, typer.Option("--mirror-traffic", help='Mirrored shares: "green=20".')]

_ENDPOINT_COLUMNS = ("name", "auth_mode", "traffic", "mirror_traffic", "scoring_uri", "provisioning_state", "state")
_DEPLOYMENT_COLUMNS = ("name", "endpoint_name", "model", "instance_count", "provisioning_state")


def _weights(text: str | None, field: str = "traffic") -> dict[str, int] | None:
    """``"blue=90 green=10"`` as a mapping; the endpoint checks the weights when it takes them."""
    if text is None:
        return None
    from smalt.entities.endpoint import parse_weights

    hint = f"--{field.replace('_', '-')}"
    try:
        weights: dict[str, str] = parse_weights(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from exc
    if not all(weight.strip().isdigit() for weight in weights.values()):
        raise typer.BadParameter(f"{text!r}: write weights as 'blue=90 green=10'", param_hint=hint)
    return {name: int(weight) for name, weight in weights.items()}


@endpoint_app.command("create")
def endpoint_create(
    file: FileOpt = None, name: OptEndpointName = None,
    auth_mode: Annotated[str | None, typer.Option("--auth-mode", help="key or aml_token.")] = None,
    set_: SetOpt = None, output: OutputOpt = None, query: QueryOpt = None, no_wait: NoWait = False,
) -> None:  # fmt: skip
    """Create an online endpoint and start its router."""
    endpoint = _entity_from("online-endpoint", file, set_, {"name": name, "auth_mode": auth_mode})
    emit(context.client().online_endpoints.begin_create_or_update(endpoint).result(), output, query=query)


@endpoint_app.command("update")
def endpoint_update(
    name: OptEndpointName = None, file: FileOpt = None, traffic: Traffic = None, mirror_traffic: Mirror = None,
    set_: SetOpt = None, output: OutputOpt = None, query: QueryOpt = None, no_wait: NoWait = False,
) -> None:  # fmt: skip
    """Change an endpoint: its traffic split, mirrored traffic, tags or description."""
    client = context.client()
    if file is not None:
        endpoint = _entity_from("online-endpoint", file, set_, {"name": name})
    else:
        if name is None:
            raise typer.BadParameter("give --name (or --file)", param_hint="--name")
        current = client.online_endpoints.get(name).model_dump(exclude_none=True)
        endpoint = _entity_from("online-endpoint", None, set_, current)
    changes: dict[str, Any] = {}
    if traffic is not None:
        changes["traffic"] = _weights(traffic)
    if mirror_traffic is not None:
        changes["mirror_traffic"] = _weights(mirror_traffic, "mirror_traffic")
    if changes:
        from smalt.entities import OnlineEndpoint

        endpoint = OnlineEndpoint(**{**endpoint.model_dump(exclude_none=True), **changes})
    emit(client.online_endpoints.begin_create_or_update(endpoint).result(), output, query=query)


@endpoint_app.command("show")
def endpoint_show(name: EndpointName, output: OutputOpt = None, query: QueryOpt = None) -> None:
    """Show an endpoint: auth mode, traffic, scoring URI, state (never its keys)."""
    emit(context.client().online_endpoints.get(name), output, query=query)


@endpoint_app.command("list")
def endpoint_list(output: OutputOpt = None, query: QueryOpt = None) -> None:
    """List online endpoints."""
    emit(context.client().online_endpoints.list(), output, columns=_ENDPOINT_COLUMNS, query=query)


@endpoint_app.command("delete")
def endpoint_delete(
    name: EndpointName, yes: Annotated[bool, typer.Option("--yes", "-y", help="Accepted for az ml.")] = False,
    no_wait: NoWait = False,
) -> None:  # fmt: skip
    """Stop an endpoint's router and deployments and delete them."""
    context.client().online_endpoints.begin_delete(name).result()


@endpoint_app.command("invoke")
def endpoint_invoke(
    name: EndpointName,
    request_file: Annotated[Path, typer.Option("--request-file", "-r", help="JSON request body.")],
    deployment_name: Annotated[str | None, typer.Option("--deployment-name", "-d", help="Send to this one.")] = None,
) -> None:
    """Send a scoring request with the endpoint's credentials; print the response body."""
    sys.stdout.write(context.client().online_endpoints.invoke(name, request_file=request_file,
                                                              deployment_name=deployment_name) + "\n")  # fmt: skip


@endpoint_app.command("get-credentials")
def endpoint_get_credentials(name: EndpointName, output: OutputOpt = None, query: QueryOpt = None) -> None:
    """Print primaryKey and secondaryKey, or a new accessToken and its expiryTimeUtc."""
    emit(context.client().online_endpoints.get_keys(name), output or "json", query=query)


@endpoint_app.command("regenerate-keys")
def endpoint_regenerate_keys(
    name: EndpointName,
    key_type: Annotated[str, typer.Option("--key-type", help="primary or secondary.")] = "primary",
    no_wait: NoWait = False,
) -> None:  # fmt: skip
    """Replace one key; the other keeps working meanwhile."""
    context.client().online_endpoints.begin_regenerate_keys(name, key_type=key_type).result()


@endpoint_app.command("start")
def endpoint_start(
    name: OptEndpointName = None,
    all_: Annotated[bool, typer.Option("--all", help="Every endpoint of the workspace.")] = False,
    output: OutputOpt = None,
    query: QueryOpt = None,
) -> None:
    """Start a stopped endpoint (or --all, after a restart of the machine)."""
    client = context.client()
    if all_:
        emit(client.online_endpoints.start_all(), output, columns=_ENDPOINT_COLUMNS, query=query)
        return
    if name is None:
        raise typer.BadParameter("give --name or --all", param_hint="--name")
    emit(client.online_endpoints.begin_start(name).result(), output, query=query)


@endpoint_app.command("stop")
def endpoint_stop(name: EndpointName, output: OutputOpt = None, query: QueryOpt = None) -> None:
    """Stop an endpoint's router and instances; its records and address are kept."""
    emit(context.client().online_endpoints.begin_stop(name).result(), output, query=query)


@deployment_app.command("create")
def deployment_create(
    file: FileOpt = None, name: OptDeploymentName = None, endpoint_name: OptEndpointOf = None,
    all_traffic: Annotated[bool, typer.Option("--all-traffic", help="Send all traffic to it once ready.")] = False,
    set_: SetOpt = None, output: OutputOpt = None, query: QueryOpt = None, no_wait: NoWait = False,
) -> None:  # fmt: skip
    """Create a deployment: start its instances in its environment behind the endpoint."""
    deployment = _entity_from("online-deployment", file, set_, {"name": name, "endpoint_name": endpoint_name})
    created = context.client().online_deployments.begin_create_or_update(deployment, all_traffic=all_traffic).result()
    emit(created, output, query=query)


@deployment_app.command("update")
def deployment_update(
    file: FileOpt = None, name: OptDeploymentName = None, endpoint_name: OptEndpointOf = None,
    set_: SetOpt = None, output: OutputOpt = None, query: QueryOpt = None, no_wait: NoWait = False,
) -> None:  # fmt: skip
    """Replace a deployment's instances with new ones; no request is dropped."""
    client = context.client()
    if file is None:
        if name is None or endpoint_name is None:
            raise typer.BadParameter("give --file, or --name and --endpoint-name", param_hint="--name")
        current = client.online_deployments.get(name, endpoint_name).model_dump(exclude_none=True)
        deployment = _entity_from("online-deployment", None, set_, current)
    else:
        deployment = _entity_from("online-deployment", file, set_, {"name": name, "endpoint_name": endpoint_name})
    emit(client.online_deployments.begin_create_or_update(deployment).result(), output, query=query)


@deployment_app.command("show")
def deployment_show(
    name: DeploymentName, endpoint_name: EndpointOf, output: OutputOpt = None, query: QueryOpt = None
) -> None:
    """Show a deployment."""
    emit(context.client().online_deployments.get(name, endpoint_name), output, query=query)


@deployment_app.command("list")
def deployment_list(endpoint_name: EndpointOf, output: OutputOpt = None, query: QueryOpt = None) -> None:
    """List the deployments of an endpoint."""
    emit(context.client().online_deployments.list(endpoint_name), output, columns=_DEPLOYMENT_COLUMNS, query=query)


@deployment_app.command("delete")
def deployment_delete(
    name: DeploymentName, endpoint_name: EndpointOf,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Accepted for az ml.")] = False, no_wait: NoWait = False,
) -> None:  # fmt: skip
    """Stop a deployment's instances and delete it (it must take no traffic)."""
    context.client().online_deployments.begin_delete(name, endpoint_name).result()


@deployment_app.command("get-logs")
def deployment_get_logs(
    name: DeploymentName, endpoint_name: EndpointOf,
    lines: Annotated[int | None, typer.Option("--lines", "-l", help="Only the last N lines.")] = None,
    container: Annotated[str | None, typer.Option("--container", "-c", help="Accepted for az ml.")] = None,
) -> None:  # fmt: skip
    """Print what the deployment's instances wrote (init() tracebacks included)."""
    sys.stdout.write(context.client().online_deployments.get_logs(name, endpoint_name, lines) + "\n")
