"""GROUP BY keys that a joined table's unique key determines, fetched after the LIMIT.

TPC-H Q10 groups by seven customer and nation columns, ``c_custkey, c_name, c_acctbal,
c_phone, n_name, c_address, c_comment``, then keeps the 20 groups of highest revenue. Every
joined row carries exactly one customer row (``customer`` is joined on ``c_custkey``, which is
unique in the table), so ``c_name`` ... ``c_comment`` are functions of ``c_custkey``, and
``n_name`` is a function of that row's ``c_nationkey`` (``nation`` is joined on its unique
``n_nationkey``). Grouping by ``c_custkey`` alone forms the same groups, in the same order
(first appearance), with the same aggregate values (each group's rows in the same order).
The other keys need not travel through the joins nor be numbered by the aggregate: they are
fetched for the rows the LIMIT keeps by joining those rows with the tables again:

    Limit(Sort(Project(Aggregate(k, d1, d2; aggs))))
        ==>  Project(Join(Limit(Sort(Project'(Aggregate(k; aggs)))), T on T.id = k))

The fetching join (left: the kept rows, right: the whole table, inner, on the table's unique
key) emits each left row once, with the one table row of its key, in the left rows' order, so
the result is the same rows in the same order.

When the rewrite fires (anything else keeps the general plan):

* the aggregate's input is a tree of scans, filters and inner joins (semi and anti joins too);
* a dropped key is a bare column of a scan ``T`` of an in-memory table, and ``T``'s rows are
  identified: ``T`` has an integer or date column, unique and without NULL in the table
  (checked on the data, once per table), that the kept keys determine -- it is a kept key, or
  equal to one through the key equalities of inner joins (pairs of columns of one integer or
  date type, where equal values are the same value), or a column of a table identified in
  turn (``c_nationkey`` of the identified customer row identifies the nation row);
* between the aggregate and the LIMIT (or a top-N ORDER BY) there are only projections,
  HAVING filters and ORDER BY; a key one of them reads other than to pass it on as it is
  stays in the aggregate (TPC-H Q3 orders by ``o_orderdate``, which its ``l_orderkey``
  determines: fetching it for every group would cost more than it saves);
* at least one dropped key is text (or binary): a fixed-width key costs about as much to
  carry through the joins and number as the fetching join's probe of the table, and TPC-H Q3's
  ``o_shippriority`` is left in the aggregate for that reason.

Uniqueness is checked only for a column that would identify a table some dropped key comes
from, after the shape above has been found, and remembered per Arrow table.
"""
from __future__ import annotations

import dataclasses
import weakref

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from ..io.base import ArrowTableSource
from . import logical as L
from .expr import Column, walk
from .join_filters import map_children
from .optimize import column_refs, remap

__all__ = ["fetch_determined_keys_late", "REWRITE", "column_is_unique"]

#: the rewritten aggregate's tag in explain
REWRITE = "determined-keys-fetched-late"

#: per in-memory Arrow table (by id, dropped with the table): column name -> unique and without
#: NULL. Tables are immutable (INSERT gives a view a new table), and a view's every query gets a
#: fresh source over the same table, so the table is the key.
_UNIQUE: dict[int, dict[str, bool]] = {}


def _id_type(t: pa.DataType) -> bool:
    return pat.is_integer(t) or pat.is_date(t)


def column_is_unique(source, name: str) -> bool:
    """Whether column ``name`` of the in-memory table behind ``source`` has no NULL and no
    value twice (False when the source is not an in-memory table)."""
    if not isinstance(source, ArrowTableSource) or name not in source.table.schema.names:
        return False
    table = source.table
    known = _UNIQUE.get(id(table))
    if known is None:
        known = _UNIQUE[id(table)] = {}
        weakref.finalize(table, _UNIQUE.pop, id(table), None)
    if name not in known:
        known[name] = _unique(table.column(name))
    return known[name]


def _unique(col: pa.ChunkedArray) -> bool:
    if col.null_count:
        return False
    n = len(col)
    if n < 2:
        return True
    values = col.combine_chunks()
    if pat.is_date(values.type):
        values = values.view(pa.int32() if pat.is_date32(values.type) else pa.int64())
    arr = values.to_numpy(zero_copy_only=False)
    if bool(np.all(arr[1:] > arr[:-1])):           # keys are often stored in order
        return True
    return pc.count_distinct(values).as_py() == n


