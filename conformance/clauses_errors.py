"""Clauses on errors: types, the literal texts native's `sql` raises, and the SQL error format."""
from __future__ import annotations

import re

from . import ClauseFailure, Context, NativeBehaviour, clause, contract_or_native

_SETUP = """import pyarrow as pa
import {target} as target
s = {session}
s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({{"id": [1, 2], "name": ["a", "b"]}})))
"""

# error_type=<type>; message=<msg>[; hint=<hint>][; byte_offset=<n>]
FORMAT = re.compile(r"^error_type=(?P<type>[^;\s]+); message=(?P<message>.*?)(; hint=(?P<hint>.*?))?(; byte_offset=(?P<off>\d+))?$",
                    re.S)


def _session(ctx: Context):
    import pyarrow as pa

    s = ctx.session()
    df = ctx.api(s, "create_dataframe_from_arrow")(pa.table({"id": [1, 2], "name": ["a", "b"]}))
    ctx.api(s, "create_temp_view")("t", df)
    return s


def _planning_error(ctx: Context, sql: str) -> BaseException:
    """Run ``sql``; return the exception. Fail when none is raised or it is raised only at execution."""
    s = _session(ctx)
    try:
        df = ctx.api(s, "sql")(sql)
    except Exception as exc:  # noqa: BLE001
        return exc
    try:
        df.to_rows()
    except Exception as exc:  # noqa: BLE001
        raise ClauseFailure("%r raised only at execution (to_rows), expected at sql(): %s: %s"
                            % (sql, type(exc).__name__, exc)) from exc
    raise ClauseFailure("%r succeeded; expected an error" % sql)


def _check_runtime(exc: BaseException, sql: str):
    if not isinstance(exc, RuntimeError):
        raise ClauseFailure("%r raised %s (not a RuntimeError subclass): %s" % (sql, type(exc).__name__, exc))


@clause("error-text-001", "unknown table: RuntimeError at sql() whose text contains 'view not found: <name>'",
        repro=_SETUP + "s.sql('SELECT * FROM nope')")
def unknown_table(ctx: Context):
    sql = "SELECT * FROM nope"
    exc = _planning_error(ctx, sql)
    _check_runtime(exc, sql)
    if "view not found: nope" not in str(exc):
        raise ClauseFailure("error text lacks 'view not found: nope': %s" % exc)


@clause("error-text-002", "unknown column: RuntimeError at sql() whose text contains 'column not found: <name>'",
        repro=_SETUP + "s.sql('SELECT nope FROM t')")
def unknown_column(ctx: Context):
    for sql in ("SELECT nope FROM t", "SELECT id FROM t WHERE nope > 1"):
        exc = _planning_error(ctx, sql)
        _check_runtime(exc, sql)
        if "column not found: nope" not in str(exc):
            raise ClauseFailure("%r: error text lacks 'column not found: nope': %s" % (sql, exc))


@clause("error-format-001", "SQL errors render as 'error_type=...; message=...[; hint=...][; byte_offset=...]'",
        diverges="planner-error-text", repro=_SETUP + "s.sql('SELECT * FROM nope')")
def error_format(ctx: Context):
    # parse errors (native formats these too), then a planner error (native: the bare message)
    native_seen = []
    for sql, bare in (("SELEC id FROM t", None), ("SELECT id FROM t WHERE", None),
                      ("SELECT * FROM nope", "view not found: nope")):
        exc = _planning_error(ctx, sql)
        _check_runtime(exc, sql)
        if FORMAT.match(str(exc)):
            continue
        if bare is not None and str(exc) == bare:
            native_seen.append("%r raised the bare planner message %r" % (sql, bare))
            continue
        raise ClauseFailure("%r: error text does not follow the upstream format: %r" % (sql, str(exc)))
    if native_seen:
        raise NativeBehaviour("; ".join(native_seen))


@clause("error-format-002", "SQL errors carry error_type, message, hint and byte_offset attributes matching str()",
        diverges="error-classes")
