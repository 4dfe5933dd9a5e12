"""The join key pre-filter: a join's left keys drop the right input's rows that cannot match
before the right input's WHERE filter runs. Results, row order included, never change."""
from __future__ import annotations

import pyarrow as pa
import pytest

import velaria
from velaria.errors import VelariaError
from velaria.exec.probe_filter import ProbeFilter
from velaria.plan import logical as L
from velaria.plan.expr import Call, Column, Literal
from velaria.plan import probe_keys
from velaria.plan.probe_keys import probe_filter_target


def _session(engine, batch_rows=None, **tables):
    s = velaria.Session(engine=engine, batch_rows=batch_rows)
    for name, t in tables.items():
        s.create_temp_view(name, s.create_dataframe_from_arrow(pa.table(t)))
    return s


def _tables(n=3000):
    """Orders of a few customers, lines of every order (NULL keys among them)."""
    orders = {"o_key": list(range(0, n, 3)), "o_cust": [i % 7 for i in range(0, n, 3)]}
    lines = {"l_key": [None if i % 11 == 0 else (i * 7) % n for i in range(n)],
             "l_flag": ["R" if i % 4 else "A" for i in range(n)],
             "l_price": [float(i % 13) - 6.0 for i in range(n)]}
    return {"orders": orders, "lines": lines}


def _filter_path(df, column="l_flag") -> str:
    """The ran path of the Filter whose predicate reads ``column`` (from explain)."""
    lines = [line.strip() for line in df.explain().splitlines()]
    at = next(i for i, line in enumerate(lines)
              if line == "Filter" and lines[i + 1].startswith("predicate=") and column in lines[i + 1])
    return next((line for line in lines[at + 1:at + 4] if line.startswith("path=")), "")


SQL = {
    "inner": "SELECT o_key, o_cust, l_key, l_price FROM orders JOIN lines ON o_key = l_key "
             "WHERE l_flag = 'R' AND o_cust < 2",
    "left": "SELECT o_key, l_key, l_flag FROM orders LEFT JOIN (SELECT l_flag, l_key FROM lines "
            "WHERE l_flag = 'R') l ON o_key = l_key WHERE o_cust = 3",
    "residual": "SELECT o_key, l_key FROM orders JOIN lines ON o_key = l_key AND l_price > o_cust "
                "WHERE l_flag = 'R' AND o_cust = 1",
}


@pytest.mark.parametrize("query", sorted(SQL))
@pytest.mark.parametrize("batch_rows", [None, 97])
def test_same_rows_in_the_same_order_as_the_reference(query, batch_rows):
    ref = _session("reference", batch_rows, **_tables()).sql(SQL[query]).to_arrow()
    acc_session = _session("auto", batch_rows, **_tables())
    df = acc_session.sql(SQL[query])
    got = df.to_arrow()
    assert got.num_rows > 0 and got.equals(ref)
    assert "join-key-prefilter" in _filter_path(df)


def test_the_filter_runs_the_prefilter_first_and_explain_says_so():
    """The Filter under the join reports the pre-filter (and the C key set) as its path; the
    join names the key set kernel it built."""
    df = _session("auto", **_tables()).sql(SQL["inner"])
    df.to_arrow()
    assert _filter_path(df).startswith("path=join-key-prefilter+c-key-set")
    assert "key_set=accel" in df.explain()


def test_a_prefilter_that_would_drop_few_rows_stands_aside():
    """Every right row's key is among the left keys: after its sample the pre-filter turns
    itself off, and the answer is unchanged."""
    t = {"a": {"k": list(range(100))}, "b": {"k": [i % 100 for i in range(500)], "f": ["R", "A"] * 250}}
    sql = "SELECT a.k FROM a JOIN b ON a.k = b.k WHERE b.f = 'R'"
    df = _session("auto", **t).sql(sql)
    assert df.to_arrow().equals(_session("reference", **t).sql(sql).to_arrow())
    assert "join-key-prefilter" not in _filter_path(df, "f#")


def test_a_predicate_that_can_raise_is_not_prefiltered():
    """``CAST(l_flag AS INT)`` fails on text: dropping rows before it could hide the error, so
    that join does not pre-filter, and the error is raised as before."""
    s = _session("auto", **_tables())
    df = s.sql("SELECT o_key FROM orders JOIN lines ON o_key = l_key WHERE CAST(l_flag AS INT) = 1")
    with pytest.raises(VelariaError, match="l_flag|CAST|cast|INT"):
        df.to_arrow()
    assert "join-key-prefilter" not in _filter_path(df, "l_flag")


