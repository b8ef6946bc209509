"""Building real environments from PyPI with uv (needs the package index; marked slow)."""

from __future__ import annotations

import io
import re
import subprocess
import time
from pathlib import Path

import pytest

from smalt.entities import InlineEnvironment
from smalt.environments import ensure, resolve
from smalt.environments.build import MARKER
from smalt.environments.curated import known_names
from smalt.errors import BackendError

pytestmark = pytest.mark.slow


def run(python: Path, code: str) -> str:
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_an_environment_is_built_from_pypi_once_and_then_reused(tmp_path: Path) -> None:
    cache = tmp_path / "envs"
    env = resolve(
        InlineEnvironment(
            conda_file={"dependencies": ["python=3.11", "pip", {"pip": ["six==1.16.0"]}, "packaging=24.1"]}
        )
    )
    log = io.StringIO()
    python = ensure(env, cache, log)
    assert run(python, "import six, packaging; print(six.__version__, packaging.__version__)") == "1.16.0 24.1"
    assert run(python, "import sys; print('%d.%d' % sys.version_info[:2])") == "3.11"
    assert "+ six==1.16.0" in log.getvalue()  # uv's own output is in the log
    # Built in a temporary folder and renamed into place: pip's script still runs from here.
    pip = subprocess.run([str(python.parent / "pip"), "--version"], capture_output=True, text=True, check=True)
    assert str(cache / env.digest) in pip.stdout

    again = io.StringIO()
    started = time.perf_counter()
    assert ensure(env, cache, again) == python
    assert time.perf_counter() - started < 1
    assert "$ uv" not in again.getvalue()
    assert sorted(p.name for p in cache.iterdir()) == [env.digest, f"{env.digest}.lock"]


def test_an_unknown_package_fails_clearly_and_leaves_no_ready_environment(tmp_path: Path) -> None:
    cache = tmp_path / "envs"
    env = resolve(InlineEnvironment(conda_file={"dependencies": [{"pip": ["six", "smalt-no-such-package-4f1c9"]}]}))
    log = io.StringIO()
    with pytest.raises(BackendError) as caught:
        ensure(env, cache, log)
    assert "package 'smalt-no-such-package-4f1c9' was not found in the package index" in str(caught.value)
    assert caught.value.hint and "smalt-no-such-package-4f1c9" in caught.value.hint
    # uv wraps its explanation to the width it sees ("|" in the margin); the words are the test.
    assert "not found in the package registry" in re.sub(r"[\s|│]+", " ", log.getvalue())
    assert not (cache / env.digest).exists()
    assert [p.name for p in cache.iterdir()] == [f"{env.digest}.lock"]
    assert not list(cache.glob(f"*/{MARKER}"))


def test_every_curated_environment_resolves_on_pypi(tmp_path: Path) -> None:
    from uv import find_uv_bin

    failures = {}
    for name in known_names():
        env = resolve(f"azureml://registries/azureml/environments/{name}/labels/latest")
        if not env.requirements:
            continue
        requirements = tmp_path / f"{name}.txt"
        requirements.write_text("\n".join(env.requirements) + "\n")
        platform = ["--python-platform", "x86_64-manylinux_2_28", "--python-version", env.python or "3.11"]
        done = subprocess.run(
            [find_uv_bin(), "pip", "compile", *platform, "--no-header", "-q", str(requirements)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            failures[name] = done.stderr
    assert not failures, failures
