"""Resolving an environment into what smalt builds: a Python version and pip requirements.

Local compute (and Ray) run a job in a virtual environment built with ``uv``. :func:`resolve`
reduces whatever the job named to that, and gives it a digest under which the built environment
is cached and shared:

- ``None``: the base environment (no packages, the Python version of smalt's own interpreter);
- an :class:`~smalt.entities.Environment` or inline environment with a conda file: the Python
  version and the packages of the conda file, conda names translated to PyPI ones (see
  :func:`conda_to_pip`);
- an environment with only an ``image`` or a ``build`` context: the base environment, with a
  warning (images and Docker builds are kept for container targets);
- ``azureml://registries/azureml/environments/<name>/versions/<v>`` (or ``/labels/latest``):
  a curated environment, from :mod:`smalt.environments.curated`.

References to registered environments (``azureml:<name>:<version>``) are resolved to entities by
the caller first; :func:`resolve` raises ValueError for them.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smalt.entities import Environment, InlineEnvironment
from smalt.environments import curated
from smalt.errors import InvalidSpecError, SpecProblem
from smalt.specs.references import parse_asset_ref

#: Bump when the meaning of a resolved spec changes, so that old cached builds are not reused.
_FORMAT = 1

_REGISTRY_URI = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/environments/(?P<name>[^/]+)"
    r"(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>[^/]+))?/?$",
    re.IGNORECASE,
)

#: Conda names whose PyPI twin is called differently.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-xgboost-gpu": "xgboost",
    "matplotlib-base": "matplotlib",
    "tensorflow-base": "tensorflow",
    "py-opencv": "opencv-python",
    "opencv": "opencv-python",
    "msgpack-python": "msgpack",
    "pytables": "tables",
    "ruamel_yaml": "ruamel.yaml",
    "python-graphviz": "graphviz",
}

#: Conda packages that only pick a build or bring accelerator libraries: the pip wheels of torch,
#: tensorflow and friends carry their own CUDA libraries, so these are left out, with a warning.
ACCELERATOR_ONLY = {
    "cudatoolkit",
    "cuda-toolkit",
    "cuda-version",
    "cuda-nvcc",
    "cudnn",
    "nccl",
    "pytorch-cuda",
    "pytorch-mutex",
    "cpuonly",
    "nomkl",
    "python_abi",
    "_libgcc_mutex",
    "_openmp_mutex",
}

#: Conda packages with no PyPI twin: system libraries, compilers, other languages' runtimes.
#: Packages named ``r-*`` (R packages) are refused as well.
NO_PYPI_TWIN = {
    "mkl",
    "mkl-include",
    "intel-openmp",
    "tbb",
    "blas",
    "libblas",
    "liblapack",
    "openblas",
    "libopenblas",
    "libgcc",
    "libgcc-ng",
    "libstdcxx-ng",
    "libgfortran",
    "libgfortran-ng",
    "openssl",
    "ca-certificates",
    "libffi",
    "zlib",
    "xz",
    "bzip2",
    "sqlite",
    "readline",
    "ncurses",
    "tk",
    "gcc",
    "gxx",
    "gfortran",
    "gcc_linux-64",
    "gxx_linux-64",
    "make",
    "git",
    "curl",
    "ffmpeg",
    "nodejs",
    "openjdk",
    "r-base",
}

_CONDA_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)(?P<rest>.*)$")
_UNSUPPORTED_PIP_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")


@dataclass(frozen=True)
class ResolvedEnvironment:
    """An environment reduced to what is built: a Python version and pip requirements.

    Two environments with the same ``digest`` are built once and share the build.
    """

    #: sha256 of the canonical spec: the Python version, the sorted requirements, the base flag.
    digest: str
    #: The requested Python version (``"3.11"``, ``"3.11.5"``, ``">=3.10"``); None: smalt's own.
    python: str | None
    #: pip requirement strings, sorted and without duplicates.
    requirements: list[str]
    #: What differs from Azure ML (e.g. an image that is not run); written to the job's log.
    warnings: list[str]
    #: A one-line summary for logs.
    description: str
    #: What the job named, in a few words: ``environment tiny:1``, ``curated environment X``.
    label: str = "environment"

    @property
    def is_base(self) -> bool:
        """True for the base environment: smalt's Python version and no packages."""
        return self.python is None and not self.requirements


