"""The local backend's waits end when what they wait for happens, not at their next poll: a job
waiting for a compute slot, the supervisor waiting for its command; and a detached start leaves no
zombie behind once the next one is made."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from smalt.execution import ProcessGroup, acquire_slot
from smalt.execution.detached import _forked, fork_detached


def test_a_released_slot_wakes_the_job_waiting_for_it(tmp_path: Path) -> None:
    held = acquire_slot(tmp_path, 1, should_stop=lambda: True)
    assert held is not None
    assert acquire_slot(tmp_path, 1, should_stop=lambda: True) is None  # the only slot is taken
    got: list[float] = []

    def wait_for_slot() -> None:
        slot = acquire_slot(tmp_path, 1, should_stop=lambda: False, poll_s=30)
        got.append(time.monotonic())
        assert slot is not None
        slot.release()

    waiter = threading.Thread(target=wait_for_slot)
    waiter.start()
    while not any((tmp_path / "waiters").glob("*")):  # the waiter rings... once it waits
        time.sleep(0.01)
    released = time.monotonic()
    held.release()
    waiter.join(20)
    assert got, "the waiter never got the slot"
    assert got[0] - released < 10, "woken by its 30 s poll, not by the release"
    assert not any((tmp_path / "waiters").iterdir())  # its doorbell is gone with it


def test_slots_are_counted_and_a_dead_holder_or_its_command_keeps_none(tmp_path: Path) -> None:
    first = acquire_slot(tmp_path, 2, should_stop=lambda: True)
    second = acquire_slot(tmp_path, 2, should_stop=lambda: True)
    assert first is not None and second is not None and {first.index, second.index} == {0, 1}
    assert acquire_slot(tmp_path, 2, should_stop=lambda: True) is None
    # What a job runs does not inherit its slot: it stays taken only while the holder lives.
    command = subprocess.Popen(["sleep", "30"])
    try:
        second.release()
        again = acquire_slot(tmp_path, 2, should_stop=lambda: True)
        assert again is not None and again.index == second.index
        again.release()
    finally:
        command.kill()
        command.wait()
    # A holder that dies without releasing (a killed supervisor) frees its slot.
    first.release()
    child = os.fork()
    if child == 0:
        held = acquire_slot(tmp_path, 1, should_stop=lambda: True)
        os._exit(0 if held is not None else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    freed = acquire_slot(tmp_path, 1, should_stop=lambda: True)
    assert freed is not None
    freed.release()


def test_the_wait_for_a_command_ends_when_it_exits(tmp_path: Path) -> None:
    log = (tmp_path / "log").open("ab")
    group = ProcessGroup.start("exit 3", tmp_path, [dict(os.environ)], [log])
    started = time.monotonic()
    code = group.wait(30)
    log.close()
    assert code == 3
    assert time.monotonic() - started < 10, "the wait ran to its timeout"


def test_a_detached_child_is_reaped_at_the_next_start(tmp_path: Path) -> None:
    def done(argv: list[str]) -> int:
        return 0

    fork_detached(done, [], tmp_path / "first.log")
    first = max(_forked)
    deadline = time.monotonic() + 10
    while _state(first) != "Z" and time.monotonic() < deadline:  # it ended: a zombie until reaped
        time.sleep(0.01)
    assert _state(first) == "Z"
    fork_detached(done, [], tmp_path / "second.log")
    assert first not in _forked and _state(first) is None


def _state(pid: int) -> str | None:
    """The process's state letter (Z for a zombie), or None once it is gone."""
    done = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return done.stdout.strip()[:1] or None
