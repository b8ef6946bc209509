"""Job runtime: compute slots, launching a job's process tree, stopping it."""

from smalt.execution.doorbell import Doorbell, ring
from smalt.execution.local import ComputeSlot, ProcessGroup, acquire_slot, pid_alive, stop_process_groups

__all__ = ["ComputeSlot", "Doorbell", "ring", "ProcessGroup", "acquire_slot", "pid_alive", "stop_process_groups"]