def resolve(environment: Environment | InlineEnvironment | str | None) -> ResolvedEnvironment:
    """What ``environment`` builds as (see the module docstring for each kind).

    Raises InvalidSpecError for a conda package with no PyPI twin or an unknown curated name, and
    ValueError for an ``azureml:<name>:<version>`` reference, which the caller resolves first.

    Example::

        >>> env = resolve(InlineEnvironment(conda_file={"dependencies": ["python=3.11", "numpy=1.26"]}))
        >>> env.python, env.requirements
        ('3.11', ['numpy==1.26.*'])
    """
    if environment is None:
        return _resolved(None, [], [], "base environment", "base environment")
    if isinstance(environment, str):
        return _resolve_reference(environment)
    label = _label(environment)
    if environment.conda_file is not None:
        python, requirements, warnings = _read_conda(environment.conda_file)
        return _resolved(python, requirements, warnings, f"{label} (conda file)", label)
    base = f"the job runs in a base environment (Python {_own_python()}, smalt's own interpreter) with no packages"
    if environment.image is not None:
        warning = f"image '{environment.image}' is not run on local compute; {base}"
        return _resolved(None, [], [warning], f"{label} (image {environment.image}, not run locally)", label)
    assert environment.build is not None  # the entity requires image, conda_file or build
    context = environment.build.path
    warning = f"build context '{context}' ({environment.build.dockerfile_path}) is not built on local compute; {base}"
    return _resolved(None, [], [warning], f"{label} (build context, not built locally)", label)


def conda_to_pip(dependency: str) -> str:
    """The pip requirement for one conda dependency string.

    Rules: a channel prefix (``conda-forge::``) is dropped; names in :data:`CONDA_TO_PYPI` are
    renamed, others kept (``pip``, ``setuptools`` and ``wheel`` too: they are PyPI packages).
    Versions follow conda's meaning: ``=1.26`` and ``1.26.*`` match every
    1.26 release and become ``==1.26.*``; ``==1.26`` and ``numpy 1.26.4`` are exact (``==``);
    ``>=``, ``<``, ``!=``, ``~=`` and comma-joined ranges pass through; build strings
    (``=py311h...``) are dropped. Raises ValueError for ``python`` (not a package), for packages in
    :data:`ACCELERATOR_ONLY` or :data:`NO_PYPI_TWIN`, and for forms pip cannot express (``|``,
    ``[version=...]``).

    >>> conda_to_pip("conda-forge::pytorch=2.2")
    'torch==2.2.*'
    """
    name, version = _split_conda(dependency)
    key = name.lower()
    if key == "python":
        raise ValueError("python is not a package; read it with the Python version")
    if key in ACCELERATOR_ONLY or key in NO_PYPI_TWIN or key.startswith("r-"):
        raise ValueError(f"'{name}' has no PyPI twin")
    return CONDA_TO_PYPI.get(key, name) + version


def _resolve_reference(reference: str) -> ResolvedEnvironment:
    match = _REGISTRY_URI.match(reference.strip())
    if match is not None:
        if match["registry"].lower() != "azureml":
            raise InvalidSpecError(
                [
                    SpecProblem(
                        f"registry '{match['registry']}' is not available to smalt; only the curated environments "
                        "of the azureml registry are known",
                        "environment",
                    )
                ],
                summary=f"Cannot resolve environment '{reference}'",
                hint="register the environment in the workspace (smalt environment create) and use azureml:<name>:<v>",
            )
        env = curated.lookup(match["name"])
        label = f"curated environment {env.name}"
        return _resolved(env.python, list(env.requirements), [], f"{label} (azureml registry)", label)
    if parse_asset_ref(reference) is not None:
        raise ValueError(
            f"{reference!r} names a registered environment; resolve it to an Environment before calling resolve()"
        )
    raise InvalidSpecError(
        [SpecProblem(f"'{reference}' is not an environment reference", "environment")],
        summary=f"Cannot resolve environment '{reference}'",
        hint="write azureml:<name>:<version>, azureml://registries/azureml/environments/<name>/labels/latest, "
        "or define the environment inline (image, conda_file)",
    )


