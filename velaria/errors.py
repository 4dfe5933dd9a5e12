"""The Velaria error hierarchy.

Every engine error subclasses :class:`VelariaError`, which subclasses ``RuntimeError`` so that
code written against native Velaria (where every engine error is a bare ``RuntimeError``) keeps
working. Narrower classes add a second, more specific standard base where one exists:

* a bad argument *value* (unknown metric, ``top_k < 1``, a bad option) is also a ``ValueError``;
* a missing file is also a ``FileNotFoundError``;
* a wrong argument *type* raises plain ``TypeError`` (not part of this hierarchy).

SQL errors carry ``error_type``, ``message``, ``hint`` and ``byte_offset`` (into the text the
user wrote, not the normalised text) and render as upstream does::

    error_type=parse_error; message=WINDOW EVERY must be numeric.; byte_offset=42
"""
from __future__ import annotations

__all__ = [
    "VelariaError",
    "VelariaValueError",
    "VelariaFileNotFoundError",
    "SqlError",
    "SQLSyntaxError",
    "SQLUnsupportedError",
    "SQLNotAvailableError",
    "SQLSemanticError",
    "SQLParameterError",
    "SQLTableKindError",
    "CatalogNotFoundError",
    "ColumnNotFoundError",
    "ExecutionError",
    "SourceFormatError",
]


class VelariaError(RuntimeError):
    """Base of every error the engine raises on purpose."""


class VelariaValueError(VelariaError, ValueError):
    """An argument has the right type but a value the engine cannot use."""


class VelariaFileNotFoundError(VelariaError, FileNotFoundError):
    """A path given by the user does not exist (or is not a regular file)."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.filename = path

    def __str__(self) -> str:  # FileNotFoundError would otherwise render errno-style
        return self.args[0]


class SqlError(VelariaError):
    """An error found while parsing, validating or planning a SQL statement.

    ``byte_offset`` is a 0-based byte offset into the user's original SQL text, or ``None``
    when the error is not tied to one position.
    """

    default_type = "sql_error"

    def __init__(self, message: str, *, error_type: str | None = None, hint: str | None = None,
                 byte_offset: int | None = None):
        self.error_type = error_type or self.default_type
        self.message = message
        self.hint = hint
        self.byte_offset = byte_offset
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"error_type={self.error_type}", f"message={self.message}"]
        if self.hint:
            parts.append(f"hint={self.hint}")
        if self.byte_offset is not None:
            parts.append(f"byte_offset={self.byte_offset}")
        return "; ".join(parts)

    def __str__(self) -> str:
        return self._render()

    def with_offset(self, byte_offset: int | None) -> "SqlError":
        """Return self with ``byte_offset`` filled in when it was unknown."""
        if self.byte_offset is None and byte_offset is not None:
            self.byte_offset = byte_offset
            self.args = (self._render(),)
        return self


class SQLSyntaxError(SqlError):
    """The text does not parse, or names an unknown function (upstream ``SQLSyntaxError``)."""

    default_type = "parse_error"


class SQLUnsupportedError(SqlError):
    """Valid SQL that Velaria SQL v1 does not support; the message says what and why."""

    default_type = "unsupported_sql_feature"


class SQLNotAvailableError(SQLUnsupportedError):
    """Parsed Velaria syntax whose engine part is not available in this build yet."""

    default_type = "not_available"


class SQLSemanticError(SqlError):
    """The statement parses but is wrong (types, arity, GROUP BY rules, ...)."""

    default_type = "semantic_error"


class SQLParameterError(SqlError, ValueError):
    """Bind parameters that do not match the statement's placeholders (count or value)."""

    default_type = "parameter_error"


class SQLTableKindError(SqlError):
    """A table is used in a way its kind (SOURCE / SINK / batch) does not allow."""

    default_type = "table_kind_error"


class CatalogNotFoundError(SqlError, LookupError):
    """A table or view name is not in this Session's catalog."""

    default_type = "catalog_not_found"


class ColumnNotFoundError(SQLSemanticError):
    """A column reference does not resolve against the input schema."""

    default_type = "column_not_found"


class ExecutionError(VelariaError):
    """A failure while executing a plan (bad cast, overflow, ...)."""


class SourceFormatError(VelariaError):
    """A source file's contents cannot be read with the chosen format."""
