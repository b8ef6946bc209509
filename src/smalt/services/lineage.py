"""Lineage queries: a model back to its jobs, data, code and environment; data forward to all it fed.

The edges are written as the work happens (``store/lineage.py``: when a job is recorded, a step
planned, an output registered, a model version created); nothing here reconstructs them. A query
walks the edges breadth-first, one indexed query per level, then reads the jobs and assets it
reached in a handful of batched queries, so its cost follows the part of the graph it touches, not
the size of the workspace.
"""

from __future__ import annotations

from typing import Any

from smalt.entities import Data, LineageEdge, LineageGraph, LineageNode, Model, ModelComparison
from smalt.services.assets import AssetService
from smalt.services.workspace import WorkspaceContext
from smalt.store import JobRecord


class LineageService:
    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace

    def model_lineage(self, name: str, version: str | None = None, label: str | None = None) -> LineageGraph:
        """Everything upstream of a model version: the jobs that made it and what they read,
        back to data and code, each job with its code snapshot and environment."""
        model = AssetService(self._ws, Model).get(name, version, None if version else (label or "latest"))
        root = f"model:{model.name}:{model.version}"
        return self._graph(root, upstream=True)

    def data_impact(self, name: str, version: str | None = None, label: str | None = None) -> LineageGraph:
        """Everything downstream of a data version: jobs that read it, and the data versions,
        models and jobs derived from those, transitively."""
        data = AssetService(self._ws, Data).get(name, version, None if version else (label or "latest"))
        return self._graph(f"data:{data.name}:{data.version}", upstream=False)

    def job_lineage(self, name: str) -> LineageGraph:
        """Everything upstream of a job."""
        return self._graph(f"job:{name}", upstream=True)

    def _graph(self, root: str, *, upstream: bool) -> LineageGraph:
        with self._ws.store.transaction() as tx:
            edges = tx.lineage.walk(root, upstream=upstream)
            ids = _unique([root, *(e.src for e in edges), *(e.dst for e in edges)])
            job_names = [i.split(":", 1)[1] for i in ids if i.startswith("job:")]
            jobs = {r.name: r for r in tx.jobs.many(job_names)}
            runs = tx.tracking.run_data(job_names) if upstream else {}
            digests = [d for r in jobs.values() if (d := _runtime(r).get("environment_digest"))]
            environments = tx.lineage.environments(digests) if upstream else {}
            assets = {i: tx.assets.get(*_asset_key(i)) for i in ids if not i.startswith("job:")}
        nodes: dict[str, LineageNode] = {}
        out_edges = [LineageEdge(source=e.src, target=e.dst, relation=e.relation, port=e.port) for e in edges]
        for node_id in ids:
            kind, _, rest = node_id.partition(":")
            if kind == "job":
                record = jobs.get(rest)
                props = _job_properties(record, runs.get(rest)) if record is not None else {"missing": True}
                nodes[node_id] = LineageNode(id=node_id, kind="job", name=rest, properties=props)
                if upstream and record is not None:
                    out_edges.extend(_job_context(record, nodes, environments))
            else:
                name, _, version = rest.partition(":")
                asset = assets.get(node_id)
                props = {"type": asset.spec.get("type"), "path": asset.spec.get("path"),
                         "archived": asset.archived} if asset is not None else {"missing": True}  # fmt: skip
                nodes[node_id] = LineageNode(id=node_id, kind="model" if kind == "model" else "data",
                                             name=name, version=version, properties=props)  # fmt: skip
        return LineageGraph(root=root, nodes=list(nodes.values()), edges=out_edges)

    def compare(self, name: str, versions: list[str]) -> ModelComparison:
        """Versions of model ``name`` side by side: only what differs in the params, inputs and
        metrics of the jobs that produced them, the data versions upstream, the environment's
        packages and the code files."""
        columns = [self._facts(name, v) for v in versions]
        comparison: dict[str, Any] = {"name": name, "versions": versions, "jobs": [c["job"] for c in columns]}
        for section in ("params", "inputs", "metrics", "data", "packages", "code"):
            differs: dict[str, list[Any]] = {}
            for key in sorted({k for c in columns for k in c[section]}):
                values = [c[section].get(key) for c in columns]
                if len({repr(v) for v in values}) > 1:
                    differs[key] = values
            comparison[section] = differs
        return ModelComparison.model_validate(comparison)

    def _facts(self, name: str, version: str) -> dict[str, Any]:
        graph = self.model_lineage(name, version)
        root = graph.node(graph.root)
        producers = [e.source for e in graph.sources_of(root.id) if e.source.startswith("job:")]
        facts: dict[str, Any] = {"job": None, "params": {}, "inputs": {}, "metrics": {}, "packages": {}, "code": {}}
        # Data versions anywhere upstream, by name: a changed version shows as name: [1, 2].
        facts["data"] = {n.name: n.version for n in graph.of_kind("data")}
        if not producers:
            return facts
        job = graph.node(producers[0])
        facts["job"] = job.name
        props = job.properties
        facts["params"] = dict(props.get("params") or {})
        facts["metrics"] = dict(props.get("metrics") or {})
        facts["inputs"] = {k: v for k, v in (props.get("inputs") or {}).items() if not isinstance(v, dict)}
        for edge in graph.sources_of(job.id):
            source = graph.node(edge.source)
            if edge.relation == "environment":
                facts["packages"] = dict(p.split("==", 1) for p in source.properties.get("packages") or [] if "==" in p)
            elif edge.relation == "code":
                facts["code"] = dict(source.properties.get("files") or {})
        return facts


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _asset_key(node_id: str) -> tuple[str, str, str]:
    kind, name, version = node_id.split(":", 2)
    return kind, name, version


