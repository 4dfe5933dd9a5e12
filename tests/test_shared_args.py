"""Aggregate arguments evaluated from an earlier argument they contain
(``velaria/exec/shared_args.py``): the plan, and the accelerated engine's results with the
reuse bit-identical to the reference engine's with every argument evaluated as written."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from velaria.exec import operators
from velaria.exec.shared_args import plan_reuse
from velaria.plan.expr import Call, Column, Literal

from engine_pair import on_both_engines

F64 = pa.float64()


def _call(name, *args):
    return Call(type=F64, name=name, args=args)


P, D, X = (Column(type=F64, index=i, name=n) for i, n in enumerate("pdx"))
ONE = Literal(type=pa.int64(), value=1)


def test_plan_reuses_the_largest_earlier_argument_inside():
    disc = _call("*", P, _call("-", ONE, D))
    charge = _call("*", disc, _call("+", ONE, X))
    plan = plan_reuse([P, disc, None, charge, _call("sqrt", disc)], width=3)
    assert plan[0] is None and plan[1] is None and plan[2] is None
    assert plan[3].source == 1 and plan[3].column == 3
    assert repr(plan[3].expr.args[0]) == repr(Column(type=F64, index=3, name="arg1"))
    assert plan[4] is None                      # not plain arithmetic: evaluated as written


def test_an_identical_argument_is_not_a_subtree_of_itself():
    e = _call("*", P, D)
    assert plan_reuse([e, _call("*", P, D)], width=3) == [None, None]


@pytest.mark.parametrize("sql", [
    "SELECT f, sum(p * (1 - d)) AS a, sum(p * (1 - d) * (1 + x)) AS b, avg(p * (1 - d) * (1 + x)) AS c "
    "FROM t WHERE d < 0.08 GROUP BY f ORDER BY f",
    "SELECT sum(p * (1 - d)) AS a, sum(p * (1 - d) * (1 + x)) AS b, sum((p * (1 - d)) / x) AS c FROM t",
    "SELECT f, sum(i * 3) AS a, sum(i * 3 + i) AS b FROM t GROUP BY f ORDER BY f",
])
def test_results_match_the_reference_bit_for_bit(monkeypatch, sql):
    rng = np.random.default_rng(4)
    n = 20_000
    x = rng.integers(0, 9, n) / 100.0
    x[::97] = 0.0                                   # p * (1 - d) / 0: inf, and NaN for 0 / 0
    table = pa.table({"p": np.round(rng.uniform(900, 2000, n), 2), "d": rng.integers(0, 11, n) / 100.0,
                      "x": x, "f": rng.integers(0, 3, n), "i": rng.integers(-1000, 1000, n)})
    frames = on_both_engines(table, sql)
    out = {"auto": frames["auto"].to_arrow()}
    # the reference evaluates every argument as written
    monkeypatch.setattr(operators, "plan_reuse", lambda args, width: [None] * len(args))
    out["reference"] = frames["reference"].to_arrow()
    for a, b in zip(out["auto"].columns, out["reference"].columns):
        assert a.type == b.type
        assert np.asarray(a.to_numpy()).tobytes() == np.asarray(b.to_numpy()).tobytes()
