"""Azure ML's curated environments, as the pip packages that stand in for them on local compute.

A job may name a curated environment of the ``azureml`` registry instead of defining one::

    environment: azureml://registries/azureml/environments/sklearn-1.5/labels/latest

Azure ML runs such a job in a prebuilt Docker image. smalt builds a virtual environment with the
packages that matter to user code instead: the framework at the curated version, its usual
companions, and ``mlflow-skinny`` (Azure ML's images carry ``azureml-mlflow``; scripts that log with
``mlflow`` work unchanged). Every entry names Python 3.11, which has wheels for every pin below.
The version or label in the reference is not looked at: each name stands for one package set.
A name the table lacks is read by its family (``sklearn-1.6``, a later ``acpt-pytorch-*-cuda*``):
the framework at the release the name gives, with the family's usual companions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

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


@dataclass(frozen=True)
class _Family:
    """Curated environments of one framework, whatever release: ``sklearn-1.6``, a later
    ``acpt-pytorch-2.8-cuda12.6``. The framework is pinned to the release the name gives."""

    title: str
    pattern: re.Pattern[str]
    #: The oldest release with wheels for Python 3.11, which every stand-in runs on.
    oldest: tuple[int, int]
    requirements: Callable[[str], tuple[str, ...]]


def _family(
    title: str, pattern: str, oldest: tuple[int, int], requirements: Callable[[str], tuple[str, ...]]
) -> _Family:
    return _Family(title, re.compile(pattern), oldest, requirements)


_FAMILIES = (
    _family("scikit-learn (sklearn-<version>)", r"^sklearn-(?P<v>\d+\.\d+)\b", (1, 1),
            lambda v: (f"scikit-learn=={v}.*", "pandas", "numpy", "scipy", "joblib", _MLFLOW)),
    _family("LightGBM (lightgbm-<version>)", r"^lightgbm-(?P<v>\d+\.\d+)\b", (3, 3),
            lambda v: (f"lightgbm=={v}.*", "scikit-learn", "pandas", "numpy", _MLFLOW)),
    # A CUDA suffix is dropped: local compute is the CPU (see the note on torch above).
    _family("PyTorch (pytorch-<version>, acpt-pytorch-<version>-cuda<version>)",
            r"^(?:acpt-)?pytorch-(?P<v>\d+\.\d+)\b", (2, 0), lambda v: (f"torch=={v}.*", "numpy", _MLFLOW)),
    _family("TensorFlow (tensorflow-<version>)", r"^tensorflow-(?P<v>\d+\.\d+)\b", (2, 12),
            lambda v: (f"tensorflow=={v}.*", _MLFLOW)),
    _family("MLflow inference (mlflow-*-inference)", r"^mlflow-.*inference", (0, 0),
            lambda v: ("mlflow-skinny>=2.12", "pandas", "numpy")),
    _family("minimal (minimal-*)", r"^minimal-", (0, 0), lambda v: ()),
)  # fmt: skip

#: Prefixes a curated name may be written with: ``azureml:AzureML-sklearn-1.5@latest``.
_CURATED_PREFIX = "azureml-"


def known_names() -> list[str]:
    """Every curated name smalt knows, aliases included, sorted."""
    return sorted([*CURATED, *_ALIASES])


def curated_reference(reference: str) -> str | None:
    """The registry URI of a curated environment written as a workspace asset
    (``azureml:AzureML-sklearn-1.5@latest``, ``azureml:AzureML-sklearn-1.5:33``): Azure ML keeps
    the ``AzureML-`` names for its curated environments. None for any other reference."""
    if not reference.startswith("azureml:") or reference.startswith("azureml://"):
        return None
    name = re.split(r"[:@]", reference[len("azureml:"):], maxsplit=1)[0]
    if not name.lower().startswith(_CURATED_PREFIX):
        return None
    return f"azureml://registries/azureml/environments/{name[len(_CURATED_PREFIX):]}/labels/latest"


def lookup(name: str) -> CuratedEnvironment:
    """The curated environment called ``name`` (case-insensitive, with or without ``AzureML-``):
    an entry of the table, else the stand-in of its family; InvalidSpecError if neither."""
    key = name.lower().removeprefix(_CURATED_PREFIX)
    key = _ALIASES.get(key, key)
    if key in CURATED:
        return CURATED[key]
    for family in _FAMILIES:
        match = family.pattern.search(key)
        if match is None:
            continue
        version = match.groupdict().get("v") or ""
        if version and tuple(int(p) for p in version.split(".")) < family.oldest:
            oldest = ".".join(map(str, family.oldest))
            raise _unknown(name, f"'{name}' is older than smalt's stand-in for {family.title}, which starts at "
                                 f"{oldest} (Python 3.11 has no packages of older releases)")  # fmt: skip
        return CuratedEnvironment(key, "3.11", family.requirements(version))
    return _unknown(name, f"'{name}' is not a curated environment smalt knows")


def _unknown(name: str, message: str) -> NoReturn:
    families = "; ".join(f.title for f in _FAMILIES)
    raise InvalidSpecError(
        [SpecProblem(f"{message}; smalt stands in for these families: {families}", "environment")],
        summary=f"Unknown curated environment '{name}'",
        hint="use a curated name of these families, or define the environment with a conda file",
    )
