"""Starting, watching and stopping an endpoint's processes: its router and its instances.

Every process starts in its own session, detached from the command that started it, with its
output appended to a log file, so that it outlives that command. A process is known by its pid
and start time together, so a pid reused after a restart is never taken for it.

The router supervises the instances it routes to and starts a dead one again (see
``smalt.serving.router``), so the pid the endpoint service recorded for an instance may be out of
date. The router writes what it knows to ``instances.json`` beside its configuration
(:func:`read_status`): per instance socket, the process that serves it now and its state. That
file is the way the service finds every process of an endpoint, to report on it or to stop it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smalt.entities.environment import inherited_variables
from smalt.errors import BackendError

WORKER = Path(__file__).with_name("worker.py")
#: The router's account of its instances, beside its configuration.
STATUS_FILE = "instances.json"


@dataclass(frozen=True)
class Process:
    pid: int
    started: float

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.started}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Process | None:
        return cls(int(data["pid"]), float(data["started"])) if data else None

    def alive(self) -> bool:
        import psutil

        try:
            process = psutil.Process(self.pid)
            return bool(abs(process.create_time() - self.started) < 1 and process.status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it has not finished its requests and exited within ``grace_s``."""
        stop_processes([self], grace_s)


def stop_processes(processes: Iterable[Process], grace_s: float = 30.0) -> None:
    """:meth:`Process.stop` for many at once: all are asked to stop, then all are waited for.

    A process counts as stopped once it is a zombie: it is no child of this one but init's, whose
    reaping may lag by seconds, and nothing is left to wait for.
    """
    import psutil

    def signal_all(processes: list[Process], signum: int) -> list[Process]:
        sent = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                handle = psutil.Process(process.pid)
                if abs(handle.create_time() - process.started) < 1:
                    handle.send_signal(signum)  # psutil checks that the pid was not reused meanwhile
                    sent.append(process)
        return sent

    def wait(processes: list[Process], timeout_s: float) -> list[Process]:
        deadline = time.monotonic() + timeout_s
        while processes and time.monotonic() < deadline:
            time.sleep(0.02)
            processes = [p for p in processes if p.alive()]
        return processes

    left = wait(signal_all([p for p in set(processes) if p.alive()], signal.SIGTERM), grace_s)
    wait(signal_all(left, signal.SIGKILL), 5)