@pytest.mark.parametrize("how,expected", [("inner", True), ("left", True), ("right", False), ("full", False)])
def test_which_join_kinds_qualify(how, expected):
    """Inner and left joins never emit a right row without a left match; right and full do."""
    keys = [Column(index=0, name="k", type=pa.int64())]
    schema = pa.schema([("k", pa.int64()), ("f", pa.string())])
    scan = L.OneRow(schema=schema)
    pred = Call(name="=", args=[Column(index=1, name="f", type=pa.string()), Literal(value="R", type=pa.string())],
                type=pa.bool_())
    right = L.Filter(schema=schema, input=scan, predicate=pred)
    join = L.Join(schema=schema, left=scan, right=right, left_keys=keys, right_keys=keys, how=how)
    assert (probe_filter_target(join) == (right, 0)) is expected
    text_keys = [Column(index=1, name="f", type=pa.string())]
    assert probe_filter_target(L.Join(schema=schema, left=scan, right=right, left_keys=text_keys,
                                      right_keys=text_keys, how=how)) is None


def test_unarmed_prefilter_passes_batches_through():
    """Until the join's left input has ended (another driver may never say so) nothing is
    dropped."""
    batch = pa.record_batch([pa.array([1, 2, 3])], names=["k"])
    assert ProbeFilter(0).apply(batch) is batch


def _join_path(df) -> str:
    """The ran path of the (first) Join line of explain."""
    lines = [line.strip() for line in df.explain().splitlines()]
    at = lines.index("Join")
    return next((line for line in lines[at + 1:at + 5] if line.startswith("path=")), "")


ARRIVING = {
    "inner": "SELECT o_key, o_cust, l_key, l_price FROM orders JOIN lines ON o_key = l_key WHERE o_cust < 2",
    "left": "SELECT o_key, l_key, l_price FROM orders LEFT JOIN lines ON o_key = l_key WHERE o_cust = 3",
    "residual": "SELECT o_key, l_key FROM orders JOIN lines ON o_key = l_key AND l_price > o_cust "
                "WHERE o_cust = 1",
    "filter_above": "SELECT o_key, l_price FROM orders JOIN lines ON o_key = l_key "
                    "WHERE o_cust < 3 AND l_price + o_cust > 0",
}


@pytest.fixture
def small_tables_count_as_large(monkeypatch):
    """The test tables (thousands of rows) pass the size the arriving-rows test asks of a right
    input's table."""
    monkeypatch.setattr(probe_keys, "ARRIVING_MIN_ROWS", 100)


@pytest.mark.parametrize("query", sorted(ARRIVING))
@pytest.mark.parametrize("batch_rows", [None, 97])
def test_a_right_input_without_a_filter_is_filtered_as_it_arrives(query, batch_rows, small_tables_count_as_large):
    """The right input is a plain scan: the join drops the rows no left key matches as they
    arrive, and emits the reference's rows in the reference's order."""
    ref = _session("reference", batch_rows, **_tables()).sql(ARRIVING[query]).to_arrow()
    df = _session("auto", batch_rows, **_tables()).sql(ARRIVING[query])
    got = df.to_arrow()
    assert got.num_rows > 0 and got.equals(ref)
    assert _join_path(df).startswith("path=join-key-prefilter+c-key-set")
    assert "key_set=accel" in df.explain()


@pytest.mark.parametrize("min_rows", [10, 100_000])
def test_a_small_right_input_is_not_filtered_as_it_arrives(min_rows, monkeypatch):
    """A fact table joined to a small dimension (a right table smaller than the left one, or
    below the size asked): building the fact side's key set would cost more than testing the
    dimension's rows saves, so the join leaves them alone and does not build it."""
    monkeypatch.setattr(probe_keys, "ARRIVING_MIN_ROWS", min_rows)
    t = {"fact": {"k": [i % 50 for i in range(2000)], "v": [float(i) for i in range(2000)]},
         "dim": {"k": list(range(0, 100, 2)), "name": [f"n{i}" for i in range(0, 100, 2)]}}
    sql = "SELECT v, name FROM fact JOIN dim ON fact.k = dim.k"
    df = _session("auto", **t).sql(sql)
    assert df.to_arrow().equals(_session("reference", **t).sql(sql).to_arrow())
    assert "join-key-prefilter" not in _join_path(df)
    assert "key_set" not in df.explain()


def test_a_stream_like_run_never_arms_the_arriving_filter(small_tables_count_as_large):
    """Without the end of the left input reported (another driver may never report it), the
    join keeps every right row it is given."""
    from velaria.exec.operators import ExecContext, JoinOperator

    s = _session("auto", **_tables())
    plan = s.sql(ARRIVING["inner"])._plan
    nodes = [plan]
    while not isinstance(nodes[-1], L.Join):
        nodes.append(L.children(nodes[-1])[0])
    op = JoinOperator(nodes[-1], [])
    op.open(ExecContext(s.context.kernels))
    op.push(pa.record_batch([pa.array([0]), pa.array([1])], names=["o_key", "o_cust"]), 0)
    batch = pa.record_batch([pa.array([10 ** 9]), pa.array([1.0])], names=["l_key", "l_price"])
    op.push(batch, 1)
    assert op._arriving is not None and op._sides[1] == [batch]
