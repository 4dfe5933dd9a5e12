"""DDL and DML: CREATE [SOURCE|SINK] TABLE, INSERT INTO ... VALUES / SELECT, COPY ... TO.

Each statement runs when ``Session.sql`` is called and returns upstream's one-row result
``ok, message, affected_rows``.
"""
from __future__ import annotations

import copy

import pyarrow as pa
from pglast import ast

from ..catalog import CatalogEntry
from ..errors import (ExecutionError, SQLNotAvailableError, SQLSemanticError, SQLTableKindError,
                      SQLUnsupportedError, VelariaError)
from ..io.base import ArrowTableSource
from ..plan import types as T
from ..reference.functions import CAST_TARGETS
from .lower_expr import ExprLowerer, normalize_type_name
from .scope import Scope

__all__ = ["execute_create", "execute_insert", "execute_copy", "result_table", "PROVIDERS"]

from ..io.ddl import PROVIDERS  # noqa: E402  (the file kinds CREATE TABLE ... USING accepts)

#: declared SQL type -> Arrow storage type of an in-memory table column (the CAST targets)
_DECLARED = CAST_TARGETS


def result_table(message: str, affected: int) -> pa.Table:
    return pa.table({"ok": pa.array([1], pa.int64()), "message": pa.array([message]),
                     "affected_rows": pa.array([affected], pa.int64())})


def execute_create(session, parsed, offset) -> pa.Table:
    stmt: ast.CreateStmt = parsed.stmt
    ext = parsed.ext.create
    kind = ext.kind if ext is not None else "regular"
    provider = ext.provider if ext is not None else None
    options = dict(ext.options) if ext is not None else {}
    name = stmt.relation.relname
    if provider is not None and provider.strip().lower() not in PROVIDERS:
        raise SQLSemanticError("CREATE TABLE type/provider must be csv, line, or json",
                               hint=f"got USING {provider}; valid providers: {', '.join(PROVIDERS)}.",
                               byte_offset=getattr(ext, "provider_offset", None))
    if stmt.if_not_exists:
        raise SQLUnsupportedError("not supported in SQL v1: CREATE TABLE IF NOT EXISTS", byte_offset=offset(stmt))
    columns: list[tuple[str, str]] = []
    seen = set()
    for elt in stmt.tableElts or ():
        if not isinstance(elt, ast.ColumnDef):
            raise SQLUnsupportedError("not supported in SQL v1: table constraints in CREATE TABLE",
                                      byte_offset=offset(elt))
        if elt.colname in seen:
            raise SQLSemanticError(f"duplicate column: {elt.colname}", byte_offset=offset(elt))
        seen.add(elt.colname)
        columns.append((elt.colname, normalize_type_name(elt.typeName)))
    path = options.get("path")
    if "path" in options and not path:
        raise SQLSemanticError("CREATE TABLE missing option: path")
    if kind in ("source", "sink"):
        if path is not None:  # a stream source (CSV directory) or sink (CSV file)
            _check_external_access(session, f"CREATE {kind.upper()} TABLE {name}", path)
            session.context.create_stream_table(name, kind, provider, options, [c for c, _ in columns])
            return result_table(f"create {kind} table done", 0)
        if not columns:
            raise SQLSemanticError("CREATE TABLE requires at least one column")
        _register_empty(session, name, columns, kind)
        return result_table(f"create {kind} table done", 0)
    if path is None:
        if not columns:
            raise SQLSemanticError("CREATE TABLE requires at least one column",
                                   hint="CREATE TABLE t (id INT, name TEXT), or give OPTIONS(path: '...').",
                                   byte_offset=offset(stmt))
        _register_empty(session, name, columns, "batch")
        return result_table("create table done", 0)
    _check_external_access(session, f"CREATE TABLE {name}", path)
    try:
        from ..io import ddl
    except ImportError as exc:
        raise SQLNotAvailableError(f"file-backed tables are not available in this build: {exc}")
    if session.context.catalog.find(name) is not None:  # never replace a table's rows silently
        raise VelariaError(f"table already exists: {name}")
    source = ddl.create_table_source(provider.strip().lower() if provider else None, options,
                                     [c for c, _ in columns])
    session.context.catalog.register(CatalogEntry(name=name, kind="batch", source=source),
                              replace_batch=False)
    return result_table("create table done", 0)


def _check_external_access(session, what: str, path: str) -> None:
    if not session.context.external_access:
        raise SQLSemanticError(
            f"file access from SQL is disabled in this Session: {what} names the file {path!r}",
            hint="The application created the Session with enable_external_access=False; it "
                 "can read or write the file itself (Session.read_csv, DataFrame.write_csv ...).")


