"""The MLflow tracking protocol served by smalt against MLflow's own server, in one run.

Each server starts on loopback with a fresh folder (smalt: a new workspace; MLflow: a new SQLite
store and artifacts folder, one worker), one after the other so that they never share the CPU.
The same client code (the real mlflow client, in a subprocess per server so that no client state
leaks from one to the other) then measures:

  (a) `mlflow.log_metric` calls, synchronous, one run, steps 0..N-1          -> calls/s
  (b) `MlflowClient.log_batch` calls of 1,000 metrics each                    -> metrics/s
  (c) seeding an experiment with runs through the REST API (create_run + log_batch of one `acc`
      metric per run, from several client threads), then `search_runs` with
      "metrics.acc > 0.5" ordered by `metrics.acc DESC`                        -> median ms
  (d) resident memory of the server's whole process tree, idle after start and after the workload.

The same client code also runs (a) and (b) against a null server, which answers every request at
once and stores nothing: the client's own ceiling on this machine, which no server can beat.

Ratios read "how many times better smalt is": >1 means smalt is faster (or smaller).
Run: `.venv/bin/python benchmarks/tracking.py` (about 15 minutes, most of it MLflow; `--quick`: small
sizes, to check that the script works, in about two minutes). `--help` lists the size options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 180.0  # MLflow migrates a new SQLite store before it answers: seconds, more on a busy machine
SEARCH_FILTER = "metrics.acc > 0.5"
SEARCH_ORDER = ["metrics.acc DESC"]


@dataclass(frozen=True)
class Sizes:
    metric_calls: int
    batches: int
    batch_size: int
    runs: int
    threads: int
    searches: int
    search_max_results: int


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Sizes]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that the script works")
    parser.add_argument("--metric-calls", type=int, help="(a) log_metric calls (default 5000; quick 200)")
    parser.add_argument("--batches", type=int, help="(b) log_batch calls (default 100; quick 5)")
    parser.add_argument("--batch-size", type=int, help="(b) metrics per log_batch (default 1000, MLflow's cap)")
    parser.add_argument("--runs", type=int, help="(c) runs seeded for the search (default 10000; quick 200)")
    parser.add_argument("--threads", type=int, help="(c) client threads seeding (default 8)")
    parser.add_argument("--searches", type=int, help="(c) timed search_runs calls (default 20; quick 5)")
    parser.add_argument("--max-results", type=int, help="(c) search_runs max_results (default 100)")
    parser.add_argument("--only", choices=["smalt", "mlflow", "null"], help="run against one server only")
    parser.add_argument("--client", metavar="URI", help=argparse.SUPPRESS)  # internal: the client subprocess
    parser.add_argument("--phases", default="log_metric,log_batch,search", help=argparse.SUPPRESS)
    parser.add_argument("--null-server", type=int, metavar="PORT", help=argparse.SUPPRESS)  # internal
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = Sizes(
        metric_calls=args.metric_calls or (200 if quick else 5000),
        batches=args.batches or (5 if quick else 100),
        batch_size=args.batch_size or 1000,
        runs=args.runs or (200 if quick else 10_000),
        threads=args.threads or 8,
        searches=args.searches or (5 if quick else 20),
        search_max_results=args.max_results or 100,
    )
    if args.sizes:
        sizes = Sizes(**json.loads(args.sizes))
    return args, sizes


# --- the client: the same code against each server ----------------------------------------------


def client_main(uri: str, sizes: Sizes, phases: list[str]) -> dict[str, Any]:
    """Every measurement against the server at ``uri``; a failing one is reported, not fatal."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    results: dict[str, Any] = {}
    for name, measure in (("log_metric", _log_metric), ("log_batch", _log_batch), ("search", _search)):
        if name not in phases:
            continue
        try:
            results.update(measure(mlflow, client, sizes))
        except Exception as exc:  # noqa: BLE001 - one broken endpoint must not hide the other numbers
            results[f"{name}_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    return results


def _log_metric(mlflow: Any, _client: Any, sizes: Sizes) -> dict[str, Any]:
    mlflow.set_experiment("bench-log-metric")
    with mlflow.start_run():
        mlflow.log_metric("warm-up", 0.0, synchronous=True)  # connection and lazy imports out of the timing
        start = time.perf_counter()
        for step in range(sizes.metric_calls):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, synchronous=True)
        elapsed = time.perf_counter() - start
    return {"log_metric_s": elapsed}


