"""GROUP BY two string keys of one-byte values through the direct-indexed pair table
(``accel/src/byte_keys.c``): C against the numpy twin (``accel/byte_keys.py``), the
aggregate on this path against the reference, and the hand-over to the packed-hash path when
a longer value arrives (same group numbering, same output).

Generated keys have NULLs, the empty string, the NUL byte, bytes above 127 (binary), ties,
empty batches, sliced arrays and a selection of rows."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.plan.expr import AggregateCall, Column
from velaria.reference import batch as ref_batch
from velaria.reference.aggregate import aggregate_result_type

byte_keys = pytest.importorskip("velaria.accel.byte_keys")
from velaria.accel import aggregate as acc_aggregate  # noqa: E402

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
ONE_BYTE = st.one_of(st.none(), st.sampled_from([b"", b"A", b"N", b"\x00", b"\xff", b"\x80"]))
WIDER = st.one_of(ONE_BYTE, st.binary(min_size=2, max_size=3))


def _array(values, kind, offset):
    if kind == "string":
        values = [None if v is None else v.decode("latin-1").encode("utf-8") for v in values]
        arr = pa.array([None] * offset + values, pa.binary()).cast(pa.string())
    else:
        arr = pa.array([None] * offset + values, pa.binary())
    return arr.slice(offset)


@st.composite
def key_pairs(draw, values=ONE_BYTE):
    n = draw(st.integers(0, 40))
    kind = draw(st.sampled_from(["string", "binary"]))
    offset = draw(st.integers(0, 3))
    a = _array(draw(st.lists(values, min_size=n, max_size=n)), kind, offset)
    b = _array(draw(st.lists(ONE_BYTE, min_size=n, max_size=n)), kind, offset)
    sel = None
    if draw(st.booleans()):
        sel = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return a, b, sel


@pytest.mark.skipif(not byte_keys.c_available(), reason="C kernel not built")
@SETTINGS
@given(st.lists(key_pairs(WIDER), min_size=1, max_size=3))
def test_c_and_numpy_number_the_same_pairs(batches):
    tables = {True: byte_keys.new_table(), False: byte_keys.new_table()}
    nxt = {True: 0, False: 0}
    for a, b, sel in batches:
        out = {}
        for use_c in (True, False):
            out[use_c] = byte_keys.byte_pair_ids(a, b, sel, tables[use_c], nxt[use_c], use_c=use_c)
            if out[use_c] is not None:
                nxt[use_c] = out[use_c][2]
        if out[True] is None or out[False] is None:
            assert out[True] is None and out[False] is None
            values = a.cast(pa.binary()).to_pylist() + b.cast(pa.binary()).to_pylist()
            longest = max([len(v) for v in values if v is not None] or [0])
            assert longest > 1
            continue
        (gc, nc, xc), (gn, nn, xn) = out[True], out[False]
        assert gc.tolist() == gn.tolist() and nc.tolist() == nn.tolist() and xc == xn
        assert np.array_equal(tables[True], tables[False])
        # equal pairs get equal ids, distinct pairs distinct ids, unselected rows id 0
        keep = np.ones(len(a), dtype=bool) if sel is None else sel
        pairs = list(zip(a.to_pylist(), b.to_pylist()))
        seen = {}
        for i in np.flatnonzero(keep).tolist():
            assert seen.setdefault(pairs[i], int(gc[i])) == int(gc[i])
        assert len(set(seen.values())) == len(seen)
        assert (gc[~keep] == 0).all()


def _aggs():
    v = Column(type=pa.float64(), index=2, name="v")
    return [AggregateCall(type=aggregate_result_type("sum", v.type), func="sum", arg=v),
            AggregateCall(type=aggregate_result_type("count", None), func="count", arg=None),
            AggregateCall(type=aggregate_result_type("avg", v.type), func="avg", arg=v),
            AggregateCall(type=aggregate_result_type("min", v.type), func="min", arg=v)]


def _run(cls, batches):
    h = cls(_aggs(), 2)
    for a, b, sel, v in batches:
        args = [v, None, v, v]
        if sel is None:
            h.update([a, b], args, len(a))
        else:
            h.update([a, b], args, len(a), selection=sel)
    out = h.finish([batches[0][0].type, batches[0][1].type] + [x.type for x in _aggs()])
    return h, [[repr(x) for x in col.to_pylist()] for col in out]


@SETTINGS
@given(st.lists(st.tuples(key_pairs(WIDER), st.lists(st.one_of(st.none(), st.floats()), min_size=40, max_size=40)),
                min_size=1, max_size=4))
def test_the_aggregate_matches_the_reference_and_hands_over_on_a_longer_value(data):
    batches = []
    for (a, b, sel), v in data:
        batches.append((a.cast(pa.binary()), b.cast(pa.binary()), sel, pa.array(v[:len(a)], pa.float64())))
    compacted = [(a, b, None, v) if sel is None else
                 tuple(x.filter(pa.array(sel)) for x in (a, b)) + (None, v.filter(pa.array(sel)))
                 for a, b, sel, v in batches]
    _, want = _run(ref_batch.HashAggregate, compacted)
    h, got = _run(acc_aggregate.HashAggregate, batches)
    assert got == want
    if byte_keys.c_available() and h._ngroups:
        wide = any(len(x) > 1 for a, b, _, _ in batches for x in a.to_pylist() + b.to_pylist() if x is not None)
        assert h.path == ("packed-hash" if wide else "byte-pair")


@pytest.mark.skipif(not byte_keys.c_available(), reason="C kernel not built")
def test_explain_names_the_byte_pair_path():
    from engine_pair import on_both_engines

    rng = np.random.default_rng(4)
    n = 50_000
    table = pa.table({"flag": pa.array(np.array(["A", "N", "R"], dtype=object)[rng.integers(0, 3, n)]),
                      "status": pa.array(np.array(["F", "O", None], dtype=object)[rng.integers(0, 3, n)]),
                      "v": rng.random(n)})
    frames = on_both_engines(table, "SELECT flag, status, sum(v) AS s, count(*) AS c FROM t GROUP BY flag, status")
    out = {engine: df.to_arrow() for engine, df in frames.items()}
    assert out["auto"].equals(out["reference"])
    assert "path=byte-pair" in frames["auto"].explain()


def _big_pair(rng, n, long_at=None):
    """Two one-byte-value string columns of ``n`` rows (NULLs, empty strings, a few letters),
    with a two-byte value at row ``long_at`` of the first when given."""
    letters = np.array(["A", "N", "R", "", "F", "O"], dtype=object)
    a = letters[rng.integers(0, 6, n)].copy()
    b = letters[rng.integers(0, 3, n)].copy()
    if long_at is not None:
        a[long_at] = "AB"
    return (pa.array(a.tolist(), mask=rng.random(n) < 0.01, type=pa.string()),
            pa.array(b.tolist(), mask=rng.random(n) < 0.01, type=pa.string()))


@pytest.mark.skipif(not byte_keys.c_available(), reason="C kernel not built")
@pytest.mark.parametrize("threads", [2, 3, 8])
def test_threads_number_large_inputs_as_one_thread_does(threads):
    """Over 2**18 rows a thread the C kernel splits the rows; ids, first rows, the table and
    the refusal of a longer value (table unchanged) equal one thread's and the numpy twin's."""
    rng = np.random.default_rng(threads)
    n = (1 << 18) * 3 + 17
    seed_a, seed_b = _big_pair(rng, 1000)                 # a table that already holds groups
    a, b = _big_pair(rng, n)
    sel = rng.random(n) < 0.9
    answers = []
    for use_c, t in ((True, 1), (True, threads), (False, 1)):
        table = byte_keys.new_table()
        first = byte_keys.byte_pair_ids(seed_a, seed_b, None, table, 0, use_c=use_c, threads=t)
        got = byte_keys.byte_pair_ids(a, b, sel, table, first[2], use_c=use_c, threads=t)
        la, lb = _big_pair(rng, n, long_at=n - 5)
        before = table.copy()
        assert byte_keys.byte_pair_ids(la, lb, None, table, got[2], use_c=use_c, threads=t) is None
        assert np.array_equal(table, before)
        answers.append((got, table))
    (g1, t1), *others = answers
    for g, t in others:
        assert np.array_equal(g[0], g1[0]) and np.array_equal(g[1], g1[1]) and g[2] == g1[2]
        assert np.array_equal(t, t1)
