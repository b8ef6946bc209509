"""What sending a job's files costs (issue 17: a submission carries content, never a server path).

A job with a code folder (200 files, 4 MB) and a local input file (16 MB) is submitted with
`smalt job create` (no --stream: the submission itself), in one run, three ways:
- `tar cf` of the same files to a file: the floor of reading and packing them;
- embedded (the CLI reads the files and snapshots them into the workspace itself);
- through `smalt server` (the CLI packs the files and sends them; the server unpacks, reads the
  spec confined to them and snapshots them).
The code and the input are the same bytes at each run, so snapshots are stored once (as a user
resubmitting after editing only the YAML); the hello-world job of `job_overhead.py` shows the
cost of a job with no files.

Run: `.venv/bin/python benchmarks/submission.py [--runs 10]`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import isolated_environment, runs_from_command_line, smalt_server, timed

SMALT = str(Path(sys.executable).with_name("smalt"))
JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
type: command
code: ../src
command: python main.py ${{inputs.rows}}
inputs:
  rows: {type: uri_file, path: ../data/rows.bin}
"""


def project(folder: Path) -> Path:
    src, data, jobs = folder / "src", folder / "data", folder / "jobs"
    for sub in range(10):
        (src / f"pkg{sub}").mkdir(parents=True)
        for index in range(20):
            (src / f"pkg{sub}" / f"mod{index}.py").write_bytes(os.urandom(10_000).hex()[:20_000].encode())
    (src / "main.py").write_text("import sys; print(len(open(sys.argv[1], 'rb').read()))\n")
    data.mkdir()
    (data / "rows.bin").write_bytes(os.urandom(16 << 20))
    jobs.mkdir()
    job = jobs / "job.yml"
    job.write_text(JOB)
    return job


def main() -> None:
    runs = runs_from_command_line()
    with tempfile.TemporaryDirectory() as tmp:
        env = isolated_environment(tmp)
        job = project(Path(tmp) / "project")
        submit = [SMALT, "job", "create", "-f", str(job), "-o", "json"]
        floor_cmd = ["tar", "cf", str(Path(tmp) / "floor.tar"), "-C", str(job.parent.parent), "src", "data", "jobs"]
        subprocess.run(submit, env=env, check=True, capture_output=True)  # warm: workspace, snapshots
        with smalt_server(env) as url:
            remote = {**env, "SMALT_URL": url}
            subprocess.run(submit, env=remote, check=True, capture_output=True)
            floor, embedded, served = [], [], []
            for _ in range(runs):  # interleaved, so that a slow moment of the machine hits all three
                floor += timed(floor_cmd, env, 1)
                embedded += timed(submit, env, 1)
                served += timed(submit, remote, 1)
    print(f"{'':44} {'median':>9} {'min':>9}   ({runs} runs each; 4 MB of code in 201 files, 16 MB input)")
    rows = [("tar cf of the same files (floor)", floor), ("smalt job create (embedded)", embedded),
            ("smalt job create (smalt server)", served)]  # fmt: skip
    for label, times in rows:
        print(f"{label:44} {statistics.median(times) * 1000:7.0f}ms {min(times) * 1000:7.0f}ms")
    ratio = statistics.median(served) / statistics.median(embedded)
    print(f"\nthrough the server / embedded: {ratio:.2f}x")


if __name__ == "__main__":
    main()