def _copy_options(stmt) -> dict[str, str | None]:
    out = {}
    for opt in stmt.options or ():
        arg = opt.arg
        value = None if arg is None else str(getattr(arg, "sval", None) or getattr(arg, "ival", arg))
        out[opt.defname.lower()] = value
    return out


def execute_copy(session, parsed, offset) -> pa.Table:
    """``COPY (query) TO 'path' [(FORMAT csv|parquet|json, HEADER [bool], DELIMITER 'c',
    COMPRESSION 'zstd')]`` or ``COPY table TO ...``: write the rows atomically. The format
    defaults to the path's extension, else csv."""
    from ..io.writers import WRITE_FORMATS, write_table
    from .run import frame_for

    stmt: ast.CopyStmt = parsed.stmt
    path = stmt.filename
    _check_external_access(session, "COPY ... TO", path)
    options = _copy_options(stmt)
    known = ("format", "header", "delimiter", "compression")
    for key in options:
        if key not in known:
            raise SQLSemanticError(f"COPY: unknown option {key!r}",
                                   hint=f"Options: {', '.join(known)}.", byte_offset=offset(stmt))
    ext = path.lower().rsplit(".", 1)[-1] if "." in path else ""
    default = {"parquet": "parquet", "json": "json", "jsonl": "json", "ndjson": "json"}.get(ext, "csv")
    fmt = (options.get("format") or default).lower()
    if fmt not in WRITE_FORMATS:
        raise SQLSemanticError(f"COPY: FORMAT must be one of {', '.join(WRITE_FORMATS)} (got {fmt})",
                               byte_offset=offset(stmt))
    header = options.get("header", "true")
    header = True if header is None else header.lower() in ("true", "1", "on", "yes")
    if stmt.query is not None:
        from .planner import plan_select
        plan = plan_select(session.context.catalog, parsed, offset, stmt.query)
    else:
        plan = session.context.catalog.lookup(stmt.relation.relname,
                                       byte_offset=offset(stmt.relation)).plan()
    table = frame_for(session, plan).to_arrow()
    kwargs = {"delimiter": options["delimiter"]} if options.get("delimiter") else {}
    if options.get("compression"):
        kwargs["compression"] = options["compression"].lower()
    rows = write_table(table, path, fmt, header=header, **kwargs)
    return result_table("copy done", rows)


def _register_empty(session, name, columns, kind):
    if session.context.catalog.find(name) is not None:
        raise VelariaError(f"table already exists: {name}")
    fields = []
    for col, typ in columns:
        if not col:
            raise SQLSemanticError("column name cannot be empty")
        if typ not in _DECLARED:
            raise SQLSemanticError(f"unsupported column type {typ} for column {col}",
                                   hint="Use INT, BIGINT, DOUBLE, REAL, TEXT/VARCHAR or BOOLEAN.")
        fields.append(pa.field(col, _DECLARED[typ]))
    schema = pa.schema(fields)
    table = pa.Table.from_batches([], schema=schema)
    session.context.catalog.register(CatalogEntry(name=name, kind="batch" if kind == "batch" else kind,
                                           source=ArrowTableSource(table),
                                           declared_types=dict(columns)), replace_batch=False)


