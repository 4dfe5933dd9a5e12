"""numexpr-fused expressions (``velaria/accel/fused.py``) against the reference evaluator.

Hypothesis builds arithmetic trees and compound predicates over int64 / float64 columns with
NULLs, NaN, +-inf, -0.0 and int64 extremes; the accelerated ``evaluate`` / ``filter_batch``
(with the fusing threshold lowered so small batches fuse) must answer exactly as the
reference: same values bit for bit, same NULLs, same error. Other tests check that the fused
path really ran (and when it must not), that explain records it, and that the engine works
and says so when numexpr is missing.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria import Session, accel
from velaria.errors import VelariaError
from velaria.plan.expr import Call, Column, Literal
from velaria.reference import batch as ref_batch
from velaria.reference.functions import EvalContext

pytestmark = pytest.mark.skipif(not accel.batch_available(), reason="accelerated batch kernels unavailable")

fused = pytest.importorskip("velaria.accel.fused")
needs_numexpr = pytest.mark.skipif(not fused.available(), reason="numexpr not installed")

I, F, B = pa.int64(), pa.float64(), pa.bool_()
CTX = EvalContext.current()
INT_EDGES = [0, 1, -1, 7, -(2 ** 63), 2 ** 63 - 1, 2 ** 53 + 1, -(2 ** 53), 2 ** 31, 3_000_000_000]
FLOAT_EDGES = [0.0, -0.0, 0.5, -2.5, math.nan, math.inf, -math.inf, 1e300, 5e-324, 2.0 ** 53, 3.0]


def col(i, t):
    return Column(index=i, type=t, name=f"c{i}")


def call(name, *args, t=None):
    if t is None:
        if name in ("=", "!=", "<", "<=", ">", ">=", "and", "or", "not"):
            t = B
        elif name == "/" or any(pa.types.is_floating(a.type) for a in args):
            t = F
        else:
            t = I
    return Call(name=name, args=tuple(args), type=t)


# columns: 0 int64 with NULLs and extremes, 1 float64 with NULL/NaN/-0.0, 2 small int64, 3 float64 no NULL
def _batches(max_rows=16):
    ints = st.one_of(st.none(), st.sampled_from(INT_EDGES), st.integers(-5, 5))
    floats = st.one_of(st.none(), st.sampled_from(FLOAT_EDGES), st.floats(-10, 10))

    def build(rows):
        cols = list(zip(*rows)) if rows else [(), (), (), ()]
        return pa.record_batch([pa.array(list(cols[0]), I), pa.array(list(cols[1]), F),
                                pa.array(list(cols[2]), I), pa.array(list(cols[3]), F)],
                               names=["i", "f", "k", "v"])
    row = st.tuples(ints, floats, st.integers(-1000, 1000), st.sampled_from(FLOAT_EDGES[:4] + [1.25, -7.5]))
    return st.lists(row, min_size=1, max_size=max_rows).map(build)


def _num_leaf():
    return st.one_of(
        st.sampled_from([col(0, I), col(1, F), col(2, I), col(3, F)]),
        st.sampled_from(INT_EDGES).map(lambda v: Literal(value=v, type=I)),
        st.sampled_from(FLOAT_EDGES).map(lambda v: Literal(value=v, type=F)))


def num_exprs():
    return st.recursive(_num_leaf(), lambda ch: st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/"]), ch, ch).map(lambda p: call(p[0], p[1], p[2])),
        ch.map(lambda a: call("neg", a))), max_leaves=5)


def pred_exprs():
    cmp = st.tuples(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), num_exprs(), num_exprs()).map(
        lambda p: call(p[0], p[1], p[2]))
    return st.recursive(cmp, lambda ch: st.one_of(
        st.tuples(ch, ch).map(lambda ab: call("and", *ab)),
        st.tuples(ch, ch).map(lambda ab: call("or", *ab)),
        ch.map(lambda a: call("not", a))), max_leaves=4)


def canon(v):
    if isinstance(v, float):
        return ("nan",) if v != v else ("f", v, math.copysign(1.0, v))
    return v


def _outcome(fn):
    try:
        return ("ok", fn())
    except VelariaError as exc:
        return ("error", type(exc).__name__, str(exc))


@pytest.fixture(params=["numexpr", "numpy"])
def fuse_everything(request, monkeypatch):
    """Fuse batches of any size (the production threshold would leave these to the per-node
    path), with each executor: numexpr, and blocked numpy (as without numexpr), small blocks
    so that block edges fall inside the generated batches."""
    monkeypatch.setattr(fused, "MIN_ROWS", 0)
    if request.param == "numpy":
        monkeypatch.setattr(fused, "_ne", None)
        monkeypatch.setattr(fused, "BLOCK_ROWS", 3)
    elif not fused.available():
        pytest.skip("numexpr not installed")


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@PROPERTY
@given(expr=st.one_of(num_exprs(), pred_exprs()), batch=_batches())
def test_fused_evaluate_equals_reference(fuse_everything, expr, batch):
    from velaria.accel.expressions import evaluate
    want = _outcome(lambda: ref_batch.evaluate(expr, batch, CTX))
    got = _outcome(lambda: evaluate(expr, batch, CTX))
    assert got[0] == want[0], (expr, got, want)
    if want[0] == "error":
        assert got == want
        return
    assert got[1].type.equals(want[1].type), expr
    assert [canon(x) for x in got[1].to_pylist()] == [canon(x) for x in want[1].to_pylist()], expr


@PROPERTY
@given(pred=pred_exprs(), batch=_batches())
def test_fused_filter_equals_reference(fuse_everything, pred, batch):
    from velaria.accel.predicates import filter_batch
    want = _outcome(lambda: ref_batch.filter_batch(pred, batch, CTX))
    got = _outcome(lambda: filter_batch(pred, batch, CTX))
    assert got[0] == want[0], (pred, got, want)
    if want[0] == "error":
        assert got == want
        return
    assert got[1].num_rows == want[1].num_rows, pred
    for j in range(want[1].num_columns):
        assert [canon(x) for x in got[1].column(j).to_pylist()] == [canon(x) for x in want[1].column(j).to_pylist()]


# ---------------------------------------------------------------------------- the path that ran

def _big(n=1 << 16):
    rng = np.random.default_rng(7)
    v = rng.random(n)
    v[::97] = np.nan
    k = rng.integers(-1000, 1000, n)
    i = pa.array(rng.integers(-5, 5, n), mask=rng.random(n) < 0.1)
    return pa.record_batch([i, pa.array(v), pa.array(k)], names=["i", "v", "k"])


@needs_numexpr
def test_fusable_trees_really_fuse():
    batch = _big()
    v, k, i = col(1, F), col(2, I), col(0, I)
    trees = [call("+", call("*", v, Literal(value=2, type=F)), k),          # v*2+k
             call("*", k, Literal(value=3, type=I)),                          # proven in range
             call("/", v, i),                                                 # NULLs and zero divisors
             call("and", call(">", v, Literal(value=0.5, type=F)), call("<", call("-", k, i), Literal(value=10, type=I))),
             call("or", call(">=", v, v), call("not", call("=", i, Literal(value=0, type=I))))]
    for tree in trees:
        out = fused.fused_values(tree, batch)
        assert out is not None, tree
        want = ref_batch.evaluate(tree, batch, CTX)
        assert [canon(x) for x in out.to_pylist()] == [canon(x) for x in want.to_pylist()], tree


@needs_numexpr
def test_possible_overflow_is_not_fused_and_raises_as_the_reference():
    batch = pa.record_batch([pa.array([1, 2 ** 62, 3] * 20000, I)], names=["k"])
    tree = call("*", col(0, I), Literal(value=4, type=I))
    assert fused.can_fuse(tree, batch)
    assert fused.fused_values(tree, batch) is None          # the interval proof fails
    from velaria.accel.expressions import evaluate
    with pytest.raises(VelariaError) as want:
        ref_batch.evaluate(tree, batch, CTX)
    with pytest.raises(type(want.value), match="overflow"):
        evaluate(tree, batch, CTX)


@needs_numexpr
def test_unfusable_node_falls_back_per_subtree():
    """``%`` is not fused, but the arithmetic under it is: the fallback is per subtree."""
    from velaria.accel.expressions import evaluate
    from velaria.plan.kernel_paths import collecting
    batch = _big()
    inner = call("+", call("*", col(1, F), Literal(value=2.0, type=F)), col(2, I))
    tree = call("%", inner, Literal(value=3.0, type=F))
    assert fused.fused_values(tree, batch) is None
    paths: dict = {}
    with collecting(paths):
        got = evaluate(tree, batch, CTX)
    assert "numexpr" in paths
    want = ref_batch.evaluate(tree, batch, CTX)
    assert [canon(x) for x in got.to_pylist()] == [canon(x) for x in want.to_pylist()]


def _session(engine):
    n = 1 << 16
    rng = np.random.default_rng(3)
    s = Session(engine=engine)
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({
        "v": rng.random(n), "k": rng.integers(0, 1000, n)})))
    return s


@needs_numexpr
def test_explain_names_numexpr_after_the_run():
    s = _session("auto")
    # v * 2 > 0.5 is not a column-vs-constant term (those run in one C pass, "and-cmp")
    sql = "SELECT v * 2 + k AS x FROM t WHERE v * 2 > 0.5 AND k < 900"
    df = s.sql(sql)
    ref = _session("reference").sql(sql).to_arrow()
    got = df.to_arrow()
    assert got.equals(ref)
    steps = {st.kind: st for st in df._physical_plan().steps}
    assert steps["Filter"].ran_path == "numpy-fused"      # predicates: blocked numpy (faster here)
    assert steps["Project"].ran_path == "numexpr"
    assert "numexpr" in steps["Project"].reason
    text = df.explain()
    assert "path=numexpr" in text and "path=numpy-fused" in text
    assert "fused=numexpr-" in text


def test_without_numexpr_the_same_programs_run_on_numpy_and_explain_says_so(monkeypatch):
    monkeypatch.setattr(fused, "_ne", None)
    monkeypatch.setattr(fused, "import_error", ImportError("No module named 'numexpr'"))
    from velaria import kernels
    monkeypatch.setattr(kernels, "_CACHE", {})     # kernel sets record the status when built
    s = _session("auto")
    # v * 2 > 0.5 is not a column-vs-constant term (those run in one C pass, "and-cmp")
    sql = "SELECT v * 2 + k AS x FROM t WHERE v * 2 > 0.5 AND k < 900"
    df = s.sql(sql)
    ref = _session("reference").sql(sql).to_arrow()
    assert df.to_arrow().equals(ref)
    steps = {st.kind: st for st in df._physical_plan().steps}
    assert steps["Project"].ran_path == "numpy-fused"
    assert steps["Filter"].ran_path == "numpy-fused"
    assert "fused=numpy (numexpr missing: ImportError: No module named 'numexpr')" in df.explain()


@PROPERTY
@given(pred=pred_exprs(), batch=_batches(max_rows=40))
def test_fused_filter_compacts_null_free_batches_as_the_reference(fuse_everything, pred, batch):
    """NULL-free 8-byte columns are compacted by the mask in C (``compact_u64``)."""
    from velaria.accel.predicates import filter_batch
    batch = pa.record_batch([pc_fill(batch.column(0), 3), pc_fill(batch.column(1), 0.5),
                             batch.column(2), batch.column(3)], names=batch.schema.names)
    want = _outcome(lambda: ref_batch.filter_batch(pred, batch, CTX))
    got = _outcome(lambda: filter_batch(pred, batch, CTX))
    assert got[0] == want[0]
    if want[0] == "ok":
        assert got[1].num_rows == want[1].num_rows
        for j in range(want[1].num_columns):
            assert [canon(x) for x in got[1].column(j).to_pylist()] == [canon(x) for x in want[1].column(j).to_pylist()]


def pc_fill(arr, value):
    import pyarrow.compute as pc
    return pc.fill_null(arr, value)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-(2 ** 63), 2 ** 63 - 1), st.booleans()), max_size=70))
def test_compact_u64_c_equals_numpy(rows):
    from velaria.accel import batch_c
    src = np.array([r[0] for r in rows], dtype=np.int64).view(np.uint64)
    mask = np.array([r[1] for r in rows], dtype=bool)
    want = src[mask]
    out = np.zeros(want.size + 1, dtype=np.uint64)
    assert batch_c.compact_u64(src, mask, out) == want.size
    assert np.array_equal(out[:want.size], want)


def test_large_and_deep_trees_still_answer_as_the_reference():
    """More constants than numexpr takes (the numpy executor runs the program) and a tree
    deeper than Python's parser nests (not fused: the per-node path answers)."""
    from velaria.accel.expressions import evaluate
    from velaria.plan.kernel_paths import collecting
    batch = _big()
    wide = col(1, F)
    for j in range(40):
        wide = call("+", wide, Literal(value=float(j) + 0.5, type=F))
    paths: dict = {}
    with collecting(paths):
        got = evaluate(wide, batch, CTX)
    assert paths and "reference" not in paths
    if fused.available():
        assert "numpy-fused" in paths
    want = ref_batch.evaluate(wide, batch.slice(0, 2000), CTX)
    assert [canon(x) for x in got.slice(0, 2000).to_pylist()] == [canon(x) for x in want.to_pylist()]
    deep = col(1, F)
    for j in range(400):
        deep = call("*", deep, Literal(value=1.0, type=F))
    from velaria.sql.shallow import deep_recursion
    with deep_recursion():                 # as the engine runs SQL of the documented depth
        got = evaluate(deep, batch, CTX)
    assert [canon(x) for x in got.to_pylist()] == [canon(x) for x in batch.column(1).to_pylist()]
