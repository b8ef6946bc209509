"""``python -m smalt.server``: serve a workspace over HTTP (what ``smalt server`` runs).

``--fd`` serves on an inherited, already listening socket: the job supervisor binds a port, gives
its address to the job, and starts this server only when the first connection arrives.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
    if args.fd is None and not token and not is_loopback(args.host):
        print(f"Error: smalt server will not listen on {args.host} without a token: anyone who can reach "
              "that address could submit jobs, which run as this machine's user.\n"
              "Hint: set SMALT_TOKEN to a long random secret (clients set the same SMALT_TOKEN), or "
              "listen on 127.0.0.1.", file=sys.stderr)  # fmt: skip
        workspace.close()
        return 2
    from smalt.services.workspaces import WorkspaceService

    held = WorkspaceService(Path(args.home).resolve() if args.home else None, primary=workspace)
    try:
        import uvicorn

        from smalt.server.app import create_app

        options = {"fd": args.fd} if args.fd is not None else {"host": args.host, "port": args.port}
        if args.fd is None:
            # Jobs submitted here start from a fork server, warm; the first need not wait for it.
            # Each workspace the server opens has its jobs reaped now and every few seconds: after a
            # restart, a job whose supervisor died meanwhile is settled, never left Running.
            held.on_open.append(_serve_jobs)
            _serve_jobs(workspace)
            print(f"smalt server: workspace {workspace.path} at http://{args.host}:{args.port}", file=sys.stderr)
        uvicorn.run(
            create_app(workspace, token=token, held=held),
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