def execute_insert(session, parsed, offset) -> pa.Table:
    stmt: ast.InsertStmt = parsed.stmt
    name = stmt.relation.relname
    entry = session.context.catalog.lookup(name, byte_offset=offset(stmt.relation))
    if entry.kind == "source":
        raise SQLTableKindError(f"table-kind constraint violation: INSERT INTO is not allowed on SOURCE TABLE: {name}",
                                byte_offset=offset(stmt.relation))
    if entry.kind == "sink":
        raise SQLTableKindError(f"table-kind constraint violation: batch INSERT INTO a SINK TABLE is not allowed: {name}",
                                hint="Write to sinks with Session.start_stream_sql.", byte_offset=offset(stmt.relation))
    from .catalog_statements import is_sql_view
    if is_sql_view(entry):
        raise SQLSemanticError(f"cannot INSERT INTO view {name}",
                               hint="Insert into the table the view reads, or CREATE TABLE ... AS SELECT a copy.",
                               byte_offset=offset(stmt.relation))
    if entry.source is not None and not isinstance(entry.source, ArrowTableSource):
        raise SQLUnsupportedError(f"not supported in SQL v1: INSERT INTO file-backed table {name}",
                                  hint="Copy it into an in-memory table first: CREATE TABLE copy (...); "
                                       "INSERT INTO copy SELECT * FROM " + name + ".")
    target_schema = entry.plan().schema
    target_names = target_schema.names
    if stmt.cols:
        cols = [c.name for c in stmt.cols]
        seen = set()
        for c, node in zip(cols, stmt.cols):
            if c in seen:
                raise SQLSemanticError(f"duplicate insert column: {c}", byte_offset=offset(node))
            seen.add(c)
            if c not in target_names:
                raise SQLSemanticError(f"column not found: {c}", hint=f"Columns of {name}: {', '.join(target_names)}.",
                                       byte_offset=offset(node))
    else:
        cols = list(target_names)
    select = stmt.selectStmt
    if select is not None and select.valuesLists:
        new = _values_table(select.valuesLists, cols, offset)
    else:
        from .planner import plan_select
        from .run import frame_for
        if stmt.withClause is not None:  # WITH x AS (...) INSERT INTO t SELECT ... FROM x
            inner = select.withClause.ctes if select.withClause is not None else ()
            select = copy.copy(select)
            select.withClause = ast.WithClause(ctes=tuple(stmt.withClause.ctes) + tuple(inner),
                                               recursive=False)
        plan = plan_select(session.context.catalog, parsed, offset, select)
        new = frame_for(session, plan).to_arrow()
        if new.num_columns != len(cols):
            raise SQLSemanticError("INSERT SELECT column count mismatch",
                                   hint=f"{name} expects {len(cols)} values ({', '.join(cols)}), the SELECT gives {new.num_columns}.")
    if new.num_rows == 0:
        return result_table("insert ignored: empty input", 0)
    # Build full-width columns in the target's order and types.
    arrays = []
    for f in target_schema:
        if f.name in cols:
            arr = new.column(cols.index(f.name)).combine_chunks()
            arrays.append(_coerce(arr, f, name))
        else:
            arrays.append(pa.nulls(new.num_rows, type=f.type))
    appended = pa.Table.from_arrays(arrays, schema=target_schema)
    old = session.context.materialized_table(name)
    combined = pa.concat_tables([old.cast(target_schema) if not old.schema.equals(target_schema) else old, appended])
    entry.source = ArrowTableSource(combined.combine_chunks())
    entry.frame = None
    return result_table("insert done", new.num_rows)


def _coerce(arr: pa.Array, field: pa.Field, table: str) -> pa.Array:
    if arr.type.equals(field.type):
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), type=field.type)
    if T.family(arr.type).equals(T.family(field.type)) or (T.is_numeric(arr.type) and T.is_numeric(field.type)):
        try:
            return arr.cast(field.type, safe=not T.is_floating(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ExecutionError(f"INSERT INTO {table}: cannot store {T.type_name(arr.type)} values in column "
                                 f"{field.name} ({T.type_name(field.type)}): {exc}") from exc
    raise SQLSemanticError(f"INSERT INTO {table}: column {field.name} is {T.type_name(field.type)} but the value is "
                           f"{T.type_name(arr.type)}", hint=f"CAST the value, e.g. CAST(x AS {T.type_name(field.type)}).")


def _values_table(values_lists, cols, offset) -> pa.Table:
    lowerer = ExprLowerer(Scope([]), offset, clause="VALUES")
    exprs_per_row = []
    for row in values_lists:
        if len(row) != len(cols):
            raise SQLSemanticError("INSERT VALUES column count mismatch",
                                   hint=f"expected {len(cols)} values ({', '.join(cols)}), got {len(row)}.",
                                   byte_offset=offset(row[0]) if row else None)
        exprs_per_row.append([lowerer.lower(v) for v in row])
    from ..reference.expressions import evaluate
    from ..reference.functions import EvalContext
    clock = EvalContext.current()
    columns: list[list] = [[] for _ in cols]
    types: list[list] = [[] for _ in cols]
    for exprs in exprs_per_row:
        for i, e in enumerate(exprs):
            columns[i].append(evaluate(e, [], 1, clock)[0])  # constants: no input columns
            types[i].append(e.type)
    arrays = []
    for i, c in enumerate(cols):
        try:
            t = T.common_type(types[i], f"VALUES for column {c}")
        except TypeError as exc:
            raise SQLSemanticError(str(exc), hint="CAST the values to one type.")
        arrays.append(pa.array(columns[i], type=t if not T.is_null(t) else pa.null()))
    return pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(cols))])
