"""Window assignment for streams: ``WINDOW BY ts EVERY w [SLIDE s] AS out``.

:class:`WindowAssign` is the plan node (it adds one string column ``out`` to its input) and
:class:`WindowAssignOperator` the operator that runs it, batch by batch, with no state.

Rules (stable across batch sizes; every row's windows depend only on that row):

* the time value becomes epoch milliseconds: integers are milliseconds; strings are
  all-digit milliseconds, or ISO ``YYYY-MM-DD[THH:MM:SS[.fff]]`` (a space may replace ``T``;
  UTC; trailing text ignored), or a date; Arrow dates convert exactly, Arrow timestamps of any
  unit to the millisecond holding the instant (floor); a NaN / infinite float time is an error;
* tumbling (``s == w``): start = trunc(ts / w) * w (truncation toward zero, as native Velaria);
* sliding (``s < w``): the row is copied once per window that contains it: starts
  ``last - i*s`` for ``i`` in ``0 .. ceil(w/s)-1`` with ``last = trunc(ts/s)*s`` and
  ``start <= ts < start + w``; the copies come in **ascending** window start, rows in input
  order (native Velaria emits the newest window first; we choose ascending -- documented);
* the window column is text ``YYYY-MM-DDTHH:MM:SS`` in UTC, plus ``.mmm`` when the start has
  milliseconds; a NULL time gives one copy of the row with a NULL window (never dropped).

Late formatting: when the window column feeds a GROUP BY directly above and nothing else reads
it (the usual windowed aggregate), the stream carries it as int64 epoch milliseconds into the
aggregate (:class:`WindowKeyAggregateOperator`) and formats only the groups it emits. The text
is a one-to-one function of the start, so the groups, their order and the output are the same;
hashing an int64 per row costs a fraction of formatting and hashing its text.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ExecutionError, SQLUnsupportedError, VelariaValueError
from ..plan import logical as L
from ..plan.expr import AggregateCall, Call, Case, Cast, Column, InList, Literal, walk
from .operators import AggregateOperator, Operator
from .window_keys import StableDictionary
from ..reference.functions import to_epoch_ms, to_string

__all__ = ["WindowAssign", "WindowAssignOperator", "WindowKeyAggregateOperator", "late_window_key", "late_encoded_columns",
           "late_numbered_window", "late_unread_columns",
           "window_node", "epoch_ms_array",
           "format_window_starts"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_KNOWN_EXPRS = (Column, Literal, Call, Case, Cast, InList, AggregateCall)


@dataclass(eq=False)
class WindowAssign(L.Node):
    """Append the window-start column ``output`` computed from ``time_column``."""

    input: L.Node = None  # type: ignore[assignment]
    time_column: str = ""
    window_ms: int = 0
    slide_ms: int = 0
    output: str = "window_start"

    @property
    def sliding(self) -> bool:
        return self.slide_ms < self.window_ms


def window_node(input: L.Node, time_column: str, window_ms: int, slide_ms: int, output: str,
                sql: bool = False) -> WindowAssign:
    """A validated :class:`WindowAssign` over ``input`` (``slide_ms`` 0 means tumbling)."""
    if slide_ms == 0 and not sql:
        slide_ms = window_ms
    if sql and not 0 < slide_ms <= window_ms:
        raise SQLUnsupportedError("not supported in SQL v1: stream SQL WINDOW SLIDE must be > 0 and <= EVERY",
                                  hint=f"got EVERY {window_ms} SLIDE {slide_ms}; a window needs a positive size "
                                       "and a slide no longer than the window.")
    if window_ms <= 0:
        raise VelariaValueError(f"window size must be positive (got window_ms={window_ms})")
    if slide_ms > window_ms:
        raise VelariaValueError(f"window slide must be <= window size (got slide_ms={slide_ms}, "
                                f"window_ms={window_ms})")
    if slide_ms < 0:
        raise VelariaValueError(f"window slide must be >= 0 (got slide_ms={slide_ms})")
    names = input.schema.names
    if time_column not in names:
        raise ExecutionError(f"window column not found: {time_column} (columns: {', '.join(names)})")
    if output in names:
        raise VelariaValueError(f"window output column already exists: {output}; choose another AS name")
    schema = input.schema.append(pa.field(output, pa.string()))
    return WindowAssign(schema=schema, input=input, time_column=time_column, window_ms=window_ms,
                        slide_ms=slide_ms, output=output)


def _cast_ms(arr: pa.Array) -> pa.Array:
    """``arr`` (integers, whole floats, millisecond timestamps) as int64 milliseconds; a value
    that is no such number (NaN, infinite, beyond int64) fails naming it."""
    try:
        return arr.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ExecutionError(f"window time column holds a value that is not a time in epoch milliseconds "
                             f"({exc}); filter such rows out (WHERE) before the window") from exc


def _floor_ms(arr: pa.Array, per_ms: int) -> pa.Array:
    """A micro- or nanosecond timestamp array as the epoch millisecond holding each instant
    (floor division: a plain cast to milliseconds refuses sub-millisecond parts)."""
    raw = arr.cast(pa.int64())
    values = np.floor_divide(np.asarray(raw.fill_null(0)), per_ms)
    return pa.array(values, pa.int64(), mask=np.asarray(raw.is_null()) if raw.null_count else None)


def epoch_ms_array(arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """``(ms, valid)``: the time column as int64 epoch milliseconds and its validity mask
    (None: no NULLs). Text is parsed once per distinct value."""
    t = arr.type
    if pa.types.is_integer(t):
        ms = _cast_ms(arr)
    elif pa.types.is_timestamp(t) and t.unit in ("us", "ns"):
        ms = _floor_ms(arr, 1000 if t.unit == "us" else 1_000_000)
    elif pa.types.is_timestamp(t) or pa.types.is_date(t):
        ms = _cast_ms(arr.cast(pa.timestamp("ms", tz=getattr(t, "tz", None))))
    elif pa.types.is_floating(t):
        ms = _cast_ms(pc.trunc(arr))
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        enc = pc.dictionary_encode(arr).combine_chunks() if isinstance(arr, pa.ChunkedArray) else pc.dictionary_encode(arr)
        parsed = pa.array([to_epoch_ms(v) for v in enc.dictionary.to_pylist()], pa.int64())
        ms = parsed.take(enc.indices) if len(parsed) else pa.nulls(len(arr), pa.int64())
    elif pa.types.is_null(t):
        ms = pa.nulls(len(arr), pa.int64())
    else:
        raise ExecutionError(f"window time column must hold timestamps, dates, ISO text or epoch "
                             f"milliseconds, got {t}")
    valid = None
    if ms.null_count:
        valid = np.asarray(ms.is_valid())
        ms = ms.fill_null(0)
    return np.asarray(ms), valid


def _trunc_div(a: np.ndarray, b: int) -> np.ndarray:
    """C++-style integer division (toward zero), element-wise."""
    q = a // b
    if a.size and a.min() >= 0:          # the usual case: floor is truncation, no remainder pass
        return q
    return q + ((a % b != 0) & (a < 0))


def _tumbling_numbers(ms: np.ndarray, w: int, valid: np.ndarray | None) -> np.ndarray:
    """``_trunc_div(ms, w)``; a batch whose earliest and latest times share a window (most
    batches of a stream in time order) gets that number without a division per row."""
    if valid is None and ms.size:
        lo, hi = _trunc_div(np.array([ms.min(), ms.max()]), w).tolist()
        if lo == hi:
            return np.full(ms.size, lo, dtype=np.int64)
    return _trunc_div(ms, w)


def _owned_copy(latest: np.ndarray, n: int, i: int) -> np.ndarray:
    """For rows whose ``n`` windows are numbered ``latest - n + 1 .. latest``: the number of
    the one window worker ``i`` of ``n`` owns (the one congruent to ``i`` modulo ``n``), i.e.
    ``latest - (latest - i) mod n`` (a mask instead of a division when ``n`` is a power of 2)."""
    r = latest - i
    if n & (n - 1) == 0:
        np.bitwise_and(r, n - 1, out=r)       # two's complement: the floor modulo, as ``%``
    else:
        np.remainder(r, n, out=r)
    return np.subtract(latest, r, out=r)


def _repeat(arr: pa.Array, times: int) -> pa.Array:
    """Each value of ``arr`` ``times`` times in a row (``take`` of the repeated row numbers;
    a NULL-free number column or dictionary index is repeated as a numpy array, which streams
    instead of gathering)."""
    if arr.null_count == 0 and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        return pa.array(np.repeat(arr.to_numpy(), times), type=arr.type)
    if pa.types.is_dictionary(arr.type) and arr.indices.null_count == 0:
        indices = pa.array(np.repeat(arr.indices.to_numpy(), times), type=arr.type.index_type)
        return pa.DictionaryArray.from_arrays(indices, arr.dictionary)
    return arr.take(pa.array(np.repeat(np.arange(len(arr), dtype=np.int64), times)))


def _copy_numbers(latest: np.ndarray, per_row: int) -> np.ndarray:
    """The window numbers of ``per_row`` copies of each row, ascending, row after row: row
    ``r`` gives ``latest[r] - per_row + 1 .. latest[r]`` (same dtype as ``latest``). Filled
    one copy position at a time: a broadcast over a short last axis runs far slower."""
    out = np.empty((latest.size, per_row), dtype=latest.dtype)
    for j in range(per_row):
        np.subtract(latest, per_row - 1 - j, out=out[:, j])
    return out.ravel()


def _kept(batch: pa.RecordBatch, number: np.ndarray, valid: np.ndarray | None, mine: np.ndarray):
    """``batch``, ``number`` and ``valid`` restricted to the rows where ``mine`` is True. Rows
    in time order keep one run of rows per window, so a single run is sliced (no copy)."""
    rows = np.flatnonzero(mine)
    first, last = int(rows[0]), int(rows[-1])
    if last - first + 1 == rows.size:
        return (batch.slice(first, rows.size), number[first:last + 1],
                None if valid is None else valid[first:last + 1])
    return batch.filter(pa.array(mine)), number[rows], None if valid is None else valid[rows]


def _window_text(starts: np.ndarray, step: int, valid: np.ndarray | None) -> pa.Array:
    """The window column's text for ``starts`` (NULL where ``valid`` is False)."""
    text = format_window_starts(starts, step)
    if valid is not None:
        text = pc.if_else(pa.array(valid), text, pa.scalar(None, pa.string()))
    return text