@dataclasses.dataclass
class _Input:
    """What the aggregate's input tree tells: per output column its scan occurrence and column
    there, and the column equalities its inner joins guarantee."""
    origins: list          # per column: (scan offset, column index in the scan) or None
    scans: dict            # scan offset -> Scan node
    equal: list            # (position, position) pairs equal in every row


def _describe(node: L.Node, offset: int, out: _Input) -> bool:
    """Fill ``out`` for ``node``'s columns starting at ``offset``; False for a shape the rewrite
    does not follow."""
    if isinstance(node, L.Scan):
        out.scans[offset] = node
        out.origins.extend((offset, i) for i in range(len(node.schema)))
        return True
    if isinstance(node, L.Filter):
        return _describe(node.input, offset, out)
    if isinstance(node, L.Join):
        if node.how in ("semi", "anti"):            # the left rows, some of them
            return _describe(node.left, offset, out)
        if node.how != "inner" or node.output is not None:
            return False
        nl = len(node.left.schema)
        if not (_describe(node.left, offset, out) and _describe(node.right, offset + nl, out)):
            return False
        for lk, rk in zip(node.left_keys, node.right_keys):
            if isinstance(lk, Column) and isinstance(rk, Column) and lk.type == rk.type and _id_type(lk.type):
                out.equal.append((offset + lk.index, offset + nl + rk.index))
        return True
    return False


class _Classes:
    """Columns of the aggregate input grouped by the equalities (union-find)."""

    def __init__(self, width: int, equal: list):
        self.parent = list(range(width))
        for a, b in equal:
            self.parent[self.find(a)] = self.find(b)

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i


@dataclasses.dataclass
class _Fetch:
    """One fetching join: the scan at ``offset`` joined on its column ``id_col`` to the column of
    class ``cls`` (a kept key or a column an earlier fetch brought)."""
    offset: int
    id_col: int
    cls: int


class _Determination:
    def __init__(self, agg: L.Aggregate, info: _Input):
        self.info = info
        self.classes = _Classes(len(info.origins), info.equal)
        self.key_pos = [k.index if isinstance(k, Column) else None for k in agg.keys]
        # per scan occurrence: its group-key columns (the scans worth identifying)
        self.keyed: dict[int, set[int]] = {}
        for p in self.key_pos:
            if p is not None and info.origins[p] is not None:
                self.keyed.setdefault(info.origins[p][0], set()).add(p)

    def _id_column(self, offset: int, known: set[int]) -> int | None:
        """The position of a column of the scan that identifies its rows (unique, without
        NULL in the table) and whose class is known, or None. Uniqueness is checked only for
        such columns: the check reads the table once."""
        scan = self.info.scans[offset]
        for i, f in enumerate(scan.schema):
            if self.classes.find(offset + i) in known and _id_type(f.type) \
                    and column_is_unique(scan.source, f.name):
                return offset + i
        return None

    def closure(self, kept: list[int]) -> tuple[set[int], list[_Fetch]]:
        """The classes the kept key positions determine, and the fetches that bring them."""
        known = {self.classes.find(p) for p in kept}
        fetches: list[_Fetch] = []
        done: set[int] = set()
        changed = True
        while changed:
            changed = False
            for offset, keys in self.keyed.items():
                if offset in done or all(self.classes.find(p) in known for p in keys):
                    continue
                idp = self._id_column(offset, known)
                if idp is not None:
                    fetches.append(_Fetch(offset, idp - offset, self.classes.find(idp)))
                    width = len(self.info.scans[offset].schema)
                    known |= {self.classes.find(offset + i) for i in range(width)}
                    done.add(offset)
                    changed = True
        return known, fetches


