"""Environments: what a job's code runs in (a conda file, an image, or a build context)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from smalt.entities.base import Asset, Description, Entity, StrDict, Version


class BuildContext(Entity):
    """A Docker build context: a folder and the Dockerfile in it."""

    path: str
    dockerfile_path: str = "Dockerfile"


class Route(Entity):
    path: str
    port: int


class InferenceConfig(Entity):
    liveness_route: Route | None = None
    readiness_route: Route | None = None
    scoring_route: Route | None = None


class _RunsIn(Entity):
    """What an environment is made of, shared by registered and inline environments."""

    image: str | None = None
    conda_file: str | dict[str, Any] | None = None
    build: BuildContext | None = None
    os_type: Literal["linux", "windows"] = "linux"
    inference_config: InferenceConfig | None = None

    @model_validator(mode="after")
    def _needs_something_to_run_in(self) -> _RunsIn:
        if self.image is None and self.conda_file is None and self.build is None:
            raise ValueError("an environment needs at least one of image, conda_file or build")
        if self.image is not None and self.build is not None:
            raise ValueError("an environment takes an image or a build context, not both")
        return self


class InlineEnvironment(_RunsIn):
    """An environment written inside a component or job; it needs no name or version."""

    name: str | None = None
    version: Version | None = None
    description: Description | None = None
    tags: StrDict | None = None


class Environment(Asset, _RunsIn):
    """An environment.

    Example::

        Environment(name="sklearn", conda_file="./conda.yml", image="python:3.11-slim")

    ``conda_file`` may be a path or the conda spec itself; a path is read when the environment
    is created and stored inline, so the version pins the content.
    """

    kind: ClassVar[str] = "environment"


#: Variables of the platform's own process that user code never inherits: smalt's settings (its
#: database URL, secret key, server token) and the credentials the platform reads storage with. A
#: job that needs a credential declares it (``environment_variables``), as on Azure ML.
_PLATFORM_PREFIXES = ("SMALT_", "AWS_", "AZURE_", "MLFLOW_TRACKING_")
_PLATFORM_NAMES = frozenset({"GOOGLE_APPLICATION_CREDENTIALS", "MLFLOW_S3_ENDPOINT_URL"})


def inherited_variables(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What user code (a job's command, a deployment's scoring script) inherits from the process
    that starts it: everything but the platform's settings and secrets."""
    return {
        key: value for key, value in environ.items()
        if not key.startswith(_PLATFORM_PREFIXES) and key not in _PLATFORM_NAMES
    }  # fmt: skip
