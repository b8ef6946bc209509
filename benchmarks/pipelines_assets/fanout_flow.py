"""Metaflow: a fan-out of 10 (start writes prepare; a foreach of 10 `work` tasks each reads it and
writes its own folder; `join` reads all 10) under $STEP_DATA: 12 steps of work, plus the empty `end`
that Metaflow requires after a join (the terminal step may not be a join).
Run: `python fanout_flow.py --quiet run` (see benchmarks/pipelines.py)."""

import os

from metaflow import FlowSpec, step
from step import run

WIDTH = 10


class FanoutFlow(FlowSpec):
    @step
    def start(self):
        run([], f"{os.environ['STEP_DATA']}/prepare")
        self.branches = list(range(WIDTH))
        self.next(self.work, foreach="branches")

    @step
    def work(self):
        data = os.environ["STEP_DATA"]
        run([f"{data}/prepare"], f"{data}/w{self.input}")
        self.next(self.join)

    @step
    def join(self, inputs):
        data = os.environ["STEP_DATA"]
        run([f"{data}/w{i}" for i in range(WIDTH)], f"{data}/join")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FanoutFlow()
