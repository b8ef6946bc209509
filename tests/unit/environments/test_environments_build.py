"""Building environments with uv, without the network: environments with no packages.

Builds that install packages from PyPI are in tests/integration/test_environment_build.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from smalt.entities import InlineEnvironment
from smalt.environments import ResolvedEnvironment, ensure, resolve
from smalt.environments.build import MARKER
from smalt.errors import BackendError

OWN = f"{sys.version_info.major}.{sys.version_info.minor}"


def version_of(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_base_environment_is_an_isolated_venv_built_once(tmp_path: Path) -> None:
    cache = tmp_path / "envs"
    log = io.StringIO()
    python = ensure(resolve(None), cache, log)
    assert python == cache / resolve(None).digest / "bin" / "python"
    version, prefix = version_of(python).split()
    assert (version, Path(prefix)) == (OWN, cache / resolve(None).digest)
    assert "$ uv venv" in log.getvalue()
    # It is isolated: smalt's own packages are not importable from it.
    done = subprocess.run([str(python), "-c", "import pydantic"], capture_output=True, text=True)
    assert done.returncode != 0

    again = io.StringIO()
    started = time.perf_counter()
    assert ensure(resolve(None), cache, again) == python
    assert time.perf_counter() - started < 1
    assert "$ uv" not in again.getvalue() and "is ready" in again.getvalue()


def test_a_ready_environment_records_what_was_built(tmp_path: Path) -> None:
    tmp_path = tmp_path / "envs"
    env = resolve(InlineEnvironment(conda_file={"dependencies": [f"python={OWN}"]}))
    python = ensure(env, tmp_path, io.StringIO())
    marker = json.loads((python.parents[1] / MARKER).read_text())
    assert marker["digest"] == env.digest and marker["python_requested"] == OWN
    assert marker["python"].startswith(OWN + ".")
    assert sorted(p.name for p in tmp_path.iterdir()) == [env.digest, f"{env.digest}.lock"]


def test_a_python_uv_cannot_find_falls_back_to_the_closest_with_a_warning(tmp_path: Path) -> None:
    env = resolve(InlineEnvironment(conda_file={"dependencies": ["python=3.99"]}))
    log = io.StringIO()
    python = ensure(env, tmp_path, log)
    assert version_of(python).split()[0].startswith("3.")
    warning = next(line for line in log.getvalue().splitlines() if line.startswith("Warning: Python 3.99"))
    used = version_of(python).split()[0]
    assert f"uses Python {used}" in warning
    # The warning is repeated for every job that reuses the environment.
    again = io.StringIO()
    ensure(env, tmp_path, again)
    assert "Warning: Python 3.99" in again.getvalue()


def test_a_failed_build_leaves_nothing_that_looks_built(tmp_path: Path) -> None:
    tmp_path = tmp_path / "envs"
    broken = ResolvedEnvironment("f" * 64, None, ["this is not a requirement !!"], [], "broken on purpose")
    log = io.StringIO()
    with pytest.raises(BackendError) as caught:
        ensure(broken, tmp_path, log)
    assert "Building environment ffffffffffff" in str(caught.value)
    assert "this is not a requirement" in str(caught.value)  # the end of uv's output
    assert caught.value.hint
    assert [p.name for p in tmp_path.iterdir()] == [f"{'f' * 64}.lock"]
    assert "$ uv pip install" in log.getvalue()


def test_leftovers_of_a_build_that_died_are_cleared(tmp_path: Path) -> None:
    env = resolve(None)
    half_built = tmp_path / env.digest
    (half_built / "bin").mkdir(parents=True)  # renamed in place but never marked ready
    (tmp_path / f".{env.digest}.build-dead").mkdir()
    python = ensure(env, tmp_path, io.StringIO())
    assert python.exists() and (half_built / MARKER).is_file()
    assert not (tmp_path / f".{env.digest}.build-dead").exists()


def test_two_jobs_building_the_same_environment_build_it_once(tmp_path: Path) -> None:
    env = resolve(InlineEnvironment(image="python:3.11-slim"))
    logs = [io.StringIO() for _ in range(4)]
    results: list[Path | BaseException] = []

    def build(log: io.StringIO) -> None:
        try:
            results.append(ensure(env, tmp_path, log))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=build, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [tmp_path / env.digest / "bin" / "python"] * 4
    assert sum(log.getvalue().count("$ uv venv") for log in logs) == 1
    # Every job's log says that the image is not used, built or reused.
    assert all("image 'python:3.11-slim' is not run on local compute" in log.getvalue() for log in logs)
