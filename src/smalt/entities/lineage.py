"""Lineage graphs: what produced a model, and what a data version fed.

Edges point the way data flows: ``source`` fed or produced ``target``. Node ids are
``model:<name>:<version>``, ``data:<name>:<version>``, ``job:<name>``, ``code:<snapshot URI>`` and
``environment:<digest>``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from smalt.entities.base import Entity

NodeKind = Literal["model", "data", "job", "code", "environment"]


class LineageNode(Entity):
    id: str
    kind: NodeKind
    name: str
    version: str | None = None
    #: What the node is: a job's status, inputs, params, metrics, compute, parent pipeline; an
    #: environment's packages; a code snapshot's files...
    properties: dict[str, Any] = Field(default_factory=dict)


class LineageEdge(Entity):
    source: str
    target: str
    #: ``input`` (read by the target job), ``output`` (written or registered by the source job),
    #: ``code`` or ``environment`` (what the target job ran).
    relation: str
    #: The job's input or output port, where there is one.
    port: str | None = None


class LineageGraph(Entity):
    """A graph around ``root``: upstream of a model (lineage) or downstream of data (impact)."""

    root: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]

    def node(self, node_id: str) -> LineageNode:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def of_kind(self, kind: NodeKind) -> list[LineageNode]:
        return [n for n in self.nodes if n.kind == kind]

    def sources_of(self, node_id: str) -> list[LineageEdge]:
        """The edges into ``node_id``: what fed or produced it."""
        return [e for e in self.edges if e.target == node_id]

    def targets_of(self, node_id: str) -> list[LineageEdge]:
        """The edges out of ``node_id``: what it fed or produced."""
        return [e for e in self.edges if e.source == node_id]


class ModelComparison(Entity):
    """Versions of one model side by side; each section maps a key to its value in each version
    (in the order of ``versions``), and holds only the keys whose values differ."""

    name: str
    versions: list[str]
    jobs: list[str | None]
    params: dict[str, list[Any]] = Field(default_factory=dict)
    inputs: dict[str, list[Any]] = Field(default_factory=dict)
    metrics: dict[str, list[Any]] = Field(default_factory=dict)
    data: dict[str, list[Any]] = Field(default_factory=dict)
    packages: dict[str, list[Any]] = Field(default_factory=dict)
    code: dict[str, list[Any]] = Field(default_factory=dict)
