"""Metaflow: a chain of 10 steps (start, s1..s8, end), each running step.run on the previous
step's folder under $STEP_DATA. Run: `python chain_flow.py --quiet run` (see benchmarks/pipelines.py)."""

import os

from metaflow import FlowSpec, step
from step import run


def work(name: str, previous: str | None) -> None:
    data = os.environ["STEP_DATA"]
    run([f"{data}/{previous}"] if previous else [], f"{data}/{name}")


class ChainFlow(FlowSpec):
    @step
    def start(self):
        work("s0", None)
        self.next(self.s1)

    @step
    def s1(self):
        work("s1", "s0")
        self.next(self.s2)

    @step
    def s2(self):
        work("s2", "s1")
        self.next(self.s3)

    @step
    def s3(self):
        work("s3", "s2")
        self.next(self.s4)

    @step
    def s4(self):
        work("s4", "s3")
        self.next(self.s5)

    @step
    def s5(self):
        work("s5", "s4")
        self.next(self.s6)

    @step
    def s6(self):
        work("s6", "s5")
        self.next(self.s7)

    @step
    def s7(self):
        work("s7", "s6")
        self.next(self.s8)

    @step
    def s8(self):
        work("s8", "s7")
        self.next(self.end)

    @step
    def end(self):
        work("s9", "s8")


if __name__ == "__main__":
    ChainFlow()
