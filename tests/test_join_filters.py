"""WHERE conjuncts over one side of an inner join move below it (velaria.plan.join_filters):
same answers, smaller join inputs, and conjuncts that could raise stay above."""
from __future__ import annotations

import pyarrow as pa
import pytest

import velaria
from velaria.plan import logical as L
from velaria.plan.optimize import prune


def _session(engine="auto"):
    s = velaria.Session(engine=engine)
    s.create_temp_view("a", s.create_dataframe_from_arrow(pa.table({"k": [1, 2, 3, 4], "x": ["p", "q", "p", "bad"]})))
    s.create_temp_view("b", s.create_dataframe_from_arrow(pa.table({"k": [1, 2, 3], "y": [10, 20, 30]})))
    return s


def _filters_under_join(node):
    found = []

    def visit(n, under):
        if isinstance(n, L.Filter) and under:
            found.append(n)
        for c in L.children(n):
            visit(c, under or isinstance(n, L.Join))
    visit(node, False)
    return found


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_one_sided_conjuncts_filter_each_side_first(engine):
    s = _session(engine)
    df = s.sql("SELECT a.k, y FROM a JOIN b ON a.k = b.k WHERE x = 'p' AND y > 15 AND a.k + y > 0 ORDER BY a.k")
    assert df.to_arrow().to_pylist() == [{"k": 3, "y": 30}]
    plan = prune(df._plan)
    moved = _filters_under_join(plan)
    assert len(moved) == 2                              # x = 'p' on a, y > 15 on b
    above = [n for n in _all_nodes(plan) if isinstance(n, L.Filter) and isinstance(n.input, L.Join)]
    assert len(above) == 1 and above[0].predicate.name == ">"   # the two-sided a.k + y > 0 stays above


def _all_nodes(node):
    out, todo = [], [node]
    while todo:
        n = todo.pop()
        out.append(n)
        todo.extend(L.children(n))
    return out


def test_conjuncts_that_can_raise_stay_above_the_join():
    s = _session()
    # CAST('bad' AS INT) would raise on a's fourth row, which the join drops: it must stay above
    df = s.sql("SELECT a.k FROM a JOIN b ON a.k = b.k WHERE CAST(x AS INT) > 0 OR x = 'p' ORDER BY a.k")
    assert _filters_under_join(prune(df._plan)) == []
    with pytest.raises(RuntimeError):
        df.to_arrow()                                   # 'p' is not an INT either: same error as before
    ok = s.sql("SELECT a.k FROM a JOIN b ON a.k = b.k WHERE a.k <> 4 AND CAST(a.k AS VARCHAR) <> 'x' ORDER BY a.k")
    assert [r["k"] for r in ok.to_arrow().to_pylist()] == [1, 2, 3]


def test_outer_joins_are_left_alone():
    s = _session()
    df = s.sql("SELECT a.k, y FROM a LEFT JOIN b ON a.k = b.k WHERE y IS NULL")
    assert _filters_under_join(prune(df._plan)) == []
    assert df.to_arrow().to_pylist() == [{"k": 4, "y": None}]


def _joins(node):
    out = [node] if isinstance(node, L.Join) else []
    for c in L.children(node):
        out.extend(_joins(c))
    return out


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_where_equalities_across_a_comma_join_become_hash_keys(engine):
    """``FROM a, b WHERE a.k = b.k`` hashes on k (no cross product) and answers exactly as the
    same condition in ON: NULL keys match nothing, NaN and -0.0 as the ON equality says,
    duplicates multiply, a second equality becomes a second key, mixed types stay a filter."""
    s = velaria.Session(engine=engine)
    nan = float("nan")
    s.create_temp_view("l", s.create_dataframe_from_arrow(pa.table({
        "k": [1, 2, 2, None, 5], "f": [0.0, nan, 1.5, 2.0, -0.0], "i": [1, 2, 3, 4, 5]})))
    s.create_temp_view("r", s.create_dataframe_from_arrow(pa.table({
        "k": [2, 2, None, 5, 7], "f": [-0.0, nan, 1.5, 2.0, 0.0], "j": [10, 20, 30, 40, 50],
        "d": [1.0, 2.0, 3.0, 4.0, 5.0]})))
    pairs = [("l.k = r.k", "l.k = r.k"), ("l.f = r.f", "l.f = r.f"),
             ("l.k = r.k AND l.f = r.f", "l.k = r.k AND l.f = r.f"), ("l.i = r.d", "l.i = r.d")]
    for where, on in pairs:
        comma = s.sql(f"SELECT i, j FROM l, r WHERE {where} ORDER BY i, j")
        joined = s.sql(f"SELECT i, j FROM l JOIN r ON {on} ORDER BY i, j")
        assert comma.to_arrow().to_pylist() == joined.to_arrow().to_pylist(), where
        join = _joins(prune(comma._plan))[0]
        if where == "l.i = r.d":         # int64 = double: kept as a filter (ON would cast)
            assert not join.left_keys
        else:
            assert len(join.left_keys) == where.count("=")
