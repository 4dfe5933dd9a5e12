"""CLI errors and the JSON error document every command prints on failure.

Upstream's shape: ``{"ok": false, "error", "error_type", "phase"?, "details"?, "run_id"?}`` on
stdout and exit code 1. Engine errors keep their own type (``column_not_found``,
``parse_error``, ...) instead of a generic label, and their hint goes into ``details``.
"""
from __future__ import annotations

__all__ = ["CliStructuredError", "CliUsageError", "error_document"]


class CliStructuredError(ValueError):
    """A failure with an upstream ``error_type``, the ``phase`` it happened in and ``details``."""

    def __init__(self, message: str, *, error_type: str = "value_error", phase: str | None = None,
                 details: dict | None = None, run_id: str | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.phase = phase
        self.details = dict(details or {})
        self.run_id = run_id


class CliUsageError(CliStructuredError):
    """Bad command-line arguments (``error_type`` ``usage_error``)."""

    def __init__(self, message: str, *, phase: str = "argument_parse", details: dict | None = None,
                 run_id: str | None = None):
        super().__init__(message, error_type="usage_error", phase=phase, details=details, run_id=run_id)


def _classify(exc: BaseException) -> tuple[str, str | None, dict]:
    """``(error_type, phase, details)`` for an exception that is not a CliStructuredError."""
    from ..errors import SqlError, VelariaError
    if isinstance(exc, SqlError):
        details = {k: v for k, v in (("hint", exc.hint), ("byte_offset", exc.byte_offset)) if v is not None}
        return exc.error_type, None, details
    if isinstance(exc, FileNotFoundError):
        path = getattr(exc, "filename", None)
        return "file_not_found", "filesystem", ({"path": str(path)} if path else {})
    if isinstance(exc, ValueError):
        return "value_error", None, {}
    if isinstance(exc, VelariaError):
        return "execution_error", None, {}
    if isinstance(exc, (MemoryError, OSError)):
        return type(exc).__name__.lower(), None, {}
    return "internal_error", None, {"exception": type(exc).__name__}


def _message(exc: BaseException) -> str:
    from ..errors import SqlError
    if isinstance(exc, SqlError):
        return exc.message
    if isinstance(exc, FileNotFoundError) and not exc.args[1:] and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def error_document(exc: BaseException) -> dict:
    """The JSON error document for ``exc``. A CliStructuredError raised ``from`` an engine error
    takes the engine error's type, and its message and hint go into ``details``."""
    if isinstance(exc, CliStructuredError):
        error_type, phase, details = exc.error_type, exc.phase, dict(exc.details)
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, CliStructuredError):
            cause_type, _, cause_details = _classify(cause)
            if error_type == "value_error" and cause_type not in ("value_error", "internal_error"):
                error_type = cause_type
            details.setdefault("cause", _message(cause))
            for k, v in cause_details.items():
                details.setdefault(k, v)
        run_id = exc.run_id
    else:
        error_type, phase, details = _classify(exc)
        run_id = None
    doc = {"ok": False, "error": _message(exc), "error_type": error_type}
    if phase:
        doc["phase"] = phase
    if details:
        doc["details"] = details
    if run_id:
        doc["run_id"] = run_id
    return doc
