"""Building a resolved environment as a virtual environment with uv, once per digest.

Layout under the cache folder::

    <cache_dir>/<digest>/                      a ready environment (a relocatable venv)
    <cache_dir>/<digest>/.smalt-environment.json   written last: the environment is ready
    <cache_dir>/<digest>.lock                  held while the digest is being built
    <cache_dir>/.<digest>.build-<random>/      a build in progress

A build happens in the temporary folder and is renamed to ``<digest>`` only when it succeeded, so
a failed or interrupted build leaves nothing that looks built. The lock makes two jobs that need
the same environment at the same time build it once: the second waits and then reuses it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from filelock import FileLock, Timeout

from smalt.environments.resolve import ResolvedEnvironment
from smalt.errors import BackendError, ConfigurationError

MARKER = ".smalt-environment.json"
REQUIREMENTS = "smalt-requirements.txt"

_TAIL_LINES = 20
_NOT_FOUND = re.compile(r"Because (\S+) was not found in the package registry")
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")
#: The lines of ``uv pip install`` that end a step: what the build does next.
_UV_STEP = re.compile(r"^(Resolved|Prepared|Installed) (\d+) packages? in ")

#: Told each phase of a build as it starts (``"resolving 3 requirements"``); see BuildProgress.
Progress = Callable[[str], None]


def ensure(resolved: ResolvedEnvironment, cache_dir: Path, log: TextIO, progress: Progress | None = None) -> Path:
    """Build ``resolved`` under ``cache_dir`` unless it is built already; the venv's Python executable.

    The environment is a virtual environment created by ``uv venv`` with the requested Python, or
    smalt's own version when none is requested, and the requirements installed by ``uv pip install
    --compile-bytecode`` (with pip itself seeded, as Azure ML's conda environments have it, when
    there are any). When uv
    can neither find nor install the requested Python, the closest installed one is used and a
    warning naming both versions is written to ``log``. Everything uv prints goes to ``log``, and
    so do ``resolved.warnings`` (on every call: each job's log says what differs from Azure ML).

    A ready environment is found by its marker file and returned at once, without running uv, and
    ``progress`` is not called; otherwise it is told each phase: waiting for another process's
    build, creating the virtual environment, resolving, downloading, installing, compiling.
    Raises BackendError when uv fails (with the end of its output), ConfigurationError when uv is
    missing.
    """
    final = cache_dir / resolved.digest
    python = _python_in(final)
    for warning in resolved.warnings:
        _say(log, f"Warning: {warning}")
    if _is_ready(final, python):
        _reuse(final, "is ready", log)
        return python
    cache_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cache_dir / f"{resolved.digest}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        _say(log, f"Waiting for another process that is building environment {resolved.digest[:12]}")
        _tell(progress, "waiting for another job that is building this environment")
        lock.acquire()
    try:
        if _is_ready(final, python):
            _reuse(final, "was built meanwhile by another process", log)
            return python
        # Holding the lock, anything else under this digest is a leftover of a build that died.
        for leftover in [*cache_dir.glob(f".{resolved.digest}.build-*"), final]:
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
        _build(resolved, cache_dir, final, log, progress)
    finally:
        lock.release()
    return python


def _reuse(final: Path, how: str, log: TextIO) -> None:
    _say(log, f"Environment {final.name[:12]} {how}: {final}")
    for warning in _marker(final).get("warnings", []):
        _say(log, f"Warning: {warning}")


def _build(resolved: ResolvedEnvironment, cache_dir: Path, final: Path, log: TextIO,
           progress: Progress | None) -> None:  # fmt: skip
    uv = _uv()
    started = datetime.now(UTC)
    _say(log, f"Building environment {resolved.digest[:12]}: {resolved.description}")
    work = cache_dir / f".{resolved.digest}.build-{secrets.token_hex(4)}"
    try:
        _tell(progress, "creating a virtual environment" + (" with pip" if resolved.requirements else ""))
        warnings = _create_venv(uv, resolved.python, bool(resolved.requirements), work, cache_dir, log)
        if resolved.requirements:
            requirements = work / REQUIREMENTS
            requirements.write_text("".join(f"{r}\n" for r in resolved.requirements), encoding="utf-8")
            command = [uv, "pip", "install", "--python", str(_python_in(work)), "--compile-bytecode"]
            _tell(progress, f"resolving {_count(len(resolved.requirements), 'requirement')}")
            watch = _install_steps(progress) if progress is not None else None
            code, tail = _run([*command, "-r", str(requirements)], cache_dir, log, watch)
            if code != 0:
                raise _install_failed(resolved, code, tail)
        marker = {
            "digest": resolved.digest,
            "python_requested": resolved.python,
            "python": _venv_version(work),
            "requirements": resolved.requirements,
            "warnings": warnings,
            "built_at": started.isoformat(),
        }
        (work / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    seconds = (datetime.now(UTC) - started).total_seconds()
    _say(log, f"Environment {resolved.digest[:12]} built in {seconds:.1f} s: {final}")


def _create_venv(uv: str, python: str | None, seed: bool, work: Path, cwd: Path, log: TextIO) -> list[str]:
    """``uv venv`` at ``work``; falls back to the closest installed Python. The warnings it gave."""
    # --relocatable: the folder is renamed into place after the build, and scripts must still run.
    # --seed (pip) only where packages are installed: those need the index anyway, while an
    # environment without packages then builds offline, in a fraction of a second.
    command = [uv, "venv", "--relocatable", "--no-project", *(["--seed"] if seed else [])]
    code, tail = _run([*command, "--python", python or sys.executable, str(work)], cwd, log)
    if code == 0:
        return []
    if python is None or (work / "pyvenv.cfg").exists():
        # Either no Python was asked for, or the interpreter was found and something later failed
        # (installing pip, often for want of the network): another interpreter would not help.
        raise BackendError(
            f"Creating a virtual environment failed (uv venv exited with {code}):\n{_indent(tail)}",
            hint="check the network (pip is installed from the package index) and smalt's own interpreter; "
            "the uv output is in the job log",
        )
    shutil.rmtree(work, ignore_errors=True)
    path, version = _closest_python(uv, python, cwd)
    warning = (
        f"Python {python} was requested but uv could neither find nor install it; "
        f"the environment uses Python {version} ({path}), the closest one installed"
    )
    _say(log, f"Warning: {warning}")
    code, tail = _run([*command, "--python", path, str(work)], cwd, log)
    if code != 0:
        raise BackendError(
            f"Creating a virtual environment with Python {version} failed (uv venv exited with {code}):\n"
            f"{_indent(tail)}",
            hint=f"install Python {python} (uv python install {python}); the uv output is in the job log",
        )
    return [warning]


def _closest_python(uv: str, requested: str, cwd: Path) -> tuple[str, str]:
    """The installed CPython nearest to ``requested`` (smalt's own interpreter at least)."""
    own = ".".join(map(str, sys.version_info[:3]))
    candidates: list[tuple[str, tuple[int, int, int]]] = [(sys.executable, sys.version_info[:3])]
    listed = subprocess.run(
        [uv, "python", "list", "--only-installed", "--output-format", "json", "--color", "never"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_uv_env(),
        check=False,
    )
    try:
        entries: Any = json.loads(listed.stdout) if listed.returncode == 0 else []
    except json.JSONDecodeError:
        entries = []
    for entry in entries if isinstance(entries, list) else []:
        parts = entry.get("version_parts") or {}
        if (
            entry.get("implementation") == "cpython"
            and entry.get("variant", "default") == "default"
            and entry.get("path")
        ):
            candidates.append((entry["path"], (parts.get("major", 0), parts.get("minor", 0), parts.get("patch", 0))))
    match = _VERSION.search(requested)
    if match is None:
        return sys.executable, own
    wanted = tuple(int(g) if g is not None else -1 for g in match.groups())

    def distance(candidate: tuple[str, tuple[int, int, int]]) -> tuple[int, int, int, int]:
        version = candidate[1]
        major = abs(version[0] - wanted[0]) * 1000
        minor = abs(version[1] - wanted[1]) if wanted[1] >= 0 else 0
        patch = abs(version[2] - wanted[2]) if wanted[2] >= 0 else 0
        return major, minor, patch, -version[1]  # ties go to the newer Python

    path, version = min(candidates, key=distance)
    return path, ".".join(map(str, version))


def _install_failed(resolved: ResolvedEnvironment, code: int, tail: list[str]) -> BackendError:
    output = "\n".join(tail)
    # uv wraps its explanation to the terminal's width, with "|" in the margin: read it as one line.
    missing = _NOT_FOUND.search(re.sub(r"[\s|│]+", " ", output))
    if missing is not None:
        what = f"package '{missing[1]}' was not found in the package index"
        hint = (
            f"check the spelling of '{missing[1]}' in the environment's conda file or pip requirements "
            "(conda and PyPI names can differ, e.g. pytorch is torch on PyPI)"
        )
    elif "No solution found" in output:
        what = "the requirements cannot be satisfied together"
        hint = f"loosen the version pins; some versions may not exist, or not for Python {resolved.python or 'this'}"
    elif re.search(r"error sending request|dns error|Failed to fetch|timed out", output, re.IGNORECASE):
        what = "the package index could not be reached"
        hint = "check the network, or point uv at a reachable index (UV_INDEX_URL, UV_FIND_LINKS)"
    else:
        what = f"uv pip install exited with {code}"
        hint = "the whole uv output is in the job log"
    return BackendError(
        f"Building environment {resolved.digest[:12]} ({resolved.description}) failed: {what}.\n"
        f"The end of uv's output:\n{_indent(tail)}",
        hint=hint,
    )


def _tell(progress: Progress | None, phase: str) -> None:
    if progress is not None:
        progress(phase)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def _install_steps(progress: Progress) -> Callable[[str], None]:
    """Reads uv's output as it comes: after each step it names, what uv does next."""

    def watch(line: str) -> None:
        step = _UV_STEP.match(line)
        if step is None:
            return
        packages = _count(int(step[2]), "package")
        if step[1] == "Resolved":
            progress(f"resolved {packages}; downloading and building what uv has not cached")
        elif step[1] == "Prepared":  # the packages uv had to download or build, not all of them
            progress(f"installing ({packages} downloaded or built)")
        else:
            progress(f"installed {packages}; compiling bytecode")

    return watch


def _indent(lines: list[str]) -> str:
    return "".join(f"  | {line}\n" for line in lines)


def _run(command: list[str], cwd: Path, log: TextIO,
         watch: Callable[[str], None] | None = None) -> tuple[int, list[str]]:  # fmt: skip
    """Run uv with its output copied to ``log`` (and each line shown to ``watch``); the exit
    status and the last lines of output."""
    _say(log, "$ " + " ".join(["uv", *command[1:]]))
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        cwd=cwd,
        env=_uv_env(),
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            log.write(line)
            tail.append(line.rstrip("\n"))
            if watch is not None:
                watch(line)
        code = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        process.stdout.close()
        log.flush()
    return code, list(tail)


def _uv() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError) as exc:
        raise ConfigurationError(
            "uv is needed to build job environments and was not found", hint="pip install uv"
        ) from exc


def _uv_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "UV_PYTHON")}
    env["NO_COLOR"] = "1"
    env["UV_NO_PROGRESS"] = "1"
    return env


def _python_in(venv: Path) -> Path:
    return venv / "Scripts" / "python.exe" if os.name == "nt" else venv / "bin" / "python"


def _is_ready(venv: Path, python: Path) -> bool:
    # python.exists() follows the link: a venv whose base interpreter went away is not ready.
    return (venv / MARKER).is_file() and python.exists()


def _marker(venv: Path) -> dict[str, Any]:
    try:
        data = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _venv_version(venv: Path) -> str | None:
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"^version_info\s*=\s*(\S+)", text, re.MULTILINE)
    return found[1] if found else None


def _say(log: TextIO, line: str) -> None:
    log.write(line + "\n")
    log.flush()


def installed_packages(python: Path) -> tuple[str | None, list[str]]:
    """The Python version of a built environment and its packages as ``name==version``, sorted.

    Read from the ``*.dist-info`` folders of its site-packages: no process is started.
    """
    venv = python.parent.parent
    packages: set[str] = set()
    for info in [*venv.glob("lib*/python*/site-packages/*.dist-info"), *venv.glob("Lib/site-packages/*.dist-info")]:
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        if version:
            packages.add(f"{name.lower().replace('_', '-')}=={version}")
    return _venv_version(venv), sorted(packages)
