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

import os
from pathlib import Path

from smalt.errors import ConfigurationError
from smalt.execution.detached import crash_point
from smalt.services import audit
from smalt.services.workspace import WorkspaceContext
from smalt.store import SecretBox
from smalt.store.publish import publish_file
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
            audit.append(tx, audit.entry(context, SYNC_KEYS, f"/workspaces/{context.name}", workspace=context.name))
        crash_point("keys.resealed")
        _replace(folder / PREVIOUS_KEY, (folder / KEY_FILE).read_bytes())
        crash_point("keys.previous-kept")
        os.replace(folder / NEXT_KEY, folder / KEY_FILE)
    return counts


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole (mode 0600), replacing what is there."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
