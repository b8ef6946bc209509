"""What smalt adds to running a command: `smalt job create --stream` of a hello-world job against
running the same command directly, in one run, with a warm (already built) environment: on the
embedded default (the CLI's agent warm, as from the second command on), the same with the agent
turned off (SMALT_AGENT=0: every command imports smalt), and through `smalt server` (SMALT_URL).

Run: `.venv/bin/python benchmarks/job_overhead.py [--runs 10]`. Prints the median of each and the
milliseconds smalt adds (issue 3's target: under 150 ms).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import isolated_environment, runs_from_command_line, smalt_server, timed, wait_for_agent

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
        wait_for_agent(env)
        cold = {**env, "SMALT_AGENT": "0"}
        with smalt_server(env) as url:
            remote = {**env, "SMALT_URL": url}
            subprocess.run(submit, env=remote, check=True, capture_output=True)  # warm: the fork server
            direct, embedded, no_agent, served = [], [], [], []
            for _ in range(runs):  # interleaved, so that a slow moment of the machine hits all of them
                direct += timed(["bash", "-c", "echo hello world"], env, 1)
                embedded += timed(submit, env, 1)
                no_agent += timed(submit, cold, 1)
                served += timed(submit, remote, 1)
    d = statistics.median(direct)
    print(f"{'':44} {'median':>9} {'min':>9} {'added':>9}   ({runs} runs each, warm environment)")
    rows = [('bash -c "echo hello world"', direct), ("smalt job create --stream (embedded)", embedded),
            ("  the same, SMALT_AGENT=0", no_agent), ("smalt job create --stream (smalt server)", served)]  # fmt: skip
    for label, times in rows:
        m = statistics.median(times)
        print(f"{label:44} {m * 1000:7.0f}ms {min(times) * 1000:7.0f}ms {(m - d) * 1000:7.0f}ms")
    print("\ntarget: under 150 ms added")


if __name__ == "__main__":
    main()
