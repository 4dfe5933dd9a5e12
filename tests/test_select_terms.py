"""The compound-WHERE selection kernel and the short-string key packing
(``accel/src/select_terms.c``): C against the numpy twins (``accel/select_terms.py``), the
accelerated ``filter_batch`` against the reference's, and explain naming the path that ran.

Generated data has NULLs, NaN, -0.0, +-inf, int64 / int32 extremes, empty batches, constants
equal to column values (ties) and constants at the edges of each type."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.plan.expr import Call, Column, Literal
from velaria.plan.kernel_paths import collecting
from velaria.reference import batch as ref_batch
from velaria.reference.functions import EvalContext

select_terms = pytest.importorskip("velaria.accel.select_terms")
from velaria.accel import predicates as acc_predicates  # noqa: E402
from engine_pair import on_both_engines  # noqa: E402

needs_c = pytest.mark.skipif(not select_terms.c_available(), reason="C selection kernels not built")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
CTX = EvalContext.current()
OPS = ["=", "!=", "<", "<=", ">", ">="]

F_EDGES = [0.0, -0.0, 0.5, -2.5, math.nan, math.inf, -math.inf, 1e300, 5e-324, 3.0]
I64_EDGES = [0, 1, -1, 7, -(2 ** 63), 2 ** 63 - 1, 2 ** 53 + 1]
I32_EDGES = [0, 1, -1, 7, -(2 ** 31), 2 ** 31 - 1]


def _column(draw, kind, n):
    if kind == "f":
        values = draw(st.lists(st.one_of(st.sampled_from(F_EDGES), st.floats()), min_size=n, max_size=n))
        return np.array(values, dtype=np.float64)
    edges, lo, hi, dtype = (I64_EDGES, -(2 ** 63), 2 ** 63 - 1, np.int64) if kind == "i" else \
        (I32_EDGES, -(2 ** 31), 2 ** 31 - 1, np.int32)
    values = draw(st.lists(st.one_of(st.sampled_from(edges), st.integers(lo, hi)), min_size=n, max_size=n))
    return np.array(values, dtype=dtype)


@st.composite
def term_sets(draw):
    n = draw(st.integers(0, 40))
    terms = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from("fil"))
        values = _column(draw, kind, n)
        if n and draw(st.booleans()):               # a tie: the constant is one of the values
            constant = values[draw(st.integers(0, n - 1))].item()
            if kind == "f" and constant != constant:
                constant = 0.0
        elif kind == "f":
            constant = draw(st.sampled_from([c for c in F_EDGES if c == c]))
        else:
            constant = draw(st.sampled_from(I64_EDGES if kind == "i" else I32_EDGES))
        valid = None
        if draw(st.booleans()):
            valid = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.uint8)
        terms.append(select_terms.Term(values, valid, draw(st.sampled_from(OPS)), constant))
    return n, terms


def _expected(n, terms):
    """Row-by-row: NaN above every number and equal to itself, NULL drops the row."""
    keep = []
    for i in range(n):
        ok = True
        for t in terms:
            if t.valid is not None and not t.valid[i]:
                ok = False
                break
            v, c = t.values[i].item(), t.constant
            if isinstance(v, float) and v != v:
                ok = ok and t.op in ("!=", ">", ">=")
            else:
                ok = ok and {"=": v == c, "!=": v != c, "<": v < c, "<=": v <= c, ">": v > c, ">=": v >= c}[t.op]
        keep.append(ok)
    return np.array(keep, dtype=bool)


@needs_c
@SETTINGS
@given(term_sets())
def test_and_cmp_c_matches_twin_and_row_rules(case):
    n, terms = case
    want = _expected(n, terms)
    mask_c, kept_c, idx_c = select_terms.and_cmp(terms, n, want_idx=True, use_c=True)
    mask_np, kept_np, idx_np = select_terms.and_cmp(terms, n, want_idx=True, use_c=False)
    assert np.array_equal(mask_c, want) and np.array_equal(mask_np, want)
    assert kept_c == kept_np == int(want.sum())
    for idx in (idx_c, idx_np):         # row numbers only while few rows are kept
        assert idx is None or np.array_equal(idx, np.flatnonzero(want))


@needs_c
@pytest.mark.parametrize("threads", ["1", "2", "5"])
def test_and_cmp_threads_give_the_same_rows(monkeypatch, threads):
    monkeypatch.setenv("VELARIA_THREADS", threads)
    monkeypatch.setattr(select_terms, "_ROWS_PER_THREAD", 1000)
    rng = np.random.default_rng(7)
    n = 50_001                                     # blocks of 2048 rows, a ragged last one
    x = rng.random(n)
    x[rng.integers(0, n, 500)] = math.nan
    d = rng.integers(0, 1000, n).astype(np.int32)
    valid = (rng.random(n) > 0.1).astype(np.uint8)
    terms = [select_terms.Term(x, None, ">", 0.25), select_terms.Term(d, valid, "<", 700)]
    mask, kept, idx = select_terms.and_cmp(terms, n, want_idx=True, use_c=True)
    want = (~(x <= 0.25)) & (d < 700) & valid.astype(bool)
    assert kept == int(want.sum()) and np.array_equal(mask, want)
    assert idx is None                  # about half the rows kept: compacted by the mask
    sparse = [select_terms.Term(x, None, ">", 0.97), select_terms.Term(d, valid, "<", 700)]
    mask, kept, idx = select_terms.and_cmp(sparse, n, want_idx=True, use_c=True)
    want = (~(x <= 0.97)) & (d < 700) & valid.astype(bool)       # NaN is above 0.97
    assert kept == int(want.sum()) and np.array_equal(idx, np.flatnonzero(want))


# ------------------------------------------------------------------------ filter_batch


DAY = dt.date(1994, 1, 1)


@st.composite
def date_batches(draw):
    n = draw(st.integers(1, 30))
    opt = lambda s: st.one_of(st.none(), s)  # noqa: E731
    days = draw(st.lists(opt(st.integers(-3, 3).map(lambda k: DAY + dt.timedelta(days=k))), min_size=n, max_size=n))
    stamps = draw(st.lists(opt(st.integers(-3, 3).map(lambda k: dt.datetime(1994, 1, 1) + dt.timedelta(hours=12 * k))),
                           min_size=n, max_size=n))
    floats = draw(st.lists(opt(st.sampled_from(F_EDGES)), min_size=n, max_size=n))
    ints = draw(st.lists(opt(st.sampled_from(I64_EDGES)), min_size=n, max_size=n))
    small = draw(st.lists(opt(st.sampled_from(I32_EDGES)), min_size=n, max_size=n))
    return pa.record_batch([pa.array(days, pa.date32()), pa.array(stamps, pa.timestamp("us")),
                            pa.array(floats, pa.float64()), pa.array(ints, pa.int64()),
                            pa.array(small, pa.int32())], names=["d", "ts", "f", "i", "s"])


_COLS = [Column(type=pa.date32(), index=0, name="d"), Column(type=pa.timestamp("us"), index=1, name="ts"),
         Column(type=pa.float64(), index=2, name="f"), Column(type=pa.int64(), index=3, name="i"),
         Column(type=pa.int32(), index=4, name="s")]


def _constants(col):
    t = col.type
    if pa.types.is_date32(t) or pa.types.is_timestamp(t):
        return st.one_of(
            st.integers(-2, 2).map(lambda k: Literal(type=pa.date32(), value=DAY + dt.timedelta(days=k))),
            st.integers(-4, 4).map(lambda k: Literal(type=pa.timestamp("us"),
                                                     value=dt.datetime(1994, 1, 1) + dt.timedelta(hours=12 * k))),
            st.just(Literal(type=pa.date32(), value=None)))
    if pa.types.is_floating(t):
        return st.one_of(st.sampled_from([c for c in F_EDGES if c == c]).map(lambda v: Literal(type=pa.float64(), value=v)),
                         st.sampled_from([0, 3, -1, 2 ** 53, 2 ** 53 + 1]).map(lambda v: Literal(type=pa.int64(), value=v)))
    return st.one_of(st.sampled_from(I64_EDGES + I32_EDGES).map(lambda v: Literal(type=pa.int64(), value=v)),
                     st.sampled_from([0.5, -0.0, 3.0]).map(lambda v: Literal(type=pa.float64(), value=v)))


@st.composite
def conjunctions(draw):
    terms = []
    for _ in range(draw(st.integers(1, 4))):
        col = draw(st.sampled_from(_COLS))
        const = draw(_constants(col))
        op = draw(st.sampled_from(OPS))
        args = (col, const) if draw(st.booleans()) else (const, col)
        terms.append(Call(type=pa.bool_(), name=op, args=args))
    while len(terms) > 1:                    # binary ANDs nested in any shape (BETWEEN lowers so)
        i = draw(st.integers(0, len(terms) - 2))
        terms[i:i + 2] = [Call(type=pa.bool_(), name="and", args=(terms[i], terms[i + 1]))]
    return terms[0]


def _canon(v):
    if isinstance(v, float):
        return ("nan",) if v != v else ("f", v, math.copysign(1.0, v))
    return v


@SETTINGS
@given(pred=conjunctions(), batch=date_batches())
def test_filter_batch_conjunction_matches_reference(pred, batch):
    want = ref_batch.filter_batch(pred, batch, CTX)
    got = acc_predicates.filter_batch(pred, batch, CTX)
    assert got.num_rows == want.num_rows, repr(pred)
    for j in range(got.num_columns):
        assert [_canon(v) for v in got.column(j).to_pylist()] == [_canon(v) for v in want.column(j).to_pylist()]


@needs_c
def test_filter_batch_takes_the_c_pass_for_a_q6_shaped_where():
    rng = np.random.default_rng(1)
    n = 5000
    batch = pa.record_batch([pa.array(rng.integers(8700, 9200, n).astype(np.int32), pa.date32()),
                             pa.array(rng.integers(0, 11, n) / 100.0), pa.array(rng.integers(1, 51, n).astype(float))],
                            names=["d", "disc", "q"])
    d, disc, q = (Column(type=batch.schema.field(i).type, index=i, name=batch.schema.names[i]) for i in range(3))
    b = lambda name, *a: Call(type=pa.bool_(), name=name, args=a)  # noqa: E731
    pred = b("and", b("and", b(">=", d, Literal(type=pa.date32(), value=dt.date(1994, 1, 1))),
                      b("<", d, Literal(type=pa.date32(), value=dt.date(1995, 1, 1)))),
             b("and", b("and", b(">=", disc, Literal(type=pa.float64(), value=0.05)),
                        b("<=", disc, Literal(type=pa.float64(), value=0.07))),
               b("<", q, Literal(type=pa.int64(), value=24))))
    paths: dict = {}
    with collecting(paths):
        got = acc_predicates.filter_batch(pred, batch, CTX)
    assert list(paths) == ["and-cmp"]
    assert got.equals(ref_batch.filter_batch(pred, batch, CTX))


def test_explain_names_and_cmp_and_results_match_the_reference():
    rng = np.random.default_rng(2)
    n = 70_000
    table = pa.table({"l_shipdate": pa.array(rng.integers(8000, 10000, n).astype(np.int32), pa.date32()),
                      "l_discount": rng.integers(0, 11, n) / 100.0,
                      "l_quantity": rng.integers(1, 51, n).astype(float),
                      "l_extendedprice": np.round(rng.uniform(900, 2000, n), 2)})
    sql = """SELECT sum(l_extendedprice * l_discount) AS revenue FROM t
             WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1994-01-01' + INTERVAL '1' YEAR
               AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24"""
    frames = on_both_engines(table, sql)
    out = {engine: df.to_arrow() for engine, df in frames.items()}
    if select_terms.c_available():
        steps = {st.kind: st for st in frames["auto"]._physical_plan().steps}
        # the product is summed in the pass that tests the terms (no filtered column built)
        assert steps["Filter"].ran_path == "and-cmp+sum-where"
        assert "path=and-cmp+sum-where" in frames["auto"].explain()
    assert out["auto"].equals(out["reference"])


# ------------------------------------------------------------------------ short strings


STRINGS = st.one_of(st.none(), st.text(max_size=4), st.text(min_size=5, max_size=9),
                    st.sampled_from(["", "A", "N", "R", "abcdefg", "abcdefgh", "key-0001", "é", "\x00", "\x00\x00",
                                     "a\x00", "abcdefg\x00"]))


@needs_c
@SETTINGS
@given(st.lists(STRINGS, max_size=40), st.integers(0, 3))
def test_pack_short_str_c_matches_twin_and_equality(values, offset):
    arr = pa.array(["x"] * offset + values, pa.string()).slice(offset)
    c = select_terms.pack_short_str(arr, use_c=True)
    py = select_terms.pack_short_str(arr, use_c=False)
    fits = all(v is None or (len(v.encode()) <= 8 and "\x00" not in v) for v in values)
    if not fits:
        assert c is None and py is None
        return
    assert np.array_equal(c, py)
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            assert (c[i] == c[j]) == (a == b), (a, b)


@pytest.mark.parametrize("use_c", [False, pytest.param(True, marks=needs_c)])
def test_pack_short_str_refuses_what_it_cannot_pack_one_to_one(use_c):
    """Eight-byte values pack; a NUL byte ("a\\0" would pack as "a"), a ninth byte, or a binary
    value of eight 0xFF bytes (NULL's word) makes the packing unusable."""
    ok = select_terms.pack_short_str(pa.array(["key-0001", "key-0002", None, ""], pa.string()), use_c=use_c)
    assert ok is not None and len(set(ok.tolist())) == 4 and ok[2] == -1
    for bad in (pa.array(["a", "a\x00"], pa.string()), pa.array(["abcdefghi"], pa.string()),
                pa.array([b"\xff" * 8], pa.binary())):
        assert select_terms.pack_short_str(bad, use_c=use_c) is None


def test_a_double_literal_holding_an_integer_is_that_double():
    # DOUBLE 9223372036854775807 is 2**63 as a double: no int64 equals it (the reference
    # compares the int with the double exactly), so the C pass must not compare as integers
    batch = pa.record_batch({"k": pa.array([2 ** 63 - 1, 5], pa.int64())})
    k = Column(index=0, type=pa.int64(), name="k")
    pred = Call(name="=", args=(Literal(value=2 ** 63 - 1, type=pa.float64()), k), type=pa.bool_())
    want = ref_batch.filter_batch(pred, batch, CTX)
    assert want.num_rows == 0
    assert acc_predicates.filter_batch(pred, batch, CTX).equals(want)
