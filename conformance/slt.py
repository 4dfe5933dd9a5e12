"""Reader and runner for the sqllogictest-style clause files in ``slt/``.

A file is a sequence of records separated by blank lines. ``#`` lines are comments, except:

``# clause: <id> <title>``
    starts a new clause; every record up to the next clause header belongs to it.
``# diverges: <reason>``
    (inside a clause) the clause relies on a deliberate divergence from native Velaria.

Records before the first clause header are the file's *setup*: they run, in a fresh
``Session``, before the records of every clause in the file. Record kinds:

``arrow <name>``
    registers a temp view from an in-memory Arrow table (through
    ``create_dataframe_from_arrow`` + ``create_temp_view``). The next line declares the
    columns as ``name:type`` (types: ``int64 int32 float64 float32 string large_string bool
    vector<N>``); each following line is one row as a JSON array (``null``, ``NaN``,
    ``Infinity`` and ``-Infinity`` allowed)::

        arrow t
        id:int64 name:string score:float64
        [1, "alice", 1.5]
        [2, null, NaN]

``statement ok`` / ``statement error <regex>``
    runs the SQL that follows (``Session.sql``, then ``to_rows()`` to force execution).
    ``error`` requires a ``RuntimeError`` (subclass) whose ``str()`` matches ``<regex>``
    (``re.search``).

``query <types> [nosort|rowsort|valuesort] [columns=a,b,...]`` / ``query error <regex>``
    runs the SQL above a ``----`` line and compares ``to_rows()`` with the lines below it,
    rendered canonically by :mod:`velaria.conformance.render` (one row per line, values
    separated by one space). ``<types>`` has one letter per output column (``I R T B V ?``)
    and is checked against each value's type; ``columns=`` also pins the output names.
    The default sort mode is ``nosort``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import ApiMissing, Clause, ClauseFailure, Context
from .render import SORT_MODES, check_type, render_rows, render_value, type_name

__all__ = ["Record", "parse", "load_file", "ARROW_TYPES"]


def _arrow_types():
    import pyarrow as pa

    return {
        "int64": pa.int64(), "int32": pa.int32(), "float64": pa.float64(), "float32": pa.float32(),
        "string": pa.string(), "large_string": pa.large_string(), "bool": pa.bool_(),
    }


ARROW_TYPES = ("int64", "int32", "float64", "float32", "string", "large_string", "bool", "vector<N>")


@dataclass
class Record:
    kind: str                   # arrow | statement | query
    line: int                   # 1-based line of the record header
    sql: str = ""
    expect_error: str | None = None  # regex, for statement/query error
    types: str = ""
    sort: str = "nosort"
    columns: list[str] | None = None
    expected: list[str] = field(default_factory=list)
    table: str = ""             # arrow
    schema: list[tuple[str, str]] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)


@dataclass
class _RawClause:
    id: str
    title: str
    line: int
    diverges: str | None = None
    records: list[Record] = field(default_factory=list)


class SltSyntaxError(ValueError):
    pass


def parse(text: str, name: str = "<slt>") -> tuple[list[Record], list[_RawClause]]:
    """Parse an ``.slt`` text into (setup records, clauses)."""
    lines = text.splitlines()
    setup: list[Record] = []
    clauses: list[_RawClause] = []
    i = 0

    def err(msg: str, at: int):
        raise SltSyntaxError("%s:%d: %s" % (name, at + 1, msg))

    def block(start: int) -> tuple[list[str], int]:
        j = start
        out = []
        while j < len(lines) and lines[j].strip() != "":
            out.append(lines[j])
            j += 1
        return out, j

    while i < len(lines):
        raw = lines[i]
        s = raw.strip()
        if s == "":
            i += 1
            continue
        if s.startswith("#"):
            m = re.match(r"#\s*clause:\s*(\S+)\s+(.*)$", s)
            if m:
                clauses.append(_RawClause(m.group(1), m.group(2).strip(), i + 1))
            else:
                m = re.match(r"#\s*diverges:\s*(.*)$", s)
                if m:
                    if not clauses:
                        err("'# diverges:' outside a clause", i)
                    clauses[-1].diverges = m.group(1).strip()
            i += 1
            continue
        target = clauses[-1].records if clauses else setup
        head = s.split()
        body, nxt = block(i + 1)
        body = [b for b in body if not b.lstrip().startswith("#")]
        if head[0] == "arrow":
            if len(head) != 2 or not body:
                err("expected 'arrow <name>' followed by a column line", i)
            schema = []
            for tok in body[0].split():
                if ":" not in tok:
                    err("column must be name:type, got %r" % tok, i + 1)
                cname, ctype = tok.split(":", 1)
                if ctype not in ARROW_TYPES[:-1] and not re.fullmatch(r"vector<\d+>", ctype):
                    err("unknown arrow type %r (expected %s)" % (ctype, ", ".join(ARROW_TYPES)), i + 1)
                schema.append((cname, ctype))
            rows = []
            for k, rl in enumerate(body[1:]):
                try:
                    row = json.loads(rl)
                except ValueError as exc:
                    err("row is not a JSON array: %s" % exc, i + 2 + k)
                if not isinstance(row, list) or len(row) != len(schema):
                    err("row must be a JSON array of %d values" % len(schema), i + 2 + k)
                rows.append(row)
            target.append(Record("arrow", i + 1, table=head[1], schema=schema, rows=rows))
        elif head[0] == "statement":
            if len(head) < 2 or head[1] not in ("ok", "error"):
                err("expected 'statement ok' or 'statement error <regex>'", i)
            if not body:
                err("statement without SQL", i)
            rec = Record("statement", i + 1, sql="\n".join(body))
            if head[1] == "error":
                rec.expect_error = s.split(None, 2)[2] if len(head) > 2 else ""
            target.append(rec)
        elif head[0] == "query":
            if len(head) < 2:
                err("expected 'query <types> [sort] [columns=...]' or 'query error <regex>'", i)
            if head[1] == "error":
                if not body:
                    err("query without SQL", i)
                target.append(Record("query", i + 1, sql="\n".join(body),
                                     expect_error=s.split(None, 2)[2] if len(head) > 2 else ""))
            else:
                rec = Record("query", i + 1, types=head[1])
                for bad in set(rec.types) - set("IRTBV?"):
                    err("unknown column type letter %r" % bad, i)
                for opt in head[2:]:
                    if opt in SORT_MODES:
                        rec.sort = opt
                    elif opt.startswith("columns="):
                        rec.columns = opt[len("columns="):].split(",")
                    else:
                        err("unknown query option %r" % opt, i)
                if "----" not in [b.strip() for b in body]:
                    err("query without '----' result separator", i)
                k = [b.strip() for b in body].index("----")
                rec.sql = "\n".join(body[:k])
                rec.expected = [b.strip() for b in body[k + 1:]]
                if not rec.sql.strip():
                    err("query without SQL", i)
                target.append(rec)
        else:
            err("unknown record %r" % head[0], i)
        i = nxt
    return setup, clauses


def load_file(path: Path) -> list[Clause]:
    """Parse one ``.slt`` file into registered-ready :class:`Clause` objects."""
    path = Path(path)
    setup, raw = parse(path.read_text(encoding="utf-8"), path.name)
    out = []
    for rc in raw:
        origin = "%s:%d" % (path.name, rc.line)

        def run(ctx: Context, _setup=setup, _records=rc.records, _origin=origin):
            _run_records(ctx, _setup + _records, _origin)

        out.append(Clause(id=rc.id, title=rc.title, run=run, diverges=rc.diverges, origin=origin))
    return out


# ---------------------------------------------------------------------------------------- running

def _arrow_table(rec: Record):
    import pyarrow as pa

    types = _arrow_types()
    arrays = {}
    for k, (cname, ctype) in enumerate(rec.schema):
        values = [r[k] for r in rec.rows]
        m = re.fullmatch(r"vector<(\d+)>", ctype)
        t = pa.list_(pa.float32(), int(m.group(1))) if m else types[ctype]
        arrays[cname] = pa.array(values, type=t)
    return pa.table(arrays) if arrays else pa.table({})


def _arrow_repro(rec: Record) -> str:
    cols = []
    for k, (cname, ctype) in enumerate(rec.schema):
        m = re.fullmatch(r"vector<(\d+)>", ctype)
        t = "pa.list_(pa.float32(), %s)" % m.group(1) if m else ("pa.bool_()" if ctype == "bool" else "pa.%s()" % ctype)
        values = [r[k] for r in rec.rows]
        cols.append("    %r: pa.array(%s, %s)," % (cname, _py_literal(values), t))
    return "s.create_temp_view(%r, s.create_dataframe_from_arrow(pa.table({\n%s\n})))" % (rec.table, "\n".join(cols))


def _py_literal(values) -> str:
    def one(v):
        if isinstance(v, float) and v != v:
            return "float('nan')"
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            return "float('%s')" % ("inf" if v > 0 else "-inf")
        return repr(v)

    return "[" + ", ".join(one(v) for v in values) + "]"


def _materialize(df):
    to_rows = getattr(df, "to_rows", None)
    if to_rows is None:
        raise ApiMissing("DataFrame.to_rows")
    return to_rows()


def _run_records(ctx: Context, records: list[Record], origin: str) -> None:
    s = ctx.session()
    repro = ["import pyarrow as pa", "import %s as target" % ctx.target_name, "s = %s" % ctx.session_expr()]
    referenced = set(re.findall(r"\w+", " ".join(r.sql for r in records)))
    for rec in records:
        where = "%s (record at line %d)" % (origin, rec.line)
        if rec.kind == "arrow":
            create = ctx.api(s, "create_dataframe_from_arrow")
            view = ctx.api(s, "create_temp_view")
            view(rec.table, create(_arrow_table(rec)))
            if rec.table in referenced:  # keep the repro short: only the tables the clause uses
                repro.append(_arrow_repro(rec))
            continue
        sql_fn = ctx.api(s, "sql")
        if rec.expect_error is not None:
            repro.append("s.sql(%r).to_rows()  # expected RuntimeError matching %r" % (rec.sql, rec.expect_error))
            try:
                _materialize(sql_fn(rec.sql))
            except ApiMissing:
                raise
            except Exception as exc:  # noqa: BLE001 - we classify whatever the target raised
                if not isinstance(exc, RuntimeError):
                    raise ClauseFailure("%s: expected a RuntimeError (subclass), got %s: %s"
                                        % (where, type(exc).__name__, exc), "\n".join(repro))
                if not re.search(rec.expect_error, str(exc)):
                    raise ClauseFailure("%s: error text does not match %r:\n  %s: %s"
                                        % (where, rec.expect_error, type(exc).__name__, exc), "\n".join(repro))
                continue
            raise ClauseFailure("%s: expected an error matching %r, but the statement succeeded"
                                % (where, rec.expect_error), "\n".join(repro))
        if rec.kind == "statement":
            repro.append("s.sql(%r).to_rows()" % rec.sql)
            try:
                _materialize(sql_fn(rec.sql))
            except ApiMissing:
                raise
            except Exception as exc:  # noqa: BLE001
                raise ClauseFailure("%s: statement failed: %s: %s" % (where, type(exc).__name__, exc),
                                    "\n".join(repro)) from exc
            continue
        # query with expected rows
        repro.append("print(s.sql(%r).to_rows())" % rec.sql)
        try:
            out = _materialize(sql_fn(rec.sql))
        except ApiMissing:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ClauseFailure("%s: query failed: %s: %s" % (where, type(exc).__name__, exc),
                                "\n".join(repro)) from exc
        problem = _check_query(rec, out)
        if problem:
            raise ClauseFailure("%s: %s" % (where, problem), "\n".join(repro + _expect_comment(rec, out)))


def _expect_comment(rec: Record, out) -> list[str]:
    lines = ["# expected (%s%s):" % (rec.sort, ", columns=" + ",".join(rec.columns) if rec.columns else "")]
    lines += ["#   " + e for e in rec.expected] or ["#   (no rows)"]
    try:
        actual = render_rows(out["rows"], rec.sort)
    except Exception:  # noqa: BLE001
        actual = [repr(out)]
    lines.append("# actual (schema %s):" % (out.get("schema") if isinstance(out, dict) else "?"))
    lines += ["#   " + a for a in actual] or ["#   (no rows)"]
    return lines


def _check_query(rec: Record, out) -> str | None:
    if not isinstance(out, dict) or list(out.keys()) != ["schema", "rows"]:
        return "to_rows() must return a dict with keys ['schema', 'rows'], got %r" % (
            list(out.keys()) if isinstance(out, dict) else type(out).__name__)
    schema, rows = out["schema"], out["rows"]
    if len(schema) != len(rec.types):
        return "expected %d output columns (%s), got %d: %r" % (len(rec.types), rec.types, len(schema), schema)
    if rec.columns is not None and list(schema) != rec.columns:
        return "expected output columns %r, got %r" % (rec.columns, list(schema))
    for r, row in enumerate(rows):
        if len(row) != len(rec.types):
            return "row %d has %d values, expected %d: %r" % (r, len(row), len(rec.types), row)
        for c, (letter, v) in enumerate(zip(rec.types, row)):
            if not check_type(letter, v):
                return "row %d column %r: expected %s, got %s %s" % (
                    r, schema[c], type_name(letter), type(v).__name__, render_value(v))
    actual = render_rows(rows, rec.sort)
    if actual != rec.expected:
        return "result differs (%d rows expected, %d returned)" % (len(rec.expected), len(actual))
    return None
