"""The typed expression IR shared by the planner, the executor and the kernels.

Every node carries its Arrow result ``type`` (decided at plan time, so the output schema of a
query is known before any row is read). Column references are resolved to an input position.

Operator and function names used in :class:`Call` (all lower case):

* arithmetic: ``+ - * / %`` (binary) and ``neg`` (unary minus)
* comparison: ``= != < <= > >=`` (result bool, NULL if either side is NULL)
* logic (three-valued): ``and``, ``or``, ``not``
* ``is_null``, ``is_not_null`` (never NULL)
* ``like`` (``%`` any run, ``_`` one character; NULL in, NULL out)
* ``concat_op`` for the ``||`` operator
* every scalar builtin of Velaria SQL by its canonical lower-case name
  (``lower``, ``substr``, ``year``, ...)

``Case``, ``Cast`` and ``InList`` have nodes of their own; ``BETWEEN`` is lowered to
``and(>=, <=)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from .types import is_temporal, type_name

__all__ = ["Expr", "Column", "Literal", "Call", "Case", "Cast", "InList", "AggregateCall",
           "WindowFrame", "WindowCall", "Subquery", "OuterColumn", "walk", "conjuncts", "render"]


@dataclass(frozen=True, eq=False)
class Expr:
    """Base of the IR. ``type`` is the Arrow type of the value the node produces."""

    type: pa.DataType


@dataclass(frozen=True, eq=False)
class Column(Expr):
    """The input column at position ``index`` (``name`` is for explain and errors)."""

    index: int = 0
    name: str = ""


@dataclass(frozen=True, eq=False)
class Literal(Expr):
    """A constant. ``value`` is a Python value (None for NULL)."""

    value: Any = None


@dataclass(frozen=True, eq=False)
class Call(Expr):
    """An operator or scalar function applied to ``args``."""

    name: str = ""
    args: tuple = ()


@dataclass(frozen=True, eq=False)
class Case(Expr):
    """``CASE WHEN c1 THEN v1 ... ELSE e END``; ``else_`` None means ELSE NULL.

    A searched CASE; a simple CASE (``CASE x WHEN a ...``) is lowered to ``x = a`` conditions.
    Only conditions that are TRUE select their branch (NULL counts as not true).
    """

    whens: tuple = ()  # tuple[tuple[Expr, Expr], ...]
    else_: Expr | None = None


@dataclass(frozen=True, eq=False)
class Cast(Expr):
    """``CAST(arg AS target)``; ``target`` is the normalised name: STRING, INT, DOUBLE,
    FLOAT, BOOL."""

    arg: Expr = None  # type: ignore[assignment]
    target: str = "STRING"


@dataclass(frozen=True, eq=False)
class InList(Expr):
    """``arg [NOT] IN (items...)`` with SQL NULL rules (NULL if no match and a NULL is present)."""

    arg: Expr = None  # type: ignore[assignment]
    items: tuple = ()
    negated: bool = False


@dataclass(frozen=True, eq=False)
class AggregateCall(Expr):
    """An aggregate: ``func`` is one of ``reference.aggregate.AGGREGATE_FUNCTIONS``; ``arg`` None
    means ``COUNT(*)``. ``param`` holds the constant options of the aggregates that take them:
    the fraction of ``quantile_cont``, ``(separator, order)`` of ``string_agg`` (order None,
    ``"asc"`` or ``"desc"``: the values sorted before joining)."""

    func: str = "count"
    arg: Expr | None = None
    distinct: bool = False
    param: Any = None


@dataclass(frozen=True)
class WindowFrame:
    """The frame of a window aggregate: ``mode`` is ``rows`` or ``range``; each bound is a
    ``(kind, offset)`` pair with kind ``unbounded`` (UNBOUNDED PRECEDING for the start,
    UNBOUNDED FOLLOWING for the end), ``preceding``, ``current`` or ``following``; the offset
    is a non-negative number for ``preceding`` / ``following`` and None otherwise."""

    mode: str = "range"
    start: tuple = ("unbounded", None)
    end: tuple = ("current", None)

    def render(self) -> str:
        def bound(b, side):
            kind, n = b
            if kind == "unbounded":
                return "UNBOUNDED " + ("PRECEDING" if side == "start" else "FOLLOWING")
            if kind == "current":
                return "CURRENT ROW"
            return f"{n!r} {kind.upper()}"
        return f"{self.mode.upper()} BETWEEN {bound(self.start, 'start')} AND {bound(self.end, 'end')}"


@dataclass(frozen=True, eq=False)
class WindowCall(Expr):
    """``func(args) OVER (PARTITION BY partition ORDER BY order frame)``.

    ``func`` is a ranking / offset function (row_number, rank, dense_rank, ntile, lag, lead,
    first_value, last_value) or an aggregate (sum, count, avg, min, max; ``args`` empty for
    ``COUNT(*)``). ``param`` is NTILE's bucket count or LAG / LEAD's offset. The planner
    replaces every WindowCall by a column of a Window plan node; it is never evaluated as an
    expression.
    """

    func: str = ""
    args: tuple = ()
    partition: tuple = ()
    order: tuple = ()
    descending: tuple = ()
    nulls_first: tuple = ()
    frame: WindowFrame = WindowFrame()
    param: int | None = None

    def children(self) -> tuple:
        return tuple(self.args) + tuple(self.partition) + tuple(self.order)


@dataclass(frozen=True, eq=False)
class Subquery(Expr):
    """A subquery inside an expression, before the planner turns it into a join.

    ``kind`` is ``scalar`` (its one value, NULL when it returns no row), ``exists`` or ``in``
    (``arg IN (subquery)``). ``plan`` is the subquery's plan: its value column, then one
    column per correlation key. ``outer_keys`` are the matching expressions over the outer
    query's input: a correlated subquery sees only the inner rows whose keys equal the outer
    row's. ``default`` is the value of a correlated scalar aggregate over no rows (``COUNT``
    gives 0), used where no inner row matches. The planner replaces every Subquery by a
    column of a semi / anti / mark / single join; it is never evaluated as an expression.
    """

    kind: str = "scalar"
    plan: Any = None
    arg: Expr | None = None
    outer_keys: tuple = ()
    default: Expr | None = None
    text: str = ""

    def children(self) -> tuple:
        return ((self.arg,) if self.arg is not None else ()) + tuple(self.outer_keys)


@dataclass(frozen=True, eq=False)
class OuterColumn(Expr):
    """A correlated reference: column ``index`` of the enclosing query's input, seen from a
    subquery's WHERE. The planner turns ``inner = outer`` conjuncts into join keys and
    rejects every other use."""

    index: int = 0
    name: str = ""


def walk(expr: Expr):
    """Yield ``expr`` and every node below it, depth first."""
    yield expr
    if isinstance(expr, Call):
        for a in expr.args:
            yield from walk(a)
    elif isinstance(expr, Case):
        for c, v in expr.whens:
            yield from walk(c)
            yield from walk(v)
        if expr.else_ is not None:
            yield from walk(expr.else_)
    elif isinstance(expr, Cast):
        yield from walk(expr.arg)
    elif isinstance(expr, InList):
        yield from walk(expr.arg)
        for i in expr.items:
            yield from walk(i)
    elif isinstance(expr, AggregateCall) and expr.arg is not None:
        yield from walk(expr.arg)
    elif isinstance(expr, (WindowCall, Subquery)):
        for c in expr.children():
            yield from walk(c)


def conjuncts(expr: Expr) -> list[Expr]:
    """The operands of ``expr``'s nested ANDs in order (``expr`` itself when it is not an
    AND); iterative, since a generated WHERE may chain hundreds of them."""
    out, todo = [], [expr]
    while todo:
        e = todo.pop()
        if isinstance(e, Call) and e.name == "and":
            todo.extend(reversed(e.args))
        else:
            out.append(e)
    return out


_INFIX = {"+", "-", "*", "/", "%", "=", "!=", "<", "<=", ">", ">=", "and", "or", "like", "concat_op"}


def render(expr: Expr) -> str:
    """A compact SQL-like text of ``expr`` for explain output. Two expressions that compute
    different values must never render alike: the planner also uses this text as their
    identity (GROUP BY keys, shared aggregates and window functions)."""
    if isinstance(expr, Column):
        return f"{expr.name}#{expr.index}"
    if isinstance(expr, Literal):
        if expr.value is not None and is_temporal(expr.type):
            from velaria.reference.functions import to_string
            return f"{type_name(expr.type)} '{to_string(expr.value)}'"
        return "NULL" if expr.value is None else repr(expr.value)
    if isinstance(expr, Call):
        if expr.name in _INFIX and len(expr.args) == 2:
            op = "||" if expr.name == "concat_op" else expr.name.upper() if expr.name.isalpha() else expr.name
            return f"({render(expr.args[0])} {op} {render(expr.args[1])})"
        if expr.name == "not":
            return f"NOT {render(expr.args[0])}"
        if expr.name == "neg":
            return f"-{render(expr.args[0])}"
        if expr.name in ("is_null", "is_not_null"):
            return f"{render(expr.args[0])} IS {'NOT ' if expr.name == 'is_not_null' else ''}NULL"
        return f"{expr.name}({', '.join(render(a) for a in expr.args)})"
    if isinstance(expr, Case):
        body = " ".join(f"WHEN {render(c)} THEN {render(v)}" for c, v in expr.whens)
        tail = f" ELSE {render(expr.else_)}" if expr.else_ is not None else ""
        return f"CASE {body}{tail} END"
    if isinstance(expr, Cast):
        # a DECIMAL's precision and scale live in the type: name them, since the planner
        # matches GROUP BY keys and merges aggregates by this text
        target = type_name(expr.type) if expr.target == "DECIMAL" else expr.target
        return f"CAST({render(expr.arg)} AS {target})"
    if isinstance(expr, InList):
        items = ", ".join(render(i) for i in expr.items)
        return f"{render(expr.arg)} {'NOT ' if expr.negated else ''}IN ({items})"
    if isinstance(expr, AggregateCall):
        inner = "*" if expr.arg is None else render(expr.arg)
        if expr.param is not None:      # the options tell apart QUANTILE_CONT(x, 0.25) and (x, 0.5)
            inner += f", {expr.param!r}"
        return f"{expr.func}({'DISTINCT ' if expr.distinct else ''}{inner})"
    if isinstance(expr, WindowCall):
        return window_text(expr)
    if isinstance(expr, Subquery):
        keys = f" ON {', '.join(render(k) for k in expr.outer_keys)}" if expr.outer_keys else ""
        if expr.kind == "in":
            return f"{render(expr.arg)} IN (subquery {expr.text}{keys})"
        return f"{'EXISTS ' if expr.kind == 'exists' else ''}(subquery {expr.text}{keys})"
    if isinstance(expr, OuterColumn):
        return f"outer.{expr.name}#{expr.index}"
    return repr(expr)


def window_text(call: WindowCall) -> str:
    """``func(args) OVER (PARTITION BY ... ORDER BY ... frame)`` for explain."""
    texts = [render(a) for a in call.args]
    if call.param is not None:      # NTILE's buckets; LAG / LEAD's offset comes second
        texts.insert(1 if call.args else 0, str(call.param))
    args = ", ".join(texts) or ("*" if call.func == "count" else "")
    parts = []
    if call.partition:
        parts.append("PARTITION BY " + ", ".join(render(p) for p in call.partition))
    if call.order:
        # NULLS FIRST / LAST only where it differs from the direction's default (NULLs last
        # ascending, first descending): the planner merges window functions of equal text, so
        # two orders that place NULLs differently must not read alike
        nulls = call.nulls_first or call.descending
        parts.append("ORDER BY " + ", ".join(
            render(o) + (" DESC" if d else "") + ("" if nf == d else (" NULLS FIRST" if nf else " NULLS LAST"))
            for o, d, nf in zip(call.order, call.descending, nulls)))
    parts.append(call.frame.render())
    return f"{call.func}({args}) OVER ({' '.join(parts)})"
