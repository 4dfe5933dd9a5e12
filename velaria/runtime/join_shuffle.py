"""The shuffle join: both inputs of a join split by a hash of their join keys.

When is a join shuffled instead of broadcast? A broadcast join sends the whole right input
to every partition of the left input, which is cheap for a small right input; a RIGHT /
FULL join then also needs the partitions' matched right rows to pad the others once. So a
join is shuffled when

* it is a RIGHT or FULL join whose right input is estimated above the broadcast limit
  (within it, the right input is broadcast and its unmatched rows are padded on the client:
  :mod:`.broadcast_outer`), or
* it is an INNER or LEFT join whose right input is estimated above the broadcast limit:
  :data:`BROADCAST_LIMIT_BYTES` (64 MiB) of source data, or ``VELARIA_BROADCAST_LIMIT_BYTES``.
  The estimate adds up the sources under the right input: an in-memory table's Arrow bytes,
  a file's size on disk.

and it has equality keys whose types hash alike on both sides (integers with integers,
numbers with numbers as float64, otherwise the same type). CROSS joins and joins on other
conditions only are never shuffled: with no key, every pair needs to meet in one place.

Stages. Each input runs as map tasks: one per partition of its scan when the input is a
plain pipeline (scan, filters, projections), otherwise one task for the whole input. A map
task evaluates the join keys, tags each row with its *ordinal* (``partition << 40 | row``:
the row's place in the input), and splits the rows into buckets by the key hash. One bucket
task per bucket joins its bucket's left rows with its right rows using the engine's join
operator (outer joins pad their unmatched rows there: every row with a given key is in that
bucket). The filters, projections and the first splittable node above the join (an
aggregate, a top-n, a LIMIT) run in the bucket tasks too (:mod:`.join_above`); the client
merges the buckets' results in the order the embedded join emits (by left ordinal, right
ordinal, padded right rows last) and runs the rest of the plan.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..exec.operators import JoinOperator
from ..plan import logical as L
from .join_above import LEFT_ORD, RIGHT_ORD, AbovePlan, bucket_plan, bucket_result
from .shuffle import split_by_bucket
from .stages import PartitionTask, PartitionWork, cut_plan, replace_node, run_task, task_context

__all__ = ["BROADCAST_LIMIT_BYTES", "BROADCAST_LIMIT_ENV", "broadcast_limit", "broadcast_note", "JoinShuffle",
           "find_shuffle_join", "estimated_bytes",
           "JoinMapTask", "BucketJoinTask", "join_tasks", "join_rows", "side_tasks"]

#: the right input of an INNER / LEFT join above this estimate is shuffled, not broadcast
BROADCAST_LIMIT_BYTES = 64 << 20
BROADCAST_LIMIT_ENV = "VELARIA_BROADCAST_LIMIT_BYTES"
_ROW_BITS = 40
_ORD = "__velaria_ordinal"                 # a map task's rows: their place in the input
_KEY = "__velaria_key_{}"


def broadcast_limit(environ=os.environ) -> int:
    """The broadcast limit in bytes (the environment variable, else the default)."""
    raw = environ.get(BROADCAST_LIMIT_ENV)
    if raw is None:
        return BROADCAST_LIMIT_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        from ..errors import VelariaValueError
        raise VelariaValueError(f"{BROADCAST_LIMIT_ENV}={raw!r} is not a byte count; set it to a whole number "
                                f">= 0 (e.g. {BROADCAST_LIMIT_BYTES}) or unset it")
    return value


def _source_bytes(source) -> int:
    table = getattr(source, "table", None)
    if isinstance(table, pa.Table):
        return table.nbytes
    parts = getattr(source, "sources", None)
    if parts:
        return sum(_source_bytes(s) for s in parts)
    files = getattr(source, "files", None) or [getattr(source, "path", None)]
    total = 0
    for f in files:
        if isinstance(f, str) and os.path.isfile(f):
            total += os.path.getsize(f)
    return total


def estimated_bytes(node: L.Node) -> int:
    """The bytes of source data under ``node`` (an upper bound of what it produces)."""
    if isinstance(node, L.Scan):
        return _source_bytes(node.source)
    return sum(estimated_bytes(c) for c in L.children(node))


def broadcast_note(join: L.Join, limit: int | None = None) -> str:
    """Why ``join`` (not shuffled) is a broadcast join, for the run record."""
    limit = broadcast_limit() if limit is None else limit
    size = estimated_bytes(join.right)
    if size <= limit:
        return f"broadcast join: right input ~{size} bytes, within the broadcast limit of {limit} bytes"
    return (f"broadcast join: right input ~{size} bytes is over the broadcast limit of {limit} bytes, but a join "
            "without equality keys that hash alike on both sides cannot be shuffled")


def _hash_type(left: pa.DataType, right: pa.DataType) -> pa.DataType | None | str:
    """The type both sides' key is cast to before hashing (None: as it is), or "no" when
    equal keys of these types would not hash alike."""
    if pa.types.is_integer(left) and pa.types.is_integer(right):
        return None
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
    if any(f(left) for f in numeric) and any(f(right) for f in numeric):
        return None if left.equals(right) and pa.types.is_floating(left) else pa.float64()
    if left.equals(right) or (pa.types.is_string(left) or pa.types.is_large_string(left)) and \
            (pa.types.is_string(right) or pa.types.is_large_string(right)):
        return None
    return "no"


@dataclass
class JoinShuffle:
    """A join chosen for a shuffle: ``join``, why, and the key hash types. ``strategy`` is
    ``shuffle`` (both inputs hash-partitioned) or ``broadcast-outer`` (a RIGHT / FULL join
    whose small right input is broadcast, :mod:`.broadcast_outer`)."""

    join: L.Join
    reason: str
    casts: list
    strategy: str = "shuffle"


def find_shuffle_join(root: L.Node, limit: int | None = None) -> JoinShuffle | None:
    """The first join on ``root``'s spine (single-input nodes and left inputs of joins) that
    is shuffled rather than broadcast, or a RIGHT / FULL join that broadcasts its small right
    input; None when there is none (see the module docstring for the rule)."""
    limit = broadcast_limit() if limit is None else limit
    node = root
    while True:
        if isinstance(node, L.Join):
            chosen = _shuffle_reason(node, limit)
            if chosen is not None:
                return chosen
            node = node.left
            continue
        kids = L.children(node)
        if len(kids) != 1:
            return None
        node = kids[0]


def _shuffle_reason(join: L.Join, limit: int) -> JoinShuffle | None:
    if join.how in ("right", "full"):
        size = estimated_bytes(join.right)
        if size <= limit:
            return JoinShuffle(join, f"{join.how.upper()} JOIN with a right input of ~{size} bytes, within the "
                                     f"broadcast limit of {limit} bytes", [], "broadcast-outer")
    if not join.left_keys:
        return None
    casts = [_hash_type(lk.type, rk.type) for lk, rk in zip(join.left_keys, join.right_keys)]
    if "no" in casts:
        return None
    size = estimated_bytes(join.right)
    if join.how in ("right", "full"):
        return JoinShuffle(join, f"{join.how.upper()} JOIN pads unmatched right rows; right input ~{size} bytes > "
                                 f"broadcast limit {limit} bytes", casts)
    if size > limit:
        return JoinShuffle(join, f"right input ~{size} bytes > broadcast limit {limit} bytes", casts)
    return None


@dataclass
class JoinMapTask(PartitionWork):
    """One input's rows from ``task`` (one partition or the whole input), keyed, tagged with
    ordinals from ``base`` on, and split into ``buckets``."""

    keys: list
    casts: list
    buckets: int
    base: int

    def run(self) -> list[pa.Table]:
        rows, kernels = self.rows()
        rows = rows.combine_chunks()
        n = rows.num_rows
        if n >= 1 << _ROW_BITS:
            raise ValueError(f"a join input partition has {n} rows; the shuffle's ordinals hold at most "
                             f"{1 << _ROW_BITS}")
        batch = rows.to_batches()[0] if n else pa.RecordBatch.from_pylist([], schema=rows.schema)
        names = []
        for j, (key, cast) in enumerate(zip(self.keys, self.casts)):
            arr = kernels.evaluate(key, batch, self.task.eval_context) if n else pa.nulls(0, key.type)
            if cast is not None:
                arr = pc.cast(arr, cast, safe=False)
            rows = rows.append_column(_KEY.format(j), arr)
            names.append(_KEY.format(j))
        rows = rows.append_column(_ORD, pa.array(np.arange(n, dtype=np.int64) + np.int64(self.base)))
        return [piece.drop_columns(names) for piece in split_by_bucket(rows, names, self.buckets)]


class _IndexedJoin(JoinOperator):
    """The engine's join operator, keeping the input row indices of the rows it emitted
    (its last pairing is its output, after any residual filter and outer padding)."""

    indices = (pa.array([], pa.int64()), pa.array([], pa.int64()))

    def _pairs(self, lb, rb, li, ri):
        self.indices = (li, ri)
        return super()._pairs(lb, rb, li, ri)


def join_rows(join: L.Join, left: pa.Table, right: pa.Table, ctx) -> tuple[pa.Table, pa.Array, pa.Array]:
    """``join`` of the ``left`` and ``right`` rows with the engine's join operator: the joined
    rows, and the left and right row index of each (NULL where a side was padded)."""
    from ..exec.driver import call_operator

    op = _IndexedJoin(join, [])
    op.open(ctx)
    try:
        for port, side in ((0, left), (1, right)):
            for batch in side.to_batches():
                call_operator(op, op.push, batch, port)
        out = pa.Table.from_batches(call_operator(op, op.finish), schema=join.schema)
    finally:
        op.close()
    li, ri = op.indices
    return out, li, ri


@dataclass
class BucketJoinTask:
    """Join one bucket: the first ``left_maps`` pieces are the left input's, the rest the
    right input's. Then run ``plan`` / ``aggregate`` (:func:`.join_above.bucket_plan`) over
    the joined rows when set. Output: the joined rows, or what ``plan`` / ``aggregate``
    computed, then the left and right ordinals of each row's (group's) first joined row."""

    index: int
    join: L.Join
    left_maps: int
    engine: str
    batch_rows: int
    memory_whole_chunks: bool
    eval_context: object = None
    plan: L.Node | None = None
    aggregate: L.Aggregate | None = None

    def run(self, pieces: list[pa.Table]) -> pa.Table:
        left = _concat(pieces[:self.left_maps], self.join.left.schema)
        right = _concat(pieces[self.left_maps:], self.join.right.schema)
        out, li, ri = join_rows(self.join, left.drop_columns([_ORD]), right.drop_columns([_ORD]), self._context())
        out = out.append_column(LEFT_ORD, left.column(_ORD).take(li))
        out = out.append_column(RIGHT_ORD, right.column(_ORD).take(ri))
        return bucket_result(self.plan, self.aggregate, out, self._run_above)

    def _context(self):
        ctx = task_context(self.engine, self.batch_rows, self.memory_whole_chunks)
        if self.eval_context is not None:
            ctx.eval_context = self.eval_context
        return ctx

    def _run_above(self, plan: L.Node, aggregate: L.Aggregate | None) -> pa.Table:
        return run_task(PartitionTask(self.index, plan, aggregate, self.engine, self.batch_rows,
                                      self.memory_whole_chunks, self.eval_context))


def _concat(pieces: list[pa.Table], schema: pa.Schema) -> pa.Table:
    full = schema.append(pa.field(_ORD, pa.int64()))
    parts = [p for p in pieces if p.num_rows]
    if not parts:
        return full.empty_table()
    return pa.concat_tables([pa.Table.from_arrays(p.columns, schema=full) for p in parts]).combine_chunks()


def side_tasks(side: L.Node, parts: int, first_index: int, common: tuple) -> tuple[list[PartitionTask], str]:
    """Tasks producing ``side``'s rows: one per partition of its scan when ``side`` is a plain
    pipeline, else one task for all of it; and how it was split."""
    cut = cut_plan(side, parts)
    if cut.partitions is not None and cut.exchange is None and not cut.broadcasts:
        tasks = [PartitionTask(first_index + i, replace_node(side, cut.scan, dataclasses.replace(cut.scan, source=p)),
                               None, *common) for i, p in enumerate(cut.partitions)]
        return tasks, cut.partitioning
    return [PartitionTask(first_index, side, None, *common)], "one task"


def join_tasks(chosen: JoinShuffle, parts: int, buckets: int, common: tuple, above: AbovePlan | None = None):
    """``(maps, bucket_tasks, described)`` for a shuffle join: the left input's map tasks,
    then the right input's, and one bucket task per bucket (which also runs the part of the
    plan ``above`` the join that splits, when given)."""
    join = chosen.join
    left, lhow = side_tasks(join.left, parts, 0, common)
    right, rhow = side_tasks(join.right, parts, len(left), common)
    maps = [JoinMapTask(t, join.left_keys, chosen.casts, buckets, i << _ROW_BITS) for i, t in enumerate(left)]
    maps += [JoinMapTask(t, join.right_keys, chosen.casts, buckets, i << _ROW_BITS) for i, t in enumerate(right)]
    shipped = dataclasses.replace(join, left=_schema_only(join.left), right=_schema_only(join.right))
    plan, aggregate = bucket_plan(above) if above is not None else (None, None)
    finals = [BucketJoinTask(b, shipped, len(left), *common, plan=plan, aggregate=aggregate) for b in range(buckets)]
    return maps, finals, f"left: {len(left)} ({lhow}); right: {len(right)} ({rhow})"


def _schema_only(node: L.Node) -> L.Node:
    """A stand-in input that carries only ``node``'s schema (the bucket task feeds the rows)."""
    return L.OneRow(schema=node.schema)