def _read_conda(conda_file: str | dict[str, Any]) -> tuple[str | None, list[str], list[str]]:
    """The Python version, pip requirements and warnings of a conda file; every problem at once."""
    locate: Any = None
    file: str | None = None
    if isinstance(conda_file, str):
        from smalt.specs.yaml_source import read_yaml

        source = read_yaml(Path(conda_file))
        spec: Any = source.data
        file, locate = source.file, source.locate
    else:
        spec = conda_file
    problems: list[SpecProblem] = []

    def problem(message: str, *loc: str | int) -> None:
        field = "conda_file" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        problems.append(SpecProblem(message, field, file, locate(loc) if locate and loc else None))

    dependencies = spec.get("dependencies") or []
    if not isinstance(dependencies, list):
        problem("must be a list of packages", "dependencies")
        dependencies = []
    python: str | None = None
    requirements: list[str] = []
    warnings: list[str] = []
    for i, dependency in enumerate(dependencies):
        if isinstance(dependency, dict):
            if set(dependency) != {"pip"} or not isinstance(dependency["pip"], list):
                problem("a mapping in dependencies must be 'pip:' with a list of requirements", "dependencies", i)
                continue
            for j, line in enumerate(dependency["pip"]):
                if not isinstance(line, str):
                    problem(f"{line!r} is not a pip requirement string", "dependencies", i, "pip", j)
                elif line.strip().split(" ")[0].split("=")[0] in _UNSUPPORTED_PIP_OPTIONS:
                    problem(
                        f"'{line}' refers to a file or folder, which smalt does not carry into the environment; "
                        "list the packages themselves",
                        *("dependencies", i, "pip", j),
                    )
                elif line.strip() and not line.strip().startswith("#"):
                    requirements.append(line.strip())
            continue
        if not isinstance(dependency, str | int | float):
            problem(f"{dependency!r} is not a conda package", "dependencies", i)
            continue
        text = str(dependency).strip()
        try:
            name, version = _split_conda(text)
        except ValueError as exc:
            problem(str(exc), "dependencies", i)
            continue
        key = name.lower()
        if key == "python":
            if python is not None:
                problem("python is listed more than once", "dependencies", i)
            python = _python_version(version)
        elif key in ACCELERATOR_ONLY:
            warnings.append(
                f"conda_file.dependencies[{i}]: '{text}' is left out; pip wheels (torch, tensorflow, ...) "
                "bring their own CUDA and BLAS libraries"
            )
        elif key in NO_PYPI_TWIN or key.startswith("r-"):
            problem(
                f"'{text}' is a conda package with no PyPI equivalent; smalt builds environments with pip "
                "packages. Remove it, or list a pip package that provides it under 'pip:'",
                *("dependencies", i),
            )
        else:
            requirements.append(conda_to_pip(text))
    if problems:
        raise InvalidSpecError(
            problems,
            summary="The environment's conda file cannot be built on local compute",
            hint="smalt installs conda files' packages from PyPI with uv",
        )
    return python, requirements, warnings


def _split_conda(dependency: str) -> tuple[str, str]:
    """``conda-forge::numpy=1.26=py311h`` -> (``numpy``, ``==1.26.*``): name and pip version spec."""
    text = dependency.strip()
    if "::" in text:
        text = text.split("::", 1)[1]
    match = _CONDA_NAME.match(text)
    if match is None:
        raise ValueError(f"'{dependency}' is not a conda package spec")
    name, rest = match["name"], re.sub(r"\s*,\s*", ",", match["rest"].strip())
    if "[" in rest or "|" in rest:
        raise ValueError(f"'{dependency}' uses a conda match form pip cannot express; write e.g. '{name}>=1.2'")
    if not rest:
        return name, ""
    if rest[0] in "<>!~":
        return name, rest.split()[0]  # `>=1.2 py_0`: a range, then a build string
    if rest.startswith("=="):
        version, fuzzy = _first(rest[2:].split("=")[0]), False
    elif rest.startswith("="):
        version, fuzzy = _first(rest[1:].split("=")[0]), True
    else:
        version = _first(rest)  # `numpy 1.26.4 py311h_0`: the version, then a build string
        fuzzy = version.endswith("*")
    version = version.rstrip("*").rstrip(".")
    if not version or "*" in version:
        raise ValueError(f"'{dependency}' has a version pip cannot express")
    return name, f"=={version}.*" if fuzzy else f"=={version}"


def _first(text: str) -> str:
    words = text.split()
    return words[0] if words else ""


def _python_version(version: str) -> str | None:
    """A pip version spec for python as uv's ``--python`` wants it: ``==3.11.*`` -> ``3.11``."""
    if not version:
        return None
    if version.startswith("==") and "," not in version:
        return version[2:].removesuffix(".*")
    return version


def _label(environment: Environment | InlineEnvironment) -> str:
    if environment.name and environment.version:
        return f"environment {environment.name}:{environment.version}"
    if environment.name:
        return f"environment {environment.name}"
    return "inline environment"


def _own_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _resolved(python: str | None, requirements: list[str], warnings: list[str], origin: str,
              label: str) -> ResolvedEnvironment:  # fmt: skip
    requirements = sorted({r.strip() for r in requirements if r.strip()})
    canonical = {
        "format": _FORMAT,
        "python": python,
        "requirements": requirements,
        "base": not (python or requirements),
    }
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    shown = ", ".join(requirements[:8]) + (f" and {len(requirements) - 8} more" if len(requirements) > 8 else "")
    version = python or f"{_own_python()} (smalt's own)"
    packages = (
        f"{len(requirements)} package{'s' if len(requirements) > 1 else ''}: {shown}" if requirements else "no packages"
    )
    description = f"{origin}: Python {version}; {packages}"
    return ResolvedEnvironment(digest, python, requirements, warnings, description, label)