def error_attributes(ctx: Context):
    for sql in ("SELEC id FROM t", "SELECT * FROM nope", "SELECT nope FROM t"):
        exc = _planning_error(ctx, sql)
        _check_runtime(exc, sql)
        missing = [a for a in ("error_type", "message", "hint", "byte_offset") if not hasattr(exc, a)]
        if len(missing) == 4 and type(exc) is RuntimeError:
            raise NativeBehaviour("%r raised a bare RuntimeError without error_type/message/hint/byte_offset" % sql)
        if missing:
            raise ClauseFailure("%r: %s has no attribute %r" % (sql, type(exc).__name__, missing[0]))
        m = FORMAT.match(str(exc))
        if not m:
            raise ClauseFailure("%r: bad format %r" % (sql, str(exc)))
        if m.group("type") != exc.error_type or m.group("message") != exc.message:
            raise ClauseFailure("%r: attributes (%r, %r) disagree with str() %r" % (sql, exc.error_type, exc.message, str(exc)))
        if exc.byte_offset is not None:
            if not (isinstance(exc.byte_offset, int) and 0 <= exc.byte_offset <= len(sql.encode())):
                raise ClauseFailure("%r: byte_offset %r is outside the SQL text" % (sql, exc.byte_offset))
            if m.group("off") is None or int(m.group("off")) != exc.byte_offset:
                raise ClauseFailure("%r: byte_offset %r not rendered in %r" % (sql, exc.byte_offset, str(exc)))


@clause("error-offset-001", "byte_offset points into the user's original text (not a normalised one)",
        diverges="byte-offsets")
def error_offset(ctx: Context):
    # The unknown column starts at a known byte; with a multi-byte character before it.
    sql = "SELECT 'é' AS e, nope FROM t"
    exc = _planning_error(ctx, sql)
    _check_runtime(exc, sql)
    off = getattr(exc, "byte_offset", None)
    if off is None:
        m = FORMAT.match(str(exc))
        off = int(m.group("off")) if m and m.group("off") else None
    if off is None:
        return  # an error without position is allowed
    want = sql.encode().index(b"nope")
    if off == want + 1:
        raise NativeBehaviour("byte_offset %d is 1-based (the byte where 'nope' starts is %d)" % (off, want))
    if off != want:
        raise ClauseFailure("byte_offset %r, expected %d (the byte where 'nope' starts)" % (off, want))


@clause("error-text-003", "unsupported SQL (WITH RECURSIVE, LATERAL, UPDATE) is a RuntimeError that says 'not supported'")
def unsupported(ctx: Context):
    for sql in ("WITH RECURSIVE x AS (SELECT 1 AS id) SELECT id FROM x",
                "SELECT t.id FROM t, LATERAL (SELECT id FROM t) AS x",
                "UPDATE t SET id = 1"):
        exc = _planning_error(ctx, sql)
        _check_runtime(exc, sql)
        if "not supported" in str(exc).lower():
            continue
        raise ClauseFailure("%r: error does not say 'not supported': %s" % (sql, exc))


@clause("error-text-004", "unknown table / column errors name what exists ('did you mean ...')",
        diverges="did-you-mean")
def did_you_mean(ctx: Context):
    col = _planning_error(ctx, "SELECT nmae FROM t")
    view = _planning_error(ctx, "SELECT * FROM tt")

    def contract():
        if "name" not in str(col).replace("nmae", ""):
            raise ClauseFailure("unknown column 'nmae' error does not mention the existing column 'name': %s" % col)
        if not re.search(r"\bt\b", str(view).replace("tt", "")):
            raise ClauseFailure("unknown view 'tt' error does not mention the existing view 't': %s" % view)

    def native():  # the message names only what is missing
        if "column not found: nmae" in str(col) and "view not found: tt" in str(view):
            return "the errors name only the missing column / view: %s | %s" % (col, view)
        return None

    contract_or_native(contract, native)


@clause("error-type-001", "every SQL error is catchable as RuntimeError (parse, unknown table, unknown column, unsupported)")
def runtime_error_base(ctx: Context):
    for sql in ("SELEC 1", "SELECT * FROM nope", "SELECT nope FROM t",
                "WITH RECURSIVE x AS (SELECT 1 AS id) SELECT id FROM x"):
        exc = _planning_error(ctx, sql)
        _check_runtime(exc, sql)
