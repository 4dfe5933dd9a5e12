"""Apply a small filtered dimension's filter early: the inputs of a chain of inner joins that
are equi-joined (directly or through other key equalities) to a tiny filtered table are
semi-joined with it before the chain runs (a rewrite that does not change results).

TPC-H Q5 joins ``customer``, ``orders``, ``lineitem``, ``supplier``, ``nation`` and
``region`` in that order, with ``r_name = 'ASIA'``: the region filter keeps one region of
five, hence five nations of 25, but written last it prunes only at the last join, after the
orders of a whole year have been joined with their line items (about 900 thousand pairs at
scale factor 1) and with their suppliers. Joined as written, every customer whose nation is
not in Asia is carried through all of that and dropped at the end. Here the chain's key
equalities are grouped into classes of columns that must be equal in every output row
(``c_nationkey = s_nationkey`` and ``s_nationkey = n_nationkey`` put the three columns in one
class), and then:

* a *reducer* is an input of the chain that has a WHERE filter (or was itself reduced) and at
  most ``MAX_REDUCER_ROWS`` rows in its table (``region``, then ``nation``);
* each other input with a column in a class the reducer has a column in keeps only the rows
  whose value is among the reducer's (a semi join on that column pair: ``nation`` by
  ``region``; then ``customer`` and ``supplier`` by the reduced ``nation``);
* a reduced input small enough becomes a reducer in turn.

Why the result does not change, order included: a row dropped this way has a key value no row
of the reducer has, so every joined row it could be part of fails one of the chain's key
equalities and is not in the output; the semi join keeps the other rows in their order, and an
inner join's output order (left rows in order, each with its right matches in order) does not
depend on rows that match nothing. So the chain emits the same rows in the same order, and the
aggregate above it sums them in the same order.

When it applies: a tree of inner joins without a residual ON condition that could raise (with
fewer rows, an error such a condition raises on a dropped row would be hidden), on key pairs of
columns of one integer, date or timestamp type (for which equality is transitive); the
reducer's size is its source's row count (a table whose size is not known is not a reducer).
The reducer's subtree is planned and run once more, as the right side of each semi join.
"""
from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.types as pat

from . import logical as L
from .expr import Column
from .join_filters import _cannot_fail, _with_children, map_children

__all__ = ["reduce_by_small_dimensions", "MAX_REDUCER_ROWS"]

#: a filtered input of at most this many rows (in its table) reduces the inputs it is equi-joined to
MAX_REDUCER_ROWS = 512


def _chain_join(node: L.Node) -> bool:
    """True for a join this rewrite may look through (see the module text)."""
    return (isinstance(node, L.Join) and node.how == "inner" and node.null_aware == 0 and node.output is None
            and (node.residual is None or _cannot_fail(node.residual))
            and all(isinstance(k, Column) for k in list(node.left_keys) + list(node.right_keys)))


def _transitive_key(t: pa.DataType) -> bool:
    return pat.is_integer(t) or pat.is_date(t) or pat.is_timestamp(t)


def _flatten(node: L.Node, base: int, leaves: dict[int, L.Node], edges: list[tuple[int, int]]) -> None:
    """Collect the chain's inputs by the position of their first column (``leaves``) and its key
    equalities over those positions (``edges``)."""
    if not _chain_join(node):
        leaves[base] = node
        return
    nl = len(node.left.schema)
    _flatten(node.left, base, leaves, edges)
    _flatten(node.right, base + nl, leaves, edges)
    for lk, rk in zip(node.left_keys, node.right_keys):
        if lk.type.equals(rk.type) and _transitive_key(lk.type):
            edges.append((base + lk.index, base + nl + rk.index))


def _scan_under(node: L.Node) -> tuple[L.Scan | None, bool]:
    """(the Scan under an input made of Filters and Projects over one Scan, else None; whether
    a filter reads it)."""
    filtered = False
    while isinstance(node, (L.Filter, L.Project)):
        filtered = filtered or isinstance(node, L.Filter)
        node = node.input
    if not isinstance(node, L.Scan):
        return None, filtered
    return node, filtered or bool(node.filters)


