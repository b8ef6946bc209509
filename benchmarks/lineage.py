"""Lineage queries over a workspace with 10,000 jobs (issue 6's target: under 200 ms).

The workspace holds 1,000 pipelines of 9 chained steps each (10,000 jobs), 100 raw data versions
each feeding 10 pipelines, and 1,000 registered models, each with params, metrics, a code snapshot
of 20 files and an environment; it is written straight through the store, as submitting would
record it (building it through real runs would take hours). Then, in one run:

- ``model lineage`` of a model (a chain of 9 jobs back to its data, code and environment) and
  ``data impact`` of a raw data version (90 jobs and 10 models downstream), in-process through the
  SDK: the query itself;
- the same two as CLI commands, beside ``smalt model show`` of the same model: a command's floor
  (the interpreter and smalt's imports), so the ratio shows what the lineage query adds to it.

No peer is named for this figure: MLflow and Azure ML's CLI have no lineage query to compare with.

Run: `.venv/bin/python benchmarks/lineage.py [--runs 10]`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import isolated_environment, runs_from_command_line, timed

SMALT = str(Path(sys.executable).with_name("smalt"))
PIPELINES, STEPS, RAW = 1000, 9, 100


def populate(workspace: Path) -> None:
    from smalt.services.workspace import open_workspace
    from smalt.store import Edge
    from smalt.store.tracking import MetricRecord

    ws = open_workspace(workspace)
    files = {f"src/module_{i}.py": f"{i:016x}" for i in range(20)}
    digest = "e" * 64
    with ws.store.transaction(write=True) as tx:
        tx.lineage.record_environment(digest, "3.11.7", [f"package-{i}==1.{i}" for i in range(80)])
        for r in range(RAW):
            tx.assets.create_version("data", "raw", str(r + 1), {"type": "uri_file", "path": f"raw/{r}.csv"},
                                     f"{r:064x}", "bench")  # fmt: skip
        experiment = tx.tracking.ensure_experiment("bench", 0)
    for p in range(PIPELINES):
        with ws.store.transaction(write=True) as tx:
            pipeline = f"pipeline_{p}"
            tx.jobs.create(pipeline, "pipeline", "Completed", pipeline, "bench", "local", {"pipeline": {}},
                           "bench", experiment_id=experiment)  # fmt: skip
            previous = f"data:raw:{p % RAW + 1}"
            edges = []
            for s in range(STEPS):
                name = f"p{p}_step{s}"
                spec = {
                    "command": f"python step.py --lr {s / 10}", "code": "azureml://datastores/x/paths/src",
                    "environment": {"name": "train-env", "version": "1"},
                    "inputs": {"lr": s / 10, "data": {"type": "uri_folder", "path": "azureml://datastores/x/paths/d"}},
                    "runtime": {"code_files": files, "environment_digest": digest},
                }  # fmt: skip
                tx.jobs.create(name, "command", "Completed", f"step{s}", "bench", "local", spec, "bench",
                               experiment_id=experiment, parent_name=pipeline)  # fmt: skip
                tx.tracking.log(name, params=[("lr", str(s / 10)), ("epochs", "10")],
                                metrics_=[MetricRecord("loss", 1.0 / (s + 1), 0, 0)])  # fmt: skip
                edges.append(Edge(previous, f"job:{name}", "input", "data"))
                previous = f"job:{name}"
            record, _ = tx.assets.create_version("model", "credit", None, {"type": "custom_model", "path": "m"},
                                                 f"{p:064x}", "bench")  # fmt: skip
            edges.append(Edge(previous, f"model:credit:{record.version}", "output", "model"))
            tx.lineage.add(edges)
    ws.close()


def main() -> None:
    runs = runs_from_command_line()
    with tempfile.TemporaryDirectory() as tmp:
        env = isolated_environment(tmp)
        workspace = Path(env["SMALT_WORKSPACE"])
        start = time.perf_counter()
        populate(workspace)
        print(f"workspace: {PIPELINES * (STEPS + 1):,} jobs, {PIPELINES:,} model versions, {RAW} data versions "
              f"(written in {time.perf_counter() - start:.0f} s)")  # fmt: skip

        from smalt import MLClient

        client = MLClient(workspace=workspace)
        client.models.lineage("credit", version=500)  # warm: the first query imports and connects
        lineage, impact = [], []
        for _ in range(runs):
            t = time.perf_counter()
            graph = client.models.lineage("credit", version=500)
            lineage.append(time.perf_counter() - t)
            t = time.perf_counter()
            derived = client.data.impact("raw", version=1)
            impact.append(time.perf_counter() - t)
        assert len(graph.of_kind("job")) == STEPS and len(derived.of_kind("model")) == PIPELINES // RAW
        client.close()

        show = timed([SMALT, "model", "show", "-n", "credit", "-v", "500", "-o", "json"], env, runs)
        cli_lineage = timed([SMALT, "model", "lineage", "-n", "credit", "-v", "500", "-o", "json"], env, runs)
        cli_impact = timed([SMALT, "data", "impact", "-n", "raw", "-v", "1", "-o", "json"], env, runs)

    def row(label: str, values: list[float], floor: list[float] | None = None) -> None:
        median = statistics.median(values) * 1000
        extra = f"  {median / (statistics.median(floor) * 1000):.2f}x model show" if floor else ""
        print(f"{label:44} {median:8.1f}ms {min(values) * 1000:8.1f}ms{extra}")

    print(f"{'':44} {'median':>10} {'min':>10}   ({runs} runs each)")
    row(f"SDK models.lineage ({len(graph.nodes)} nodes)", lineage)
    row(f"SDK data.impact ({len(derived.nodes)} nodes)", impact)
    row("smalt model show (a command's floor)", show)
    row("smalt model lineage -o json", cli_lineage, show)
    row("smalt data impact -o json", cli_impact, show)
    worst = max(statistics.median(lineage), statistics.median(impact)) * 1000
    print(f"target: lineage queries under 200 ms: {'met' if worst < 200 else 'MISSED'} ({worst:.1f} ms)")


if __name__ == "__main__":
    main()
