"""Fused numeric expressions and compound predicates: one program per tree, run blockwise.

A tree of ``+ - * /``, unary minus, comparisons and ``AND`` / ``OR`` / ``NOT`` over int64 and
float64 columns and numeric literals is translated into one program (numexpr syntax, which is
also numpy syntax). Numeric trees run in numexpr, which evaluates the whole program over
cache-sized blocks on several threads, so the intermediates never reach main memory.
Predicates (and numeric trees when numexpr is not installed) run the same program with numpy
over 65,536-row blocks: measured on 10M rows, numexpr's boolean operators were 4-8x slower
than blocked numpy, while for arithmetic numexpr was the faster one.

numexpr's and numpy's arithmetic is not ours everywhere, so the translation keeps our rules
around it:

* **NULL.** The program reads the raw value buffers (a NULL slot holds an arbitrary value). A
  numeric term carries the conjunction of its columns' validity masks (and, for ``/``, of
  ``divisor != 0``, since a zero divisor gives NULL); the result's NULLs come from that
  conjunction. A predicate is translated as two programs, *is TRUE* and *is FALSE*, so
  Kleene logic is exact: ``T(a AND b) = T(a) & T(b)``, ``F(a AND b) = F(a) | F(b)``, and a
  comparison is TRUE only where its operands are valid.
* **Integer overflow.** Our int64 arithmetic raises on overflow; numexpr's and numpy's wrap.
  An integer ``+ - *`` or negation is fused only when interval arithmetic over the columns'
  minimum and maximum proves that no row can overflow; otherwise that subtree is not fused
  (the per-node path checks every row and raises the reference's error).
* **NaN ordering.** Our comparisons put NaN above every number and equal to itself; IEEE
  comparisons are false for NaN. A comparison whose operands may be NaN is patched in the
  program (``where(a != a | b != b, nan_rank(a) op nan_rank(b), a op b)``).
* **Int vs float.** An integer compared with a float is widened to float64 only when its
  interval lies within +-2**53 (exact), as the per-node path does; integer operands of float
  arithmetic are widened exactly as ``cast(float64)`` does.
* **Floats.** Each ``+ - * /`` is one IEEE operation on float64 in the tree's order (neither
  executor contracts ``a * b + c`` into a fused multiply-add or reassociates), so results are
  bit-identical to the per-node path, -0.0 and NaN included.

Anything else (``%``, functions, casts, strings, other column types, columns with chunks,
trees without a column) is left to the caller, which evaluates it node by node: the fallback
is per subtree. The path that ran is reported (``numexpr`` or ``numpy-fused``) to the
operator, so explain names it.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from velaria.plan.expr import Call, Column, Expr, Literal
from velaria.plan.kernel_paths import report

from . import batch_c
from .arrow_util import _TWO53

try:
    import numexpr as _ne
    import_error: BaseException | None = None
except ImportError as exc:      # optional dependency: kept so explain can say why
    _ne = None
    import_error = exc

__all__ = ["available", "status", "MIN_ROWS", "fused_values", "fused_true_mask", "can_fuse"]

#: below this many rows the per-call setup outweighs what fusing saves
MIN_ROWS = 1 << 15
#: rows per block of the numpy executor (a block's temporaries stay in the L2 cache)
BLOCK_ROWS = 1 << 16

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_ARITH = ("+", "-", "*", "/")
_CMP = ("=", "!=", "<", "<=", ">", ">=")
_NE_CMP = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_LOGIC = ("and", "or", "not")


def available() -> bool:
    """True when numexpr imported."""
    return _ne is not None


def status() -> str:
    """``numexpr-<version> (threads=N)``, or why the numpy paths run instead."""
    if _ne is None:
        return f"numpy (numexpr missing: {type(import_error).__name__}: {import_error})"
    return f"numexpr-{_ne.__version__} (threads={_ne.get_num_threads()})"


class _NotFusable(Exception):
    """Internal: this subtree has a node numexpr cannot compute with our semantics."""


class _Num:
    """A numeric term: numexpr source, kind (``"i"`` int64 / ``"f"`` float64), the validity
    conjuncts (program texts that are TRUE where the term is not NULL), whether it may be NaN,
    and for integers the interval its non-NULL values lie in."""

    __slots__ = ("text", "kind", "valid", "may_nan", "_lo", "_hi", "_source")

    def __init__(self, text, kind, valid, may_nan=False, lo=None, hi=None, source=None):
        self.text, self.kind, self.valid, self.may_nan = text, kind, valid, may_nan
        self._lo, self._hi, self._source = lo, hi, source

    def _bounds(self):
        if self._source is not None:      # an integer column: min and max read when first needed
            mm = pc.min_max(self._source)
            self._lo, self._hi, self._source = mm["min"].as_py(), mm["max"].as_py(), None

    @property
    def lo(self) -> int:
        self._bounds()
        return self._lo

    @property
    def hi(self) -> int:
        self._bounds()
        return self._hi


class _Bool:
    """A predicate term: programs for "is TRUE" and "is FALSE" (NULL is neither)."""

    __slots__ = ("true", "false")

    def __init__(self, true, false):
        self.true, self.false = true, false


def _shape_ok(e: Expr) -> bool:
    """Cheap structural check (no data read): only fusable node kinds, at least one column."""
    has_col = False
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Column):
            if not (pat.is_int64(x.type) or pat.is_float64(x.type)):
                return False
            has_col = True
        elif isinstance(x, Literal):
            v, t = x.value, x.type
            if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
                return False
            if not (pat.is_float64(t) or (pat.is_integer(t) and not pat.is_uint64(t))):
                return False
        elif isinstance(x, Call):
            if x.name in _ARITH or x.name in _CMP:
                if len(x.args) != 2:
                    return False
            elif x.name not in _LOGIC and x.name != "neg":
                return False
            stack.extend(x.args)
        else:
            return False
    return has_col


def can_fuse(e: Expr, batch: pa.RecordBatch) -> bool:
    """True when the batch is large enough and ``e``'s shape is fusable (the data may still
    rule it out: overflow that cannot be excluded, chunked columns)."""
    return batch.num_rows >= MIN_ROWS and isinstance(e, Call) and _shape_ok(e)


class _Program:
    """Translation of one tree for one batch: variables bound to numpy views of the columns."""

    def __init__(self, batch: pa.RecordBatch):
        self.batch = batch
        self.vars: dict[str, object] = {}
        self._cols: dict[int, _Num] = {}
        self._lit_names: dict[tuple, str] = {}

    # ---- leaves

    def column(self, e: Column) -> _Num:
        hit = self._cols.get(e.index)
        if hit is not None:
            return hit
        arr = self.batch.column(e.index)
        if isinstance(arr, pa.ChunkedArray) or not arr.type.equals(e.type):
            raise _NotFusable
        n = len(arr)
        kind = "f" if pat.is_float64(arr.type) else "i"
        dtype = np.float64 if kind == "f" else np.int64
        name = f"c{e.index}"
        self.vars[name] = np.frombuffer(arr.buffers()[1], dtype=dtype, count=arr.offset + n)[arr.offset:]
        valid = []
        if arr.null_count:
            if arr.null_count == n:
                raise _NotFusable          # an all-NULL column: the per-node path is trivial
            vname = f"m{e.index}"
            self.vars[vname] = pc.is_valid(arr).to_numpy(zero_copy_only=False)
            valid.append(vname)
        term = self._cols[e.index] = _Num(name, kind, valid, may_nan=kind == "f", source=arr)
        return term

    def literal(self, e: Literal) -> _Num:
        v = e.value
        kind = "f" if pat.is_floating(e.type) or isinstance(v, float) else "i"
        key = (kind, repr(float(v) if kind == "f" else v))     # one variable per distinct constant
        name = self._lit_names.get(key)
        if name is None:
            name = self._lit_names[key] = f"k{len(self._lit_names)}"
            if kind == "i" and not _INT64_MIN <= v <= _INT64_MAX:
                raise _NotFusable
            self.vars[name] = np.float64(v) if kind == "f" else np.int64(v)
        if kind == "f":
            return _Num(name, "f", [], may_nan=v != v)
        return _Num(name, "i", [], lo=v, hi=v)

    # ---- numbers

    def num(self, e: Expr) -> _Num:
        if isinstance(e, Column):
            return self.column(e)
        if isinstance(e, Literal):
            return self.literal(e)
        if not isinstance(e, Call) or not (e.name in _ARITH or e.name == "neg"):
            raise _NotFusable
        if e.name == "neg":
            a = self.num(e.args[0])
            if a.kind == "i":
                _fits(-a.hi, -a.lo)
                return _Num(f"(-{a.text})", "i", a.valid, lo=-a.hi, hi=-a.lo)
            return _Num(f"(-{a.text})", "f", a.valid, may_nan=a.may_nan)
        a, b = (self.num(x) for x in e.args)
        valid = a.valid + b.valid
        text = f"({a.text} {e.name} {b.text})"
        if e.name == "/":           # float64 quotient; a zero divisor (0.0 or -0.0) gives NULL
            if not pat.is_float64(e.type):
                raise _NotFusable
            return _Num(text, "f", valid + [f"({b.text} != 0)"], may_nan=True)
        if a.kind == "i" and b.kind == "i":
            if not pat.is_int64(e.type):
                raise _NotFusable
            _fits(*_interval(e.name, a, b))
            lo, hi = _interval(e.name, a, b)
            return _Num(text, "i", valid, lo=lo, hi=hi)
        if not pat.is_float64(e.type):
            raise _NotFusable
        # inf - inf, 0 * inf: NaN can appear even from NaN-free operands
        return _Num(text, "f", valid, may_nan=True)

    # ---- predicates

    def pred(self, e: Expr) -> _Bool:
        if not isinstance(e, Call):
            raise _NotFusable
        if e.name == "not":
            a = self.pred(e.args[0])
            return _Bool(a.false, a.true)
        if e.name in ("and", "or"):          # any number of operands
            parts = [self.pred(x) for x in e.args]
            if not parts:
                raise _NotFusable
            trues = [p.true for p in parts]
            falses = [p.false for p in parts]
            if e.name == "and":
                return _Bool("(" + " & ".join(trues) + ")", "(" + " | ".join(falses) + ")")
            return _Bool("(" + " | ".join(trues) + ")", "(" + " & ".join(falses) + ")")
        if e.name not in _CMP:
            raise _NotFusable
        left, right = e.args
        op = e.name
        if isinstance(left, Literal) and not isinstance(right, Literal):
            left, right, op = right, left, _FLIP[op]
        a, b = self.num(left), self.num(right)
        for side in (a, b):       # int vs float compares exactly only within +-2**53
            if side.kind == "i" and (a.kind == "f" or b.kind == "f") and not (-_TWO53 <= side.lo and side.hi <= _TWO53):
                raise _NotFusable
        value = f"({a.text} {_NE_CMP[op]} {b.text})"
        if a.may_nan or b.may_nan:
            value = _nan_ordered(op, a, b, value)
        valid = _conj(a.valid + b.valid)
        if valid is None:
            return _Bool(value, f"(~{value})")
        return _Bool(f"({value} & {valid})", f"((~{value}) & {valid})")

    # ---- running

    def run_numexpr(self, text: str, out: np.ndarray) -> np.ndarray:
        """The program over the whole batch in numexpr (multi-threaded)."""
        return _ne.evaluate(text, local_dict=self.vars, out=out)

    def run_blocked(self, text: str, out: np.ndarray) -> np.ndarray:
        """The program with numpy, one block of rows at a time (the text is numpy syntax too;
        ``where`` is ``numpy.where``)."""
        for lo, hi, values in self._blocks(text):
            out[lo:hi] = values
        return out

    def _blocks(self, text: str):
        """``(lo, hi, program over rows lo..hi)`` per block of ``BLOCK_ROWS`` rows."""
        code = compile(text, "<fused program>", "eval")
        arrays = {k: v for k, v in self.vars.items() if isinstance(v, np.ndarray) and v.ndim == 1}
        scalars = {k: v for k, v in self.vars.items() if k not in arrays}
        env = {"where": np.where, "__builtins__": {}}
        n = self.batch.num_rows
        with np.errstate(all="ignore"):     # inf - inf, x / 0: values here, not warnings
            for lo in range(0, n, BLOCK_ROWS):
                hi = min(n, lo + BLOCK_ROWS)
                local = dict(scalars)
                local.update((k, a[lo:hi]) for k, a in arrays.items())
                yield lo, hi, eval(code, env, local)

    def mask(self, text: str) -> np.ndarray:
        return self.run_blocked(text, batch_c._pool_empty(self.batch.num_rows, np.bool_))

def _fits(lo: int, hi: int) -> None:
    if lo < _INT64_MIN or hi > _INT64_MAX:
        raise _NotFusable           # some row may overflow: the checked per-node path decides


def _interval(op: str, a: _Num, b: _Num) -> tuple[int, int]:
    """The interval of ``a op b`` for every pair of values in the operands' intervals."""
    if op == "+":
        return a.lo + b.lo, a.hi + b.hi
    if op == "-":
        return a.lo - b.hi, a.hi - b.lo
    corners = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
    return min(corners), max(corners)