def _text(ms: int) -> str:
    return to_string(_EPOCH + timedelta(milliseconds=ms))


def format_window_starts(starts: np.ndarray, step: int = 0) -> pa.Array:
    """Window start milliseconds as UTC text, each distinct value formatted once.

    ``step``: when every start is a multiple of it (the slide), starts are numbered by
    ``(start - lowest) // step`` with no sort, as long as that range is small."""
    if len(starts) == 0:
        return pa.array([], pa.string())
    if step > 0:
        lo, hi = int(starts.min()), int(starts.max())
        span = (hi - lo) // step + 1
        if span <= max(64, len(starts)):
            codes = (starts - lo) // step
            present = np.flatnonzero(np.bincount(codes, minlength=span))
            texts = [None] * span
            for c in present.tolist():
                texts[c] = _text(lo + c * step)
            return pa.array(texts, pa.string()).take(pa.array(codes.astype(np.int32, copy=False)))
    uniq, inverse = np.unique(starts, return_inverse=True)
    texts = pa.array([_text(int(u)) for u in uniq], pa.string())
    return texts.take(pa.array(inverse.astype(np.int32, copy=False)))


def _numbered_windows(number: np.ndarray, step: int, valid: np.ndarray | None) -> pa.DictionaryArray:
    """Window starts ``number * step`` dictionary-encoded without hashing: index
    ``number - lowest`` into the consecutive starts from the lowest to the highest (NULL where
    ``valid`` is False). Every index points at its own row's start. Numbers that span more
    windows than there are rows are hashed instead (same type, smaller dictionary)."""
    present = number if valid is None else number[valid]
    lo = int(present.min()) if present.size else 0
    hi = int(present.max()) if present.size else 0
    mask = None if valid is None else ~valid
    if hi - lo > len(number) + 64:
        return pc.dictionary_encode(pa.array(number * step, pa.int64(), mask=mask))
    codes = number - lo
    if valid is not None:
        codes[~valid] = 0
    dictionary = pa.array((lo + np.arange(hi - lo + 1, dtype=np.int64)) * step, pa.int64())
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32), pa.int32(), mask=mask), dictionary)


