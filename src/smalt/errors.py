"""The one exception hierarchy of smalt.

Every error a person can meet says what failed, on which object, why, and what to do (``hint``)::

    SmaltError
    ├── NotFoundError            a named thing does not exist
    ├── AlreadyExistsError       a create that would overwrite something different
    │   └── VersionConflictError an explicit version that exists with other content
    ├── InvalidSpecError         a YAML file, flag or SDK argument is wrong (carries SpecProblems)
    ├── InvalidStateError        the object exists but cannot do that now (e.g. archived)
    ├── ConfigurationError       the workspace, database or datastore set-up is wrong
    ├── BackendError             a database, filesystem or compute backend failed
    ├── UserCodeError            the user's own code failed (jobs, scoring scripts)
    └── AccessError              a server refused the caller
        ├── AuthenticationError  no valid credential (401)
        └── PermissionDeniedError the caller's roles do not grant the action (403)

Foreign exceptions are translated where they enter smalt, with ``raise ... from``. What a file
says that smalt reads but ignores, as Azure ML does, is a ``SpecWarning`` (a Python warning): the
CLI prints it and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a spec: where it is (file, line, field path) and what is wrong."""

    message: str
    field: str = ""
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        # A problem of no file (a flag, an SDK argument) is named by its field alone.
        where = [f"{self.file}:{self.line}" if self.line is not None else self.file] if self.file else []
        if self.field:
            where.append(self.field)
        return ": ".join([*where, self.message])


class SmaltError(Exception):
    """Base of every error smalt raises on purpose."""

    #: What a person should do about it; printed after the message.
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} Hint: {self.hint}"
        return self.message


class NotFoundError(SmaltError):
    """A named object (asset, version, datastore, compute, workspace) does not exist."""

    #: The field of a spec whose reference named it (``environment``), when one did.
    field: str = ""


class AlreadyExistsError(SmaltError):
    """Creating would overwrite an object that exists with different content."""


class VersionConflictError(AlreadyExistsError):
    """An explicit asset version exists already, with other content."""


class InvalidSpecError(SmaltError):
    """The input is wrong; ``problems`` lists every problem found, each with its location."""

    def __init__(self, problems: list[SpecProblem], *, summary: str | None = None, hint: str | None = None) -> None:
        self.problems = list(problems)
        self.summary = summary
        head = summary or (f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''} in the spec")
        body = "\n".join(f"  {p}" for p in self.problems)
        if [summary] == [str(p) for p in self.problems]:
            body = ""  # one problem that is its own summary: one line
        super().__init__(f"{head}:\n{body}" if body else head, hint=hint)

    @classmethod
    def refusal(cls, problem: SpecProblem, hint: str | None = None) -> InvalidSpecError:
        """A file refused for one reason (a kind smalt lacks): one line, with where it is said."""
        return cls([problem], summary=str(problem), hint=hint)

    @classmethod
    def one(cls, message: str, field: str = "") -> InvalidSpecError:
        """A single problem, not in a file (an API parameter): its message is the summary too."""
        return cls([SpecProblem(message, field=field)], summary=message)


class InvalidStateError(SmaltError):
    """The object exists but cannot do what was asked in its present state."""


class ConfigurationError(SmaltError):
    """The workspace, database, datastore or installation is not set up as needed."""


class BackendError(SmaltError):
    """A database, filesystem or compute backend failed underneath smalt."""


class UserCodeError(SmaltError):
    """The user's own code failed; the platform itself did what it should."""


class AccessError(SmaltError):
    """A server refused the caller."""


class AuthenticationError(AccessError):
    """The request carried no credential the server accepts (none, wrong, expired or revoked)."""


class PermissionDeniedError(AccessError):
    """The caller is known, but none of its roles grants the action at that scope."""


#: Each error class's stable code and HTTP status: the one table the server answers by and a client
#: rebuilds the error from (a subclass before its base; anything else is an internal error).
WIRE: tuple[tuple[type[SmaltError], str, int], ...] = (
    (NotFoundError, "NotFound", 404),
    (VersionConflictError, "VersionConflict", 409),
    (AlreadyExistsError, "AlreadyExists", 409),
    (InvalidSpecError, "InvalidSpec", 400),
    (InvalidStateError, "InvalidState", 409),
    (ConfigurationError, "Configuration", 500),
    (UserCodeError, "UserCode", 422),
    (BackendError, "Backend", 502),
    (AuthenticationError, "Unauthenticated", 401),
    (PermissionDeniedError, "Forbidden", 403),
    (AccessError, "AccessDenied", 403),
)


def to_wire(error: SmaltError) -> tuple[int, dict[str, object]]:
    """The HTTP status and the JSON body (``{"error": ...}``) that carry ``error``: its code,
    message and hint, and a spec's every problem (file, line, field)."""
    code, status = next(((c, s) for kind, c, s in WIRE if isinstance(error, kind)), ("Internal", 500))
    body: dict[str, object] = {"code": code, "message": error.message, "hint": error.hint}
    if isinstance(error, InvalidSpecError):
        body["summary"] = error.summary
        body["problems"] = [{"message": p.message, "field": p.field, "file": p.file, "line": p.line}
                            for p in error.problems]  # fmt: skip
    if isinstance(error, NotFoundError) and error.field:
        body["field"] = error.field
    return status, {"error": body}


def from_wire(body: dict[str, object]) -> SmaltError | None:
    """The error ``to_wire`` described, or None if ``body`` describes none."""
    error = body.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return None
    kind = next((k for k, code, _ in WIRE if code == error["code"]), None)
    message, hint = str(error.get("message", "")), error.get("hint")
    hint = hint if isinstance(hint, str) else None
    if kind is InvalidSpecError:
        problems = [
            SpecProblem(str(p.get("message", "")), str(p.get("field") or ""), p.get("file"), p.get("line"))
            for p in error.get("problems") or [] if isinstance(p, dict)
        ]  # fmt: skip
        summary = error.get("summary")
        return InvalidSpecError(problems, summary=summary if isinstance(summary, str) else None, hint=hint)
    if kind is None:
        return BackendError(message or "The server failed.", hint=hint)
    rebuilt = kind(message, hint=hint)
    if isinstance(rebuilt, NotFoundError):
        rebuilt.field = str(error.get("field") or "")
    return rebuilt


class SpecWarning(UserWarning):
    """A key Azure ML's schema accepts and smalt ignores (an unknown key under pipeline
    ``settings``): the file loads, and the warning says where and what was ignored."""
