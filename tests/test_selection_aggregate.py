"""A Filter under a GROUP BY passes a batch that keeps most of its rows whole, with the kept
rows marked (``filter_select``), and the aggregate skips the others in place
(``HashAggregate.update(..., selection=...)``).

Checked: both twins of ``filter_select`` keep exactly ``filter_batch``'s rows; both twins of
the aggregate with a selection equal the reference over the compacted rows (NULLs, NaN, -0.0,
int64 extremes, decimals, empty strings, ties, a selection keeping nothing or everything,
keys that leave the several-key path); explain names the path; an expression that fails only
on a row the filter drops does not fail the query."""
from __future__ import annotations

import decimal
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.plan.expr import AggregateCall, Call, Column, Literal
from velaria.plan.kernel_paths import collecting
from velaria.reference import batch as ref_batch
from velaria.reference.aggregate import aggregate_result_type
from velaria.reference.functions import EvalContext

acc_aggregate = pytest.importorskip("velaria.accel.aggregate")
from velaria.accel import byte_keys, predicates as acc_predicates, select_terms  # noqa: E402
from engine_pair import on_both_engines  # noqa: E402

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
CTX = EvalContext.current()
DEC = pa.decimal128(15, 2)
SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string()), ("v", pa.float64()), ("i", pa.int64()), ("d", DEC)])
COLS = {f.name: Column(type=f.type, index=i, name=f.name) for i, f in enumerate(SCHEMA)}
SHORT = st.one_of(st.none(), st.sampled_from(["", "A", "N", "R", "\x00", "é"]), st.text(max_size=2))
LONG = st.one_of(SHORT, st.text(min_size=9, max_size=10))
FLOATS = st.one_of(st.none(), st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1.5]), st.floats(-1e6, 1e6))
INTS = st.one_of(st.none(), st.sampled_from([0, 1, -1, 2 ** 58, -(2 ** 58)]), st.integers(-1000, 1000))
DECS = st.one_of(st.none(), st.decimals(min_value=-10 ** 12, max_value=10 ** 12, places=2, allow_nan=False))


def _aggs():
    v, i, d = COLS["v"], COLS["i"], COLS["d"]
    spec = [("sum", v), ("avg", v), ("count", None), ("max", v), ("min", i), ("sum", i), ("sum", d),
            ("avg", d), ("count", v), ("sum", COLS["v"])]
    return [AggregateCall(type=aggregate_result_type(f, None if a is None else a.type), func=f, arg=a)
            for f, a in spec]


def _run(cls, batches, selections, num_keys):
    aggs = _aggs()
    h = cls(aggs, num_keys)
    for b, sel in zip(batches, selections):
        keys = [b.column(0), b.column(1)][:num_keys]
        args = [None if a.arg is None else b.column(a.arg.index) for a in aggs]
        if sel is None:
            h.update(keys, args, b.num_rows)
        else:
            h.update(keys, args, b.num_rows, selection=sel)
    types = [pa.string()] * num_keys + [a.type for a in aggs]
    return [[repr(x) for x in col.to_pylist()] for col in h.finish(types)]


@st.composite
def selected_batches(draw):
    batches, selections = [], []
    for k in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, 30))
        col = lambda s: draw(st.lists(s, min_size=n, max_size=n))  # noqa: E731
        batches.append(pa.record_batch([pa.array(col(LONG if k and draw(st.booleans()) else SHORT), pa.string()),
                                        pa.array(col(SHORT), pa.string()), pa.array(col(FLOATS), pa.float64()),
                                        pa.array(col(INTS), pa.int64()), pa.array(col(DECS), DEC)], schema=SCHEMA))
        sel = draw(st.sampled_from(["none", "numpy", "arrow"]))
        mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.bool_)
        selections.append(None if sel == "none" else mask if sel == "numpy" else pa.array(mask, pa.bool_()))
    return batches, selections


def _compacted(batches, selections):
    out = []
    for b, sel in zip(batches, selections):
        out.append(b if sel is None else b.filter(sel if isinstance(sel, pa.Array) else pa.array(sel, pa.bool_())))
    return out


@SETTINGS
@given(selected_batches(), st.sampled_from([0, 1, 2]))
def test_a_selection_folds_exactly_the_selected_rows(data, num_keys):
    batches, selections = data
    want = _run(ref_batch.HashAggregate, _compacted(batches, selections), [None] * len(batches), num_keys)
    assert _run(ref_batch.HashAggregate, batches, selections, num_keys) == want
    assert _run(acc_aggregate.HashAggregate, batches, selections, num_keys) == want


