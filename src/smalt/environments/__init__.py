"""Environments as local compute realises them: virtual environments built with uv, cached by digest.

:func:`resolve` turns an environment (a conda file, an image, a build context, a curated name)
into a :class:`ResolvedEnvironment`; :func:`ensure` builds it once under a cache folder and returns
the Python executable to run a job with; :class:`BuildProgress` tells a job's log how a build goes.
"""

from smalt.environments.build import ensure, installed_packages
from smalt.environments.progress import BuildProgress
from smalt.environments.resolve import ResolvedEnvironment, resolve

__all__ = ["BuildProgress", "ResolvedEnvironment", "ensure", "installed_packages", "resolve"]
