"""The ``smalt`` command. Heavy modules are imported inside the commands that need them, and the
Typer app itself only when the command line is not one of the fast commands (``smalt.cli.fast``)."""

from __future__ import annotations

import os
import sys


def run() -> None:
    """Entry point of the console script: the CLI's one error boundary. Typer handles usage errors,
    ``--help`` and exit codes itself; a smalt error prints one clear line and exits 1. (``smalt.errors``
    is imported only when something failed: the fast commands never need it otherwise.)"""
    try:
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


def _dispatch(argv: list[str]) -> None:
    """A fast command through the server, else the Typer app with only the invoked noun's commands
    (building all of them costs every command tens of ms)."""
    from smalt.cli import fast

    code = fast.run(argv)
    if code is not None:
        sys.exit(code)
    from smalt.cli import context
    from smalt.cli.main import build, invoked_noun

    noun = invoked_noun(argv)
    try:
        build([noun] if noun else None)()
    finally:
        context.close()
