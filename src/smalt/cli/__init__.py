"""The ``smalt`` command. Heavy modules are imported inside the commands that need them."""

from __future__ import annotations

import os
import sys


def console() -> None:
    """The console script: the command runs in the CLI's agent when one answers (a warm process
    with everything imported: ``smalt.cli.agent``), else here, through ``run()``."""
    from smalt.cli import launcher

    try:
        code = launcher.forward(sys.argv[1:])
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    if code is not None:
        sys.exit(code)
    run()


def run() -> None:
    """The CLI's one error boundary (``console``, the console script, calls it). Typer handles
    usage errors, ``--help`` and exit codes itself; a smalt error prints one clear line and exits 1."""
    import warnings

    try:
        # A warning about the user's file is always shown, as one line (never raised, whatever
        # filters the interpreter runs with), and only for this command.
        with warnings.catch_warnings():
            warnings.filterwarnings("always", module="smalt", message="")
            warnings.showwarning = _show_warning
            _dispatch(sys.argv[1:])
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    except Exception as error:
        from smalt.errors import SmaltError

        if isinstance(error, SmaltError):
            hint = f"\nHint: {error.hint}" if error.hint else ""
            sys.stderr.write(f"Error: {error.message}{hint}\n")
            sys.exit(1)
        if os.environ.get("SMALT_DEBUG"):
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        sys.stderr.write(
            f"Internal error: {type(error).__name__}: {first}\n"
            "Run again with SMALT_DEBUG=1 to see the traceback, and report it.\n"
        )
        sys.exit(2)


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    # A warning about the user's file reads like an error's line, not like a Python traceback.
    sys.stderr.write(f"Warning: {message}\n")


def _dispatch(argv: list[str]) -> None:
    """The Typer app with only the invoked noun's commands (building all of them costs every
    command tens of ms)."""
    if argv == ["--version"]:
        # Answered before any command is even imported: scripts ask it often.
        sys.stdout.write(version_line() + "\n")
        sys.exit(0)
    from smalt.cli import context
    from smalt.cli.main import command, invoked_noun

    noun = invoked_noun(argv)
    try:
        command([noun] if noun else None)()
    finally:
        context.close()


def version_line() -> str:
    """``smalt --version``: the installed distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"smalt {version('smalt')}"
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "smalt (version unknown: not installed)"
