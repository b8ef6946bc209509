"""``python -m smalt.server``: serve a workspace over HTTP (what ``smalt server`` runs).

``--fd`` serves on an inherited, already listening socket: the job supervisor binds a port, gives
its address to the job, and starts this server only when the first connection arrives.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smalt.services.workspace import WorkspaceContext


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smalt server", description=__doc__)
    parser.add_argument("--workspace", required=True, help="the workspace folder")
    parser.add_argument("--home", default=None,
                        help="a folder of named workspaces to hold too (<home>/<name>), created over REST")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--fd", type=int, default=None, help="serve on this inherited listening socket")
    parser.add_argument("--token-env", default=None,
                        help="the environment variable holding the bearer token every request must carry")  # fmt: skip
    parser.add_argument("--job", default=None, help="serve this job's own tracking: its token is scoped to its run")
    parser.add_argument("--auth", action=argparse.BooleanOptionalAction, default=None,
                        help="require authentication (default: when the server has identities or a token)")  # fmt: skip
    parser.add_argument("--ssl-certfile", default=None)
    parser.add_argument("--ssl-keyfile", default=None)
    parser.add_argument("--max-request-mb", type=int, default=64)
    parser.add_argument("--max-upload-gb", type=int, default=50)
    args = parser.parse_args(argv)

    from smalt.errors import SmaltError
    from smalt.services.workspace import CONFIG_FILE, default_name, open_workspace, served_blobstore

    path = Path(args.workspace)
    # A workspace made here keeps its blobs as every workspace the server makes later does
    # (services/workspaces.py); one that exists keeps its own.
    blobs = served_blobstore(default_name(path)) if not (path / CONFIG_FILE).exists() else None
    try:
        workspace = open_workspace(path, create=True, blobstore_url=blobs)
    except SmaltError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    token = os.environ.pop(args.token_env, None) if args.token_env else None
    from smalt.server.access import AccessControl, Limits
    from smalt.services.identities import IdentityService

    enabled = args.auth if args.auth is not None else bool(token) or IdentityService(workspace).any()
    if args.fd is None and not enabled and not is_loopback(args.host):
        print(f"Error: smalt server will not listen on {args.host} without authentication: anyone who can reach "
              "that address could submit jobs, which run as this machine's user.\n"
              "Hint: create an Owner first (smalt user create --name admin --role Owner, on this machine), or set "
              "SMALT_TOKEN to a long random secret, or listen on 127.0.0.1.", file=sys.stderr)  # fmt: skip
        workspace.close()
        return 2
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        print("Error: --ssl-certfile and --ssl-keyfile go together.", file=sys.stderr)
        workspace.close()
        return 2
    limits = Limits(request_bytes=args.max_request_mb << 20, upload_bytes=args.max_upload_gb << 30)
    access = AccessControl(workspace, enabled=enabled, server_token=token, limits=limits, job=args.job)
    from smalt.services.workspaces import WorkspaceService

    held = WorkspaceService(Path(args.home).resolve() if args.home else None, primary=workspace)
    try:
        import uvicorn

        from smalt.server.app import create_app

        options: dict[str, Any] = {"fd": args.fd} if args.fd is not None else {"host": args.host, "port": args.port}
        if args.ssl_certfile:
            options.update(ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
        if args.fd is None:
            # Jobs submitted here start from a fork server, warm; the first need not wait for it.
            # Each workspace the server opens has its jobs reaped now and every few seconds: after a
            # restart, a job whose supervisor died meanwhile is settled, never left Running.
            held.on_open.append(_serve_jobs)
            _serve_jobs(workspace)
            scheme = "https" if args.ssl_certfile else "http"
            state = "on" if enabled else "off (loopback, no identities)"
            print(f"smalt server: workspace {workspace.path} at {scheme}://{args.host}:{args.port}; "
                  f"authentication {state}", file=sys.stderr)  # fmt: skip
        uvicorn.run(
            create_app(workspace, held=held, access=access),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            **options,
        )
    finally:
        held.close()
        workspace.close()
    return 0


def _serve_jobs(workspace: WorkspaceContext) -> None:
    from smalt.execution import detached
    from smalt.services.jobs import JobService

    detached.warm_up(workspace.path)
    JobService(workspace).reap_stale()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reached only from this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve to anything


if __name__ == "__main__":
    sys.exit(main())
