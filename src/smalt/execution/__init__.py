"""Job runtime: compute slots, launching a job's process tree, stopping it."""

from smalt.execution.doorbell import Doorbell, ring, ring_all
from smalt.execution.local import ComputeSlot, ProcessGroup, acquire_slot, pid_alive, stop_process_groups

__all__ = [
    "ComputeSlot", "Doorbell", "ProcessGroup", "acquire_slot", "pid_alive", "ring", "ring_all", "stop_process_groups",
]  # fmt: skip