@pytest.mark.parametrize("width, path", [(1, "byte-pair"), (3, "packed-hash")])
def test_the_several_key_paths_number_only_selected_rows(width, path):
    # a group whose rows are all unselected never appears, and a later batch opens groups
    # after the earlier ones in first-appearance order of the selected rows
    w = lambda xs: pa.array([x * width for x in xs])  # noqa: E731
    b1 = pa.record_batch([w(["X", "A", "B", "A"]), pa.array(["1", "1", "2", "1"]), pa.array([9.0, 1.0, 2.0, -0.0]),
                          pa.array([1, 2, 3, 4]), pa.array([decimal.Decimal("1.00")] * 4, DEC)], schema=SCHEMA)
    b2 = pa.record_batch([w(["C", "X", "B"]), pa.array(["3", "1", "2"]), pa.array([5.0, 7.0, 0.5]),
                          pa.array([5, 6, 7]), pa.array([decimal.Decimal("2.50")] * 3, DEC)], schema=SCHEMA)
    sels = [np.array([False, True, True, True]), np.array([True, False, True])]
    h = acc_aggregate.HashAggregate(_aggs(), 2)
    for b, sel in zip([b1, b2], sels):
        h.update([b.column(0), b.column(1)], [None if a.arg is None else b.column(a.arg.index) for a in _aggs()],
                 b.num_rows, selection=sel)
    out = h.finish([pa.string(), pa.string()] + [a.type for a in _aggs()])
    assert out[0].to_pylist() == [x * width for x in "ABC"] and out[1].to_pylist() == ["1", "2", "3"]
    assert out[2].to_pylist() == [1.0, 2.5, 5.0] and out[4].to_pylist() == [2, 2, 1]
    if byte_keys.c_available():
        assert h.path == path


PRED_VALUES = st.lists(st.one_of(st.none(), st.sampled_from([0.0, -0.0, math.nan, 0.5, 1.0]), st.floats(-2, 2)),
                       max_size=40)


@SETTINGS
@given(PRED_VALUES, st.sampled_from(["<", "<=", ">", ">=", "=", "!="]), st.sampled_from([0.0, 0.5, -1.0, 2.0]),
       st.sampled_from([0.0, 0.5, 0.75, 1.0]))
def test_filter_select_twins_keep_the_filter_batch_rows(values, op, constant, share):
    batch = pa.record_batch([pa.array(values, pa.float64()), pa.array(range(len(values)), pa.int64())],
                            names=["x", "r"])
    pred = Call(type=pa.bool_(), name=op, args=(Column(type=pa.float64(), index=0, name="x"),
                                                  Literal(type=pa.float64(), value=constant)))
    want = ref_batch.filter_batch(pred, batch, CTX).column(1).to_pylist()
    for twin in (ref_batch.filter_select, acc_predicates.filter_select):
        kept, mask = twin(pred, batch, CTX, share)
        if mask is None:
            assert kept.column(1).to_pylist() == want
        else:
            assert kept is batch
            rows = np.flatnonzero(np.asarray(mask.to_pylist() if isinstance(mask, pa.Array) else mask, dtype=bool))
            assert rows.tolist() == want
            assert share * len(values) <= len(want) < len(values)


def _q1_table(n=70_000, seed=3):
    rng = np.random.default_rng(seed)
    return pa.table({"flag": pa.array(np.array(["A", "N", "R"], dtype=object)[rng.integers(0, 3, n)]),
                     "status": pa.array(np.array(["F", "O"], dtype=object)[rng.integers(0, 2, n)]),
                     "day": pa.array(rng.integers(8000, 10600, n).astype(np.int32), pa.date32()),
                     "price": np.round(rng.uniform(900, 2000, n), 2), "disc": rng.integers(0, 11, n) / 100.0,
                     "big": np.where(rng.random(n) < 0.03, 2 ** 62, rng.integers(0, 100, n))})


def test_explain_names_the_selection_and_results_match_the_reference():
    sql = """SELECT flag, status, sum(price * (1 - disc)) AS s, avg(disc) AS a, count(*) AS c
             FROM t WHERE day <= DATE '1998-09-02' GROUP BY flag, status ORDER BY flag, status"""
    frames = on_both_engines(_q1_table(), sql)
    out = {engine: df.to_arrow() for engine, df in frames.items()}
    assert out["auto"].equals(out["reference"])
    if select_terms.c_available():
        steps = {st.kind: st for st in frames["auto"]._physical_plan().steps}
        assert steps["Filter"].ran_path == "and-cmp+selection"
        assert "path=and-cmp+selection" in frames["auto"].explain()


def test_an_expression_failing_only_on_dropped_rows_does_not_fail_the_query():
    # big * 4 overflows BIGINT exactly on the rows whose value is 2**62; the WHERE drops them
    sql = """SELECT flag, status, sum(big * 4) AS s, count(*) AS c FROM t
             WHERE big <= 1000 GROUP BY flag, status ORDER BY flag, status"""
    frames = on_both_engines(_q1_table(), sql)
    out = {engine: df.to_arrow() for engine, df in frames.items()}
    assert out["auto"].equals(out["reference"])
    assert sum(out["auto"].column("c").to_pylist()) == int(np.count_nonzero(_q1_table()["big"].to_numpy() <= 1000))

