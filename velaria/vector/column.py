"""Vector-column ingestion: an Arrow column as one flat float32 buffer, cached per table+column.

* ``FixedSizeList<float32>`` in one chunk is used in place: the kernel scans the Arrow child
  buffer itself (no copy). Its validity bitmap becomes a byte mask (cached).
* Other shapes -- ``FixedSizeList`` of other numbers, several chunks, ``List<number>``, strings
  such as ``"[1 2 3]"`` / ``"[1,2,3]"`` -- are converted once to float32 and cached.
* Inverse row norms for cosine are computed once per column on first use and cached.

The cache is keyed on the identity of the ``pa.Table`` object (tables are not hashable) and
holds only a weak reference to it; a finalizer drops the entry when the table is collected, so
an entry lives exactly as long as the table the catalog holds.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..errors import ColumnNotFoundError, VelariaError, VelariaValueError

__all__ = ["VectorColumn", "vector_column", "parse_vector_text"]


def parse_vector_text(text: str) -> list[float]:
    """Parse ``"[1 2 3]"``, ``"[1,2,3]"``, ``"1.0,0.0"`` or ``"1 0 0"`` into floats (``[]`` if empty)."""
    if not isinstance(text, str):
        raise TypeError("vector text must be a str")
    body = text.strip()
    if body.startswith("["):
        body = body[1:]
    if body.endswith("]"):
        body = body[:-1]
    body = body.strip()
    if not body:
        return []
    parts = [p.strip() for p in body.split(",")] if "," in body else body.split()
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise VelariaValueError(f"invalid vector text: {text!r}") from None


@dataclass
class VectorColumn:
    """A vector column ready for the kernels."""

    flat: np.ndarray            # float32, n_rows * dim (a view of the Arrow buffer when possible)
    dim: int                    # 0 when the column has no non-null vector
    n_rows: int
    valid: np.ndarray | None    # uint8 per row, None when no row is NULL
    candidate_rows: int         # non-null vectors
    zero_copy: bool
    _inv_norms: np.ndarray | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def inv_norms(self) -> np.ndarray:
        """``1/||row||`` per row in float64 (0.0 for zero rows), computed once."""
        if self._inv_norms is None:
            with self._lock:
                if self._inv_norms is None:
                    self._inv_norms = inverse_norms(self.flat, self.dim, self.n_rows)
        return self._inv_norms


def inverse_norms(flat: np.ndarray, dim: int, n_rows: int) -> np.ndarray:
    """``1/||row||`` in float64 for each row of a row-major float32 buffer (0.0 for zero rows).

    Bit-identical to the reference's ``inv_norm`` (a sequential float64 sum of squares per
    row), because the kernels' scores are defined with it: the C accelerator computes it when
    loaded; otherwise numpy sums column after column, which is the same sequential order for
    every row at once.
    """
    if dim == 0 or n_rows == 0:
        return np.zeros(n_rows, dtype=np.float64)
    from .. import accel
    if accel.c_available():
        return accel._loader.inv_norms_f32(flat, dim, n_rows)
    rows = flat[: n_rows * dim].reshape(n_rows, dim)
    squares = np.zeros(n_rows, dtype=np.float64)
    step = 8192  # keeps each block's float64 copy in cache
    for start in range(0, n_rows, step):
        block = rows[start:start + step].astype(np.float64)
        acc = squares[start:start + step]
        for j in range(dim):
            acc += block[:, j] * block[:, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(squares > 0.0, 1.0 / np.sqrt(squares), 0.0)


#: id(table) -> (weak reference to the table, {column: VectorColumn})
_CACHE: dict[int, tuple[weakref.ref, dict[str, VectorColumn]]] = {}
_CACHE_LOCK = threading.Lock()


def _forget(key: int) -> None:
    _CACHE.pop(key, None)


def vector_column(table: pa.Table, column: str) -> VectorColumn:
    """The cached :class:`VectorColumn` for ``table[column]``."""
    key = id(table)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is table and column in hit[1]:
        return hit[1][column]
    if column not in table.column_names:
        raise ColumnNotFoundError(f"column not found: {column}")
    vc = _ingest(table.column(column), column)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is None or hit[0]() is not table:
            hit = (weakref.ref(table), {})
            _CACHE[key] = hit
            weakref.finalize(table, _forget, key)
        hit[1].setdefault(column, vc)
        return hit[1][column]


def _not_vector(column: str, typ: pa.DataType, why: str = "") -> VelariaValueError:
    extra = f"; {why}" if why else ""
    return VelariaValueError(f"column is not a vector column: {column} (type {typ}{extra}); "
                             "expected FixedSizeList<float32>, a list of numbers, or vector text such as '[1 2 3]'")


def _valid_mask(arr: pa.Array) -> np.ndarray | None:
    if arr.null_count == 0:
        return None
    return np.ascontiguousarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)


def _with_element_nulls(valid: np.ndarray | None, child: pa.Array, n_rows: int,
                        dim: int) -> np.ndarray | None:
    """The row mask with every vector that has a NULL *element* marked invalid.

    A vector with a missing component has no defined score (the bytes under a NULL slot are
    arbitrary), so such a row is skipped like a NULL vector -- the same rule as a list or text
    vector holding a NULL.
    """
    if dim == 0 or child.null_count == 0:
        return valid
    elements = np.asarray(child.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    complete = elements.reshape(n_rows, dim).all(axis=1)
    out = complete.astype(np.uint8) if valid is None else (valid.astype(bool) & complete).astype(np.uint8)
    return np.ascontiguousarray(out)


def _finish(flat: np.ndarray, dim: int, n_rows: int, valid: np.ndarray | None, zero_copy: bool) -> VectorColumn:
    candidates = n_rows if valid is None else int(valid.sum())
    if candidates == 0:
        dim = 0
    return VectorColumn(flat=flat, dim=dim, n_rows=n_rows, valid=valid, candidate_rows=candidates,
                        zero_copy=zero_copy)


def _ingest(chunked: pa.ChunkedArray, column: str) -> VectorColumn:
    typ = chunked.type
    n_rows = len(chunked)
    if pa.types.is_fixed_size_list(typ):
        dim = typ.list_size
        if not (pa.types.is_floating(typ.value_type) or pa.types.is_integer(typ.value_type)):
            raise _not_vector(column, typ)
        if chunked.num_chunks == 1 and pa.types.is_float32(typ.value_type) and dim > 0:
            arr = chunked.chunk(0)
            child = arr.values
            buf = child.buffers()[1]
            start = child.offset + arr.offset * dim
            flat = np.frombuffer(buf, dtype=np.float32, count=n_rows * dim, offset=start * 4) \
                if n_rows else np.zeros(0, dtype=np.float32)
            valid = _with_element_nulls(_valid_mask(arr), arr.values.slice(arr.offset * dim, n_rows * dim),
                                        n_rows, dim)
            return _finish(flat, dim, n_rows, valid, zero_copy=True)
        arr = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
        if isinstance(arr, pa.ChunkedArray):  # pragma: no cover - older pyarrow
            arr = pa.concat_arrays(arr.chunks)
        child = arr.values.slice(arr.offset * dim, n_rows * dim)
        valid = _with_element_nulls(_valid_mask(arr), child, n_rows, dim)
        flat = np.ascontiguousarray(child.to_numpy(zero_copy_only=False), dtype=np.float32)
        return _finish(flat.reshape(-1), dim, n_rows, valid, zero_copy=False)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        if not (pa.types.is_floating(typ.value_type) or pa.types.is_integer(typ.value_type)):
            raise _not_vector(column, typ)
        cells = chunked.to_pylist()
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        cells = []
        for i, text in enumerate(chunked.to_pylist()):
            if text is None:
                cells.append(None)
                continue
            try:
                cells.append(parse_vector_text(text))
            except VelariaValueError:
                raise _not_vector(column, typ, f"row {i} is not vector text: {text!r}") from None
    elif pa.types.is_null(typ):
        cells = [None] * n_rows
    else:
        raise _not_vector(column, typ)
    return _from_cells(cells, column, typ)


def _from_cells(cells: list, column: str, typ: pa.DataType) -> VectorColumn:
    n_rows = len(cells)
    dim = None
    for cell in cells:
        if cell is None:
            continue
        if dim is None:
            dim = len(cell)
        elif len(cell) != dim:
            raise VelariaError("fixed vector length mismatch in vector column cache: "
                               f"column {column} has vectors of {dim} and {len(cell)} dimensions")
    dim = dim or 0
    flat = np.zeros(n_rows * dim, dtype=np.float32)
    valid = np.ones(n_rows, dtype=np.uint8)
    for i, cell in enumerate(cells):
        if cell is None or (dim and any(v is None for v in cell)):
            valid[i] = 0
        elif dim:
            flat[i * dim:(i + 1) * dim] = cell
    has_nulls = not valid.all()
    return _finish(flat, dim, n_rows, valid if has_nulls else None, zero_copy=False)
