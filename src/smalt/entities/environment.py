"""Environments: what a job's code runs in (a conda file, an image, or a build context)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import model_validator

from smalt.entities.base import Asset, Entity


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
        return self


class InlineEnvironment(_RunsIn):
    """An environment written inside a component or job; it needs no name or version."""

    name: str | None = None
    version: str | None = None
    description: str | None = None
    tags: dict[str, str] | None = None


class Environment(Asset, _RunsIn):
    """An environment.

    Example::

        Environment(name="sklearn", conda_file="./conda.yml", image="python:3.11-slim")

    ``conda_file`` may be a path or the conda spec itself; a path is read when the environment
    is created and stored inline, so the version pins the content.
    """

    kind: ClassVar[str] = "environment"