def _blocked(chain: list[L.Node], agg: L.Aggregate) -> set[int] | None:
    """The group keys that the nodes from the aggregate up to the first LIMIT (or top-N ORDER
    BY) read other than to pass them on as they are: those must stay in the aggregate. None when
    no such bound is reached through projections, HAVING filters and ORDER BY."""
    origin: list = list(range(len(agg.keys))) + [None] * len(agg.aggregates)   # column -> key index
    blocked: set[int] = set()

    def read(exprs):
        blocked.update(origin[c] for c in column_refs(exprs) if origin[c] is not None)

    for node in chain:
        if isinstance(node, L.Project):
            read([e for e in node.exprs if not isinstance(e, Column)])
            origin = [origin[e.index] if isinstance(e, Column) else None for e in node.exprs]
        elif isinstance(node, L.Sort):
            read(node.keys)
            if node.limit is not None:
                return blocked
        elif isinstance(node, L.Filter) and node.origin == "having":
            read([node.predicate])
        elif isinstance(node, L.Limit):
            if node.limit is not None:
                return blocked
        else:
            return None
    return None


def _variable_width(t: pa.DataType) -> bool:
    return pat.is_string(t) or pat.is_large_string(t) or pat.is_binary(t) or pat.is_large_binary(t)


def _plan_drops(agg: L.Aggregate, info: _Input, blocked: set[int]):
    """(kept key indices, dropped key indices, fetches), or None when no key can be dropped
    (keys in ``blocked`` are never dropped)."""
    det = _Determination(agg, info)
    kept = [i for i, p in enumerate(det.key_pos)]
    for i in reversed(range(len(agg.keys))):
        p = det.key_pos[i]
        if p is None or info.origins[p] is None or i in blocked:
            continue
        others = [det.key_pos[j] for j in kept if j != i and det.key_pos[j] is not None]
        if det.classes.find(p) in det.closure(others)[0]:
            kept.remove(i)
    dropped = [i for i in range(len(agg.keys)) if i not in kept]
    if not any(_variable_width(agg.keys[i].type) for i in dropped):
        # a fixed-width key costs about as much to carry and number as the fetching join's
        # probe of the whole table: only text keys pay for it
        return None
    _, fetches = det.closure([det.key_pos[j] for j in kept if det.key_pos[j] is not None])
    # every fetch brings a scan with a key the kept ones do not give: a dropped key
    return kept, dropped, fetches, det


def _reads(exprs, positions: set[int]) -> bool:
    return any(isinstance(n, Column) and n.index in positions for e in exprs if e is not None for n in walk(e))


def _lift(chain: list[L.Node], agg: L.Aggregate, kept: list[int], dropped: list[int]):
    """Rebuild the nodes of ``chain`` (parents of the aggregate, nearest first) over the narrow
    aggregate as far as they do not read a dropped key. Returns (narrow top, nodes lifted,
    slots, determinant positions) where ``slots`` gives for each column of the original node at
    that height ("real", position) or ("late", key index)."""
    nk = len(kept)
    new_keys = [agg.keys[i] for i in kept]
    fields = [agg.schema.field(i) for i in kept] + [agg.schema.field(len(agg.keys) + j)
                                                     for j in range(len(agg.aggregates))]
    narrow: L.Node = L.Aggregate(schema=pa.schema(fields), input=agg.input, keys=new_keys,
                                 aggregates=list(agg.aggregates), rewrite=REWRITE)
    slots = [("real", kept.index(i)) if i in kept else ("late", i) for i in range(len(agg.keys))]
    slots += [("real", nk + j) for j in range(len(agg.aggregates))]
    det = {i: kept.index(i) for i in kept}          # kept key index -> position in narrow
    lifted = 0
    for node in chain:
        late = {c for c, s in enumerate(slots) if s[0] == "late"}
        real = {c: s[1] for c, s in enumerate(slots) if s[0] == "real"}
        if isinstance(node, L.Project):
            if any(_reads([e], late) for e in node.exprs if not isinstance(e, Column)):
                break
            exprs, new_slots, out_fields = [], [], []
            for c, e in enumerate(node.exprs):
                if isinstance(e, Column) and e.index in late:
                    new_slots.append(slots[e.index])
                else:
                    new_slots.append(("real", len(exprs)))
                    exprs.append(remap(e, real))
                    out_fields.append(node.schema.field(c))
            new_det = {}
            for i, pos in det.items():
                new_det[i] = len(exprs)
                exprs.append(Column(type=agg.keys[i].type, index=pos, name=agg.schema.field(i).name))
                out_fields.append(pa.field(f"__key{i}", agg.keys[i].type))
            narrow = L.Project(schema=pa.schema(out_fields), input=narrow, exprs=exprs)
            slots, det = new_slots, new_det
        elif isinstance(node, L.Sort):
            if _reads(node.keys, late):
                break
            narrow = L.Sort(schema=narrow.schema, input=narrow, keys=[remap(k, real) for k in node.keys],
                            descending=list(node.descending), nulls_first=list(node.nulls_first), limit=node.limit)
        elif isinstance(node, L.Filter) and node.origin == "having":
            if _reads([node.predicate], late):
                break
            narrow = L.Filter(schema=narrow.schema, input=narrow, predicate=remap(node.predicate, real),
                              origin=node.origin)
        elif isinstance(node, L.Limit):
            narrow = L.Limit(schema=narrow.schema, input=narrow, limit=node.limit, offset=node.offset)
        else:
            break
        lifted += 1
    return narrow, lifted, slots, det


