"""The quick-start tour: a fresh workspace, then data, an environment, a component and a model
registered from the Azure ML CLI v2 YAML files beside this script, a command job run with its
logs streamed and its output registered as data, then everything listed and shown.

Run it with `make demo`. Each step is the `smalt` command a user would type; the workspace is
left in ./demo-workspace to look around in (`smalt --workspace demo-workspace data list`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKSPACE = Path(os.environ.get("SMALT_DEMO_WORKSPACE", HERE.parent / "demo-workspace")).resolve()
SMALT = [str(Path(sys.executable).with_name("smalt"))]


def step(*args: str, output: str = "table") -> str:
    shown = " ".join(shlex.quote(a) for a in ("smalt", *args))
    print(f"\n$ {shown}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(
        [*SMALT, "--workspace", str(WORKSPACE), *args, *(["-o", output] if output else [])],
        cwd=HERE, text=True, capture_output=True, env={**os.environ, "COLUMNS": "110"},
    )  # fmt: skip
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"tour step failed ({result.returncode}): {shown}")
    print(f"  ({time.perf_counter() - start:.2f} s)")
    return result.stdout


def main() -> None:
    if WORKSPACE.exists():
        shutil.rmtree(WORKSPACE)
    print(f"A fresh workspace at {WORKSPACE}")
    step("workspace", "create", "--path", str(WORKSPACE), "--name", "demo")

    step("data", "create", "-f", "data.yml")
    step("environment", "create", "-f", "environment.yml")
    step("component", "create", "-f", "component.yml")
    step("model", "create", "-f", "model.yml")
    step("compute", "create", "-f", "compute.yml")
    # The same file again with a new version: the bytes are stored once, the version is new.
    step("data", "create", "-f", "data.yml", "--set", "tags.stage=second")

    # A command job: the iris data in, a summary out, registered as the data asset iris-summary.
    step("job", "create", "-f", "job.yml", "--stream", output="")
    # A pipeline of two steps, data passed from one to the next; the second run reuses both.
    step("job", "validate", "-f", "pipeline.yml", output="")
    step("job", "create", "-f", "pipeline.yml", "--stream", output="")
    step("job", "create", "-f", "pipeline.yml", "--stream", output="")

    for noun in ("data", "environment", "component", "model", "compute", "job"):
        step(noun, "list")
    step("data", "list", "--name", "iris")
    step("data", "show", "--name", "iris", "--label", "latest", output="yaml")
    # Lineage, recorded as the jobs ran: everything the latest iris data fed.
    step("data", "impact", "--name", "iris", "--label", "latest")
    step("component", "show", "--name", "train_iris", "--version", "1", output="yaml")
    step("model", "download", "--name", "iris-tree", "--version", "1", "--download-path",
         str(WORKSPACE / "downloads"), output="")  # fmt: skip
    shown = WORKSPACE.relative_to(Path.cwd()) if WORKSPACE.is_relative_to(Path.cwd()) else WORKSPACE
    print(f"\nThe tour is done. Look around with: smalt --workspace {shown} data list")


if __name__ == "__main__":
    main()
