"""Online endpoints: a scikit-learn model scoring one row, served by smalt, by `mlflow models serve`
and by a bare Starlette app (the floor), in one run (issue 7).

The model: a LogisticRegression fitted on iris (4 features), saved as a joblib file (for the floor
and for smalt's scoring script, which pass it NumPy arrays) and, fitted the same way on a DataFrame
with column names (the same coefficients), with `mlflow.sklearn.save_model` and a signature (for
MLflow and for smalt's no-code deployment, which pass it DataFrames). Each server runs alone on
loopback, one after the other; the floor and MLflow are one uvicorn process each (httptools, uvloop):

- floor (starlette): POST /score, `model.predict(np.array(body["data"])).tolist()` in the handler;
  uvicorn started by this script, one process, access log off.
- mlflow serve: `mlflow models serve -m <model> --env-manager local -w 1` (its own default of one
  uvicorn worker, said explicitly); POST /invocations with a `dataframe_split` body. Its defaults
  are kept: the access log on (to a file here), the schema check of the model's signature.
- smalt (score.py): the `smalt` CLI beside this interpreter, a fresh workspace, an endpoint (auth
  key) with two deployments of the same model and an Azure ML scoring script (init/run), blue
  with all traffic and green with none; POST to the endpoint's scoring_uri with the bearer key.
- smalt (mlflow no-code): a second endpoint with one deployment of the MLflow model folder
  (`type: mlflow_model`, no code, no environment: smalt builds one from the model's requirements,
  a minute or more the first time); the same `dataframe_split` body as MLflow's.

Load: `wrk -t1 -c16 -d<seconds>s --latency` (benchmarks/serving_assets/post.lua sets the method,
body and headers and prints one parsable line at the end), after an untimed 2 s warm-up. On 2
cores, wrk's one thread takes one and the server the other. Failed requests are non-2xx answers
plus socket errors (connect, read, write, timeout: wrk's default 2 s). requests/s counts the
successful answers only.

Rollout: wrk runs 12 s against the first endpoint while the CLI switches its traffic three times
(green=100, then blue=100, then green=100 again, at 3, 6 and 9 s); no request may fail.

Issue 7's targets: smalt (score.py) at least 4,000 requests/s, at least 3 times MLflow's, p99
under 10 ms; zero failed requests during the rollout.
Run: `.venv/bin/python benchmarks/serving.py [--seconds 10] [--skip-mlflow] [--skip-smalt]
[--skip-no-code]` (about 3 minutes, more the first time smalt builds the no-code environment).
Needs wrk: `apt-get install wrk`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml
from tracking import free_port, stop

BIN = Path(sys.executable).parent
SMALT = str(Path(sys.executable).with_name("smalt"))
LUA = Path(__file__).resolve().with_name("serving_assets") / "post.lua"
START_TIMEOUT_S = 180.0  # MLflow imports pandas, sklearn and itself before it answers
READY_TIMEOUT_S = 60.0  # a created deployment should answer at once; more is a problem to report
WARMUP_S = 2
ROLLOUT_S = 12
SWITCHES = [(3.0, "blue=0 green=100"), (6.0, "blue=100 green=0"), (9.0, "blue=0 green=100")]
ROW = [5.1, 3.5, 1.4, 0.2]
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SCORE_BODY = json.dumps({"data": [ROW]})
MLFLOW_BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}})
MODEL_FOLDER = "sklearn-model"  # the model asset's folder; AZUREML_MODEL_DIR is its parent
ROWS = ["floor (starlette)", "mlflow serve", "smalt (score.py)", "smalt (mlflow no-code)"]

SCORE_PY = f'''\
"""Azure ML's scoring contract: init() once, run(raw_data) per request."""

import json
import os

import joblib
import numpy as np

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "{MODEL_FOLDER}", "model.pkl"))


def run(raw_data):
    return model.predict(np.array(json.loads(raw_data)["data"])).tolist()