def _small(node: L.Node) -> bool:
    """True when the table under ``node`` is known to have at most ``MAX_REDUCER_ROWS`` rows
    (asked only of the inputs that could reduce others: a source may read file footers)."""
    scan, _ = _scan_under(node)
    hint = getattr(scan.source, "num_rows_hint", None) if scan is not None else None
    rows = hint() if callable(hint) else None
    return rows is not None and rows <= MAX_REDUCER_ROWS


def _copy(node: L.Node) -> L.Node:
    """A copy of a plan tree with new node objects (each operator runs one node; the sources
    and expressions are shared, they are not changed)."""
    children = L.children(node)
    if not children:
        return dataclasses.replace(node)
    return _with_children(node, [_copy(c) for c in children])


def _classes(edges: list[tuple[int, int]]) -> dict[int, int]:
    """Column position -> the representative of its class of equal columns (union-find)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        parent[find(a)] = find(b)
    return {x: find(x) for x in list(parent)}


def _reduce_chain(root: L.Node) -> L.Node:
    """The chain of inner joins at ``root`` with its inputs reduced (and the chains inside its
    inputs, each on its own)."""
    found: dict[int, L.Node] = {}
    edges: list[tuple[int, int]] = []
    _flatten(root, 0, found, edges)
    leaves = {s: reduce_by_small_dimensions(leaf) for s, leaf in found.items()}
    reduced = dict(leaves)
    if len(leaves) >= 3 and edges:       # one join: its own probe already filters
        _semi_join_reducers(leaves, edges, reduced)
    if all(reduced[s] is found[s] for s in found):
        return root
    return _rebuild(root, 0, reduced)


def _semi_join_reducers(leaves: dict[int, L.Node], edges: list[tuple[int, int]], reduced: dict[int, L.Node]) -> None:
    """Replace in ``reduced`` each input the small filtered inputs reduce by its semi join
    with them (see the module text)."""
    starts = sorted(leaves)
    owner = {}                            # column position -> the start of its input
    for s in starts:
        for i in range(s, s + len(leaves[s].schema)):
            owner[i] = s
    cls = _classes(edges)
    members: dict[int, list[int]] = {}
    for col, rep in sorted(cls.items()):
        members.setdefault(rep, []).append(col)
    done = set()
    queue = [s for s in starts if _scan_under(leaves[s])[1] and _small(leaves[s])]
    done.update(queue)
    while queue:
        d = queue.pop(0)
        for rep, cols in members.items():
            mine = [c for c in cols if owner[c] == d]
            if not mine:
                continue
            for c in cols:
                e = owner[c]
                if e in done:
                    continue
                done.add(e)
                reducer = _copy(reduced[d])
                key_l = Column(type=reduced[e].schema.field(c - e).type, index=c - e,
                               name=reduced[e].schema.field(c - e).name)
                key_r = Column(type=reducer.schema.field(mine[0] - d).type, index=mine[0] - d,
                               name=reducer.schema.field(mine[0] - d).name)
                reduced[e] = L.Join(schema=reduced[e].schema, left=reduced[e], right=reducer, left_keys=[key_l],
                                    right_keys=[key_r], how="semi")
                if _small(leaves[e]):
                    queue.append(e)


def _rebuild(node: L.Node, base: int, reduced: dict[int, L.Node]) -> L.Node:
    if not _chain_join(node):
        return reduced[base]
    nl = len(node.left.schema)
    return dataclasses.replace(node, left=_rebuild(node.left, base, reduced),
                               right=_rebuild(node.right, base + nl, reduced))


def reduce_by_small_dimensions(node: L.Node) -> L.Node:
    """An equivalent plan where the inputs of each chain of inner joins equi-joined to a small
    filtered input are semi-joined with it first (a new tree; ``node`` is not changed)."""
    if _chain_join(node):
        return _reduce_chain(node)
    return map_children(node, reduce_by_small_dimensions)