class WindowAssignOperator(Operator):
    """Runs a :class:`WindowAssign` node: stateless, one output batch per input batch.

    ``epoch_ms=True``: the window column is int64 epoch milliseconds instead of text (for a
    :class:`WindowKeyAggregateOperator` above, which formats the groups it emits)."""

    def __init__(self, node: WindowAssign, children=None, epoch_ms: bool = False,
                 encode: frozenset = frozenset(), numbered: bool = False, unread: frozenset = frozenset()):
        super().__init__(node, children)
        self._index = node.input.schema.get_field_index(node.time_column)
        self.epoch_ms = epoch_ms
        # numbered (with epoch_ms; for a two-key aggregate above): the milliseconds come
        # dictionary-encoded, numbered by (start - lowest) // slide, so the aggregate numbers a
        # few distinct starts instead of hashing every row's
        self.numbered = epoch_ms and numbered
        # (workers, index): a local worker keeps only the copies of the windows it owns, before
        # they are built (set by the worker; None: every window)
        self.owner: tuple[int, int] | None = None
        # sliding windows copy rows: string columns in ``encode`` (read only as GROUP BY keys
        # above) are dictionary-encoded first, so the copies repeat small integers
        self.encode = frozenset(encode) if node.sliding else frozenset()
        self._dictionaries = {i: StableDictionary() for i in self.encode}
        # sliding copies of input columns nothing above reads (the time column, once windowed)
        # are not built: an all-NULL column of the right type stands in (see ``_copies``)
        self.unread = frozenset(unread) if node.sliding else frozenset()
        self._placeholders: dict[int, pa.Array] = {}
        self._schema = node.schema
        if epoch_ms:
            t = pa.dictionary(pa.int32(), pa.int64()) if self.numbered else pa.int64()
            self._schema = node.schema.set(len(node.schema) - 1, pa.field(node.output, t))
        for i in self.encode:
            f = self._schema.field(i)
            self._schema = self._schema.set(i, f.with_type(pa.dictionary(pa.int32(), f.type)))

    def open(self, ctx):
        super().open(ctx)
        if ctx.kernels.engine == "reference":          # Arrow's encoding, no C packing
            self._dictionaries = {i: StableDictionary(packed=False) for i in self.encode}

    def _encoded(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not self.encode:
            return batch
        columns = [self._dictionaries[i].encode(c) if i in self.encode else c for i, c in enumerate(batch.columns)]
        return pa.RecordBatch.from_arrays(columns, schema=self._schema.remove(len(self._schema) - 1))

    def _placeholder(self, i: int, n: int) -> pa.Array:
        """``n`` NULLs of column ``i``'s type, sliced from one array kept for the column (no
        allocation per batch)."""
        held = self._placeholders.get(i)
        if held is None or len(held) < n:
            held = self._placeholders[i] = pa.nulls(max(n, 2 * len(held) if held is not None else n),
                                                    self._schema.field(i).type)
        return held.slice(0, n)

    def _copies(self, batch: pa.RecordBatch, per_row: int) -> list[pa.Array]:
        """``batch``'s columns (encoded), each row ``per_row`` times in a row; a column in
        ``unread`` is only a placeholder of the right length."""
        n = batch.num_rows * per_row
        return [self._placeholder(i, n) if i in self.unread else _repeat(c, per_row)
                for i, c in enumerate(self._encoded(batch).columns)]

    def _column(self, number: np.ndarray, step: int, valid: np.ndarray | None) -> pa.Array:
        """The window column for the windows starting at ``number * step``: text, the
        milliseconds themselves, or those numbered (dictionary-encoded)."""
        if self.numbered:
            return _numbered_windows(number, step, valid)
        starts = number * step
        if self.epoch_ms:
            return pa.array(starts, pa.int64(), mask=None if valid is None else ~valid)
        return _window_text(starts, step, valid)

    def _copies_column(self, latest: np.ndarray, per_row: int, step: int) -> pa.Array:
        """The window column of the ``per_row`` copies of every row, whose windows are numbered
        ``latest - per_row + 1 .. latest`` (ascending, row after row). Numbered starts get
        their dictionary indices computed per row and repeated as int32, not per copy in int64."""
        lo, hi = int(latest.min()) - (per_row - 1), int(latest.max())
        if not self.numbered or hi - lo > latest.size * per_row + 64:
            return self._column(_copy_numbers(latest, per_row), step, None)
        codes = _copy_numbers((latest - lo).astype(np.int32), per_row)
        dictionary = pa.array((lo + np.arange(hi - lo + 1, dtype=np.int64)) * step, pa.int64())
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), dictionary)

    def push(self, batch: pa.RecordBatch, port: int = 0) -> list[pa.RecordBatch]:
        if batch.num_rows == 0:
            return []
        node = self.node
        ms, valid = epoch_ms_array(batch.column(self._index))
        w, s = node.window_ms, node.slide_ms
        if not node.sliding:
            number = _tumbling_numbers(ms, w, valid)  # the window's number: start // w, exactly
            if self.owner is not None:
                mine = self._owned(number, valid)
                if not mine.all():
                    if not mine.any():
                        return []
                    batch, number, valid = _kept(batch, number, valid, mine)
            column = self._column(number, w, valid)
            return [pa.RecordBatch.from_arrays(list(batch.columns) + [column], schema=self._schema)]
        per_row = -(-w // s)
        if valid is None and w % s == 0 and int(ms.min()) >= 0:
            # every row lies in exactly w/s windows, numbered ms // s - (w/s - 1) .. ms // s
            latest = ms // s
            if self.owner is not None and self.owner[0] == per_row:
                # one of each row's windows is this worker's: no copies at all
                number = _owned_copy(latest, *self.owner)
                return [pa.RecordBatch.from_arrays(list(self._encoded(batch).columns)
                                                   + [self._column(number, s, None)], schema=self._schema)]
            if self.owner is None:                     # repeat rows, no filtering, no sort
                return [pa.RecordBatch.from_arrays(self._copies(batch, per_row) + [self._copies_column(latest, per_row, s)],
                                                   schema=self._schema)]
            number = _copy_numbers(latest, per_row)
            keep = np.flatnonzero(number % self.owner[0] == self.owner[1])   # rows in order, copies ascending
            rows = keep // per_row
            taken = self._encoded(batch).take(pa.array(rows))
            return [pa.RecordBatch.from_arrays(list(taken.columns) + [self._column(number[keep], s, None)],
                                               schema=self._schema)]
        last = _trunc_div(ms, s) * s
        rows_parts, start_parts = [], []
        for i in range(per_row - 1, -1, -1):          # oldest window first
            start = last - i * s
            keep = (start <= ms) & (ms < start + w)
            if valid is not None:
                keep &= valid
            idx = np.nonzero(keep)[0]
            rows_parts.append(idx)
            start_parts.append(start[idx])
        if valid is not None:                          # NULL time: one copy, NULL window
            idx = np.nonzero(~valid)[0]
            rows_parts.append(idx)
            filler = int(last[valid][0]) if valid.any() else 0      # masked below; any valid start
            start_parts.append(np.full(len(idx), filler, dtype=np.int64))
        rows = np.concatenate(rows_parts)
        starts = np.concatenate(start_parts)
        order = np.argsort(rows, kind="stable")
        rows, starts = rows[order], starts[order]
        number = starts // s                           # exact: starts are multiples of the slide
        if self.owner is not None:
            mine = self._owned(number, None if valid is None else valid[rows])
            rows, number = rows[mine], number[mine]
        column = self._column(number, s, None if valid is None else valid[rows])
        taken = self._encoded(batch).take(pa.array(rows))
        return [pa.RecordBatch.from_arrays(list(taken.columns) + [column], schema=self._schema)]

    def _owned(self, number: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
        """Which windows this operator's owner keeps, by window ``number`` (start // slide):
        the number modulo the worker count, NULL windows with worker 0 -- the rule of
        :func:`velaria.stream.key_partition.partition_ids` for window keys."""
        n, i = self.owner
        lo, hi = (int(number.min()), int(number.max())) if number.size else (0, 0)
        if hi - lo < 1024:            # a batch spans few windows: one modulo per window, not per row
            lookup = (np.arange(lo, hi + 1, dtype=np.int64) % n) == i
            mine = np.full(number.size, lookup[0]) if lo == hi else lookup[number - lo]
        else:
            mine = number % n == i
        return mine if valid is None else np.where(valid, mine, i == 0)

    def explain_line(self) -> str:
        n = self.node
        return (f"WindowAssign time_column={n.time_column} window_ms={n.window_ms} "
                f"slide_ms={n.slide_ms} output={n.output}")


class WindowKeyAggregateOperator(AggregateOperator):
    """A GROUP BY whose key ``window_key`` arrives as int64 epoch milliseconds from a
    :class:`WindowAssignOperator` with ``epoch_ms=True``: groups on the integers and formats
    the window text only for the rows it emits (``step``: the slide, for formatting).
    Its exported state keeps the integers; the text is a function of them."""

    def __init__(self, node: L.Aggregate, children=None, mode: str = "final", window_key: int = 0,
                 step: int = 0):
        super().__init__(node, children, mode=mode)
        self.window_key = window_key
        self.step = step

    def open(self, ctx):
        super().open(ctx)
        self._types[self.window_key] = pa.int64()
        self._window_column = self.node.keys[self.window_key].index

    def _eval(self, e, batch):
        if isinstance(e, Column) and (e.index == self._window_column
                                      or pa.types.is_dictionary(batch.schema.field(e.index).type)):
            return batch.column(e.index)          # int64 milliseconds / an encoded key, as they are
        return super()._eval(e, batch)

    def _formatted(self, columns: list[pa.Array]) -> pa.RecordBatch:
        ms = columns[self.window_key]
        valid = None if ms.null_count == 0 else np.asarray(ms.is_valid())
        starts = np.asarray(ms.fill_null(0) if valid is not None else ms)
        columns = list(columns)
        columns[self.window_key] = _window_text(starts, self.step, valid)
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def emit_updated(self) -> pa.RecordBatch:
        return self._formatted(self.agg.emit_updated(self._types))

    def finish(self):
        if self.mode == "running":
            return []
        return [self._formatted(self.agg.finish(self._types))]


def late_window_key(window: WindowAssign, aggregate: L.Node) -> int | None:
    """The key position at which ``aggregate`` (directly above ``window``) groups by the
    window column, when that is the column's only use; else None (keep the text column)."""
    if type(aggregate) is not L.Aggregate or aggregate.input is not window:
        return None
    col = len(window.schema) - 1
    positions = [i for i, k in enumerate(aggregate.keys) if isinstance(k, Column) and k.index == col]
    if len(positions) != 1:
        return None
    others = [k for i, k in enumerate(aggregate.keys) if i != positions[0]]
    others += [a.arg for a in aggregate.aggregates if a.arg is not None]
    for e in others:
        for sub in walk(e):
            if type(sub) not in _KNOWN_EXPRS or (isinstance(sub, Column) and sub.index == col):
                return None          # reads the window column, or an expression kind not inspected
    return positions[0]


def late_numbered_window(window: WindowAssign, aggregate: L.Aggregate) -> bool:
    """True when the window starts may reach ``aggregate`` (directly above, grouping by the
    window column) dictionary-encoded: its two-key path numbers a dictionary, never rows."""
    return len(aggregate.keys) == 2


def late_unread_columns(window: WindowAssign, aggregate: L.Aggregate) -> frozenset:
    """Input columns of a sliding ``window`` that ``aggregate`` (directly above) never reads:
    in no key, no aggregate argument (usually the time column itself). Its copies need not
    hold their values."""
    if not window.sliding:
        return frozenset()
    read: set[int] = set()
    for e in [*aggregate.keys, *(a.arg for a in aggregate.aggregates if a.arg is not None)]:
        for sub in walk(e):
            if type(sub) not in _KNOWN_EXPRS:
                return frozenset()           # an expression kind not inspected: keep everything
            if isinstance(sub, Column):
                read.add(sub.index)
    return frozenset(range(len(window.input.schema))) - read


def late_encoded_columns(window: WindowAssign, aggregate: L.Aggregate) -> frozenset:
    """Input columns a sliding window may dictionary-encode before copying rows: text
    columns the two-key aggregate above reads only as bare GROUP BY keys."""
    if not window.sliding or len(aggregate.keys) != 2:
        return frozenset()
    bare = {k.index for k in aggregate.keys if isinstance(k, Column)}
    used = {sub.index for a in aggregate.aggregates if a.arg is not None for sub in walk(a.arg)
            if isinstance(sub, Column)}
    used |= {sub.index for k in aggregate.keys if not isinstance(k, Column) for sub in walk(k)
             if isinstance(sub, Column)}
    schema = window.input.schema
    return frozenset(i for i in bare - used if i < len(schema)
                     and (pa.types.is_string(schema.field(i).type) or pa.types.is_large_string(schema.field(i).type)))
