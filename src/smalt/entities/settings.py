"""How a command runs: ``resources``, ``distribution`` and ``identity``, free-form mappings in smalt
(each backend reads what it needs) whose closed parts are checked as Azure ML's schemas check them:
a distribution or identity type Azure does not have, or an instance count that is not a number,
is refused when the file is read, not when the job starts."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

#: Azure ML's distribution types (``DistributionType``).
DISTRIBUTION_TYPES = ("pytorch", "tensorflow", "mpi", "ray")
#: Azure ML's identity types for jobs (``IdentityConfigurationType`` and ``managed_identity``).
JOB_IDENTITY_TYPES = ("managed", "managed_identity", "aml_token", "user_identity")
#: Whole-number fields of ``resources``.
_COUNTS = ("instance_count", "max_instance_count")


def _binding(value: Any) -> bool:
    # A pipeline step may take a setting from a pipeline input: ${{parent.inputs.x}}.
    return isinstance(value, str) and value.strip().startswith("${{")


def _typed(value: dict[str, Any], allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    type_ = value.get("type")
    if not _binding(type_) and (not isinstance(type_, str) or type_.lower() not in allowed):
        raise ValueError(f"{what} type {type_!r} is not one of {', '.join(allowed)}")
    return value


def _check_distribution(value: dict[str, Any]) -> dict[str, Any]:
    return _typed(value, DISTRIBUTION_TYPES, "distribution")


def _check_identity(value: dict[str, Any]) -> dict[str, Any]:
    return _typed(value, JOB_IDENTITY_TYPES, "identity")


def _check_resources(value: dict[str, Any]) -> dict[str, Any]:
    for key in _COUNTS:
        count = value.get(key)
        if count is None or _binding(count):
            continue
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{key} must be a whole number of at least 1, not {count!r}")
    return value


Distribution = Annotated[dict[str, Any], AfterValidator(_check_distribution)]
JobIdentity = Annotated[dict[str, Any], AfterValidator(_check_identity)]
Resources = Annotated[dict[str, Any], AfterValidator(_check_resources)]