def _spawn(command: list[str], log: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Process:
    """Start ``command`` as an orphan in a session of its own, its output appended to ``log``.

    A shell starts it in the background and exits at once: the process is never this one's
    child, so nothing here has to wait for it (no zombie, no Popen left running), and it lives
    on when this command ends.
    """
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    launcher = 'log="$1"; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
    done = subprocess.run(
        ["/bin/sh", "-c", launcher, "sh", str(log), *command], capture_output=True, text=True, env=env, cwd=cwd,
        start_new_session=True, check=False,
    )  # fmt: skip
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise BackendError(f"Could not start {command[0]}: {done.stderr.strip() or done.stdout.strip()}")
    pid = int(done.stdout)
    try:
        return Process(pid, psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:
        return Process(pid, 0.0)  # it exited already; alive() says so and its log says why


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def socket_path(*parts: str) -> str:
    """A short Unix socket path for an instance (Unix sockets allow about 100 characters)."""
    folder = Path(tempfile.gettempdir()) / f"smalt-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return str(folder / f"{hashlib.sha256('/'.join(parts).encode()).hexdigest()[:20]}.sock")


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- the router ---------------------------------------------------------------------------------


def start_router(config: Path, log: Path, *, timeout_s: float = 30.0) -> Process:
    """Start ``smalt.serving.router`` on ``config``; return once it answers ``GET /``."""
    settings = json.loads(config.read_text())
    process = _spawn([sys.executable, "-m", "smalt.serving.router", str(config)], log)
    url = f"http://{settings['host']}:{settings['port']}/"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return process
        except (urllib.error.URLError, OSError):
            pass
        if not process.alive():
            raise BackendError(f"The router of endpoint '{settings['endpoint']}' stopped at start:\n{tail(log)}")
        time.sleep(0.05)
    process.stop(1)
    raise BackendError(f"The router of endpoint '{settings['endpoint']}' did not answer within {timeout_s:.0f} s.")


def reload_router(host: str, port: int, admin_token: str) -> int:
    """Make the router read its configuration again; the version it now routes by."""
    request = urllib.request.Request(
        f"http://{host}:{port}/-/reload", data=b"", method="POST", headers={"x-smalt-admin": admin_token}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(json.loads(answer.read())["version"])
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise BackendError(f"The router on port {port} did not take its new configuration: {exc}") from exc


def invoke(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float = 60.0
) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return answer.status, answer.read(), dict(answer.headers.items())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers.items())
    except (urllib.error.URLError, OSError) as exc:
        raise BackendError(f"Nothing answers at {url}: {exc}") from exc


# -- instances ----------------------------------------------------------------------------------


def instance_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of an instance: this process's, less the platform's settings and secrets
    (``inherited_variables``) and MLflow's, plus ``extra``."""
    env = {k: v for k, v in inherited_variables().items() if not k.startswith("MLFLOW_")}
    env.update(extra)
    return env


@dataclass(frozen=True)
class InstanceSpec:
    python: str
    socket: str
    log: Path
    cwd: Path
    env: dict[str, str]
    code: str | None = None
    script: str | None = None
    mlflow_model: str | None = None

    def launch(self, extra_env: dict[str, str], *, sealed: dict[str, str] | None = None) -> dict[str, Any]:
        """What every instance of a generation shares, as JSON: enough to start one again, given
        its socket and log. Only ``extra_env`` of the environment is kept (it may hold secrets of
        the shell that started the generation, which the records must not keep); connection secrets
        travel ``sealed`` (the token and the workspace folder whose key opens it)."""
        shared = {k: v for k, v in asdict(self).items() if k not in ("socket", "log", "env")}
        return {**shared, "cwd": str(self.cwd), "env": extra_env, **({"sealed_env": sealed} if sealed else {})}

    @classmethod
    def from_launch(cls, launch: dict[str, Any], socket: str, log: str) -> InstanceSpec:
        launch = dict(launch)
        env = dict(launch["env"])
        sealed = launch.pop("sealed_env", None)
        if sealed:
            env.update(unseal(sealed["token"], Path(sealed["folder"])))
        return cls(**{**launch, "cwd": Path(launch["cwd"]), "env": instance_env(env),
                      "socket": socket, "log": Path(log)})  # fmt: skip


def unseal(token: str, folder: Path) -> dict[str, str]:
    """Secrets the services sealed with the workspace's key (store/secrets.py keeps the files: the
    key, one pending and the one before a rotation; or SMALT_SECRET_KEY)."""
    from cryptography.fernet import Fernet, MultiFernet

    env_key = os.environ.get("SMALT_SECRET_KEY")
    names = ("secret.key", "secret.key.next", "secret.key.previous")
    files = [folder / name for name in names if (folder / name).exists()]
    keys = [env_key.encode()] if env_key else [file.read_bytes().strip() for file in files]
    value = json.loads(MultiFernet([Fernet(k) for k in keys]).decrypt(token.encode()))
    return {str(k): str(v) for k, v in value.items()}


def start_instance(spec: InstanceSpec) -> Process:
    command = [spec.python, str(WORKER), "--socket", spec.socket]
    if spec.script:
        command += ["--code", str(spec.code), "--script", spec.script]
    else:
        assert spec.mlflow_model is not None
        command += ["--mlflow-model", spec.mlflow_model]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(spec.socket)
    return _spawn(command, spec.log, env=spec.env, cwd=spec.cwd)


def wait_ready(instances: list[tuple[Process, InstanceSpec]], timeout_s: float) -> str | None:
    """Wait until every instance listens; None, or why one did not (with its log's tail)."""
    deadline = time.monotonic() + timeout_s
    waiting = list(instances)
    while waiting:
        process, spec = waiting[0]
        if os.path.exists(spec.socket):
            waiting.pop(0)
            continue
        if not process.alive():
            return f"instance {Path(spec.log).stem} exited during init():\n{tail(spec.log)}"
        if time.monotonic() > deadline:
            return f"instance {Path(spec.log).stem} was not ready within {timeout_s:.0f} s:\n{tail(spec.log)}"
        time.sleep(0.05)
    return None


# -- the router's account of its instances ----------------------------------------------------


def read_status(folder: Path) -> dict[str, dict[str, Any]]:
    """What the router of the endpoint in ``folder`` last wrote of its instances, by socket:
    ``deployment``, ``pid``, ``started``, ``state`` (``Running`` or ``Restarting``), ``restarts``
    and ``retired`` (taken out of the routing table; listed while its process lives)."""
    try:
        status = json.loads((folder / STATUS_FILE).read_text())
        instances = status["instances"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return instances if isinstance(instances, dict) else {}


def write_status(path: Path, instances: dict[str, dict[str, Any]]) -> None:
    """Replace the status file at once, so that a reader never sees half of it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps({"instances": instances}, indent=1))
    os.replace(temporary, path)
