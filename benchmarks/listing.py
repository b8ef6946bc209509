"""Listing through REST with real volumes (issue 19): `data list` of an asset with 10,000 versions
and `job list` of 10,000 jobs, the first page (50, as `az ml ... list` shows), through `smalt
server` (`MLClient(url=...)`) against the same call in-process, side by side in one run.

The 10,000 versions and jobs are written straight into the workspace's store (as many
registrations and submissions would leave them), so that the benchmark measures listing, not
writing. Target: under 100 ms through REST.

    .venv/bin/python benchmarks/listing.py [--runs 20]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import runs_from_command_line, smalt_server

COUNT, PAGE = 10_000, 50


def seed(workspace: Path) -> None:
    """10,000 versions of the data asset `big`, and 10,000 finished command jobs."""
    from smalt import MLClient
    from smalt.entities import Data

    with MLClient(workspace=workspace) as client:
        data = client.data.create_or_update(Data(name="big", path="azureml://datastores/workspaceblobstore/paths/x",
                                                 type="uri_folder"))  # fmt: skip
        spec = data.to_dict()
    from smalt.services.workspace import open_workspace

    context = open_workspace(workspace, create=False)
    try:
        with context.store.transaction(write=True) as tx:
            for i in range(2, COUNT + 1):
                tx.assets.create_version("data", "big", str(i), {**spec, "version": str(i)}, f"{i:064x}", "bench")
            job = {"type": "command", "command": "echo hello", "compute": "local", "environment_variables": {},
                   "inputs": {}, "outputs": {}}  # fmt: skip
            for i in range(COUNT):
                tx.jobs.create(f"job_{i:05d}", "command", "Completed", None, "Default", "local", job, "bench")
    finally:
        context.close()


def timed(call: object, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    runs = runs_from_command_line(default=20)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from smalt import MLClient

    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch) / "ws"
        seed(workspace)
        env = {**os.environ, "SMALT_WORKSPACE": str(workspace), "HOME": scratch}
        with smalt_server(env) as url, MLClient(url=url) as remote, MLClient(workspace=workspace) as local:
            rows = []
            for label, make in (
                (f"data list --name big (first {PAGE} of {COUNT:,} versions)",
                 lambda c: lambda: c.data.list("big", max_results=PAGE)),
                (f"job list (first {PAGE} of {COUNT:,} jobs)", lambda c: lambda: c.jobs.list(max_results=PAGE)),
            ):  # fmt: skip
                assert len(make(remote)()) == len(make(local)()) == PAGE
                in_process, over_rest = [], []
                for _ in range(runs):  # interleaved, so that a slow moment of the machine hits both
                    in_process += timed(make(local), 1)
                    over_rest += timed(make(remote), 1)
                rows.append((label, statistics.median(in_process), statistics.median(over_rest)))
    print(f"{'':52} {'in-process':>11} {'REST':>9} {'ratio':>7}   (median of {runs})")
    for label, local_s, rest_s in rows:
        print(f"{label:52} {local_s * 1000:9.1f}ms {rest_s * 1000:7.1f}ms {rest_s / local_s:7.2f}")
    print("\ntarget: the first page through REST under 100 ms")


if __name__ == "__main__":
    main()
