"""Request capture: a deployment's inputs and outputs written as Parquet, rolled by hour.

Rows are kept in memory and written about once a second, and when the router stops, one file per
collection and hour: ``<folder>/YYYY/MM/DD/HH/<random>.parquet``. A file is written under a
temporary name and then moved into place, so a reader never sees half a file.
"""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

INPUTS, OUTPUTS = "model_inputs", "model_outputs"


class Capture:
    """The capture of one deployment: which collections, where, and how many requests (sampling)."""

    def __init__(self, config: dict[str, Any], deployment: str) -> None:
        from fsspec.spec import AbstractFileSystem

        self._fs = AbstractFileSystem.from_json(config["fs"])
        self._folders: dict[str, str] = dict(config["collections"])
        self._rate = float(config.get("sampling_rate", 1.0))
        self._deployment = deployment
        self._rows: dict[str, list[dict[str, Any]]] = {name: [] for name in self._folders}
        self._lock = threading.Lock()

    def sampled(self) -> bool:
        return self._rate >= 1.0 or random.random() < self._rate

    def record(self, request_id: str, at: datetime, request: bytes, status: int, response: bytes) -> None:
        rows: dict[str, dict[str, Any]] = {}
        if INPUTS in self._folders:
            rows[INPUTS] = {
                "request_id": request_id, "timestamp": at, "deployment": self._deployment,
                "data": request.decode("utf-8", "replace"),
            }  # fmt: skip
        if OUTPUTS in self._folders:
            rows[OUTPUTS] = {
                "request_id": request_id, "timestamp": at, "deployment": self._deployment,
                "status_code": status, "data": response.decode("utf-8", "replace"),
            }  # fmt: skip
        # Under the lock: a row appended to a buffer that flush() has just taken would be lost.
        with self._lock:
            for name, row in rows.items():
                self._rows[name].append(row)

    def flush(self) -> int:
        """Write what is buffered; the number of rows written."""
        with self._lock:  # held only to take the buffers: record() never waits for storage
            taken = {name: rows for name, rows in self._rows.items() if rows}
            for name in taken:
                self._rows[name] = []
        written = 0
        for name, rows in taken.items():
            by_hour: dict[datetime, list[dict[str, Any]]] = {}
            for row in rows:
                by_hour.setdefault(row["timestamp"].replace(minute=0, second=0, microsecond=0), []).append(row)
            for hour, hour_rows in by_hour.items():
                self._write(self._folders[name], hour, hour_rows)
                written += len(hour_rows)
        return written

    def _write(self, folder: str, hour: datetime, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        target = f"{folder.rstrip('/')}/{hour:%Y/%m/%d/%H}"
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
        self._fs.makedirs(target, exist_ok=True)
        temporary = f"{target}/.{name}.partial"
        self._fs.pipe_file(temporary, sink.getvalue().to_pybytes())
        self._fs.mv(temporary, f"{target}/{name}")


class CaptureWriter:
    """A thread that flushes every capture about once a second until stopped (then a last time)."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.captures: list[Capture] = []
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="smalt-capture", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        for capture in list(self.captures):
            try:
                capture.flush()
            except Exception as exc:  # storage trouble must not stop scoring; it is logged
                print(f"Request capture could not be written: {exc}", flush=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()