def _runtime(record: JobRecord) -> dict[str, Any]:
    runtime = record.spec.get("runtime")
    return runtime if isinstance(runtime, dict) else {}


def _job_properties(record: JobRecord, run: Any) -> dict[str, Any]:
    spec = record.spec
    runtime = _runtime(record)
    inputs: dict[str, Any] = {}
    for port, value in (spec.get("inputs") or {}).items():
        if isinstance(value, dict):
            inputs[port] = {k: value[k] for k in ("type", "path") if k in value}
        else:
            inputs[port] = value
    props: dict[str, Any] = {
        "type": record.type, "status": record.status, "display_name": record.display_name,
        "experiment": record.experiment_name, "compute": record.compute,
        "parent_job_name": record.parent_name, "created_at": record.created_at.isoformat(),
        "created_by": record.created_by, "command": spec.get("command"), "inputs": inputs,
        "outputs": {p: (o or {}).get("path") for p, o in (spec.get("outputs") or {}).items()},
    }  # fmt: skip
    if runtime.get("rerun_of"):
        props["rerun_of"] = runtime["rerun_of"]
    step = spec.get("step") or {}
    if step.get("reused_from"):
        props["reused_from"] = step["reused_from"]
    if run is not None:
        props["params"] = dict(run.params)
        props["metrics"] = {m.key: m.value for m in run.latest}
    return props


def _job_context(record: JobRecord, nodes: dict[str, LineageNode],
                 environments: dict[str, dict[str, Any]]) -> list[LineageEdge]:  # fmt: skip
    """The code snapshot and environment a job ran, as nodes with edges into the job."""
    spec, runtime = record.spec, _runtime(record)
    target = f"job:{record.name}"
    edges: list[LineageEdge] = []
    code = spec.get("code")
    if code:
        node_id = f"code:{code}"
        if node_id not in nodes:
            files = runtime.get("code_files") or {}
            nodes[node_id] = LineageNode(id=node_id, kind="code", name=str(code).rstrip("/").rsplit("/", 1)[-1],
                                         properties={"uri": code, "files": files})  # fmt: skip
        edges.append(LineageEdge(source=node_id, target=target, relation="code"))
    digest = runtime.get("environment_digest")
    if digest:
        node_id = f"environment:{digest}"
        if node_id not in nodes:
            env = spec.get("environment")
            props: dict[str, Any] = {"digest": digest, **environments.get(digest, {})}
            name = digest[:12]
            if isinstance(env, dict):
                name = env.get("name") or name
                props.update({k: env[k] for k in ("name", "version", "image") if env.get(k)})
            elif isinstance(env, str):
                name = props["reference"] = env
            nodes[node_id] = LineageNode(id=node_id, kind="environment", name=str(name),
                                         version=props.get("version"), properties=props)  # fmt: skip
        edges.append(LineageEdge(source=node_id, target=target, relation="environment"))
    return edges


__all__ = ["LineageService"]
