"""Doorbells: everyone following a job is woken when it ends, and a bell no one waits on is harmless."""

from __future__ import annotations

from pathlib import Path

from smalt.execution import Doorbell, ring_all


def test_ring_all_wakes_every_follower_and_only_them(tmp_path: Path) -> None:
    watchers = tmp_path / "watchers"
    watchers.mkdir()
    first, second = Doorbell(watchers / "a"), Doorbell(watchers / "b")
    elsewhere = Doorbell(tmp_path / "other")
    try:
        assert not first.wait(0)  # nothing rang yet
        ring_all(watchers)
        assert first.wait(1) and second.wait(1)
        assert not elsewhere.wait(0)
        assert not first.wait(0)  # a ring is consumed once
    finally:
        for bell in (first, second, elsewhere):
            bell.close()
    ring_all(watchers)  # the followers left: nothing to ring, nothing fails
    ring_all(tmp_path / "no-such-folder")