def _log_batch(_mlflow: Any, client: Any, sizes: Sizes) -> dict[str, Any]:
    from mlflow.entities import Metric

    experiment = client.create_experiment("bench-log-batch")
    run_id = client.create_run(experiment).info.run_id
    now = int(time.time() * 1000)
    # Built before the clock starts: what is timed is sending and storing, not making objects.
    batches = [
        [Metric(f"m{j}", float(j * step) / 7.0, now + step, step) for j in range(sizes.batch_size)]
        for step in range(sizes.batches)
    ]
    client.log_batch(run_id, metrics=[Metric("warm-up", 0.0, now, 0)], synchronous=True)
    start = time.perf_counter()
    for metrics in batches:
        client.log_batch(run_id, metrics=metrics, synchronous=True)
    elapsed = time.perf_counter() - start
    return {"log_batch_s": elapsed}


def _search(_mlflow: Any, client: Any, sizes: Sizes) -> dict[str, Any]:
    import random
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.entities import Metric

    experiment = client.create_experiment("bench-search")
    now = int(time.time() * 1000)
    values = [random.Random(i).random() for i in range(sizes.runs)]  # the same runs on each server

    def seed(i: int) -> None:
        run_id = client.create_run(experiment, run_name=f"run-{i}").info.run_id
        client.log_batch(run_id, metrics=[Metric("acc", values[i], now, 0)], synchronous=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(sizes.threads) as pool:
        for _ in pool.map(seed, range(sizes.runs)):
            pass
    seed_s = time.perf_counter() - start

    def search() -> list[float]:
        runs = client.search_runs([experiment], filter_string=SEARCH_FILTER, order_by=SEARCH_ORDER,
                                  max_results=sizes.search_max_results)  # fmt: skip
        return [run.data.metrics["acc"] for run in runs]

    found = search()  # warm-up, and what the answer was
    expected = sorted((v for v in values if v > 0.5), reverse=True)[: sizes.search_max_results]
    times = []
    for _ in range(sizes.searches):
        start = time.perf_counter()
        search()
        times.append(time.perf_counter() - start)
    return {"seed_s": seed_s, "search_times_s": times, "search_correct": found == expected, "search_found": len(found)}


# --- the servers --------------------------------------------------------------------------------

_NULL_RUN = (b'{"run": {"info": {"run_id": "0", "experiment_id": "1", "status": "RUNNING", "start_time": 1, '
             b'"lifecycle_stage": "active", "artifact_uri": "mlflow-artifacts:/0"}, "data": {}}}')  # fmt: skip

_NULL_EXPERIMENT = b'{"experiment": {"experiment_id": "1", "name": "null", "lifecycle_stage": "active"}}'


def null_server(port: int) -> None:
    """A server that reads each request and answers at once, storing nothing: what the client
    alone can do. Plain ASGI on uvicorn, the server both measured servers use."""
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        path = scope["path"]
        body = b"{}"
        if path.endswith("/experiments/create"):
            body = b'{"experiment_id": "1"}'
        elif path.endswith(("/experiments/get-by-name", "/experiments/get")):
            body = _NULL_EXPERIMENT
        elif path.endswith(("/runs/create", "/runs/get")):
            body = _NULL_RUN
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every process below it (workers, helpers)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


@contextlib.contextmanager
def serving(name: str, folder: Path) -> Iterator[tuple[str, int]]:
    """Start ``name``'s server on a free loopback port; yield its URL and pid once it answers; stop
    its whole process group (and any child that left it) whatever happens."""
    port = free_port()
    if name == "null":
        cmd = [sys.executable, __file__, "--null-server", str(port)]
    elif name == "smalt":
        cmd = [str(BIN / "python"), "-m", "smalt.server", "--workspace", str(folder / "ws"), "--port", str(port)]
    else:
        cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]  # fmt: skip
    log = open(folder / f"{name}-server.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(url, process, folder / f"{name}-server.log")
        yield url, process.pid
    finally:
        stop(process)
        log.close()


def wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}) before answering:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.1)  # polling a port that is not open yet: nothing to wait on instead
    raise RuntimeError(f"server at {url} did not answer within {START_TIMEOUT_S:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    strays: list[psutil.Process] = []
    with contextlib.suppress(psutil.NoSuchProcess):
        strays = psutil.Process(process.pid).children(recursive=True)
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        for child in strays:  # a helper that started its own session is outside the group
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
            _, alive = psutil.wait_procs(strays, timeout=grace)
            if not alive:
                return


def settled_rss(pid: int, timeout_s: float = 60.0) -> int:
    """``tree_rss`` once start-up is over: MLflow answers before its job runner has started all
    its helpers, so wait until the tree has kept its size (processes and memory) for two seconds."""
    deadline = time.monotonic() + timeout_s
    last: tuple[int, int] | None = None
    steady_since = time.monotonic()
    while time.monotonic() < deadline:
        now = (len(psutil.Process(pid).children(recursive=True)), tree_rss(pid))
        if last is None or now[0] != last[0] or abs(now[1] - last[1]) > 0.01 * last[1]:
            last, steady_since = now, time.monotonic()
        elif time.monotonic() - steady_since >= 2.0:
            return now[1]
        time.sleep(0.25)  # sampling: there is no event for "done starting"
    return tree_rss(pid)


def processes(pid: int) -> dict[str, list[int]]:
    """RSS of each process in ``pid``'s tree, by what it runs (module or script name)."""
    found: dict[str, list[int]] = {}
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            args = process.cmdline()
            label = args[args.index("-m") + 1] if "-m" in args else " ".join(Path(a).name for a in args[1:3])
            found.setdefault(label, []).append(process.memory_info().rss)
    return found


def measure(name: str, sizes: Sizes, tmp: Path, phases: str) -> dict[str, Any]:
    folder = tmp / name
    folder.mkdir()
    with serving(name, folder) as (url, pid):
        idle = settled_rss(pid)
        env = {**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
        cmd = [sys.executable, __file__, "--client", url, "--sizes", json.dumps(sizes.__dict__), "--phases", phases]
        done = subprocess.run(cmd, env=env, cwd=folder, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{name} client failed ({done.returncode}):\n{done.stderr[-3000:]}")
        results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        results["rss_idle"] = idle
        results["rss_after"] = tree_rss(pid)
        results["processes"] = processes(pid)
    return results


# --- the report -----------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "error"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "MB":
        return f"{value:,.0f} MB"
    if unit == "s":
        return f"{value:,.1f} s"
    return f"{value:,.0f}{unit}"


def report(sizes: Sizes, results: dict[str, dict[str, Any]]) -> None:
    def get(name: str, key: str) -> Any:
        return results.get(name, {}).get(key)

    def rate(name: str, key: str, count: int) -> float | None:
        seconds = get(name, key)
        return count / seconds if seconds else None

    def median_ms(name: str) -> float | None:
        times = get(name, "search_times_s")
        return statistics.median(times) * 1000 if times else None

    def mb(name: str, key: str) -> float | None:
        value = get(name, key)
        return value / 1e6 if value is not None else None

    metric_count = sizes.batches * sizes.batch_size
    rows: list[tuple[str, float | None, float | None, bool, str, str, float | None]] = [
        # (measure, smalt, mlflow, higher is better, unit, target, smalt's absolute bound)
        (f"(a) log_metric, {sizes.metric_calls:,} sync calls", rate("smalt", "log_metric_s", sizes.metric_calls),
         rate("mlflow", "log_metric_s", sizes.metric_calls), True, " calls/s", ">= 2,000 calls/s and >= 5x", 2000),
        (f"(b) log_batch, {sizes.batches} x {sizes.batch_size:,} metrics", rate("smalt", "log_batch_s", metric_count),
         rate("mlflow", "log_batch_s", metric_count), True, " metrics/s", ">= 100,000 metrics/s and >= 5x", 100_000),
        (f"(c) search_runs over {sizes.runs:,} runs, median of {sizes.searches}", median_ms("smalt"),
         median_ms("mlflow"), False, "ms", "< 100 ms and >= 5x", 100),
        (f"    seeding {sizes.runs:,} runs ({sizes.threads} threads)", get("smalt", "seed_s"),
         get("mlflow", "seed_s"), False, "s", "", None),
        ("(d) server RSS, idle after start", mb("smalt", "rss_idle"), mb("mlflow", "rss_idle"), False, "MB",
         "< 200 MB", 200),
        ("    server RSS, after the workload", mb("smalt", "rss_after"), mb("mlflow", "rss_after"), False, "MB", "",
         None),
    ]  # fmt: skip
    print("| measure | smalt | MLflow | ratio | target |")
    print("|---|---:|---:|---:|---|")
    for label, s, m, higher, unit, target, bound in rows:
        ratio = None if s is None or m is None or s == 0 or m == 0 else (s / m if higher else m / s)
        verdict = ""
        if target and s is not None:
            met = (s >= bound if higher else s < bound) if bound is not None else True
            if ratio is not None and "5x" in target:
                met = met and ratio >= 5
            verdict = " - met" if met else " - MISSED"
        ratio_text = f"{ratio:,.1f}x" if ratio is not None else "-"
        smalt_text = _fmt(s, unit) if "smalt" in results else "not run"
        mlflow_text = _fmt(m, unit) if "mlflow" in results else "not run"
        print(f"| {label} | {smalt_text} | {mlflow_text} | {ratio_text} | {target}{verdict} |")
    print()
    if "null" in results:
        print(f"client ceiling (the same client against a null server that stores nothing): "
              f"(a) {_fmt(rate('null', 'log_metric_s', sizes.metric_calls), ' calls/s')}, "
              f"(b) {_fmt(rate('null', 'log_batch_s', metric_count), ' metrics/s')}")  # fmt: skip
    for name in ("smalt", "mlflow"):
        if seed_s := get(name, "seed_s"):
            print(f"{name} seeding: {sizes.runs / seed_s:,.0f} runs/s ({2 * sizes.runs / seed_s:,.0f} requests/s)")
        if (times := get(name, "search_times_s")) is not None:
            print(f"{name} search: {get(name, 'search_found')} runs returned, "
                  f"{'the expected ones' if get(name, 'search_correct') else 'NOT the expected runs'}, "
                  f"min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")  # fmt: skip
        if tree := get(name, "processes"):
            parts = ", ".join(f"{len(rss)} x {label} {sum(rss) / 1e6:,.0f} MB" for label, rss in tree.items())
            print(f"{name} server after the workload: {parts}")
    for name, result in results.items():
        for key, error in result.items():
            if key.endswith("_error"):
                print(f"{name} {key.removesuffix('_error')} FAILED: {error}")
    print("\nratio: how many times better smalt is (faster, or smaller for RSS and times); >1 favours smalt.")


def main() -> None:
    args, sizes = parse_args()
    if args.client:
        print(json.dumps(client_main(args.client, sizes, args.phases.split(","))))
        return
    if args.null_server:
        null_server(args.null_server)
        return
    # Terminated, unwind as on Ctrl-C so that the servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(128 + signal.SIGTERM))
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="smalt-bench-tracking-") as tmp:
        for name in [args.only] if args.only else ["smalt", "mlflow", "null"]:
            print(f"measuring {name}...", file=sys.stderr, flush=True)
            phases = "log_metric,log_batch" if name == "null" else "log_metric,log_batch,search"
            results[name] = measure(name, sizes, Path(tmp), phases)
    report(sizes, results)


if __name__ == "__main__":
    main()
