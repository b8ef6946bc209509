"""What access control costs `smalt server` (issue 20), measured in one run.

One workspace, with a user (`smalt user create ... --role "AzureML Data Scientist" --scope
/workspaces/ws`, the role a CI principal gets; Owner would match fewer patterns) and its personal
access token (`smalt token create`), is served twice on loopback at once: by a server with
authentication on (`--auth`) and by a server with it off (`--no-auth`). Every measurement below
alternates between the two in short interleaved rounds (the order of the modes rotated each round),
so that a slow moment of this machine hits both; the figures are medians.

  1. The authorization check per request, target a median under 0.2 ms:
     (a) in-process, what a request with a known credential costs on top of an unauthenticated
         one: `AccessControl.remembered(header)` (the credential cache) + `Authorizer.allowed(...)`
         (the role check, answered from memory), each call timed, for a PAT, a signed token (JWT)
         and HTTP Basic; and, beside it, `Authorizer.allowed` through `run_in_threadpool` against
         the same call made directly (`server/access.Requires` answers from memory inline and
         makes that hop only when the store must be read);
     (b) end to end, a cheap authenticated GET (`/api/v1/workspaces/ws/jobs?max_results=1` and
         MLflow's `experiments/get`) over one kept-alive `http.client` connection per server:
         Bearer PAT, Bearer JWT (from `POST /api/v1/token`) and Basic against the server with
         authentication on, no credential against the one with it off; the difference of the
         medians is what authentication and authorization add to a request as served; a third
         server with authentication off (the control) shows how far two identical servers differ;
     (c) the server's whole application in this process (FastAPI app through httpx's ASGI
         transport: no socket, no second process, so far less noise than (b)), authentication off
         against on with a PAT, interleaved request by request: two cheap GETs and MLflow's
         `runs/log-metric`; the difference of the medians is what access control adds per request.
  2. MLflow throughput, target: with authentication on, within 10 % of off (ratio >= 0.90):
     the real `MlflowClient`, `log_metric` (synchronous calls) and `log_batch` (batches of metrics),
     a new run per mode and round. The client is authenticated with `MLFLOW_TRACKING_TOKEN` (the
     PAT) and, as a second line, with `MLFLOW_TRACKING_USERNAME`/`_PASSWORD` (Basic). The ratio is
     that of the medians of the rounds' rates; the spread below the table gives the per-round
     (paired) ratios too. The server keeps a checked PAT for 30 s and a password for 60 s, so a
     long run's on-rounds include the occasional re-check (a store read; an argon2 hash for Basic).
     Fairness: one client process for all modes (the same warm interpreter, imports and `requests`
     session), with the credential variables set in `os.environ` before each mode's part of a
     round and removed for the server with authentication off: MLflow's client reads them on every
     request (`get_default_host_creds`), so the only difference between modes is the credential
     sent and the server that checks it. A subprocess per round would add nothing but noise.

Target verdicts read "met" or "MISSED". A minute and a half to two and a half minutes on two cores
(`--help`: the sizes; `--quick`: small sizes, to check that the script works, in about 20 s).

    .venv/bin/python benchmarks/access.py [--rounds 30] [--get-rounds 60] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from timing import isolated_environment, stop_agents
from tracking import free_port, stop, wait_until_answering

BIN = Path(sys.executable).parent
USER, PASSWORD, ROLE = "bench", "bench-password-0123", "AzureML Data Scientist"
TARGET_CHECK_MS = 0.2
TARGET_RATIO = 0.90
JOBS_READ = "Microsoft.MachineLearningServices/workspaces/jobs/read"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that the script works")
    parser.add_argument("--rounds", type=int, help="MLflow rounds, each mode once per round (default 30; quick 3)")
    parser.add_argument("--metric-calls", type=int, default=150, help="log_metric calls per mode and round")
    parser.add_argument("--batches", type=int, default=30, help="log_batch calls per mode and round")
    parser.add_argument("--batch-size", type=int, default=100, help="metrics per log_batch")
    parser.add_argument("--get-rounds", type=int, help="GET rounds (default 60; quick 5)")
    parser.add_argument("--requests", type=int, default=20, help="GETs per endpoint, mode and round")
    parser.add_argument("--checks", type=int, default=20_000, help="in-process checks per credential")
    parser.add_argument(
        "--app-requests", type=int, default=500, help="requests of each kind through the app in-process"
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (3 if args.quick else 30)
    args.get_rounds = args.get_rounds or (5 if args.quick else 60)
    if args.quick:
        args.metric_calls, args.batches, args.checks, args.app_requests = 50, 10, 2000, 100
    return args


# --- the workspace and its two servers ---------------------------------------------------------------


def seed(env: dict[str, str]) -> str:
    """The user and its role, through the CLI as an admin would make them; its PAT."""
    smalt = str(BIN / "smalt")
    workspace = Path(env["SMALT_WORKSPACE"]).name
    subprocess.run([smalt, "user", "create", "--name", USER, "--password-stdin", "--role", ROLE, "--scope",
                    f"/workspaces/{workspace}"], input=PASSWORD + "\n", env=env, text=True, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    made = subprocess.run([smalt, "token", "create", "--name", "bench", "--principal", USER, "-o", "json"], env=env,
                          text=True, check=True, capture_output=True)  # fmt: skip
    return str(json.loads(made.stdout)["token"])


@contextmanager
def server(env: dict[str, str], auth: bool, folder: Path) -> Iterator[str]:
    port = free_port()
    name = "on" if auth else "off"
    cmd = [str(BIN / "python"), "-m", "smalt.server", "--workspace", env["SMALT_WORKSPACE"], "--port", str(port),
           "--auth" if auth else "--no-auth"]  # fmt: skip
    log_path = folder / f"server-{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_answering(url, process, log_path)
            yield url
        finally:
            stop(process)


def access_token(url: str) -> str:
    """A signed token from the token endpoint (password grant)."""
    body = urllib.parse.urlencode({"grant_type": "password", "username": USER, "password": PASSWORD})
    conn = connect(url)
    try:
        status, data = request(
            conn, "POST", "/api/v1/token", {"content-type": "application/x-www-form-urlencoded"}, body
        )
    finally:
        conn.close()
    if status != 200:
        raise SystemExit(f"token endpoint answered {status}: {data[:300]!r}")
    return str(json.loads(data)["access_token"])


def basic() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


# --- 1a: the check, in-process -----------------------------------------------------------------------


def check_in_process(workspace: Path, headers: dict[str, str], count: int, app_requests: int) -> dict[str, Any]:
    """Per call: the credential cache and the role check, for each credential; the thread hop; and
    the whole application in-process (1c)."""
    from starlette.concurrency import run_in_threadpool

    from smalt.server.access import AccessControl
    from smalt.services.workspace import open_workspace

    context = open_workspace(workspace, create=False)
    try:
        control = AccessControl(context, enabled=True)
        scope = f"/workspaces/{context.name}"
        results: dict[str, Any] = {}
        for mode, header in headers.items():
            who = control.remembered(header) or control.authenticate(header)  # the first request's miss
            if who is None or who.id is None or not control.authorizer.allowed(who.id, JOBS_READ, scope):
                raise SystemExit(f"in-process: {mode} does not authenticate, or may not read jobs")
            times = []
            for _ in range(count):
                start = time.perf_counter()
                found = control.remembered(header)
                allowed = found is not None and control.authorizer.allowed(found.id or "", JOBS_READ, scope)
                times.append(time.perf_counter() - start)
                if not allowed:  # a PAT is remembered for 30 s: far longer than this loop
                    raise SystemExit(f"in-process: {mode} was forgotten during the loop")
            results[mode] = times
        principal = control.remembered(headers["pat"]).id  # type: ignore[union-attr]

        async def hop() -> tuple[list[float], list[float]]:
            direct, hopped = [], []
            allowed = control.authorizer.allowed
            await run_in_threadpool(allowed, principal, JOBS_READ, scope)  # the worker thread started
            for _ in range(count // 4):  # interleaved
                start = time.perf_counter()
                allowed(principal, JOBS_READ, scope)
                middle = time.perf_counter()
                await run_in_threadpool(allowed, principal, JOBS_READ, scope)
                direct.append(middle - start)
                hopped.append(time.perf_counter() - middle)
            return direct, hopped

        results["direct"], results["threadpool"] = asyncio.run(hop())
        results["app"] = asyncio.run(through_app(context, headers["pat"], app_requests))
        return results
    finally:
        context.close()


async def through_app(context: Any, header: str, count: int) -> dict[tuple[str, str], list[float]]:
    """1c: per-request seconds of the server's whole application, in this process (httpx's ASGI
    transport: no socket, no second process), with authentication off and on (a PAT), interleaved."""
    import httpx

    from smalt.server.access import AccessControl
    from smalt.server.app import create_app

    apps = {mode: create_app(context, access=AccessControl(context, enabled=mode == "pat")) for mode in ("off", "pat")}
    clients = {mode: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://in-process",
                                       headers={"authorization": header} if mode == "pat" else {})
               for mode, app in apps.items()}  # fmt: skip
    runs = {}
    for mode, client in clients.items():
        made = await client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0"})
        runs[mode] = made.json()["run"]["info"]["run_id"]
    times: dict[tuple[str, str], list[float]] = {}
    modes = list(clients)
    for number in range(count + 50):  # the first 50 warm up
        for mode in modes[number % 2 :] + modes[: number % 2]:
            client = clients[mode]
            metric = {"run_id": runs[mode], "key": "loss", "value": 0.5, "timestamp": 1, "step": number}
            for what, method, path, body in (
                ("jobs", "GET", f"/api/v1/workspaces/{context.name}/jobs?max_results=1", None),
                ("experiments/get", "GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", None),
                ("runs/log-metric", "POST", "/api/2.0/mlflow/runs/log-metric", metric),
            ):
                start = time.perf_counter()
                answer = await client.request(method, path, json=body)
                elapsed = time.perf_counter() - start
                if answer.status_code != 200:
                    raise SystemExit(f"in-process {what} ({mode}) answered {answer.status_code}: {answer.text[:300]}")
                if number >= 50:
                    times.setdefault((what, mode), []).append(elapsed)
    for client in clients.values():
        await client.aclose()
    return times


# --- 1b: a cheap GET, end to end -------------------------------------------------------------------------


def connect(url: str) -> http.client.HTTPConnection:
    parsed = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)


def request(conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str],
            body: str | None = None) -> tuple[int, bytes]:  # fmt: skip
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def get_rounds(urls: dict[str, str], credentials: dict[str, str | None], paths: dict[str, str], rounds: int,
               per_round: int) -> dict[tuple[str, str], list[float]]:  # fmt: skip
    """Per-request seconds of each (endpoint, mode); round 0 is a warm-up and not kept."""
    conns = {mode: connect(urls[mode if mode in urls else "on"]) for mode in credentials}
    times: dict[tuple[str, str], list[float]] = {(e, m): [] for e in paths for m in credentials}
    modes = list(credentials)
    try:
        for number in range(rounds + 1):
            for endpoint, path in paths.items():
                order = modes[number % len(modes) :] + modes[: number % len(modes)]
                for mode in order:
                    conn, header = conns[mode], credentials[mode]
                    headers = {"authorization": header} if header else {}
                    kept = times[(endpoint, mode)]
                    for _ in range(per_round):
                        start = time.perf_counter()
                        status, data = request(conn, "GET", path, headers)
                        elapsed = time.perf_counter() - start
                        if status != 200:
                            raise SystemExit(f"GET {path} ({mode}) answered {status}: {data[:300]!r}")
                        if number:
                            kept.append(elapsed)
    finally:
        for conn in conns.values():
            conn.close()
    return times


# --- 2: MLflow throughput -------------------------------------------------------------------------------

_CREDENTIAL_VARS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def use_credential(mode: str, pat: str) -> None:
    for name in _CREDENTIAL_VARS:
        os.environ.pop(name, None)
    if mode == "pat":
        os.environ["MLFLOW_TRACKING_TOKEN"] = pat
    elif mode == "basic":
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = USER, PASSWORD


def mlflow_rounds(urls: dict[str, str], pat: str, args: argparse.Namespace) -> dict[tuple[str, str], list[float]]:
    """Per round, seconds of ``metric_calls`` log_metric calls and of ``batches`` log_batch calls, by mode;
    round 0 is a warm-up and not kept."""
    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    modes = ["off", "pat", "basic"]
    clients = {mode: MlflowClient(tracking_uri=urls["off" if mode == "off" else "on"]) for mode in modes}
    experiments = {}
    for mode in modes:
        use_credential(mode, pat)
        experiments[mode] = clients[mode].create_experiment(f"bench-access-{mode}")
    now = int(time.time() * 1000)
    # Made once, before any clock starts: what is timed is sending and storing, not making objects.
    batches = [[Metric(f"m{j}", float(j * step) / 7.0, now + step, step) for j in range(args.batch_size)]
               for step in range(args.batches)]  # fmt: skip
    seconds: dict[tuple[str, str], list[float]] = {(phase, m): [] for phase in ("log_metric", "log_batch")
                                                   for m in modes}  # fmt: skip
    for number in range(args.rounds + 1):
        order = modes[number % len(modes) :] + modes[: number % len(modes)]
        for mode in order:
            use_credential(mode, pat)
            client = clients[mode]
            run_id = client.create_run(experiments[mode]).info.run_id
            start = time.perf_counter()
            for step in range(args.metric_calls):
                client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step, synchronous=True)
            metric_s = time.perf_counter() - start
            start = time.perf_counter()
            for metrics in batches:
                client.log_batch(run_id, metrics=metrics, synchronous=True)
            batch_s = time.perf_counter() - start
            if number:
                seconds[("log_metric", mode)].append(metric_s)
                seconds[("log_batch", mode)].append(batch_s)
        if number % 10 == 0:
            print(f"  MLflow round {number}/{args.rounds} done", file=sys.stderr, flush=True)
    use_credential("off", pat)
    return seconds


# --- the report -----------------------------------------------------------------------------------------


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(args: argparse.Namespace, checks: dict[str, Any], gets: dict[tuple[str, str], list[float]],
           paths: dict[str, str], tracking: dict[tuple[str, str], list[float]]) -> None:  # fmt: skip
    labels = {"pat": "Bearer PAT", "jwt": "Bearer JWT", "basic": "Basic (name, password)"}
    print("| measure | auth off | auth on | on − off (or on/off) | target |")
    print("|---|---:|---:|---:|---|")
    for mode in ("pat", "jwt", "basic"):
        check = median_ms(checks[mode])
        print(f"| 1a check in-process, {labels[mode]}: `remembered` + `allowed`, median of {len(checks[mode]):,} | "
              f"- | {check * 1000:.1f} µs | {check * 1000:+.1f} µs | < {TARGET_CHECK_MS} ms - "
              f"{verdict(check < TARGET_CHECK_MS)} |")  # fmt: skip
    direct, hopped = median_ms(checks["direct"]), median_ms(checks["threadpool"])
    print(f"| 1a `Authorizer.allowed` direct vs through `run_in_threadpool` (the hop `Requires` makes only when "
          f"the store must be read), median of "
          f"{len(checks['direct']):,} | {direct * 1000:.1f} µs | {hopped * 1000:.1f} µs | "
          f"{(hopped - direct) * 1000:+.1f} µs | |")  # fmt: skip
    for endpoint, path in paths.items():
        off = median_ms(gets[(endpoint, "off")])
        control = median_ms(gets[(endpoint, "control")])
        print(f"| 1b GET {path}, control: a second server with authentication off, median of "
              f"{len(gets[(endpoint, 'control')]):,} | {off:.3f} ms | {control:.3f} ms | {control - off:+.3f} ms | "
              "(two identical servers differ by this much) |")  # fmt: skip
        for mode in ("pat", "jwt", "basic"):
            on = median_ms(gets[(endpoint, mode)])
            print(
                f"| 1b GET {path}, {labels[mode]}, median of {len(gets[(endpoint, mode)]):,} | {off:.3f} ms | "
                f"{on:.3f} ms | {on - off:+.3f} ms | < {TARGET_CHECK_MS} ms - {verdict(on - off < TARGET_CHECK_MS)} |"
            )
    app = checks["app"]
    for what in ("jobs", "experiments/get", "runs/log-metric"):
        off, on = median_ms(app[(what, "off")]), median_ms(app[(what, "pat")])
        print(f"| 1c {'POST' if what.startswith('runs/') else 'GET'} {what} through the app in-process (ASGI), "
              f"Bearer PAT, median of {len(app[(what, 'pat')]):,} | {off:.3f} ms | {on:.3f} ms | {on - off:+.3f} ms | "
              f"< {TARGET_CHECK_MS} ms - {verdict(on - off < TARGET_CHECK_MS)} |")  # fmt: skip
    units = {"log_metric": ("calls/s", args.metric_calls), "log_batch": ("metrics/s", args.batches * args.batch_size)}
    what = {"log_metric": f"{args.metric_calls} sync `log_metric` calls",
            "log_batch": f"{args.batches} `log_batch` of {args.batch_size} metrics"}  # fmt: skip
    for phase in ("log_metric", "log_batch"):
        unit, count = units[phase]
        off = count / statistics.median(tracking[(phase, "off")])
        for mode, via in (("pat", "MLFLOW_TRACKING_TOKEN (PAT)"), ("basic", "MLFLOW_TRACKING_USERNAME/_PASSWORD")):
            on = count / statistics.median(tracking[(phase, mode)])
            print(f"| 2 MLflow {what[phase]}, {via}, median of {len(tracking[(phase, mode)])} rounds | "
                  f"{off:,.0f} {unit} | {on:,.0f} {unit} | {on / off:.3f} | >= {TARGET_RATIO:.2f} - "
                  f"{verdict(on / off >= TARGET_RATIO)} |")  # fmt: skip
    print()
    print("Spread: the same, paired by round (each round's median on − off, or its on/off rate ratio):")
    for endpoint in paths:
        for mode in ("pat", "jwt", "basic"):
            per = args.requests
            off_rounds = chunks(gets[(endpoint, "off")], per)
            on_rounds = chunks(gets[(endpoint, mode)], per)
            diffs = sorted(median_ms(a) - median_ms(b) for a, b in zip(on_rounds, off_rounds, strict=True))
            print(f"  1b {endpoint}, {mode}: on − off {fmt_range(diffs, ' ms', '+')}")
    for phase in ("log_metric", "log_batch"):
        for mode in ("pat", "basic"):
            ratios = sorted(off_s / on_s for on_s, off_s in zip(tracking[(phase, mode)], tracking[(phase, "off")],
                                                                  strict=True))  # fmt: skip
            print(f"  2 {phase}, {mode}: on/off {fmt_range(ratios, '', '')}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{os.cpu_count()} CPUs, load average {load} at the end; Python {sys.version.split()[0]}; both servers "
          "and the client on this machine.")  # fmt: skip


def chunks(values: list[float], size: int) -> list[list[float]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def fmt_range(values: list[float], unit: str, sign: str) -> str:
    """Median and quartiles of ``values``; ``sign`` "+" for differences."""
    low, middle, high = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return f"median {middle:{sign}.3f}, quartiles {low:{sign}.3f} .. {high:{sign}.3f}{unit}"


def main() -> None:
    args = parse_args()
    # Terminated, unwind as on Ctrl-C so that the servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(128 + signal.SIGTERM))
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smalt-bench-access-") as scratch:
        folder = Path(scratch)
        env = isolated_environment(scratch)
        os.environ["HOME"] = scratch  # the MLflow client's credentials file is not this user's
        print("creating the user and its token...", file=sys.stderr, flush=True)
        try:
            pat = seed(env)
        finally:
            stop_agents()  # the CLI's agent, while its folder exists (timing's atexit comes too late here)
        with server(env, True, folder) as on_url, server(env, False, folder) as off_url, \
                server(env, False, folder) as control_url:
            urls = {"on": on_url, "off": off_url, "control": control_url}
            jwt = access_token(on_url)
            headers = {"pat": f"Bearer {pat}", "jwt": f"Bearer {jwt}", "basic": basic()}
            print("1a, 1c: in-process...", file=sys.stderr, flush=True)
            checks = check_in_process(Path(env["SMALT_WORKSPACE"]), headers, args.checks, args.app_requests)
            workspace = Path(env["SMALT_WORKSPACE"]).name
            paths = {"jobs": f"/api/v1/workspaces/{workspace}/jobs?max_results=1",
                     "experiments/get": "/api/2.0/mlflow/experiments/get?experiment_id=0"}  # fmt: skip
            print("1b: GETs, interleaved...", file=sys.stderr, flush=True)
            credentials: dict[str, str | None] = {"off": None, "control": None, **headers}
            gets = get_rounds(urls, credentials, paths, args.get_rounds, args.requests)
            print("2: MLflow throughput, interleaved...", file=sys.stderr, flush=True)
            tracking = mlflow_rounds(urls, pat, args)
    print(f"done in {time.perf_counter() - began:.0f} s\n", file=sys.stderr, flush=True)
    report(args, checks, gets, paths, tracking)


if __name__ == "__main__":
    main()
