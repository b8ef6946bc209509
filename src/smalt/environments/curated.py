"""Azure ML's curated environments, as the pip packages that stand in for them on local compute.

A job may name a curated environment of the ``azureml`` registry instead of defining one::

    environment: azureml://registries/azureml/environments/sklearn-1.5/labels/latest

Azure ML runs such a job in a prebuilt Docker image. smalt builds a virtual environment with the
packages that matter to user code instead: the framework at the curated version, its usual
companions, and ``mlflow-skinny`` (Azure ML's images carry ``azureml-mlflow``; scripts that log with
``mlflow`` work unchanged). Every entry names Python 3.11, which has wheels for every pin below.
The version or label in the reference is not looked at: each name stands for one package set.
"""

from __future__ import annotations

from dataclasses import dataclass

from smalt.errors import InvalidSpecError, SpecProblem


@dataclass(frozen=True)
class CuratedEnvironment:
    """The local stand-in for one curated environment."""

    name: str
    python: str
    requirements: tuple[str, ...]


_MLFLOW = "mlflow-skinny>=2.12"

_ENVIRONMENTS = (
    CuratedEnvironment(
        "sklearn-1.5",
        "3.11",
        ("scikit-learn==1.5.*", "pandas==2.2.*", "numpy==1.26.*", "scipy==1.13.*", "joblib>=1.4", _MLFLOW),
    ),
    CuratedEnvironment(
        "sklearn-1.1",
        "3.11",
        ("scikit-learn==1.1.*", "pandas==1.5.*", "numpy==1.23.*", "scipy==1.9.*", "joblib>=1.2", _MLFLOW),
    ),
    CuratedEnvironment(
        "lightgbm-3.3",
        "3.11",
        ("lightgbm==3.3.*", "scikit-learn==1.5.*", "pandas==2.2.*", "numpy==1.26.*", _MLFLOW),
    ),
    # torch is pinned loosely: the builds on offer differ by platform (CPU-only wheels on some).
    CuratedEnvironment("pytorch-2.2", "3.11", ("torch>=2.2", "numpy", _MLFLOW)),
    CuratedEnvironment("tensorflow-2.16", "3.11", ("tensorflow==2.16.*", _MLFLOW)),
    CuratedEnvironment("minimal-py311-inference", "3.11", ()),
)

#: Other names Azure ML uses for the same package sets.
_ALIASES = {
    "acpt-pytorch-2.2-cuda12.1": "pytorch-2.2",
    "tensorflow-2.16-cuda12": "tensorflow-2.16",
    "minimal-ubuntu22.04-py311-cpu-inference": "minimal-py311-inference",
}

CURATED: dict[str, CuratedEnvironment] = {env.name: env for env in _ENVIRONMENTS}


def known_names() -> list[str]:
    """Every curated name smalt knows, aliases included, sorted."""
    return sorted([*CURATED, *_ALIASES])


def lookup(name: str) -> CuratedEnvironment:
    """The curated environment called ``name`` (case-insensitive); InvalidSpecError if unknown."""
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key in CURATED:
        return CURATED[key]
    raise InvalidSpecError(
        [
            SpecProblem(
                f"'{name}' is not a curated environment smalt knows; known: {', '.join(known_names())}", "environment"
            )
        ],
        summary=f"Unknown curated environment '{name}'",
        hint="use one of the names above, or define the environment with a conda file",
    )
