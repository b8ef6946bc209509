"""Every smalt module imports on its own in a fresh interpreter, and `smalt --help` stays light.

Importing a module first, in a process where no other smalt module is loaded, is what catches
import cycles that a test run (where something else was imported first) hides. Each module gets
its own child process: forked from a driver that has loaded only third-party libraries, so no
smalt module is in it (where fork is missing, a new interpreter per module, slower).
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import cli_probe

import smalt

#: Modules that are not meant to be imported directly: Alembic runs env.py itself, with a context.
NOT_IMPORTABLE = {"smalt.store.migrations.env"}

#: What `smalt --help` must not load: they belong inside the commands that need them.
HEAVY = ("sqlalchemy", "pydantic", "alembic", "fsspec", "cryptography")

DRIVER = textwrap.dedent(
    """
    import importlib, json, os, subprocess, sys, traceback

    modules, preload = json.loads(sys.argv[1]), sys.argv[2] == "preload"
    if preload:
        # Third-party libraries only (pydantic's schema machinery warmed up on a model of its own),
        # so that each child pays for smalt alone and still imports every smalt module from scratch.
        import alembic, click, cryptography.fernet, fsspec.implementations.local, pathspec, pydantic  # noqa
        import rich, ruamel.yaml.comments, sqlalchemy.orm, typer  # noqa

        class Warm(pydantic.BaseModel):
            x: int | None = None

        Warm.model_validate({"x": 1})
    assert not [m for m in sys.modules if m == "smalt" or m.startswith("smalt.")], "driver imported smalt"

    def start(module):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            code = 0
            try:
                importlib.import_module(module)
            except BaseException:
                os.write(write, traceback.format_exc()[-60000:].encode())
                code = 1
            os._exit(code)
        os.close(write)
        return module, pid, read

    def finish(module, pid, read):
        with os.fdopen(read, "rb") as pipe:
            output = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        return status, output

    failures = {}
    if hasattr(os, "fork"):
        width = os.cpu_count() or 1
        for i in range(0, len(modules), width):
            for module, pid, read in [start(m) for m in modules[i : i + width]]:
                status, output = finish(module, pid, read)
                if status != 0:
                    failures[module] = output or f"exit status {status}"
    else:
        for module in modules:
            done = subprocess.run([sys.executable, "-c", "import " + module], capture_output=True, text=True)
            if done.returncode != 0:
                failures[module] = done.stderr
    print(json.dumps(failures))
    """
)


def smalt_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(smalt.__path__, prefix="smalt.")]
    return ["smalt", *sorted(n for n in names if n not in NOT_IMPORTABLE)]


def import_each(modules: list[str], pythonpath: str | None = None, preload: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(modules), "preload" if preload else "bare"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    failures: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return failures


def test_every_module_imports_first_in_a_fresh_process() -> None:
    modules = smalt_modules()
    assert {"smalt.errors", "smalt.entities", "smalt.specs", "smalt.store", "smalt.cli.main"} <= set(modules)
    failures = import_each(modules)
    assert not failures, "\n\n".join(f"import {name} failed:\n{trace}" for name, trace in failures.items())


def test_the_check_catches_an_import_cycle(tmp_path: Path) -> None:
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic.b import B\nA = 1\n")
    (package / "b.py").write_text("from cyclic.a import A\nB = 2\n")
    failures = import_each(["cyclic", "cyclic.a"], pythonpath=str(tmp_path), preload=False)
    assert list(failures) == ["cyclic.a"]
    assert "partially initialized module" in failures["cyclic.a"]


def help_probe(*args: str) -> tuple[str, dict[str, object]]:
    text, _, report = cli_probe(*args, watched=HEAVY, env={"COLUMNS": "120"})
    return text, report


def test_help_loads_no_heavy_library() -> None:
    text, report = help_probe("--help")
    assert report == {"code": 0, "loaded": []}
    for noun in ("data", "environment", "component", "model", "compute", "datastore", "workspace"):
        assert noun in text


def test_command_help_loads_none_of_smalts_heavy_libraries() -> None:
    text, report = help_probe("data", "create", "--help")
    # Typer 0.29 builds parameter converters with pydantic; the pin below it keeps that away too.
    assert report == {"code": 0, "loaded": []}
    assert "--file" in text and "--set" in text


def test_console_script_help_exits_zero() -> None:
    script = Path(sys.executable).with_name("smalt")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "smalt.cli.main"]
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout and "datastore" in done.stdout
    assert done.stderr == ""
