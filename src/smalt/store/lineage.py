"""Lineage edges and environment package lists in the metadata store.

A node is a string: ``job:<name>``, ``data:<name>:<version>`` or ``model:<name>:<version>`` (names
and versions never hold a colon). Walking the graph is a breadth-first search with one indexed
query per level, so a query costs in proportion to the part of the graph it reaches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from smalt.store.dialects import insert_ignoring_conflicts
from smalt.store.tables import environment_packages, lineage_edges

#: At most this many nodes per IN list (SQLite's limit on bound parameters is far above it).
_CHUNK = 500


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    relation: str
    port: str | None = None


class LineageRepository:
    """Lineage rows inside the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, edges: Iterable[Edge]) -> None:
        rows = [
            {"src": e.src, "dst": e.dst, "relation": e.relation, "port": e.port, "created_at": datetime.now(UTC)}
            for e in edges
        ]
        if rows:
            self._connection.execute(lineage_edges.insert(), rows)

    def _edges(self, column: str, nodes: list[str]) -> list[Edge]:
        found: list[Edge] = []
        key = lineage_edges.c[column]
        for start in range(0, len(nodes), _CHUNK):
            rows = self._connection.execute(
                select(lineage_edges.c.src, lineage_edges.c.dst, lineage_edges.c.relation, lineage_edges.c.port)
                .where(key.in_(nodes[start : start + _CHUNK]))
                .order_by(lineage_edges.c.id)
            ).all()
            found.extend(Edge(r.src, r.dst, r.relation, r.port) for r in rows)
        return found

    def into(self, nodes: Iterable[str]) -> list[Edge]:
        """Edges ending at any of ``nodes``: what fed or produced them."""
        return self._edges("dst", list(nodes))

    def out_of(self, nodes: Iterable[str]) -> list[Edge]:
        """Edges starting at any of ``nodes``: what they fed or produced."""
        return self._edges("src", list(nodes))

    def walk(self, start: str, *, upstream: bool, max_nodes: int = 100_000) -> list[Edge]:
        """Every edge reachable from ``start``, against (``upstream``) or along the edges."""
        seen = {start}
        frontier = [start]
        edges: list[Edge] = []
        while frontier and len(seen) < max_nodes:
            step = self.into(frontier) if upstream else self.out_of(frontier)
            frontier = []
            for edge in step:
                edges.append(edge)
                other = edge.src if upstream else edge.dst
                if other not in seen:
                    seen.add(other)
                    frontier.append(other)
        return edges

    # -- environments ---------------------------------------------------------------------------
    def record_environment(self, digest: str, python: str | None, packages: list[str]) -> None:
        """The packages a built environment holds; the first record of a digest stands."""
        self._connection.execute(
            insert_ignoring_conflicts(self._connection, environment_packages).values(
                digest=digest, python=python, packages=packages, recorded_at=datetime.now(UTC)
            )
        )

    def environments(self, digests: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``digest -> {python, packages}`` for the digests recorded."""
        wanted = list(set(digests))
        if not wanted:
            return {}
        rows = self._connection.execute(
            select(environment_packages).where(environment_packages.c.digest.in_(wanted))
        ).all()
        return {r.digest: {"python": r.python, "packages": list(r.packages)} for r in rows}
