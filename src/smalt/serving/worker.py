"""One instance of an online deployment: Azure ML's scoring contract, in the deployment's environment.

This file runs under the deployment's own interpreter, where smalt is not installed, so it uses
the standard library only (and mlflow, for an MLflow model, from the model's own requirements).

The contract, as Azure ML's inference server has it: the scoring script's ``init()`` runs once,
before the instance takes requests; ``run(raw_data)`` runs per request with the body as a string,
and what it returns is sent back as JSON. ``AZUREML_MODEL_DIR`` points at the folder that holds the
model with its folder (or file) name kept. An MLflow model needs no script: the body is read as
MLflow's scoring server reads it (``dataframe_split``, ``dataframe_records``, ``instances``,
``inputs``), and Azure ML's ``input_data``.

Two ways to serve:

- ``--socket PATH``: behind smalt's router, over a Unix socket, one framed request at a time per
  connection: ``!BI`` (kind, length) then the body; answered ``!HI`` (status, length) then the body.
- ``--http HOST:PORT``: on its own, ``GET /`` (liveness) and ``POST /score``, as the entry point of
  a packaged model (``smalt model package``).

A bad body or an exception in ``run()`` is answered with ``{"error": ...}`` and a 4xx or 5xx
status; the instance keeps serving. If ``init()`` fails the process prints the traceback and exits
with status 3 before it listens, which the caller reads as a failed deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import struct
import sys
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCORE, PING = 1, 2
REQUEST = struct.Struct("!BI")
RESPONSE = struct.Struct("!HI")
INIT_FAILED = 3


def _jsonable(value: Any) -> Any:
    # numpy arrays and scalars, pandas objects: what scoring scripts commonly return.
    for method in ("tolist", "to_dict", "item"):
        if hasattr(value, method):
            return getattr(value, method)()
    raise TypeError(f"run() returned a {type(value).__name__}, which cannot be written as JSON")


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": message}).encode()


class ScriptScorer:
    """A scoring script with ``init()`` and ``run(raw_data)``."""

    def __init__(self, code: Path, script: str) -> None:
        path = (code / script).resolve()
        sys.path.insert(0, str(path.parent))
        sys.path.insert(0, str(code))
        spec = importlib.util.spec_from_file_location("score", path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(f"scoring script {path} cannot be loaded")
        module = importlib.util.module_from_spec(spec)
        sys.modules["score"] = module
        spec.loader.exec_module(module)
        for name in ("init", "run"):
            if not callable(getattr(module, name, None)):
                raise AttributeError(f"scoring script {path} has no {name}() function")
        module.init()
        self._run: Callable[[str], Any] = module.run

    def __call__(self, body: bytes) -> tuple[int, bytes]:
        try:
            text = body.decode("utf-8")
            json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            return _error(400, f"the request body is not valid JSON: {exc}")
        try:
            result = self._run(text)
        except Exception as exc:  # the user's code: any failure is answered, and the instance goes on
            traceback.print_exc()
            return _error(500, f"run() failed: {type(exc).__name__}: {exc}")
        try:
            return 200, json.dumps(result, default=_jsonable).encode()
        except (TypeError, ValueError) as exc:
            return _error(500, str(exc))


class MlflowScorer:
    """An MLflow model, loaded with ``mlflow.pyfunc`` and fed as ``mlflow models serve`` feeds it."""

    def __init__(self, model: Path) -> None:
        import mlflow.pyfunc
        from mlflow.pyfunc import scoring_server

        self._server = scoring_server
        self._model = mlflow.pyfunc.load_model(str(model))
        self._schema = self._model.metadata.get_input_schema()

    def __call__(self, body: bytes) -> tuple[int, bytes]:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            return _error(400, f"the request body is not valid JSON: {exc}")
        azure = isinstance(payload, dict) and "input_data" in payload
        if azure:  # Azure ML's own shape: a split data frame, answered with a bare list
            data = payload["input_data"]
            payload = {"dataframe_split": data} if isinstance(data, dict) else {"instances": data}
        try:
            parsed = self._server.infer_and_parse_data(payload, self._schema)
            data = parsed[0] if isinstance(parsed, tuple) else parsed
        except Exception as exc:
            return _error(400, f"the request body has the wrong shape: {exc}")
        try:
            predictions = self._model.predict(data)
        except Exception as exc:
            # The input does not match the model's signature (columns, types): the client's
            # mistake, which MLflow marks with a 4xx code, as its own scoring server answers it.
            status = getattr(exc, "get_http_status_code", lambda: 500)()
            if isinstance(status, int) and 400 <= status < 500:
                return _error(status, f"the request does not fit the model's signature: {exc}")
            traceback.print_exc()
            return _error(500, f"predict() failed: {type(exc).__name__}: {exc}")
        if azure:
            return 200, json.dumps(predictions, default=_jsonable).encode()
        output: list[str] = []

        class _Sink:
            def write(self, text: str) -> None:
                output.append(text)

        self._server.predictions_to_json(predictions, _Sink())  # type: ignore[no-untyped-call]
        return 200, "".join(output).encode()


class _Connections:
    """The open connections, so that a stop can wait for the requests they are answering."""

    def __init__(self) -> None:
        self.busy: set[asyncio.StreamWriter] = set()
        self.idle: set[asyncio.StreamWriter] = set()
        self.stopping = False


async def serve_socket(path: str, scorer: Callable[[bytes], tuple[int, bytes]]) -> None:
    connections = _Connections()
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.idle.add(writer)
        try:
            while not connections.stopping:
                head = await reader.readexactly(REQUEST.size)
                connections.idle.discard(writer)
                connections.busy.add(writer)
                kind, length = REQUEST.unpack(head)
                body = await reader.readexactly(length) if length else b""
                status, answer = scorer(body) if kind == SCORE else (200, b'"Healthy"')
                writer.write(RESPONSE.pack(status, len(answer)) + answer)
                await writer.drain()
                connections.busy.discard(writer)
                connections.idle.add(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            connections.idle.discard(writer)
            connections.busy.discard(writer)
            writer.close()
            if connections.stopping and not connections.busy:
                done.set()

    def stop() -> None:
        # Stop taking connections; close the idle ones; let the busy ones finish their answer.
        connections.stopping = True
        server.close()
        for writer in list(connections.idle):
            writer.close()
        if not connections.busy:
            done.set()

    temporary = f"{path}.{os.getpid()}"
    server = await asyncio.start_unix_server(handle, path=temporary)
    os.replace(temporary, path)  # the socket appears under its name only once it is listening
    inode = os.stat(path).st_ino
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    print(f"Listening on {path}", flush=True)
    await done.wait()
    await asyncio.sleep(0.05)  # the last answers leave the socket buffers
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == inode:  # not a newer instance's socket of the same name
            os.unlink(path)


def serve_http(address: str, scorer: Callable[[bytes], tuple[int, bytes]]) -> None:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    # One request at a time, as behind smalt's router by default and as Azure ML's server runs
    # run(): a scoring script need not be thread-safe.
    one_at_a_time = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            if self.path in ("/", "/health", "/ready"):
                self._answer(200, b'"Healthy"')
            else:
                self._answer(404, json.dumps({"error": f"no route {self.path}"}).encode())

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") != "/score":
                self._answer(404, json.dumps({"error": f"no route {self.path}; POST /score"}).encode())
                return
            with one_at_a_time:
                answer = scorer(body)
            self._answer(*answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    # As process 1 of a container, Python would ignore SIGTERM; `docker stop` must stop it at once.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"Listening on http://{host or '0.0.0.0'}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def redact_output() -> None:
    """Mask the secrets this instance was given (the variables ``SMALT_REDACT`` names) in all it
    prints: its standard output and error become a pipe, copied to the log with each secret replaced
    by ``***``; the last ``longest - 1`` bytes wait for the next read, so a secret split across two
    writes is found. (services/supervisor.py does the same for jobs; this file runs in the
    deployment's own environment, without smalt.)"""
    import atexit

    names = [n for n in os.environ.get("SMALT_REDACT", "").split(",") if n]
    secrets = sorted({os.environ[n].encode() for n in names if os.environ.get(n)}, key=len, reverse=True)
    if not secrets:
        return
    keep = max(len(s) for s in secrets) - 1
    read, write = os.pipe()
    log = os.dup(1)
    os.dup2(write, 1)
    os.dup2(write, 2)
    os.close(write)

    def mask(data: bytes) -> bytes:
        for secret in secrets:
            data = data.replace(secret, b"***")
        return data

    def copy() -> None:
        pending = b""
        while block := os.read(read, 1 << 16):
            pending = mask(pending + block)
            cut = max(0, len(pending) - keep)
            os.write(log, pending[:cut])
            pending = pending[cut:]
        os.write(log, mask(pending))

    thread = threading.Thread(target=copy, name="redactor", daemon=True)
    thread.start()

    def finish() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.close(1)
        os.close(2)
        thread.join(5)

    atexit.register(finish)


def main(argv: list[str] | None = None) -> int:
    redact_output()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="serve smalt's router on this Unix socket")
    where.add_argument("--http", help="serve HTTP on HOST:PORT")
    parser.add_argument("--code", help="the scoring code folder")
    parser.add_argument("--script", help="the scoring script, relative to --code")
    parser.add_argument("--mlflow-model", help="an MLflow model folder to serve with no script")
    args = parser.parse_args(argv)
    try:
        if args.script:
            scorer: Callable[[bytes], tuple[int, bytes]] = ScriptScorer(Path(args.code or "."), args.script)
        elif args.mlflow_model:
            scorer = MlflowScorer(Path(args.mlflow_model))
        else:
            parser.error("give --script (with --code) or --mlflow-model")
    except Exception:
        print("init() failed; the deployment takes no requests:", file=sys.stderr)
        traceback.print_exc()
        return INIT_FAILED
    print("init() done", flush=True)
    if args.socket:
        asyncio.run(serve_socket(args.socket, scorer))
    else:
        serve_http(args.http, scorer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
