"""smalt pipelines against the same steps run by hand (the floor) and against Metaflow's local
runner, side by side in one run, with warm environments (one untimed run of each first).

Two shapes of trivial Python steps (benchmarks/pipelines_assets/step.py: read the input folders,
write one small file):
  chain    10 steps, each reading the previous one's output;
  fan-out  12 steps: `prepare`, 10 parallel steps each reading it, and a `join` reading all 10.
           Metaflow also runs an empty `end` task after its join: a flow's last step may not be one.

- floor: `python step.py ...` for each step, one after another, in one bash script, with this
  benchmark's interpreter (.venv/bin/python; a bare venv of the same Python starts within 1 ms);
  run right before each fresh smalt run, so that both meet the machine in the same state (a shared
  machine's speed drifts by 20 % between minutes), and its median is the floor.
- smalt: `smalt job create -f pipeline.yml --stream`, an Azure ML pipeline of command jobs with no
  `environment` (smalt's base environment: its own Python, no packages), on the default `local`
  compute (as created: max_instances 1, one step at a time). Each timed run changes a file in the
  code folder so that no step is reused; each step appends to a trace file, which checks that.
- smalt rerun: the same command again, nothing changed: every step reused; timed end to end.
- Metaflow: `python <shape>_flow.py --quiet run` (pipelines_assets/), in its own environment at
  .tools/bench-envs/metaflow (built with uv on first use, like tests' .tools/test-envs), with its
  home and local datastore in a temporary folder; its default runner runs the 10 parallel tasks
  at once (--max-workers 16). Metaflow does not reuse steps (`resume` only restarts a failed run),
  so it has no rerun figure.

Issue 5's targets: under 50 ms per step above the floor; the fully reused chain under 300 ms;
faster than Metaflow on both shapes. Run: `.venv/bin/python benchmarks/pipelines.py [--runs 3] [--server]`
(`--server`: smalt through `smalt server`, SMALT_URL set; the floor and Metaflow as before).
Prints a table of medians per shape and the targets met or missed.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from timing import command_line, isolated_environment, smalt_server, timed

SMALT = str(Path(sys.executable).with_name("smalt"))
ASSETS = Path(__file__).resolve().with_name("pipelines_assets")
# Kept between runs beside the bootstrap tools (ignored by git), so only the first run builds it.
METAFLOW_ENV = Path(__file__).resolve().parents[1] / ".tools" / "bench-envs" / "metaflow"
METAFLOW = "metaflow==2.19.39"
WIDTH = 10
SHAPES: dict[str, list[tuple[str, list[str]]]] = {  # shape: [(step, the steps it reads)]
    "chain": [(f"s{i}", [f"s{i - 1}"] if i else []) for i in range(10)],
    "fan-out": [("prepare", []), *[(f"w{i}", ["prepare"]) for i in range(WIDTH)],
                ("join", [f"w{i}" for i in range(WIDTH)])],
}  # fmt: skip
FLOWS = {"chain": "chain_flow.py", "fan-out": "fanout_flow.py"}


def floor_script(steps: list[tuple[str, list[str]]], data: Path) -> str:
    lines = []
    for name, inputs in steps:
        args = "".join(f" --inp {data / i}" for i in inputs)
        lines.append(f"{sys.executable} {ASSETS / 'step.py'}{args} --out {data / name} --part {name}")
    return "\n".join(lines)


def pipeline_yaml(shape: str, steps: list[tuple[str, list[str]]]) -> str:
    jobs = {}
    for name, inputs in steps:
        ports = {"inp" if len(inputs) == 1 else f"inp{i}": step for i, step in enumerate(inputs)}
        args = "".join(f" --inp ${{{{inputs.{port}}}}}" for port in ports)
        command = f"python step.py{args} --out ${{{{outputs.out}}}} --part {name}"
        job: dict[str, object] = {"type": "command", "code": "./src", "command": command}
        if ports:
            job["inputs"] = {port: f"${{{{parent.jobs.{step}.outputs.out}}}}" for port, step in ports.items()}
        job["outputs"] = {"out": {"type": "uri_folder"}}
        jobs[name] = job
    spec = {"$schema": "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json", "type": "pipeline",
            "display_name": shape.replace("-", ""), "settings": {"default_compute": "local"}, "jobs": jobs}  # fmt: skip
    return str(yaml.safe_dump(spec, sort_keys=False, width=200))


def metaflow_python() -> str:
    """Metaflow in its own environment, built once with uv and kept between runs."""
    from uv import find_uv_bin

    python = METAFLOW_ENV / "bin" / "python"
    if not (METAFLOW_ENV / ".complete").exists():
        print(f"building {METAFLOW} into {METAFLOW_ENV}...", file=sys.stderr, flush=True)
        uv = find_uv_bin()
        subprocess.run([uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(METAFLOW_ENV)],
                       check=True)  # fmt: skip
        subprocess.run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python), METAFLOW],
                       check=True)  # fmt: skip
        (METAFLOW_ENV / ".complete").touch()
    return str(python)


@dataclass
class Figures:
    """Median wall seconds of one shape; ``notes`` says why a smalt figure is missing or suspect."""

    floor: float
    smalt: float | None = None
    rerun: float | None = None
    metaflow: float | None = None
    notes: list[str] = field(default_factory=list)


def steps_ran(trace: Path) -> int:
    return len(trace.read_text().splitlines()) if trace.exists() else 0


def measure_smalt(shape: str, folder: Path, env: dict[str, str], runs: int, figures: Figures,
                  floor: list[str], floor_env: dict[str, str]) -> None:  # fmt: skip
    """Fresh runs (the code folder changed each time: nothing reused), each right after a run of the
    floor, so that both see the machine as it is at that moment; then reruns of the last one."""
    steps = SHAPES[shape]
    (folder / "src").mkdir(parents=True)
    shutil.copy(ASSETS / "step.py", folder / "src" / "step.py")
    pipeline = folder / "pipeline.yml"
    pipeline.write_text(pipeline_yaml(shape, steps))
    trace = Path(env["STEP_TRACE"])  # each step that runs appends a line (step.py)
    submit = [SMALT, "job", "create", "-f", str(pipeline), "--stream"]
    (folder / "src" / "run.txt").write_text("warm-up\n")
    done = subprocess.run(submit, env=env, cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = " | ".join(line.strip() for line in (done.stdout + done.stderr).strip().splitlines()[-3:])
        figures.notes.append(f"`smalt job create -f pipeline.yml` exited {done.returncode}: {said[-400:]}; no figures")
        return
    checked = steps_ran(trace) > 0
    if not checked:
        figures.notes.append("STEP_TRACE did not reach the steps: which steps ran is not checked")
    fresh, floors = [], []
    for run in range(runs):
        floors += timed(floor, floor_env, 1)
        (folder / "src" / "run.txt").write_text(f"run {run}\n")
        before = steps_ran(trace)
        fresh += timed(submit, env, 1)
        if checked and (ran := steps_ran(trace) - before) != len(steps):
            figures.notes.append(f"fresh run {run} ran {ran} of {len(steps)} steps")
    before = steps_ran(trace)
    rerun = timed(submit, env, runs)
    if ran := steps_ran(trace) - before:
        figures.notes.append(f"the reruns ran {ran} steps: NOT fully reused")
    figures.floor = statistics.median(floors)
    figures.smalt, figures.rerun = statistics.median(fresh), statistics.median(rerun)


def measure(runs: int, tmp: Path, server: bool) -> dict[str, Figures]:
    # Set before a server starts: through a server, the steps get the server's environment.
    env = {**isolated_environment(str(tmp)), "STEP_TRACE": str(tmp / "steps-ran.txt")}
    with contextlib.ExitStack() as stack:
        smalt_env = {**env, "SMALT_URL": stack.enter_context(smalt_server(env))} if server else env
        return _measure(runs, tmp, env, smalt_env)


def _measure(runs: int, tmp: Path, env: dict[str, str], smalt_env: dict[str, str]) -> dict[str, Figures]:
    try:
        mf_python: str | None = metaflow_python()
    except (subprocess.CalledProcessError, OSError, ImportError) as exc:
        print(f"Metaflow environment could not be built ({exc}); no Metaflow figures", file=sys.stderr)
        mf_python = None
    mf_env = {**env, "METAFLOW_HOME": str(tmp / "metaflow-home"), "USERNAME": "bench",
              "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(tmp / "metaflow-datastore")}  # fmt: skip
    results: dict[str, Figures] = {}
    for shape, steps in SHAPES.items():
        print(f"measuring {shape}...", file=sys.stderr, flush=True)
        floor = ["bash", "-ec", floor_script(steps, tmp / "floor" / shape)]
        timed(floor, env, 1)  # warm: the page cache, the output folders
        figures = results[shape] = Figures(floor=0.0)
        measure_smalt(shape, tmp / "smalt" / shape, smalt_env, runs, figures, floor, env)
        if figures.smalt is None:  # smalt failed before its runs: the floor alone
            figures.floor = statistics.median(timed(floor, env, runs))
        if mf_python:
            data = tmp / "metaflow" / shape
            data.mkdir(parents=True)
            flow, flow_env = (
                [mf_python, str(ASSETS / FLOWS[shape]), "--quiet", "run"],
                {**mf_env, "STEP_DATA": str(data)},
            )
            timed(flow, flow_env, 1)  # warm, as the others
            figures.metaflow = statistics.median(timed(flow, flow_env, runs))
    return results


def ms(seconds: float | None) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds is not None else "-"


def report(runs: int, results: dict[str, Figures]) -> None:
    print(f"median of {runs} runs each, warm environments; floor: {sys.executable} step.py, one after another\n")
    print("| shape | steps | floor | smalt | Metaflow | smalt above floor, per step | Metaflow/smalt "
          "| smalt rerun, all reused | Metaflow rerun |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    targets, notes = [], []
    for shape, f in results.items():
        n = len(SHAPES[shape])
        per_step = (f.smalt - f.floor) / n if f.smalt is not None else None
        ratio = f.metaflow / f.smalt if f.smalt and f.metaflow else None
        if per_step is not None:
            targets.append((f"{shape}: under 50 ms per step above the floor", per_step < 0.050))
        if ratio is not None:
            targets.append((f"{shape}: faster than Metaflow", ratio > 1))
        if shape == "chain" and f.rerun is not None:
            targets.append(("chain: the fully reused rerun under 300 ms end to end", f.rerun < 0.300))
        print(f"| {shape} | {n} | {ms(f.floor)} | {ms(f.smalt) if f.smalt is not None else 'failed'} "
              f"| {ms(f.metaflow) if f.metaflow is not None else 'not run'} | {ms(per_step)} "
              f"| {f'{ratio:.1f}x' if ratio else '-'} | {ms(f.rerun)} | n/a |")  # fmt: skip
        notes += [f"smalt {shape}: {note}" for note in f.notes]
    print()
    for note in notes:
        print(note)
    for label, met in targets:
        print(f"target {label}: {'met' if met else 'MISSED'}")
    print("\nMetaflow/smalt: how many times faster smalt is (>1 favours smalt). Metaflow reuses nothing: no rerun.")


def main() -> None:
    options = command_line(default=3)
    with tempfile.TemporaryDirectory(prefix="smalt-bench-pipelines-") as tmp:
        results = measure(options.runs, Path(tmp), options.server)
    print(f"smalt: {'through smalt server (SMALT_URL)' if options.server else 'embedded'}")
    report(options.runs, results)


if __name__ == "__main__":
    main()
