"""Local files over HTTP: a 200 MB folder of 2,000 files registered as data through `smalt server`,
then again with one file changed (issue 19: the second under 5 % of the first).

Both runs go through ``MLClient(url=...)``: the client hashes what it has not hashed before, asks
which files the server lacks, sends those, and the server assembles the folder. Printed: each
run's wall time, the bytes sent, and the ratio; ``--runs`` repeats the changed-file run.

    .venv/bin/python benchmarks/uploads.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import runs_from_command_line, smalt_server

FILES, SIZE = 2_000, 100_000  # 2,000 files of 100 kB: 200 MB


def main() -> None:
    runs = runs_from_command_line(default=3)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folder = root / "corpus"
        folder.mkdir()
        for i in range(FILES):
            (folder / f"part-{i:04d}.bin").write_bytes(os.urandom(SIZE))
        env = {**os.environ, "SMALT_WORKSPACE": str(root / "ws"), "XDG_CACHE_HOME": str(root / "cache")}
        os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"]
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from smalt import MLClient
        from smalt.entities import Data

        MLClient(workspace=root / "ws").close()
        with smalt_server(env) as url, MLClient(url=url) as client:
            sent: list[int] = []
            put = client._rest.put_file

            def counting(path: str, file: Path, **options: object) -> None:
                sent.append(file.stat().st_size)
                put(path, file, **options)  # type: ignore[arg-type]

            client._rest.put_file = counting  # type: ignore[method-assign]
            start = time.perf_counter()
            client.data.create_or_update(Data(name="corpus", path=str(folder), type="uri_folder"))
            first = time.perf_counter() - start
            first_bytes = sum(sent)
            again, again_bytes = [], []
            for run in range(runs):
                sent.clear()
                (folder / "part-0007.bin").write_bytes(os.urandom(SIZE) + bytes([run]))
                start = time.perf_counter()
                client.data.create_or_update(Data(name="corpus", path=str(folder), type="uri_folder"))
                again.append(time.perf_counter() - start)
                again_bytes.append(sum(sent))
    second = statistics.median(again)
    print(f"{FILES} files, {FILES * SIZE / 1e6:.0f} MB, through smalt server (loopback)")
    print(f"first upload:        {first * 1000:8.0f} ms, {first_bytes / 1e6:8.1f} MB sent")
    print(f"one file changed:    {second * 1000:8.0f} ms, {statistics.median(again_bytes) / 1e6:8.1f} MB sent "
          f"(median of {runs})")  # fmt: skip
    print(f"second / first:      {second / first:8.1%}  (target < 5 %)")


if __name__ == "__main__":
    main()
