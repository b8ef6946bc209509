"""What a job's log says while its environment builds (environments/progress.py), on a clock the
tests move by hand."""

from __future__ import annotations

import time

import pytest

from smalt.entities import InlineEnvironment
from smalt.environments import BuildProgress, resolve

PACKAGES = resolve(InlineEnvironment(name="tiny", version="1", conda_file={"dependencies": [{"pip": ["six"]}]}))
NO_PACKAGES = resolve(None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_build_that_installs_packages_says_each_phase_with_the_time_and_its_end() -> None:
    said: list[str] = []
    clock = Clock()
    with BuildProgress(PACKAGES, said.append, clock=clock, every_s=3600) as progress:
        progress.phase("creating a virtual environment with pip")
        clock.now += 2.5
        progress.phase("installing 1 package")
        clock.now += 20
    assert said == [
        f"smalt: Preparing: building environment tiny:1 (digest {PACKAGES.digest[:12]}; smalt's own Python; 1 package)",
        "smalt: Preparing: creating a virtual environment with pip (0.0 s)",
        "smalt: Preparing: installing 1 package (2.5 s)",
        "smalt: Preparing: environment tiny:1 ready in 22 s",
    ]


def test_a_failed_build_says_how_long_it_tried() -> None:
    said: list[str] = []
    clock = Clock()
    with pytest.raises(RuntimeError), BuildProgress(PACKAGES, said.append, clock=clock) as progress:
        progress.phase("resolving 1 requirement")
        clock.now += 4
        raise RuntimeError("uv failed")
    assert said[-1] == "smalt: Preparing: building environment tiny:1 failed after 4.0 s"


def test_a_ready_environment_says_nothing() -> None:
    said: list[str] = []
    with BuildProgress(PACKAGES, said.append):
        pass  # ensure() found it built: no phase
    assert said == []


def test_a_build_without_packages_is_quiet_unless_it_is_slow() -> None:
    said: list[str] = []
    clock = Clock()
    with BuildProgress(NO_PACKAGES, said.append, clock=clock, quiet_s=5) as progress:
        progress.phase("creating a virtual environment")
        clock.now += 1
    assert said == []

    with BuildProgress(NO_PACKAGES, said.append, clock=clock, quiet_s=5) as progress:
        progress.phase("creating a virtual environment")
        clock.now += 6
        progress.phase("still creating it")
    assert said[0].startswith("smalt: Preparing: building base environment (digest ")
    assert said[1:] == ["smalt: Preparing: still creating it (6.0 s)",
                        "smalt: Preparing: base environment ready in 6.0 s"]  # fmt: skip


def test_a_long_phase_is_said_again_every_few_seconds() -> None:
    said: list[str] = []
    with BuildProgress(PACKAGES, said.append, every_s=0.01) as progress:
        progress.phase("installing 300 packages")
        deadline = time.monotonic() + 10
        while sum("installing 300 packages (" in line for line in said) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling for the ticker's lines
    repeated = [line for line in said if "installing 300 packages (" in line]
    assert len(repeated) >= 3, said
    assert said[-1].startswith("smalt: Preparing: environment tiny:1 ready in ")