'''

ENDPOINT_SCHEMA = "https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json"
DEPLOYMENT_SCHEMA = "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json"


# --- wrk -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What one wrk run saw (the line post.lua's done() prints)."""

    requests: int
    duration_us: int
    non_2xx_3xx: int
    connect: int
    read: int
    write: int
    timeout: int
    p50_us: int
    p99_us: int

    @property
    def failed(self) -> int:
        return self.non_2xx_3xx + self.connect + self.read + self.write + self.timeout

    @property
    def rps(self) -> float:
        return (self.requests - self.non_2xx_3xx) / (self.duration_us / 1e6) if self.duration_us else 0.0


def start_wrk(url: str, body: str, auth: str | None, seconds: int) -> subprocess.Popen[str]:
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-s", str(LUA), url]
    env = {**os.environ, "BENCH_BODY": body, "BENCH_AUTH": auth or ""}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_wrk(process: subprocess.Popen[str]) -> Load:
    output, _ = process.communicate()
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            return Load(**json.loads(line.removeprefix("BENCH_RESULT ")))
    raise RuntimeError(f"wrk exited ({process.returncode}) without a result:\n{output[-3000:]}")


def wrk(url: str, body: str, auth: str | None, seconds: int) -> Load:
    process = start_wrk(url, body, auth, seconds)
    try:
        return finish_wrk(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def measure(url: str, body: str, auth: str | None, seconds: int) -> Load:
    wrk(url, body, auth, WARMUP_S)  # lazy imports, first connections, caches: out of the timing
    return wrk(url, body, auth, seconds)


# --- requests and servers --------------------------------------------------------------------------


def post(url: str, body: str, auth: str | None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_until(ready: Callable[[], bool], what: str, timeout_s: float, alive: Callable[[], str | None]) -> None:
    """Poll ``ready`` until it is true; ``alive`` says why waiting is pointless (a dead server), or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (reason := alive()) is not None:
            raise RuntimeError(f"{what}: {reason}")
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.1)  # polling a port that is not open yet: nothing to wait on instead
    raise RuntimeError(f"{what}: not ready within {timeout_s:.0f} s")


def check_answer(name: str, url: str, body: str, auth: str | None) -> str:
    """One request before the load: it must succeed, and should predict what the model predicts."""
    status, answer = post(url, body, auth)
    if status != 200:
        raise RuntimeError(f"{name} answered {status}: {answer[:500]}")
    value: Any = json.loads(answer)
    if isinstance(value, str):  # a run() result passed on as a JSON string
        value = json.loads(value)
    if isinstance(value, dict):
        value = value.get("predictions", value)
    if value != [0]:
        print(f"WARNING: {name} answered {answer[:200]!r}; the model predicts [0]", file=sys.stderr)
    return answer


@contextlib.contextmanager
def server(cmd: list[str], env: dict[str, str], log_path: Path, ready_url: str) -> Iterator[None]:
    """Start ``cmd`` in its own session; yield once GET ``ready_url`` answers 200 (any status for a
    POST-only route: the server is up); stop its whole process group whatever happens."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(cmd, env=env, cwd=log_path.parent, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    def up() -> bool:
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError:
            return True

    def alive() -> str | None:
        if process.poll() is None:
            return None
        return f"exited ({process.returncode}) before answering:\n{log_path.read_text(errors='replace')[-3000:]}"

    try:
        wait_until(up, " ".join(cmd[:4]), START_TIMEOUT_S, alive)
        yield
    finally:
        stop(process)
        log.close()


def floor_server(port: int, model_path: str) -> None:
    """The floor: the least a Python server can do for this request (run in a subprocess)."""
    import joblib
    import numpy as np
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    model = joblib.load(model_path)

    async def score(request: Request) -> JSONResponse:
        payload = await request.json()
        return JSONResponse(model.predict(np.array(payload["data"])).tolist())

    app = Starlette(routes=[Route("/score", score, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False)  # fmt: skip


def measure_floor(tmp: Path, seconds: int) -> Load:
    port = free_port()
    url = f"http://127.0.0.1:{port}/score"
    cmd = [sys.executable, __file__, "--floor-server", str(port), str(tmp / "model" / MODEL_FOLDER / "model.pkl")]
    with server(cmd, dict(os.environ), tmp / "floor.log", url):
        check_answer("floor", url, SCORE_BODY, None)
        return measure(url, SCORE_BODY, None, seconds)


def measure_mlflow(tmp: Path, seconds: int) -> Load:
    port = free_port()
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", str(tmp / "mlflow-model"), "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    # MLflow runs `bash -c "exec uvicorn ..."`: uvicorn must be on PATH even with the venv not activated.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    url = f"http://127.0.0.1:{port}"
    with server(cmd, env, tmp / "mlflow.log", f"{url}/ping"):
        check_answer("mlflow serve", f"{url}/invocations", MLFLOW_BODY, None)
        return measure(f"{url}/invocations", MLFLOW_BODY, None, seconds)


# --- smalt -----------------------------------------------------------------------------------------


@dataclass
class Rollout:
    load: Load
    switch_s: list[float]
    traffic_after: Any


class Smalt:
    """The smalt CLI on one fresh workspace under ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.workspace = tmp / "ws"
        # Only the workspace is new: HOME (and with it uv's download cache) stays the user's.
        self.env = {**os.environ, "SMALT_WORKSPACE": str(self.workspace)}

    def __call__(self, *args: str) -> str:
        done = subprocess.run([SMALT, *args], env=self.env, cwd=self.tmp, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False)  # fmt: skip
        if done.returncode != 0:
            output = (done.stderr or done.stdout)[-3000:]
            raise RuntimeError(f"smalt {' '.join(args)} failed ({done.returncode}):\n{output}")
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def delete(self, endpoint: str) -> None:
        try:
            self("online-endpoint", "delete", "-n", endpoint)
        except RuntimeError as exc:
            print(f"WARNING: {exc}", file=sys.stderr)

    def strays(self) -> list[psutil.Process]:
        """Processes still running for this workspace once everything is deleted."""
        marker = str(self.workspace)
        found = []
        for process in psutil.process_iter(["pid", "cmdline", "environ"]):
            if process.pid == os.getpid():
                continue
            cmdline = " ".join(process.info["cmdline"] or [])
            environ = process.info["environ"] or {}
            if marker in cmdline or environ.get("SMALT_WORKSPACE") == marker:
                found.append(process)
        return found

    def scoring(self, endpoint: str, body: str, name: str) -> tuple[str, str]:
        """The endpoint's scoring URI and Authorization header, once it answers ``body``."""
        uri = self.json("online-endpoint", "show", "-n", endpoint)["scoring_uri"]
        key = self.json("online-endpoint", "get-credentials", "-n", endpoint)["primaryKey"]
        auth = f"Bearer {key}"
        last = {"answer": "none"}

        def answers() -> bool:
            try:
                status, text = post(uri, body, auth)
            except OSError as exc:
                last["answer"] = repr(exc)
                raise
            last["answer"] = f"{status} {text[:1000]}"
            return status == 200

        try:
            wait_until(answers, f"{name} at {uri}", READY_TIMEOUT_S, lambda: None)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; last answer: {last['answer']}") from None
        check_answer(name, uri, body, auth)
        return uri, auth


def write_yaml(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def deployment(name: str, endpoint: str, model: dict[str, str], code: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"$schema": DEPLOYMENT_SCHEMA, "name": name, "endpoint_name": endpoint, "model": model}
    if code:
        spec["code_configuration"] = {"code": "./code", "scoring_script": "score.py"}
    spec["instance_count"] = 1
    spec["request_settings"] = {"max_concurrent_requests_per_instance": 16}
    return spec


def measure_smalt(tmp: Path, seconds: int) -> tuple[Load, Rollout]:
    smalt = Smalt(tmp)
    (tmp / "code").mkdir()
    (tmp / "code" / "score.py").write_text(SCORE_PY)
    model = {"path": f"./model/{MODEL_FOLDER}"}
    endpoint = write_yaml(tmp / "endpoint.yml", {"$schema": ENDPOINT_SCHEMA, "name": "bench", "auth_mode": "key"})
    blue = write_yaml(tmp / "blue.yml", deployment("blue", "bench", model, code=True))
    green = write_yaml(tmp / "green.yml", deployment("green", "bench", model, code=True))
    try:
        smalt("online-endpoint", "create", "-f", str(endpoint))
        smalt("online-deployment", "create", "-f", str(blue), "--all-traffic")
        smalt("online-deployment", "create", "-f", str(green))
        uri, auth = smalt.scoring("bench", SCORE_BODY, "smalt (score.py)")
        steady = measure(uri, SCORE_BODY, auth, seconds)
        return steady, rollout(smalt, uri, auth)
    finally:
        smalt.delete("bench")


def rollout(smalt: Smalt, uri: str, auth: str) -> Rollout:
    """wrk for ROLLOUT_S seconds while the traffic moves between blue and green three times."""
    process = start_wrk(uri, SCORE_BODY, auth, ROLLOUT_S)
    start = time.monotonic()
    took = []
    try:
        for at, traffic in SWITCHES:
            time.sleep(max(0.0, start + at - time.monotonic()))
            begin = time.perf_counter()
            smalt("online-endpoint", "update", "-n", "bench", "--traffic", traffic)
            took.append(time.perf_counter() - begin)
        load = finish_wrk(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    traffic_after = smalt.json("online-endpoint", "show", "-n", "bench").get("traffic")
    return Rollout(load, took, traffic_after)


def measure_smalt_no_code(tmp: Path, seconds: int) -> Load:
    smalt = Smalt(tmp)
    endpoint = write_yaml(tmp / "endpoint-mlflow.yml",
                          {"$schema": ENDPOINT_SCHEMA, "name": "bench-mlflow", "auth_mode": "key"})  # fmt: skip
    spec = deployment("mlflow", "bench-mlflow", {"path": "./mlflow-model", "type": "mlflow_model"}, code=False)
    mlflow = write_yaml(tmp / "mlflow.yml", spec)
    try:
        smalt("online-endpoint", "create", "-f", str(endpoint))
        begin = time.perf_counter()
        smalt("online-deployment", "create", "-f", str(mlflow), "--all-traffic")
        print(f"  no-code deployment created in {time.perf_counter() - begin:,.1f} s", file=sys.stderr)
        uri, auth = smalt.scoring("bench-mlflow", MLFLOW_BODY, "smalt (mlflow no-code)")
        return measure(uri, MLFLOW_BODY, auth, seconds)
    finally:
        smalt.delete("bench-mlflow")


# --- the model -------------------------------------------------------------------------------------


def save_model(tmp: Path) -> None:
    """One fitted model, saved as a joblib file and as an MLflow model folder."""
    import joblib
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    assert model.predict(np.array([ROW])).tolist() == [0]
    (tmp / "model" / MODEL_FOLDER).mkdir(parents=True)
    joblib.dump(model, tmp / "model" / MODEL_FOLDER / "model.pkl")
    # MLflow hands the model a DataFrame: fitted on one (the same fit, with column names), the model
    # takes it without sklearn's feature-name warning, which MLflow's server would log per request.
    frame = pd.DataFrame(x, columns=COLUMNS)
    named = LogisticRegression(max_iter=1000).fit(frame, y)
    assert np.array_equal(named.coef_, model.coef_) and np.array_equal(named.intercept_, model.intercept_)
    signature = infer_signature(frame, named.predict(frame))
    mlflow.sklearn.save_model(named, str(tmp / "mlflow-model"), signature=signature)


# --- the report ------------------------------------------------------------------------------------


def report(loads: dict[str, Load], rollout_result: Rollout | None, errors: dict[str, str], seconds: int) -> None:
    print(f"wrk -t1 -c16 -d{seconds}s on loopback, one row per request\n")
    print("| server | requests/s | p50 ms | p99 ms | failed |")
    print("|---|---:|---:|---:|---:|")
    for name in ROWS:
        if name in loads:
            load = loads[name]
            print(f"| {name} | {load.rps:,.0f} | {load.p50_us / 1000:,.2f} | {load.p99_us / 1000:,.2f} | "
                  f"{load.failed:,} |")  # fmt: skip
        else:
            print(f"| {name} | {'error' if name in errors else 'not run'} | | | |")
    print()
    smalt, mlflow, floor = loads.get("smalt (score.py)"), loads.get("mlflow serve"), loads.get("floor (starlette)")
    no_code = loads.get("smalt (mlflow no-code)")
    if smalt and mlflow and mlflow.rps:
        ratio = smalt.rps / mlflow.rps
        print(f"smalt (score.py) / mlflow serve: {ratio:,.1f}x requests/s (target >= 3x){_verdict(ratio >= 3)}")
    if no_code and mlflow and mlflow.rps:
        print(f"smalt (mlflow no-code) / mlflow serve: {no_code.rps / mlflow.rps:,.1f}x requests/s")
    if smalt and floor and floor.rps:
        print(f"smalt (score.py) / floor: {smalt.rps / floor.rps:,.2f}x requests/s")
    if smalt:
        print(f"smalt (score.py): {smalt.rps:,.0f} requests/s (target >= 4,000){_verdict(smalt.rps >= 4000)}; "
              f"p99 {smalt.p99_us / 1000:,.2f} ms (target < 10 ms){_verdict(smalt.p99_us < 10_000)}; "
              f"{smalt.failed} failed")  # fmt: skip
    if rollout_result:
        load = rollout_result.load
        took = ", ".join(f"{s:,.2f}" for s in rollout_result.switch_s)
        print(f"rollout: {len(SWITCHES)} traffic switches during {ROLLOUT_S} s (each update took {took} s): "
              f"{load.requests:,} requests, {load.rps:,.0f} requests/s, p99 {load.p99_us / 1000:,.2f} ms, "
              f"{load.failed} failed (target 0){_verdict(load.failed == 0)}; traffic after: "
              f"{rollout_result.traffic_after}")  # fmt: skip
    for name, error in errors.items():
        print(f"{name} FAILED: {error}")


def _verdict(met: bool) -> str:
    return " - met" if met else " - MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="seconds of load per server (default 10)")
    parser.add_argument("--skip-mlflow", action="store_true", help="no `mlflow models serve` row")
    parser.add_argument("--skip-smalt", action="store_true", help="no smalt rows and no rollout")
    parser.add_argument("--skip-no-code", action="store_true", help="no smalt MLflow no-code row")
    parser.add_argument("--floor-server", nargs=2, metavar=("PORT", "MODEL"), help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.floor_server:
        floor_server(int(args.floor_server[0]), args.floor_server[1])
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not on PATH: install it (Debian, Ubuntu: `apt-get install wrk`) and run again.")
    # Terminated, unwind as on Ctrl-C so that the servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(128 + signal.SIGTERM))
    loads: dict[str, Load] = {}
    errors: dict[str, str] = {}
    rollout_result: Rollout | None = None
    with tempfile.TemporaryDirectory(prefix="smalt-bench-serving-") as name:
        tmp = Path(name)
        print("fitting and saving the model...", file=sys.stderr, flush=True)
        save_model(tmp)
        parts: list[tuple[str, Callable[[], Load]]] = [("floor (starlette)", lambda: measure_floor(tmp, args.seconds))]
        if not args.skip_mlflow:
            parts.append(("mlflow serve", lambda: measure_mlflow(tmp, args.seconds)))
        for row, run in parts:
            print(f"measuring {row}...", file=sys.stderr, flush=True)
            try:
                loads[row] = run()
            except Exception as exc:  # noqa: BLE001 - one broken server must not hide the other numbers
                errors[row] = str(exc)
        if not args.skip_smalt:
            print("measuring smalt (score.py) and the rollout...", file=sys.stderr, flush=True)
            try:
                loads["smalt (score.py)"], rollout_result = measure_smalt(tmp, args.seconds)
            except Exception as exc:  # noqa: BLE001
                errors["smalt (score.py)"] = str(exc)
            if not args.skip_no_code:
                print("measuring smalt (mlflow no-code)...", file=sys.stderr, flush=True)
                try:
                    loads["smalt (mlflow no-code)"] = measure_smalt_no_code(tmp, args.seconds)
                except Exception as exc:  # noqa: BLE001
                    errors["smalt (mlflow no-code)"] = str(exc)
            strays = Smalt(tmp).strays()
            for process in strays:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.terminate()
            psutil.wait_procs(strays, timeout=10)
            if strays:
                errors["smalt cleanup"] = f"{len(strays)} process(es) still running after delete, terminated"
    report(loads, rollout_result, errors, args.seconds)


if __name__ == "__main__":
    main()
