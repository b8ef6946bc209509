"""The router of one online endpoint: auth, traffic split, mirroring, capture and metrics.

Run as ``python -m smalt.serving.router CONFIG``, in the background, by smalt's endpoint service.
``CONFIG`` is a JSON file (mode 0600) the service writes; ``POST /-/reload`` (with the admin token
from the same file) makes the router read it again. A reload swaps the whole routing table at
once, so a request is routed by the old table or the new one, never half of each; requests in
flight finish on the instances they started on.

Routes: ``GET /`` (liveness), ``POST /score`` (Azure ML's scoring route), ``GET /metrics``
(Prometheus), ``POST /-/reload``. The instances behind the router are ``worker.py`` processes on
Unix sockets; a pooled connection that an instance closed (it was replaced) is retried once on a
fresh connection, so a rollout drops nothing.

The router also supervises those instances (:class:`Supervisor`): it is the one process of an
endpoint that lives as long as the endpoint serves, and the only one that sees every request. A
request whose instance fails (refused, reset, gone) is sent to another live instance of the same
deployment, so no request fails while one instance lives; an instance whose process is dead leaves
the rotation at once and is started again from the same configuration, on the same socket, with
a growing wait between attempts that fail (a crash-looping ``init()`` does not spin).
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import os
import random
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smalt.errors import BackendError
from smalt.serving.capture import Capture, CaptureWriter
from smalt.serving.processes import STATUS_FILE, InstanceSpec, Process, start_instance, write_status
from smalt.serving.worker import REQUEST, RESPONSE, SCORE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_WATCH_S = 0.2  # how often the supervisor looks at its instances' processes
_STABLE_S = 10.0  # an instance that served this long before it died is started again at once
_BACKOFF_S = (0.5, 30.0)  # the first and the longest wait before starting again one that keeps dying


class WorkerGone(ConnectionError):
    """The instance closed the connection before it answered."""


class _Upstream(asyncio.Protocol):
    """One connection to an instance: one request at a time, answered in a frame."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) < RESPONSE.size:
            return
        status, length = RESPONSE.unpack_from(self.buffer)
        if len(self.buffer) < RESPONSE.size + length:
            return
        body = bytes(self.buffer[RESPONSE.size : RESPONSE.size + length])
        del self.buffer[: RESPONSE.size + length]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(WorkerGone("the instance closed the connection"))

    def send(self, kind: int, body: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(REQUEST.pack(kind, len(body)) + body)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@dataclass(eq=False)
class Instance:
    socket: str
    slots: asyncio.Semaphore
    deployment: str = ""
    #: The process that serves the socket now; None where the configuration does not say.
    process: Process | None = None
    #: How to start it again; None where the configuration does not say (it is only watched).
    spec: InstanceSpec | None = None
    ready_timeout_s: float = 600.0
    idle: list[_Upstream] = field(default_factory=list)
    busy: int = 0
    retired: bool = False
    #: ``Running`` (in rotation) or ``Restarting`` (dead, waiting to start or starting again).
    state: str = "Running"
    restarts: int = 0
    crashes: int = 0  # consecutive deaths soon after a start, which the wait before the next one grows with
    ready_at: float = field(default_factory=time.monotonic)
    reviving: asyncio.Task[None] | None = None

    async def connection(self) -> _Upstream:
        while self.idle:
            upstream = self.idle.pop()
            if not upstream.closed:
                return upstream
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_unix_connection(_Upstream, self.socket)
        return protocol

    def give_back(self, upstream: _Upstream) -> None:
        if self.retired or upstream.closed:
            upstream.close()
        else:
            self.idle.append(upstream)

    def retire(self) -> None:
        self.retired = True
        self.drop_idle()
        if self.reviving is not None:
            self.reviving.cancel()

    def drop_idle(self) -> None:
        for upstream in self.idle:
            upstream.close()
        self.idle.clear()

    def status(self) -> dict[str, Any]:
        process = self.process.to_dict() if self.process is not None else {"pid": None, "started": None}
        return {"deployment": self.deployment, **process, "state": self.state, "restarts": self.restarts,
                "retired": self.retired}  # fmt: skip


class Supervisor:
    """Keeps every instance of the routing table running, and says how they are in ``instances.json``.

    Its instances' processes are not its children (they outlive the router, as the endpoint
    service starts them detached), so it looks at them every ``_WATCH_S``, and at once when a
    request to one fails. A dead instance leaves the rotation and is started again with
    ``start_instance``, on its socket, after a wait that doubles with each quick death (from
    ``_BACKOFF_S[0]`` up to ``_BACKOFF_S[1]``); it is back in rotation once it listens. The file
    names each process it started before anything else happens in the loop, so that the service,
    which stops the endpoint's processes, can find them; and it keeps a retired instance listed
    until its process is gone, for the same reason.
    """

    def __init__(self, status_path: Path) -> None:
        self.status_path = status_path
        self.instances: dict[str, Instance] = {}
        self.retired: list[Instance] = []

    def adopt(self, instances: dict[str, Instance]) -> None:
        """Make ``instances`` the ones to keep running (on start and on every reload)."""
        for socket, instance in self.instances.items():
            if socket not in instances:
                instance.retire()
                self.retired.append(instance)
        self.instances = instances
        self.write()

    def write(self) -> None:
        listed = {i.socket: i.status() for i in self.retired}
        listed.update((socket, i.status()) for socket, i in self.instances.items())
        try:
            write_status(self.status_path, listed)
        except OSError as exc:  # the next change writes it again; supervising matters more
            print(f"Could not write {self.status_path}: {exc}", flush=True)

    async def watch(self) -> None:
        while True:
            try:
                for instance in list(self.instances.values()):
                    self.check(instance)
                before = len(self.retired)
                self.retired = [i for i in self.retired if i.process is not None and i.process.alive()]
                if len(self.retired) != before:
                    self.write()
            except Exception:  # one bad pass must not end the watch
                traceback.print_exc()
            await asyncio.sleep(_WATCH_S)

    def check(self, instance: Instance) -> None:
        """Take ``instance`` out of rotation and start it again if its process is dead."""
        if instance.retired or instance.state != "Running" or instance.process is None:
            return
        if instance.process.alive():
            return
        instance.state = "Restarting"
        instance.drop_idle()
        instance.crashes = 0 if time.monotonic() - instance.ready_at >= _STABLE_S else instance.crashes + 1
        self.write()
        if instance.spec is None:
            print(f"Instance {instance.socket} of deployment '{instance.deployment}' (pid "
                  f"{instance.process.pid}) is dead, and its configuration does not say how to start it; "
                  "smalt online-endpoint start brings it back", flush=True)  # fmt: skip
            return
        instance.reviving = asyncio.get_running_loop().create_task(self._revive(instance, instance.spec))

    async def _revive(self, instance: Instance, spec: InstanceSpec) -> None:
        name = f"{Path(spec.log).stem} of deployment '{instance.deployment}'"
        assert instance.process is not None
        print(f"Instance {name} (pid {instance.process.pid}) is dead; starting it again", flush=True)
        while not instance.retired:
            if instance.crashes:
                wait = min(_BACKOFF_S[0] * 2 ** (instance.crashes - 1), _BACKOFF_S[1])
                print(f"Instance {name} waits {wait:g} s before its next start ({instance.crashes} quick deaths "
                      f"in a row; see {spec.log})", flush=True)  # fmt: skip
                await asyncio.sleep(wait)
                if instance.retired:
                    return
            try:
                process = start_instance(spec)  # in the loop, so no reload can come before the write
            except (BackendError, OSError) as exc:
                print(f"Instance {name} did not start: {exc}", flush=True)
                instance.crashes += 1
                continue
            instance.process = process
            instance.restarts += 1
            self.write()
            if await self._ready(spec, process, instance.ready_timeout_s):
                if not instance.retired:
                    instance.state = "Running"
                    instance.ready_at = time.monotonic()
                    self.write()
                    print(f"Instance {name} is back (pid {process.pid})", flush=True)
                return
            print(f"Instance {name} (pid {process.pid}) did not get ready; see {spec.log}", flush=True)
            await asyncio.to_thread(process.stop, 5)
            instance.crashes += 1

    @staticmethod
    async def _ready(spec: InstanceSpec, process: Process, timeout_s: float) -> bool:
        # The worker gives its socket its name only once it listens, after init().
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if os.path.exists(spec.socket):
                return True
            if not process.alive():
                return False
            await asyncio.sleep(0.05)
        return False

    def stop(self) -> None:
        for instance in self.instances.values():
            if instance.reviving is not None:
                instance.reviving.cancel()
        self.write()


class Metrics:
    """Per-deployment request count, error count and latency histogram, in Prometheus' text format."""

    def __init__(self, endpoint: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        labels = ["endpoint", "deployment"]
        self._requests = Counter("smalt_online_requests", "Requests answered, by deployment.", [*labels, "code"],
                                 registry=self.registry)  # fmt: skip
        self._errors = Counter("smalt_online_request_errors", "Requests answered with a 4xx or 5xx status.", labels,
                               registry=self.registry)  # fmt: skip
        self._latency = Histogram("smalt_online_request_latency_seconds", "Time from request to answer.", labels,
                                  buckets=_LATENCY_BUCKETS, registry=self.registry)  # fmt: skip
        self._endpoint = endpoint
        self._children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}

    def observe(self, deployment: str, status: int, seconds: float) -> None:
        children = self._children.get((deployment, status))
        if children is None:
            children = (
                self._requests.labels(self._endpoint, deployment, str(status)),
                self._errors.labels(self._endpoint, deployment),
                self._latency.labels(self._endpoint, deployment),
            )
            self._children[(deployment, status)] = children
        requests, errors, latency = children
        requests.inc()
        if status >= 400:
            errors.inc()
        latency.observe(seconds)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))


