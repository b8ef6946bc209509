"""What an environment resolves to: the Python version and pip packages smalt builds, and its digest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from smalt.entities import BuildContext, Environment, InlineEnvironment
from smalt.environments import ResolvedEnvironment, resolve
from smalt.environments.curated import known_names
from smalt.environments.resolve import conda_to_pip
from smalt.errors import InvalidSpecError


def conda(*dependencies: Any) -> ResolvedEnvironment:
    return resolve(
        InlineEnvironment(conda_file={"name": "env", "channels": ["conda-forge"], "dependencies": list(dependencies)})
    )


def test_a_conda_file_gives_its_python_version_and_pip_section() -> None:
    env = conda("python=3.11", "pip", {"pip": ["scikit-learn>=1.5", "pandas>=2.2", "mlflow-skinny"]})
    assert env.python == "3.11"
    assert env.requirements == ["mlflow-skinny", "pandas>=2.2", "pip", "scikit-learn>=1.5"]
    assert env.warnings == []
    assert "Python 3.11" in env.description and "scikit-learn>=1.5" in env.description


def test_the_example_environment_resolves_from_its_stored_conda_file() -> None:
    # As the services store it: the conda file read and kept inline.
    env = Environment(
        name="sklearn",
        version="1",
        image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
        conda_file={
            "name": "sklearn-env",
            "channels": ["conda-forge"],
            "dependencies": ["python=3.11", "pip", {"pip": ["scikit-learn>=1.5", "pandas>=2.2", "mlflow-skinny"]}],
        },
    )
    resolved = resolve(env)
    assert (resolved.python, len(resolved.requirements), resolved.warnings) == ("3.11", 4, [])
    assert "sklearn:1" in resolved.description


def test_a_conda_file_path_is_read(tmp_path: Path) -> None:
    conda_yml = tmp_path / "conda.yml"
    conda_yml.write_text("dependencies:\n  - python=3.10\n  - numpy=1.26\n  - r-base=4.3\n")
    with pytest.raises(InvalidSpecError) as caught:
        resolve(InlineEnvironment(conda_file=str(conda_yml)))
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (str(conda_yml), 4, "conda_file.dependencies[2]")
    conda_yml.write_text("dependencies:\n  - python=3.10\n  - numpy=1.26\n")
    assert resolve(InlineEnvironment(conda_file=str(conda_yml))).requirements == ["numpy==1.26.*"]


@pytest.mark.parametrize(
    ("dependency", "python"),
    [
        ("python=3.11", "3.11"),
        ("python=3.11.5", "3.11.5"),
        ("python==3.10.4", "3.10.4"),
        ("python 3.12.*", "3.12"),
        ("python>=3.10", ">=3.10"),
        ("python>=3.10,<3.13", ">=3.10,<3.13"),
        ("python=3.11=h955ad1f_0", "3.11"),
        ("python", None),
    ],
)
def test_the_python_version_is_read_from_the_python_dependency(dependency: str, python: str | None) -> None:
    env = conda(dependency, "numpy")
    assert env.python == python
    assert env.requirements == ["numpy"]


@pytest.mark.parametrize(
    ("dependency", "requirement"),
    [
        ("numpy", "numpy"),
        ("numpy=1.26", "numpy==1.26.*"),  # conda's `=` matches every 1.26.x
        ("numpy=1.26.4", "numpy==1.26.4.*"),
        ("numpy==1.26.4", "numpy==1.26.4"),
        ("numpy 1.26.4", "numpy==1.26.4"),
        ("numpy 1.26.*", "numpy==1.26.*"),
        ("numpy=1.26=py311h64a7726_0", "numpy==1.26.*"),
        ("numpy>=1.24,<2", "numpy>=1.24,<2"),
        ("numpy >=1.24, <2", "numpy>=1.24,<2"),
        ("numpy!=1.25.0", "numpy!=1.25.0"),
        ("conda-forge::numpy=1.26", "numpy==1.26.*"),
        ("pytorch=2.2", "torch==2.2.*"),
        ("pytorch::pytorch", "torch"),
        ("py-xgboost=2.0", "xgboost==2.0.*"),
        ("matplotlib-base>=3.8", "matplotlib>=3.8"),
        ("scikit-learn=1.5", "scikit-learn==1.5.*"),
        ("pyyaml", "pyyaml"),
        ("python-dateutil", "python-dateutil"),
        ("msgpack-python", "msgpack"),
        ("setuptools<70", "setuptools<70"),
    ],
)
def test_conda_packages_become_their_pypi_twins(dependency: str, requirement: str) -> None:
    assert conda_to_pip(dependency) == requirement
    assert conda("python=3.11", dependency).requirements == [requirement]


def test_conda_packaging_tools_are_installed_as_listed() -> None:
    # Azure ML's conda files list pip; the job's commands may then call pip in the environment.
    env = conda("python=3.11", "pip", "setuptools<70", {"pip": ["six"]})
    assert env.requirements == ["pip", "setuptools<70", "six"]


def test_accelerator_libraries_are_left_out_with_a_warning() -> None:
    env = conda("python=3.11", "pytorch=2.2", "cudatoolkit=11.8", "pytorch-cuda=12.1", "cpuonly")
    assert env.requirements == ["torch==2.2.*"]
    assert len(env.warnings) == 3
    assert "conda_file.dependencies[2]" in env.warnings[0] and "cudatoolkit=11.8" in env.warnings[0]


def test_packages_with_no_pypi_twin_are_refused_naming_each_field() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        conda("python=3.11", "mkl=2023", "numpy", "conda-forge::openssl", "libgcc-ng>=12", "r-base=4.3", "r-dplyr")
    problems = caught.value.problems
    assert [p.field for p in problems] == [
        "conda_file.dependencies[1]",
        "conda_file.dependencies[3]",
        "conda_file.dependencies[4]",
        "conda_file.dependencies[5]",
        "conda_file.dependencies[6]",
    ]
    assert "'mkl=2023'" in problems[0].message and "no PyPI equivalent" in problems[0].message
    assert "conda-forge::openssl" in problems[1].message
    assert "conda_file.dependencies[1]" in str(caught.value)


def test_malformed_dependencies_are_reported_with_their_field() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        conda(
            "python=3.11", {"pip": ["six", 3]}, {"npm": ["left-pad"]}, "numpy 1.2|1.3", {"pip": ["-r requirements.txt"]}
        )
    fields = [p.field for p in caught.value.problems]
    assert fields == [
        "conda_file.dependencies[1].pip[1]",
        "conda_file.dependencies[2]",
        "conda_file.dependencies[3]",
        "conda_file.dependencies[4].pip[0]",
    ]


def test_pip_options_in_the_pip_section_are_kept() -> None:
    env = conda({"pip": ["--extra-index-url https://download.pytorch.org/whl/cpu", "torch"]})
    assert env.requirements == ["--extra-index-url https://download.pytorch.org/whl/cpu", "torch"]
    assert env.python is None


def test_the_digest_ignores_the_order_of_requirements_and_duplicates() -> None:
    one = conda("python=3.11", "numpy=1.26", {"pip": ["pandas>=2.2", "six"]})
    two = conda("python=3.11", {"pip": ["six", "pandas>=2.2", "six"]}, "numpy=1.26")
    assert one.digest == two.digest
    assert one.requirements == two.requirements == ["numpy==1.26.*", "pandas>=2.2", "six"]
    assert len(one.digest) == 64 and int(one.digest, 16) >= 0


def test_the_digest_changes_with_the_python_version_and_any_package() -> None:
    base = conda("python=3.11", "numpy=1.26")
    assert base.digest == conda("python=3.11", "numpy=1.26").digest  # stable across calls
    others = {
        conda("python=3.12", "numpy=1.26").digest,
        conda("numpy=1.26").digest,
        conda("python=3.11", "numpy=1.25").digest,
        conda("python=3.11", "numpy=1.26", "six").digest,
    }
    assert base.digest not in others and len(others) == 4


def test_no_environment_is_the_base_environment_without_warnings() -> None:
    env = resolve(None)
    assert (env.python, env.requirements, env.warnings, env.is_base) == (None, [], [], True)


def test_an_image_only_environment_runs_in_the_base_environment_with_a_warning() -> None:
    env = resolve(Environment(name="img", version="2", image="mcr.microsoft.com/azureml/minimal:latest"))
    assert env.is_base and env.digest == resolve(None).digest
    (warning,) = env.warnings
    own = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert "image 'mcr.microsoft.com/azureml/minimal:latest' is not run on local compute" in warning
    assert "base environment" in warning and own in warning


def test_a_build_only_environment_runs_in_the_base_environment_naming_the_context() -> None:
    env = resolve(InlineEnvironment(build=BuildContext(path="/src/docker-context", dockerfile_path="gpu.Dockerfile")))
    assert env.is_base
    (warning,) = env.warnings
    assert "/src/docker-context" in warning and "gpu.Dockerfile" in warning and "base environment" in warning


def test_a_conda_file_wins_over_the_image_it_is_installed_into() -> None:
    env = resolve(InlineEnvironment(image="python:3.11-slim", conda_file={"dependencies": ["numpy"]}))
    assert env.requirements == ["numpy"] and env.warnings == []


@pytest.mark.parametrize(
    "reference",
    [
        "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
        "azureml://registries/azureml/environments/sklearn-1.5/versions/14",
        "azureml://registries/AzureML/environments/SKLEARN-1.5/versions/3",
    ],
)
def test_a_curated_environment_resolves_to_its_packages(reference: str) -> None:
    env = resolve(reference)
    assert env.python == "3.11"
    assert "scikit-learn==1.5.*" in env.requirements and "pandas==2.2.*" in env.requirements
    assert "curated environment sklearn-1.5" in env.description


def test_curated_aliases_share_the_build_of_their_name() -> None:
    uri = "azureml://registries/azureml/environments/{}/labels/latest"
    assert resolve(uri.format("acpt-pytorch-2.2-cuda12.1")).digest == resolve(uri.format("pytorch-2.2")).digest
    torch = resolve(uri.format("pytorch-2.2"))
    assert any(r.startswith("torch") for r in torch.requirements)
    minimal = resolve(uri.format("minimal-ubuntu22.04-py311-cpu-inference"))
    assert (minimal.python, minimal.requirements) == ("3.11", [])


def test_every_known_curated_name_resolves() -> None:
    for name in known_names():
        env = resolve(f"azureml://registries/azureml/environments/{name}/labels/latest")
        assert env.python == "3.11"
    assert {"sklearn-1.5", "sklearn-1.1", "lightgbm-3.3", "pytorch-2.2", "tensorflow-2.16"} <= set(known_names())


def test_an_unknown_curated_name_lists_the_families_smalt_knows() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        resolve("azureml://registries/azureml/environments/responsibleai-ubuntu20.04-py38-cpu/labels/latest")
    message = str(caught.value)
    assert "'responsibleai-ubuntu20.04-py38-cpu' is not a curated environment smalt knows" in message
    assert "scikit-learn (sklearn-<version>)" in message and "PyTorch" in message and "LightGBM" in message


def test_a_release_too_old_for_python_311_is_refused_by_its_family() -> None:
    with pytest.raises(InvalidSpecError, match="'sklearn-0.24' is older than smalt's stand-in for scikit-learn"):
        resolve("azureml://registries/azureml/environments/sklearn-0.24/labels/latest")


@pytest.mark.parametrize(
    ("name", "pinned"),
    [
        ("sklearn-1.6", "scikit-learn==1.6.*"),
        ("acpt-pytorch-2.8-cuda12.6", "torch==2.8.*"),
        ("AzureML-ACPT-pytorch-2.7-cuda12.4", "torch==2.7.*"),
        ("lightgbm-4.5", "lightgbm==4.5.*"),
        ("tensorflow-2.18-cuda12", "tensorflow==2.18.*"),
        ("mlflow-py312-inference", "mlflow-skinny>=2.12"),
    ],
)
def test_a_newer_release_than_the_table_knows_is_read_by_its_family(name: str, pinned: str) -> None:
    env = resolve(f"azureml://registries/azureml/environments/{name}/labels/latest")
    assert pinned in env.requirements
    assert env.python == "3.11"


def test_a_curated_name_written_as_a_workspace_asset_is_the_registry_one() -> None:
    from smalt.environments.curated import curated_reference

    registry = "azureml://registries/azureml/environments/sklearn-1.5/labels/latest"
    assert curated_reference("azureml:AzureML-sklearn-1.5@latest") == registry
    assert curated_reference("azureml:AzureML-sklearn-1.5:33") == registry
    assert curated_reference("azureml:sklearn-1.5@latest") is None
    assert curated_reference(registry) is None


def test_another_registry_is_refused() -> None:
    with pytest.raises(InvalidSpecError, match="registry 'contoso'"):
        resolve("azureml://registries/contoso/environments/sklearn-1.5/labels/latest")


@pytest.mark.parametrize("reference", ["azureml:sklearn:3", "azureml:sklearn@latest"])
def test_a_registered_environment_reference_is_for_the_caller_to_resolve(reference: str) -> None:
    with pytest.raises(ValueError, match="registered environment"):
        resolve(reference)


def test_a_string_that_is_no_reference_is_an_invalid_spec() -> None:
    with pytest.raises(InvalidSpecError, match="not an environment reference"):
        resolve("python:3.11-slim")
