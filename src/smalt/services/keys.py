"""Rotating the key that encrypts a workspace's secrets (``smalt workspace sync-keys``, Azure's
``az ml workspace sync-keys``): datastore credentials, connection secrets and endpoint keys are
sealed again with a new key, in one transaction.

The steps, each safe to be killed after (store/secrets.py says why every secret stays readable):
1. the new key is written to ``secret.key.next`` (a rotation that died before keeps the one it made);
2. every sealed value is decrypted and sealed with the new key, in one transaction;
3. the old key is kept as ``secret.key.previous``;
4. ``secret.key.next`` is renamed to ``secret.key``.
Running it again after a crash finishes what was begun.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from smalt.errors import ConfigurationError
from smalt.execution.detached import crash_point
from smalt.services import audit
from smalt.services.workspace import WorkspaceContext
from smalt.store import SecretBox
from smalt.store.publish import publish_file, replace_file
from smalt.store.secrets import KEY_ENV, KEY_FILE, NEXT_KEY, PREVIOUS_KEY

#: The action it is audited under, as Azure names it.
SYNC_KEYS = "Microsoft.MachineLearningServices/workspaces/resynckeys/action"


def rotate(context: WorkspaceContext) -> dict[str, int]:
    """Seal every secret of the workspace with a new key; how many of each kind were sealed again."""
    if os.environ.get(KEY_ENV):
        raise ConfigurationError(
            f"This workspace's key comes from {KEY_ENV}, which smalt cannot change.",
            hint=f"unset {KEY_ENV} to use the workspace's own secret.key, which sync-keys rotates",
        )
    from cryptography.fernet import Fernet
    from filelock import FileLock

    folder = context.path
    with FileLock(str(folder / "secret.key.lock")):
        old = SecretBox.for_workspace(folder)  # every key there: the current, a pending next, the previous
        publish_file(folder / NEXT_KEY, Fernet.generate_key(), mode=0o600)  # kept if a rotation left one
        new = SecretBox((folder / NEXT_KEY).read_bytes().strip())
        crash_point("keys.next-written")
        counts = {"datastores": 0, "connections": 0, "endpoints": 0}
        with context.store.transaction(write=True) as tx:
            for kind, repository in (("datastores", tx.datastores), ("connections", tx.connections)):
                for record in repository.list():
                    if record.secrets:
                        repository.set_secrets(record.name, old.reseal(record.secrets, new))
                        counts[kind] += 1
            for endpoint in tx.endpoints.list():
                if endpoint.secrets:
                    tx.endpoints.set(endpoint.name, secrets=old.reseal(endpoint.secrets, new))
                    counts["endpoints"] += 1
                # A deployment's connection secrets, kept sealed for its router's restarts.
                for deployment in tx.endpoints.deployments(endpoint.name):
                    runtime = _resealed(deployment.runtime, old, new)
                    if runtime is not None:
                        tx.endpoints.set_deployment(endpoint.name, deployment.name, runtime=runtime)
            audit.append(tx, audit.entry(context, SYNC_KEYS, f"/workspaces/{context.name}", workspace=context.name))
        crash_point("keys.resealed")
        # The routers' copies (endpoints/<name>/router.json): sealed again too, or the next rotation
        # would leave them unreadable (until then, secret.key.previous opens them).
        for config in sorted((folder / "endpoints").glob("*/router.json")):
            _reseal_router(config, old, new)
        replace_file(folder / PREVIOUS_KEY, (folder / KEY_FILE).read_bytes())
        crash_point("keys.previous-kept")
        os.replace(folder / NEXT_KEY, folder / KEY_FILE)
    return counts


def _resealed(runtime: dict[str, Any], old: SecretBox, new: SecretBox) -> dict[str, Any] | None:
    """``runtime`` with its launch's sealed environment sealed with ``new``; None if it has none."""
    sealed = (runtime.get("launch") or {}).get("sealed_env")
    if not sealed:
        return None
    launch = {**runtime["launch"], "sealed_env": {**sealed, "token": old.reseal(sealed["token"], new)}}
    return {**runtime, "launch": launch}


def _reseal_router(config: Path, old: SecretBox, new: SecretBox) -> None:
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return  # a router's file that cannot be read is written again when the router next starts
    changed = False
    for spec in (data.get("deployments") or {}).values():
        runtime = _resealed({"launch": spec.get("launch")}, old, new)
        if runtime is not None:
            spec["launch"], changed = runtime["launch"], True
    if changed:
        replace_file(config, json.dumps(data).encode())