def _bounded(nodes: list[L.Node]) -> bool:
    return any((isinstance(n, L.Limit) and n.limit is not None) or (isinstance(n, L.Sort) and n.limit is not None)
               for n in nodes)


def _rewrite(chain: list[L.Node], agg: L.Aggregate) -> tuple[L.Node, int] | None:
    """The rewritten subtree replacing ``chain[-1]`` (or the aggregate) and the number of chain
    nodes it replaces, or None."""
    if not agg.keys:
        return None
    blocked = _blocked(chain, agg)
    if blocked is None or len(blocked) == len(agg.keys):
        return None
    info = _Input(origins=[], scans={}, equal=[])
    if not _describe(agg.input, 0, info):
        return None
    planned = _plan_drops(agg, info, blocked)
    if planned is None:
        return None
    kept, dropped, fetches, det_info = planned
    if not kept:
        return None
    narrow, lifted, slots, det = _lift(chain, agg, kept, dropped)
    if not _bounded(chain[:lifted]):
        return None
    top = chain[lifted - 1]
    # the fetching joins, in the order the classes became known
    cls_at = {det_info.classes.find(det_info.key_pos[i]): pos for i, pos in det.items()
              if det_info.key_pos[i] is not None}
    current = narrow
    for f in fetches:
        scan = info.scans[f.offset]
        right = L.Scan(schema=scan.schema, source=scan.source, table_name=scan.table_name,
                       columns=scan.columns, filters=[])
        base = len(current.schema)
        left_key = Column(type=scan.schema.field(f.id_col).type, index=cls_at[f.cls],
                          name=scan.schema.field(f.id_col).name)
        current = L.Join(schema=pa.schema(list(current.schema) + list(scan.schema)), left=current, right=right,
                         left_keys=[left_key], right_keys=[Column(type=left_key.type, index=f.id_col,
                                                                  name=left_key.name)], how="inner")
        for c in range(len(scan.schema)):
            cls_at.setdefault(det_info.classes.find(f.offset + c), base + c)
    exprs = []
    for c, (kind, v) in enumerate(slots):
        field = top.schema.field(c)
        if kind == "real":
            exprs.append(Column(type=field.type, index=v, name=field.name))
        else:
            # the dropped key's class: a kept key equal to it, or a fetched table's column
            exprs.append(Column(type=field.type, index=cls_at[det_info.classes.find(det_info.key_pos[v])],
                                name=field.name))
    return L.Project(schema=top.schema, input=current, exprs=exprs), lifted


def fetch_determined_keys_late(node: L.Node) -> L.Node:
    """An equivalent plan where GROUP BY keys determined by a joined table's unique key are
    dropped from the aggregate and fetched for the rows a LIMIT keeps (a new tree; ``node`` is
    not changed)."""
    chain: list[L.Node] = []
    cur = node
    while isinstance(cur, (L.Limit, L.Sort, L.Project, L.Filter)) and not isinstance(cur, L.Aggregate):
        chain.append(cur)
        cur = cur.input
    if isinstance(cur, L.Aggregate) and chain:
        chain.reverse()                                  # nearest the aggregate first
        done = _rewrite(chain, cur)
        if done is not None:
            new, lifted = done
            rest = chain[lifted:]                        # parents above the fetch, unchanged
            for parent in rest:
                new = dataclasses.replace(parent, input=new)
            return new
    return map_children(node, fetch_determined_keys_late)