def _nan_ordered(op: str, a: _Num, b: _Num, ieee: str) -> str:
    """``a op b`` with NaN above every number and equal to NaN."""
    na = f"({a.text} != {a.text})" if a.may_nan else None
    nb = f"({b.text} != {b.text})" if b.may_nan else None
    if nb is None and op in ("=", "!=", "<", "<="):
        return ieee               # NaN on the left only: IEEE already answers as we do
    if nb is None:                # NaN > x and NaN >= x are TRUE
        return f"({ieee} | {na})"
    if na is None and op in ("=", "!=", ">", ">="):
        return ieee               # x = NaN, x != NaN, x > NaN, x >= NaN: IEEE answers as we do
    if na is None:                # x < NaN and x <= NaN are TRUE
        return f"({ieee} | {nb})"
    rank = f"(where({na}, 1, 0) {_NE_CMP[op]} where({nb}, 1, 0))"
    return f"where({na} | {nb}, {rank}, {ieee})"


def _conj(parts: list[str]) -> str | None:
    parts = list(dict.fromkeys(parts))          # a column used twice contributes one mask
    if not parts:
        return None
    return "(" + " & ".join(parts) + ")"


def _bitmap(valid: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def fused_values(e: Expr, batch: pa.RecordBatch) -> pa.Array | None:
    """``e`` over ``batch`` in one fused pass, an Arrow array of ``e.type``; None when some
    node of ``e`` is not fusable (the caller evaluates ``e`` node by node)."""
    prog = _Program(batch)
    n = batch.num_rows
    try:
        if isinstance(e, Call) and (e.name in _CMP or e.name in _LOGIC):
            p = prog.pred(e)
            true = prog.mask(p.true)
            known = prog.mask(f"({p.true} | {p.false})")
            report("numpy-fused")
            validity = None if known.all() else _bitmap(known)
            return pa.Array.from_buffers(pa.bool_(), n, [validity, _bitmap(true)])
        term = prog.num(e)
    except (_NotFusable,) + _TOO_BIG:        # a very deep tree: the per-node path decides
        return None
    t = pa.float64() if term.kind == "f" else pa.int64()
    if not e.type.equals(t):
        return None
    out = batch_c._pool_empty(n, np.float64 if term.kind == "f" else np.int64)
    try:
        path = _run_numeric(prog, term.text, out)
        valid = _conj(term.valid)
        mask = None if valid is None else prog.mask(valid)
    except _TOO_BIG:
        return None
    report(path)
    validity = None if mask is None or mask.all() else _bitmap(mask)
    return pa.Array.from_buffers(t, n, [validity, pa.py_buffer(out)])


#: a program too large for numexpr (operand limit) or for Python's parser (nesting limit)
_TOO_BIG = (SyntaxError, RecursionError, MemoryError, ValueError)


def _run_numeric(prog: _Program, text: str, out: np.ndarray) -> str:
    """Run a numeric program into ``out``: numexpr when installed and the program fits its
    operand limit, else blocked numpy. Returns the path name."""
    if _ne is not None and len(prog.vars) <= _NUMEXPR_MAX_INPUTS:
        try:
            prog.run_numexpr(text, out)
            return "numexpr"
        except _TOO_BIG:
            pass
    prog.run_blocked(text, out)
    return "numpy-fused"


#: numexpr compiles at most this many input arrays / constants into one program
_NUMEXPR_MAX_INPUTS = 30


def fused_true_mask(e: Expr, batch: pa.RecordBatch) -> np.ndarray | None:
    """A numpy bool array: where predicate ``e`` is TRUE (FALSE and NULL are False); None when
    ``e`` is not fusable."""
    prog = _Program(batch)
    try:
        p = prog.pred(e)
        mask = prog.mask(p.true)
    except (_NotFusable,) + _TOO_BIG:
        return None
    report("numpy-fused")
    return mask

