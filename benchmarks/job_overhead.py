"""What smalt adds to running a command: `smalt job create --stream` of a hello-world job against
running the same command directly, in one run, with a warm (already built) environment.

Run: `.venv/bin/python benchmarks/job_overhead.py [--runs 10]`. Prints the median of each and the
milliseconds smalt adds (issue 3's target: under 150 ms).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import isolated_environment, runs_from_command_line, timed

SMALT = str(Path(sys.executable).with_name("smalt"))
JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
type: command
command: echo hello world
"""


def main() -> None:
    runs = runs_from_command_line()
    with tempfile.TemporaryDirectory() as tmp:
        env = isolated_environment(tmp)
        job = Path(tmp) / "hello.yml"
        job.write_text(JOB)
        submit = [SMALT, "job", "create", "-f", str(job), "--stream"]
        subprocess.run(submit, env=env, check=True, capture_output=True)  # warm: workspace and environment
        direct = timed(["bash", "-c", "echo hello world"], env, runs)
        smalt = timed(submit, env, runs)
    d, s = statistics.median(direct), statistics.median(smalt)
    print(f"{'':34} {'median':>9} {'min':>9}   ({runs} runs each, warm environment)")
    label = 'bash -c "echo hello world"'
    print(f"{label:34} {d * 1000:7.0f}ms {min(direct) * 1000:7.0f}ms")
    print(f"{'smalt job create --stream':34} {s * 1000:7.0f}ms {min(smalt) * 1000:7.0f}ms")
    print(f"\nsmalt adds {(s - d) * 1000:.0f} ms per job (ratio {s / d:.0f}x; target: under 150 ms added)")


if __name__ == "__main__":
    main()
