"""Reader and runner for the sqllogictest-style clause files in ``slt/``.

A file is a sequence of records separated by blank lines. ``#`` lines are comments, except:

``# clause: <id> <title>``
    starts a new clause; every record up to the next clause header belongs to it.
``# diverges: <row id>[,<row id>]``
    (inside a clause) the clause relies on a deliberate divergence from native Velaria, the
    named docs/divergences.md row(s). At least one record of the clause must then carry
    native's documented behaviour as a ``---- native`` block (below).
``# extension: <row id>``
    (inside a clause) the clause checks a capability native Velaria lacks: a target that
    rejects the SQL (raises) reports ``extension``; a wrong answer still fails.

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
    separated by one space). ``<types>`` has one letter per output column (``I R T B V D ?``)
    and is checked against each value's type; ``columns=`` also pins the output names.
    The default sort mode is ``nosort``.

``---- native <types> [sort]`` / ``---- native error [<regex>]``
    (after a record's expected rows, or after the SQL of a ``statement``/``query error``)
    what native Velaria is documented to return instead: rows (same rendering rules) or an
    error. A target that misses the contract but matches this reports ``diverges-by-design``;
    one that matches neither fails::

        query IR nosort
        SELECT SUM(x), SUM(y) FROM t
        ----
        120 3.5
        ---- native RR nosort
        120.0 3.5
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import Clause, ClauseFailure, Context, NativeBehaviour, NotSupported
from .render import SORT_MODES, check_type, render_rows, render_value, type_name

__all__ = ["Record", "NativeExpect", "parse", "load_file", "ARROW_TYPES", "SltSyntaxError"]


def _arrow_types():
    import pyarrow as pa

    return {
        "int64": pa.int64(), "int32": pa.int32(), "float64": pa.float64(), "float32": pa.float32(),
        "string": pa.string(), "large_string": pa.large_string(), "bool": pa.bool_(),
    }


ARROW_TYPES = ("int64", "int32", "float64", "float32", "string", "large_string", "bool", "vector<N>")


@dataclass
class NativeExpect:
    """What native Velaria is documented to answer for one record: an error or rows."""

    error: str | None = None    # regex an error's text must match ("" matches any error)
    types: str = ""
    sort: str = "nosort"
    expected: list[str] = field(default_factory=list)
    columns: list[str] | None = None

    def describe(self) -> str:
        if self.error is not None:
            return "native raises an error" + (" matching %r" % self.error if self.error else "")
        return "native returns (%s, %s): %s" % (self.types, self.sort, " | ".join(self.expected) or "no rows")


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
    native: NativeExpect | None = None


@dataclass
class _RawClause:
    id: str
    title: str
    line: int
    diverges: str | None = None
    extension: str | None = None
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
                m = re.match(r"#\s*(diverges|extension):\s*(.*)$", s)
                if m:
                    if not clauses:
                        err("'# %s:' outside a clause" % m.group(1), i)
                    if not re.fullmatch(r"[a-z0-9-]+(,[a-z0-9-]+)*", m.group(2).strip()):
                        err("'# %s:' takes docs/divergences.md row ids (a-z, 0-9, -), got %r"
                            % (m.group(1), m.group(2)), i)
                    setattr(clauses[-1], m.group(1), m.group(2).strip())
            i += 1
            continue
        target = clauses[-1].records if clauses else setup
        head = s.split()
        body, nxt = block(i + 1)
        body = [b for b in body if not b.lstrip().startswith("#")]
        native = None
        marks = [k for k, b in enumerate(body) if b.strip().startswith("---- native")]
        if marks:
            if head[0] == "arrow":
                err("an arrow record cannot have a '---- native' block", i)
            native = _parse_native(body[marks[0]], body[marks[0] + 1:], lambda msg: err(msg, i))
            body = body[:marks[0]]
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
            rec = Record("statement", i + 1, sql="\n".join(body), native=native)
            if head[1] == "error":
                rec.expect_error = s.split(None, 2)[2] if len(head) > 2 else ""
            target.append(rec)
        elif head[0] == "query":
            if len(head) < 2:
                err("expected 'query <types> [sort] [columns=...]' or 'query error <regex>'", i)
            if head[1] == "error":
                if not body:
                    err("query without SQL", i)
                target.append(Record("query", i + 1, sql="\n".join(body), native=native,
                                     expect_error=s.split(None, 2)[2] if len(head) > 2 else ""))
            else:
                rec = Record("query", i + 1, types=head[1], native=native)
                for bad in set(rec.types) - set("IRTBVD?"):
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
    for c in clauses:
        has_native = any(r.native is not None for r in c.records)
        if c.diverges and c.extension:
            raise SltSyntaxError("%s:%d: clause %s is either a divergence or an extension, not both" % (name, c.line, c.id))
        if c.diverges and not has_native:
            raise SltSyntaxError("%s:%d: clause %s has '# diverges:' but no '---- native' block saying what native "
                                 "does" % (name, c.line, c.id))
        if has_native and not c.diverges:
            raise SltSyntaxError("%s:%d: clause %s has a '---- native' block but no '# diverges:' row"
                                 % (name, c.line, c.id))
    return setup, clauses


def _parse_native(header: str, rows: list[str], err) -> NativeExpect:
    """Parse a ``---- native <types> [sort] [columns=...]`` / ``---- native error [<regex>]`` block."""
    rest = header.strip()[len("---- native"):].strip()
    if rest.split(None, 1)[:1] == ["error"]:
        if rows:
            err("'---- native error' takes no rows")
        return NativeExpect(error=rest[len("error"):].strip())
    toks = rest.split()
    if not toks:
        err("'---- native' needs column types or 'error'")
    ne = NativeExpect(types=toks[0], expected=[r.strip() for r in rows])
    for bad in set(ne.types) - set("IRTBVD?"):
        err("unknown column type letter %r in '---- native'" % bad)
    for opt in toks[1:]:
        if opt in SORT_MODES:
            ne.sort = opt
        elif opt.startswith("columns="):
            ne.columns = opt[len("columns="):].split(",")
        else:
            err("unknown option %r in '---- native'" % opt)
    return ne


def load_file(path: Path) -> list[Clause]:
    """Parse one ``.slt`` file into registered-ready :class:`Clause` objects."""
    path = Path(path)
    setup, raw = parse(path.read_text(encoding="utf-8"), path.name)
    out = []
    for rc in raw:
        origin = "%s:%d" % (path.name, rc.line)

        def run(ctx: Context, _setup=setup, _records=rc.records, _origin=origin):
            _run_records(ctx, _setup + _records, _origin)

        out.append(Clause(id=rc.id, title=rc.title, run=run, diverges=rc.diverges, extension=rc.extension,
                          origin=origin))
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
        raise NotSupported("DataFrame.to_rows")
    return to_rows()


def _execute(sql_fn, sql: str):
    """Run one statement and force it; return (result, None) or (None, the exception raised)."""
    try:
        return _materialize(sql_fn(sql)), None
    except NotSupported:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the target raised is compared below
        return None, exc


def _contract_problem(rec: Record, out, exc) -> tuple[str | None, bool]:
    """What is wrong with (out, exc) against the record's contract expectation, and whether the
    problem is that the target raised (None when it conforms)."""
    if rec.expect_error is not None:
        if exc is None:
            return "expected an error matching %r, but the statement succeeded" % rec.expect_error, False
        if not isinstance(exc, RuntimeError):
            return "expected a RuntimeError (subclass), got %s: %s" % (type(exc).__name__, exc), True
        if not re.search(rec.expect_error, str(exc)):
            return "error text does not match %r:\n  %s: %s" % (rec.expect_error, type(exc).__name__, exc), True
        return None, False
    if exc is not None:
        what = "statement" if rec.kind == "statement" else "query"
        return "%s failed: %s: %s" % (what, type(exc).__name__, exc), True
    if rec.kind == "statement":
        return None, False
    return _check_query(rec, out), False


def _native_matches(ne: NativeExpect, out, exc) -> bool:
    if ne.error is not None:
        return isinstance(exc, RuntimeError) and (not ne.error or re.search(ne.error, str(exc)) is not None)
    if exc is not None:
        return False
    shim = Record("query", 0, types=ne.types, sort=ne.sort, columns=ne.columns, expected=ne.expected)
    return _check_query(shim, out) is None


def _run_records(ctx: Context, records: list[Record], origin: str) -> None:
    """Run a clause's records in one fresh Session; raise on the first record that misses both the
    contract and (where given) native's documented behaviour; raise :class:`NativeBehaviour` at
    the end when some record matched only native's behaviour."""
    s = ctx.session()
    repro = ["import pyarrow as pa", "import %s as target" % ctx.target_name, "s = %s" % ctx.session_expr()]
    referenced = set(re.findall(r"\w+", " ".join(r.sql for r in records)))
    native_seen: list[str] = []
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
        elif rec.kind == "statement":
            repro.append("s.sql(%r).to_rows()" % rec.sql)
        else:
            repro.append("print(s.sql(%r).to_rows())" % rec.sql)
        out, exc = _execute(sql_fn, rec.sql)
        problem, raised = _contract_problem(rec, out, exc)
        if problem is None:
            continue
        if rec.native is not None and _native_matches(rec.native, out, exc):
            native_seen.append("%s: %s" % (where, rec.native.describe()))
            continue
        tail = _expect_comment(rec, out) if (rec.kind == "query" and rec.expect_error is None and exc is None) else []
        if rec.native is not None:
            problem += "\n(native's documented behaviour does not match either: %s)" % rec.native.describe()
        raise ClauseFailure("%s: %s" % (where, problem), "\n".join(repro + tail), raised=raised)
    if native_seen:
        raise NativeBehaviour("the target shows native Velaria's documented behaviour: " + "; ".join(native_seen),
                              "\n".join(repro))


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
