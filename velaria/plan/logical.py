"""Plan nodes. One tree serves as logical and physical plan: the executor walks it directly.

A small set of node kinds (STYLE.md: "keep the physical plan to a few node kinds"):

========== ===============================================================
Scan       read a :class:`~velaria.io.base.TableSource` (projection/filter pushdown)
OneRow     one row, no columns (``SELECT 1`` without FROM)
Filter     keep rows whose predicate is TRUE (three-valued logic)
Project    compute output columns from expressions
Aggregate  hash aggregate: group keys + aggregate calls
Sort       stable multi-key sort, optionally keeping only the first ``limit`` rows
Limit      OFFSET / LIMIT
Join       hash join (inner / left / right / full; CROSS is an inner join on no key), with
           an optional residual predicate over the joined row; the subquery kinds keep the
           left rows: semi / anti (matched / unmatched left rows), mark (left rows plus a
           boolean ``IN`` / ``EXISTS`` column) and single (left join that fails when a left
           row matches more than one right row)
Union      concatenate inputs (``distinct`` removes duplicate rows)
SetOp      INTERSECT / EXCEPT [ALL] of two inputs (a barrier)
Distinct   SELECT DISTINCT
Window     window functions: one appended column per ``WindowCall`` (a barrier)
HybridSearch  vector top-k over the input rows, appending ``vector_score``
KeywordSearch BM25 top-k over the input rows' text columns, appending ``keyword_score``
========== ===============================================================

Every node knows its output ``schema`` (names and Arrow types) at plan time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .expr import Expr

__all__ = ["Node", "Scan", "OneRow", "Filter", "Project", "Aggregate", "Sort", "Limit", "Join",
           "Union", "SetOp", "Distinct", "Window", "HybridSearch", "KeywordSearch", "children"]


@dataclass(eq=False)
class Node:
    schema: pa.Schema


@dataclass(eq=False)
class Scan(Node):
    source: Any = None            # TableSource
    table_name: str = ""
    columns: list | None = None    # names pushed down to the source (None = all)
    filters: list = field(default_factory=list)  # PushedFilter


@dataclass(eq=False)
class OneRow(Node):
    pass


@dataclass(eq=False)
class Filter(Node):
    input: Node = None  # type: ignore[assignment]
    predicate: Expr = None  # type: ignore[assignment]
    origin: str = "where"  # where | having


@dataclass(eq=False)
class Project(Node):
    input: Node = None  # type: ignore[assignment]
    exprs: list = field(default_factory=list)


@dataclass(eq=False)
class Aggregate(Node):
    input: Node = None  # type: ignore[assignment]
    keys: list = field(default_factory=list)        # list[Expr] over the input
    aggregates: list = field(default_factory=list)  # list[AggregateCall]
    rewrite: str = ""   # set by a plan rewrite that made this aggregate (named in explain)


@dataclass(eq=False)
class Sort(Node):
    input: Node = None  # type: ignore[assignment]
    keys: list = field(default_factory=list)        # list[Expr]
    descending: list = field(default_factory=list)  # list[bool]
    nulls_first: list = field(default_factory=list)  # list[bool]
    limit: int | None = None                        # top-N when set


@dataclass(eq=False)
class Limit(Node):
    input: Node = None  # type: ignore[assignment]
    limit: int | None = None
    offset: int = 0


@dataclass(eq=False)
class Join(Node):
    left: Node = None  # type: ignore[assignment]
    right: Node = None  # type: ignore[assignment]
    left_keys: list = field(default_factory=list)
    right_keys: list = field(default_factory=list)
    how: str = "inner"
    # ON conditions other than key equalities, over the left columns then the right ones:
    # a pair matches only when it is TRUE (outer joins pad the rows left without a match)
    residual: Expr | None = None
    # mark / anti joins of ``x [NOT] IN (subquery)``: the last ``null_aware`` key pairs
    # compare the IN operand, with SQL's NULL rule (no match and a NULL on either side of
    # a non-empty comparison gives NULL, so NOT IN keeps no such row)
    null_aware: int = 0
    # the positions (over the left columns then the right ones) the join emits, when the plan
    # above reads only some of them (set by the optimiser); None: every column
    output: tuple | None = None


#: join kinds of subqueries: their output is the left rows (mark appends one boolean
#: column, single the right columns), each decided by the left row and the whole right side
SUBQUERY_JOINS = ("semi", "anti", "mark", "single")


@dataclass(eq=False)
class Union(Node):
    inputs: list = field(default_factory=list)
    distinct: bool = False


@dataclass(eq=False)
class SetOp(Node):
    """``inputs[0] INTERSECT|EXCEPT [ALL] inputs[1]``: rows of the left input, in its order."""
    inputs: list = field(default_factory=list)
    kind: str = "intersect"   # intersect | except
    all: bool = False


@dataclass(eq=False)
class Distinct(Node):
    input: Node = None  # type: ignore[assignment]


@dataclass(eq=False)
class Window(Node):
    """The input columns, then one column per window function (``functions``: WindowCall
    expressions over the input), in input row order."""
    input: Node = None  # type: ignore[assignment]
    functions: list = field(default_factory=list)


@dataclass(eq=False)
class HybridSearch(Node):
    input: Node = None  # type: ignore[assignment]
    column: str = ""
    query_text: str = ""
    metric: str = "cosine"
    top_k: int = 10
    score_threshold: float | None = None


@dataclass(eq=False)
class KeywordSearch(Node):
    input: Node = None  # type: ignore[assignment]
    columns: tuple = ()
    query: str = ""
    top_k: int = 10
    tokenizer: str = "fallback"


def children(node: Node) -> list[Node]:
    """The input nodes of ``node``, left to right."""
    if isinstance(node, Join):
        return [node.left, node.right]
    if isinstance(node, (Union, SetOp)):
        return list(node.inputs)
    child = getattr(node, "input", None)
    return [child] if child is not None else []
