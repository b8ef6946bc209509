"""The quick-start tour: a fresh workspace, then data, an environment, a component and a model
registered from the Azure ML CLI v2 YAML files beside this script, a command job run with its
logs streamed and its output registered as data; a prepare-train-evaluate pipeline that registers
a model, deployed behind an online endpoint, scored, retrained, and traffic shifted to the new
version; then everything listed and shown.

Run it with `make demo`. Each step is the `smalt` command a user would type; the workspace is
left in ./demo-workspace to look around in (`smalt --workspace demo-workspace data list`).
With SMALT_URL set, the same commands run on the workspace of that `smalt server` instead (a team
server on PostgreSQL and object storage: `smalt server --database-url ... --blobstore-url s3://...`).
"""

from __future__ import annotations

import json
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
SERVER = os.environ.get("SMALT_URL")
#: Where the commands work: the tour's own workspace folder, or the server's workspace.
WHERE = [] if SERVER else ["--workspace", str(WORKSPACE)]


def step(*args: str, output: str = "table") -> str:
    shown = " ".join(shlex.quote(a) for a in ("smalt", *args))
    print(f"\n$ {shown}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(
        [*SMALT, *WHERE, *args, *(["-o", output] if output else [])],
        cwd=HERE, text=True, capture_output=True, env={**os.environ, "COLUMNS": "110"},
    )  # fmt: skip
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"tour step failed ({result.returncode}): {shown}")
    print(f"  ({time.perf_counter() - start:.2f} s)")
    return result.stdout


def latest_job(display_name: str) -> str:
    """The name of the newest job with this display name (what `smalt job list` shows first)."""
    listed = subprocess.run(
        [*SMALT, *WHERE, "job", "list", "-o", "json"], text=True, capture_output=True, check=True
    )
    return next(j["name"] for j in json.loads(listed.stdout) if j.get("display_name") == display_name)


def main() -> None:
    if WORKSPACE.exists():
        shutil.rmtree(WORKSPACE)
    if SERVER:
        print(f"The workspace of the smalt server at {SERVER}")
        step("workspace", "show")
    else:
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

    # Prepare, train and evaluate with a pipeline; the model it trains is registered as
    # iris-centroids, and the evaluation's accuracy lands in the step's run.
    step("job", "create", "-f", "train-pipeline.yml", "--stream", output="")
    pipeline = latest_job("iris-train")
    step("job", "list", "--parent", pipeline, "--columns", "metrics.accuracy")
    # Deploy the model behind an endpoint, as Azure ML's endpoint and deployment YAML pair says.
    step("online-endpoint", "create", "-f", "endpoint/endpoint.yml")
    step("online-deployment", "create", "-f", "endpoint/blue.yml", "--all-traffic")
    step("online-endpoint", "invoke", "-n", "iris", "--request-file", "endpoint/request.json", output="")
    # A second version with other settings: only train and evaluate run again (prepare is reused).
    step("job", "create", "-f", "train-pipeline.yml", "--set", "inputs.shrink=0.3", "--stream", output="")
    step("model", "compare", "-n", "iris-centroids", "--versions", "1", "2")
    # Green serves version 2 beside blue; traffic moves to it in two steps, no request dropped.
    step("online-deployment", "create", "-f", "endpoint/green.yml")
    step("online-endpoint", "update", "-n", "iris", "--traffic", "blue=50 green=50")
    step("online-endpoint", "invoke", "-n", "iris", "--request-file", "endpoint/request.json", output="")
    step("online-endpoint", "update", "-n", "iris", "--traffic", "blue=0 green=100")
    step("online-endpoint", "show", "-n", "iris", output="yaml")
    # The tour leaves nothing running: `smalt online-endpoint start --all` would bring it back.
    step("online-endpoint", "stop", "-n", "iris")

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
    where = f"SMALT_URL={SERVER} smalt" if SERVER else f"smalt --workspace {shown}"
    print(f"\nThe tour is done. Look around with: {where} data list")


if __name__ == "__main__":
    main()
