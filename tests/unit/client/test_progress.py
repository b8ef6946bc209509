"""What an upload or a download through a server says while it goes (client.progress)."""

from __future__ import annotations

import io

from smalt.client.progress import Counted, Transfer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_short_transfer_says_nothing() -> None:
    clock, out = Clock(), io.StringIO()
    with Transfer("Uploading", "corpus", 10_000_000, stream=out, clock=clock) as progress:
        clock.now = 0.9
        progress.add(10_000_000)
    assert out.getvalue() == ""


def test_a_long_transfer_says_how_far_it_is_on_a_terminal_in_place() -> None:
    clock, out = Clock(), Terminal()
    with Transfer("Uploading", "corpus", 200_000_000, stream=out, clock=clock) as progress:
        progress.add(50_000_000)  # within the first second: nothing yet
        clock.now = 1.5
        progress.add(62_000_000)
        clock.now = 1.55
        progress.add(1_000_000)  # within a tenth of a second of the last line: not redrawn
        clock.now = 2.0
        progress.add(87_000_000)
    lines = out.getvalue().split("\r")
    assert [line.strip() for line in lines if line.strip()] == [
        "Uploading corpus: 112.0 of 200.0 MB (56%)",
        "Uploading corpus: 200.0 of 200.0 MB (100%)",
        "Uploading corpus: 200.0 MB in 2.0 s",
    ]
    assert out.getvalue().endswith("\n")


def test_in_a_log_a_line_every_few_seconds_and_no_total_when_unknown() -> None:
    clock, out = Clock(), io.StringIO()
    with Transfer("Downloading", "model", stream=out, clock=clock) as progress:
        for second in range(1, 12):
            clock.now = float(second)
            progress.add(1_000_000)
    assert out.getvalue().splitlines() == [
        "Downloading model: 1.0 MB", "Downloading model: 6.0 MB", "Downloading model: 11.0 MB",
        "Downloading model: 11.0 MB in 11.0 s",
    ]


def test_a_counted_file_counts_what_is_read_from_it() -> None:
    progress = Transfer("Uploading", "f", 10, stream=io.StringIO(), clock=Clock())
    counted = Counted(io.BytesIO(b"0123456789"), progress)
    assert counted.read(4) + counted.read() == b"0123456789"
    assert progress.done == 10
