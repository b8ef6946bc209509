"""Reading Azure ML files: smalt's loader beside azure-ai-ml's, on the oracle's corpus.

Both read every file of ``tests/oracle/corpus`` that both accept, of the kinds smalt has,
in one process each (the import is measured apart: a command pays it once). Reported: the median
of ``--runs`` passes over the corpus, per file, and the ratio. What azure-ai-ml's number includes
is its ``load_*`` alone, without the offline checks the oracle adds.

    .venv/bin/python benchmarks/spec_loading.py --runs 5
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

from timing import runs_from_command_line

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "oracle" / "corpus"
LOADERS = {
    "job": "load_job", "component": "load_component", "data": "load_data", "environment": "load_environment",
    "model": "load_model", "compute": "load_compute", "datastore": "load_datastore",
    "online-endpoint": "load_online_endpoint", "online-deployment": "load_online_deployment",
}  # fmt: skip

# Each reader runs in a process of its own: the files it reads, the passes, and it prints the
# import time and each pass's time, in seconds.
PROGRAM = textwrap.dedent("""
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    files, runs, reader = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    start = time.perf_counter()
    if reader == "smalt":
        from smalt import specs
        def load(kind, path):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return specs.load(kind, path)
    else:
        from azure.ai.ml.entities import _load_functions as azure
        def load(kind, path):
            return getattr(azure, LOADERS[kind])(path)
    imported = time.perf_counter() - start
    passes = []
    for _ in range(runs):
        start = time.perf_counter()
        for kind, path in files:
            load(kind, path)
        passes.append(time.perf_counter() - start)
    print(json.dumps({"import": imported, "passes": passes}))
""")


def accepted_by_both() -> list[tuple[str, str]]:
    """The corpus files both readers accept (the benchmark times reading, not refusing)."""
    check = textwrap.dedent("""
        import json, sys, warnings
        warnings.simplefilter("ignore")
        from smalt import specs
        from azure.ai.ml.entities import _load_functions as azure
        out = []
        for kind, path in json.loads(sys.argv[1]):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    specs.load(kind, path)
                getattr(azure, LOADERS[kind])(path)
            except Exception:
                continue
            out.append([kind, path])
        print(json.dumps(out))
    """)
    files = [(p.parent.name, str(p)) for p in sorted(CORPUS.glob("*/*.yml")) if p.parent.name in LOADERS]
    return run(f"LOADERS = {LOADERS!r}\n" + check, files)


def run(program: str, *args: object) -> object:
    import json

    done = subprocess.run(
        [sys.executable, "-c", program, *(json.dumps(a) if not isinstance(a, str) else a for a in args)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    runs = runs_from_command_line(default=5)
    files = accepted_by_both()
    assert isinstance(files, list) and files
    results = {}
    for reader in ("smalt", "azure-ai-ml"):
        measured = run(f"LOADERS = {LOADERS!r}\n" + PROGRAM, files, str(runs), reader)
        assert isinstance(measured, dict)
        results[reader] = measured
    per_file = {r: statistics.median(m["passes"]) / len(files) * 1000 for r, m in results.items()}
    first = {r: m["passes"][0] / len(files) * 1000 for r, m in results.items()}
    print(f"{len(files)} corpus files both readers accept; median of {runs} passes (and the first, cold)")
    print(f"{'reader':<12} {'import':>10} {'per file':>10} {'first pass':>12}")
    for reader, measured in results.items():
        print(f"{reader:<12} {measured['import'] * 1000:>8.0f} ms {per_file[reader]:>7.2f} ms {first[reader]:>9.2f} ms")
    ratio = per_file["azure-ai-ml"] / per_file["smalt"]
    imports = results["azure-ai-ml"]["import"] / results["smalt"]["import"]
    print(f"azure-ai-ml / smalt: {ratio:.1f}x per file, {imports:.1f}x import")


if __name__ == "__main__":
    main()