@dataclass
class Deployment:
    name: str
    instances: list[Instance]
    timeout_s: float
    queue_wait_s: float
    capture: Capture | None
    turn: int = 0

    def pick(self, tried: list[Instance]) -> Instance | None:
        # The least busy live instance not tried yet; ties go round the instances in turn.
        self.turn += 1
        count = len(self.instances)
        best: Instance | None = None
        for i in range(count):
            instance = self.instances[(self.turn + i) % count]
            usable = instance.state == "Running" and not instance.retired and instance not in tried
            if usable and (best is None or instance.busy < best.busy):
                best = instance
        return best


@dataclass
class Table:
    """Everything a request is routed by; replaced whole on reload."""

    version: int
    auth: dict[str, Any]
    deployments: dict[str, Deployment]
    live: list[str]
    cumulative: list[int]
    mirror: list[tuple[str, float]]

    def choose(self) -> str | None:
        if not self.live:
            return None
        return self.live[bisect.bisect_right(self.cumulative, random.random() * self.cumulative[-1])]


def _json(status: int, payload: Any) -> tuple[int, bytes]:
    return status, json.dumps(payload).encode()


class Router:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        config = self._read()
        self.endpoint: str = config["endpoint"]
        self.admin_token: str = config["admin_token"]
        self.metrics = Metrics(self.endpoint)
        self.captures = CaptureWriter()
        self.supervisor = Supervisor(config_path.with_name(STATUS_FILE))
        self._supervising: asyncio.Task[None] | None = None
        self._instances: dict[str, Instance] = {}
        self._captures: dict[tuple[str, str], Capture] = {}
        self._tokens: dict[str, float] = {}
        self.table = self._build(config)

    def _read(self) -> dict[str, Any]:
        config = json.loads(self.config_path.read_text())
        assert isinstance(config, dict)
        return config

    def _build(self, config: dict[str, Any]) -> Table:
        deployments: dict[str, Deployment] = {}
        instances: dict[str, Instance] = {}
        captures: dict[tuple[str, str], Capture] = {}
        for name, spec in config["deployments"].items():
            own = []
            launch = spec.get("launch")
            for entry in spec["instances"]:
                socket = entry["socket"]
                instance = self._instances.get(socket) or Instance(
                    socket, asyncio.Semaphore(spec["max_concurrent"]), name, Process.from_dict(entry),
                    InstanceSpec.from_launch(launch, socket, entry["log"]) if launch else None,
                    spec.get("ready_timeout_s", 600.0),
                )  # fmt: skip
                instances[socket] = instance
                own.append(instance)
            capture = None
            if spec.get("capture"):
                # The same capture across reloads: a request in flight records into the object
                # that the writer thread keeps flushing.
                key = (name, json.dumps(spec["capture"], sort_keys=True))
                capture = self._captures.get(key) or Capture(spec["capture"], name)
                captures[key] = capture
            deployments[name] = Deployment(
                name, own, spec["timeout_ms"] / 1000, spec["max_queue_wait_ms"] / 1000, capture
            )
        live = [name for name, weight in sorted(config["traffic"].items()) if weight > 0 and name in deployments]
        cumulative: list[int] = []
        for name in live:
            cumulative.append((cumulative[-1] if cumulative else 0) + config["traffic"][name])
        mirror = [(name, weight / 100) for name, weight in sorted(config.get("mirror_traffic", {}).items())
                  if weight > 0 and name in deployments]  # fmt: skip
        self.supervisor.adopt(instances)
        self._instances = instances
        self._captures = captures
        self.captures.captures = list(captures.values())
        self._tokens.clear()
        return Table(config["version"], config["auth"], deployments, live, cumulative, mirror)

    def reload(self) -> int:
        previous = self.captures.captures
        self.table = self._build(self._read())
        for capture in previous:  # a capture that is gone has its last rows written now
            if capture not in self.captures.captures:
                capture.flush()
        return self.table.version

    # -- auth ----------------------------------------------------------------------------------

    def authorised(self, header: bytes | None) -> bool:
        if header is None or not header.lower().startswith(b"bearer "):
            return False
        token = header[7:].strip().decode("latin-1")
        auth = self.table.auth
        if auth["mode"] == "key":
            return hashlib.sha256(token.encode()).hexdigest() in auth["key_digests"]
        expiry = self._tokens.get(token)
        now = time.time()
        if expiry is not None:
            return expiry > now
        import jwt

        try:
            claims = jwt.decode(token, auth["secret"], algorithms=["HS256"], audience=auth["audience"])
        except jwt.PyJWTError:
            return False
        self._tokens[token] = float(claims["exp"])
        return True

    # -- forwarding ----------------------------------------------------------------------------

    async def forward(self, deployment: Deployment, kind: int, body: bytes) -> tuple[int, bytes]:
        tried: list[Instance] = []
        failure: Exception | None = None
        while (instance := deployment.pick(tried)) is not None:
            tried.append(instance)
            try:
                await asyncio.wait_for(instance.slots.acquire(), deployment.queue_wait_s)
            except TimeoutError:
                return _json(429, {
                    "error": f"deployment '{deployment.name}' is busy; too many requests wait for it",
                    "hint": "raise request_settings.max_concurrent_requests_per_instance or instance_count",
                })  # fmt: skip
            instance.busy += 1
            try:
                return await self._ask(deployment, instance, kind, body)
            except (WorkerGone, OSError) as exc:
                # The instance died (or stopped) under the request: it leaves the rotation if its
                # process is gone, and the request goes to another instance, of the routing table
                # as it is now if a reload came meanwhile.
                failure = exc
                self.supervisor.check(instance)
                deployment = self.table.deployments.get(deployment.name, deployment)
            finally:
                instance.busy -= 1
                instance.slots.release()
        hint = f"smalt online-deployment get-logs -n {deployment.name} -e {self.endpoint}"
        if all(i.state != "Running" for i in deployment.instances):
            return _json(503, {"error": f"no instance of deployment '{deployment.name}' is running; "
                                        "the router is starting them again", "hint": hint})  # fmt: skip
        return _json(502, {"error": f"deployment '{deployment.name}' is not answering: {failure}", "hint": hint})

    async def _ask(self, deployment: Deployment, instance: Instance, kind: int, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            upstream = await instance.connection()
            try:
                answer = await asyncio.wait_for(upstream.send(kind, body), deployment.timeout_s)
            except WorkerGone:
                # The instance was replaced or stopped between requests; a fresh connection
                # (to the same socket while it still listens) answers, or the error stands.
                upstream.close()
                if attempt == 2:
                    raise
                continue
            except TimeoutError:
                upstream.close()
                waited = int(deployment.timeout_s * 1000)
                return _json(408, {"error": f"deployment '{deployment.name}' did not answer within "
                                            f"{waited} ms (request_timeout_ms)"})  # fmt: skip
            instance.give_back(upstream)
            return answer
        raise AssertionError("unreachable")

    async def mirror(self, deployment: Deployment, body: bytes) -> None:
        started = time.perf_counter()
        status, _ = await self.forward(deployment, SCORE, body)
        self.metrics.observe(deployment.name, status, time.perf_counter() - started)

    async def score(self, headers: dict[bytes, bytes], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        request_id = (headers.get(b"x-request-id") or headers.get(b"x-ms-client-request-id") or b"").decode()
        request_id = request_id or str(uuid.uuid4())
        extra = {"x-request-id": request_id}
        if not self.authorised(headers.get(b"authorization")):
            mode = "key" if self.table.auth["mode"] == "key" else "token"
            hint = f"send 'Authorization: Bearer <{mode}>'; smalt online-endpoint get-credentials -n {self.endpoint}"
            return *_json(401, {"error": f"no valid {mode} in the Authorization header", "hint": hint}), extra
        table = self.table
        wanted = headers.get(b"azureml-model-deployment")
        if wanted:
            name: str | None = wanted.decode()
            if name not in table.deployments:
                known = ", ".join(table.deployments) or "none"
                return *_json(404, {"error": f"deployment '{name}' is not serving in endpoint '{self.endpoint}'; "
                                             f"serving: {known}"}), extra  # fmt: skip
        else:
            name = table.choose()
            if name is None:
                return *_json(503, {"error": f"no deployment of endpoint '{self.endpoint}' takes traffic",
                                    "hint": f"smalt online-endpoint update -n {self.endpoint} --traffic "
                                            "'<deployment>=100'"}), extra  # fmt: skip
        assert name is not None
        deployment = table.deployments[name]
        extra["azureml-model-deployment"] = name
        for target, share in table.mirror:
            if target != name and random.random() < share:
                asyncio.get_running_loop().create_task(self.mirror(table.deployments[target], body))
        started = time.perf_counter()
        status, answer = await self.forward(deployment, SCORE, body)
        self.metrics.observe(name, status, time.perf_counter() - started)
        if deployment.capture is not None and deployment.capture.sampled():
            deployment.capture.record(request_id, datetime.now(UTC), body, status, answer)
        return status, answer, extra

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = dict(scope["headers"])
        extra: dict[str, str] = {}
        content_type = b"application/json"
        if method == "POST" and path in ("/score", "/score/"):
            status, answer, extra = await self.score(headers, await _body(receive))
        elif method == "GET" and path == "/":
            status, answer = 200, b'"Healthy"'
        elif method == "GET" and path == "/metrics":
            status, answer, content_type = 200, self.metrics.text(), b"text/plain; version=0.0.4"
        elif method == "POST" and path == "/-/reload":
            await _body(receive)
            if headers.get(b"x-smalt-admin", b"").decode() != self.admin_token:
                status, answer = _json(403, {"error": "not the router's admin token"})
            else:
                status, answer = _json(200, {"version": self.reload()})
        else:
            status, answer = _json(404, {"error": f"no route {method} {path}; POST /score"})
        raw = [(b"content-type", content_type), (b"content-length", str(len(answer)).encode())]
        raw.extend((k.encode(), v.encode()) for k, v in extra.items())
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": answer})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._supervising = asyncio.get_running_loop().create_task(self.supervisor.watch())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._supervising is not None:
                    self._supervising.cancel()
                self.supervisor.stop()
                self.captures.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def main(argv: list[str]) -> int:
    import uvicorn

    router = Router(Path(argv[0]))
    config = json.loads(Path(argv[0]).read_text())
    print(f"Router of endpoint '{router.endpoint}' on http://{config['host']}:{config['port']}", flush=True)
    uvicorn.run(
        router, host=config["host"], port=config["port"], loop="uvloop", http="httptools", lifespan="on",
        access_log=False, log_level="warning", timeout_graceful_shutdown=30,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
