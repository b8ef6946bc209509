"""Compute: instance bounds and the spellings of the priority tier."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from smalt.entities import AmlCompute, Compute
from smalt.errors import InvalidSpecError

#: Python callers may meet pydantic's error or smalt's translation of it; the rule is what is tested.
REJECTED = (ValidationError, InvalidSpecError)


def test_defaults() -> None:
    compute = Compute(name="cpu-cluster")
    assert (compute.type, compute.min_instances, compute.max_instances, compute.tier) == (
        "amlcompute",
        0,
        4,
        "dedicated",
    )
    assert AmlCompute is Compute


def test_min_instances_not_above_max() -> None:
    assert Compute(name="c", min_instances=2, max_instances=2).min_instances == 2
    with pytest.raises(REJECTED, match=r"min_instances \(3\) is greater than max_instances \(2\)"):
        Compute(name="c", min_instances=3, max_instances=2)


@pytest.mark.parametrize(("field", "value"), [("min_instances", -1), ("max_instances", 0)])
def test_instance_counts_have_lower_bounds(field: str, value: int) -> None:
    with pytest.raises(REJECTED):
        Compute.model_validate({"name": "c", field: value})


@pytest.mark.parametrize(
    ("written", "tier"),
    [
        ("dedicated", "dedicated"),
        ("Dedicated", "dedicated"),
        ("low_priority", "low_priority"),
        ("LowPriority", "low_priority"),
        ("lowpriority", "low_priority"),
        ("Low_Priority", "low_priority"),
    ],
)
def test_tier_spellings(written: str, tier: str) -> None:
    assert Compute.model_validate({"name": "c", "tier": written}).tier == tier


def test_unknown_tier_is_rejected() -> None:
    with pytest.raises(REJECTED, match="tier"):
        Compute.model_validate({"name": "c", "tier": "spot"})


def test_azure_only_settings_are_accepted() -> None:
    compute = Compute.model_validate(
        {
            "name": "c",
            "size": "STANDARD_DS3_v2",
            "idle_time_before_scale_down": 300,
            "identity": {"type": "system_assigned"},
            "ssh_public_access_enabled": False,
            "location": "westeurope",
        }
    )
    assert compute.size == "STANDARD_DS3_v2"
