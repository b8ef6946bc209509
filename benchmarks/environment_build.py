"""Cold and warm build times of a scikit-learn + pandas environment (issue 3: warm under 1 s).

Cold: a new environment cache folder (uv's own download cache may be warm: pass --no-uv-cache to
empty it for this run). Warm: the same environment asked for again, as the second job does.
Run: `.venv/bin/python benchmarks/environment_build.py [--no-uv-cache]`.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

from smalt.entities import Environment
from smalt.environments import ensure, resolve

CONDA = {
    "name": "sklearn-pandas",
    "dependencies": ["python=3.11", "pip", {"pip": ["scikit-learn>=1.5,<1.8", "pandas>=2.2,<3"]}],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-uv-cache", action="store_true", help="use an empty uv cache too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.no_uv_cache:
            os.environ["UV_CACHE_DIR"] = str(Path(tmp) / "uv-cache")
        resolved = resolve(Environment(name="sklearn-pandas", conda_file=CONDA))
        log = io.StringIO()
        start = time.perf_counter()
        ensure(resolved, Path(tmp) / "envs", log)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        ensure(resolved, Path(tmp) / "envs", log)
        warm = time.perf_counter() - start
    print(f"scikit-learn + pandas environment: cold {cold:.1f} s, warm {warm * 1000:.1f} ms (target warm < 1 s)")


if __name__ == "__main__":
    main()
