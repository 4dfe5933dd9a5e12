"""GROUP BY keys a joined table's unique key determines, dropped from the aggregate and fetched
for the rows a LIMIT keeps (``velaria/plan/determined_keys.py``).

The rewritten plan against the plan without the rewrite on the reference engine (the same rows
in the same order, bit for bit), the accelerated engine against the reference on the rewritten
plan, with unique and non-unique, NULL and unmatched dimension keys; that it fires for the
TPC-H Q10 shape (a key fetched through a second table) and not where it would not be exact or
would not pay; and the single-node runtime."""
from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import velaria
from velaria.plan import determined_keys
from velaria.plan.determined_keys import REWRITE, column_is_unique

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
FLOATS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1e308, -1e308, 0.1]))
TEXT = st.one_of(st.none(), st.sampled_from(["a", "b", "", "é"]))


def _session(engine, tables, **kw):
    s = velaria.Session(engine=engine, **kw)
    for name, table in tables.items():
        s.create_temp_view(name, s.create_dataframe_from_arrow(table))
    return s


def _rows(engine, tables, sql):
    return _session(engine, tables).sql(sql).to_arrow().to_pylist()


def _plain_rows(engine, tables, sql):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(determined_keys, "fetch_determined_keys_late", lambda node: node)
        return _rows(engine, tables, sql)


def _bits(rows):
    return [{k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]


def _explain(tables, sql):
    df = _session("auto", tables).sql(sql)
    df.to_arrow()
    return df.explain()


@st.composite
def star(draw):
    """A fact table ``f`` joined to ``d`` (unique keys or not: duplicates, NULL) and ``d`` to
    ``n`` (a second dimension, reached through ``d.nk``)."""
    m = draw(st.integers(0, 8))
    unique = draw(st.booleans())
    if unique:
        dkeys = draw(st.lists(st.integers(0, 9), min_size=m, max_size=m, unique=True))
    else:
        dkeys = draw(st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=m, max_size=m))
    d = pa.table({"k": pa.array(dkeys, pa.int64()),
                  "name": pa.array(draw(st.lists(TEXT, min_size=m, max_size=m)), pa.string()),
                  "bal": pa.array(draw(st.lists(FLOATS, min_size=m, max_size=m)), pa.float64()),
                  "nk": pa.array(draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=m, max_size=m)),
                                 pa.int32())})
    nn = draw(st.integers(0, 4))
    n = pa.table({"nk": pa.array(draw(st.lists(st.integers(0, 3), min_size=nn, max_size=nn, unique=True)), pa.int32()),
                  "nname": pa.array(draw(st.lists(TEXT, min_size=nn, max_size=nn)), pa.string())})
    rows = draw(st.integers(0, 30))
    f = pa.table({"k": pa.array(draw(st.lists(st.one_of(st.none(), st.integers(0, 11)), min_size=rows,
                                              max_size=rows)), pa.int64()),
                  "v": pa.array(draw(st.lists(FLOATS, min_size=rows, max_size=rows)), pa.float64())})
    return {"f": f, "d": d, "n": n}


QUERIES = [
    # TPC-H Q10's shape: the dimension's key, its columns, a second dimension's column
    "SELECT d.k, d.name, SUM(f.v) AS s, d.bal, n.nname, COUNT(*) AS c FROM f JOIN d ON f.k = d.k "
    "JOIN n ON d.nk = n.nk GROUP BY d.k, d.name, d.bal, n.nname ORDER BY c DESC LIMIT 3",
    # the kept key from the fact side, equal to the dimension's key through the join
    "SELECT f.k, d.name, d.bal, SUM(f.v) AS s FROM f JOIN d ON f.k = d.k GROUP BY f.k, d.name, d.bal "
    "ORDER BY f.k DESC NULLS LAST LIMIT 4",
    # LIMIT without ORDER BY, a HAVING, and the key not selected
    "SELECT d.name, COUNT(*) AS c FROM d JOIN f ON d.k = f.k GROUP BY d.k, d.name HAVING COUNT(*) > 1 LIMIT 2",
    # OFFSET, ties in the ORDER BY
    "SELECT d.k, d.nk, d.name, MAX(f.v) AS m FROM f JOIN d ON f.k = d.k GROUP BY d.k, d.nk, d.name "
    "ORDER BY COUNT(*) LIMIT 2 OFFSET 1",
]


@SETTINGS
@given(star(), st.sampled_from(QUERIES))
def test_rewrite_keeps_the_rows_and_their_order_and_both_engines_agree(tables, sql):
    rewritten = _rows("reference", tables, sql)
    assert _bits(rewritten) == _bits(_plain_rows("reference", tables, sql))
    assert _bits(_rows("auto", tables, sql)) == _bits(rewritten)


Q10_TABLES = {
    "f": pa.table({"k": [3, 1, 3, 2, None, 9], "v": [1.0, 2.0, 3.0, -0.0, 5.0, 6.0]}),
    "d": pa.table({"k": [1, 2, 3, 4], "name": ["a", "b", None, "d"], "bal": [1.5, 2.5, 3.5, 4.5],
                   "nk": pa.array([0, 1, 0, None], pa.int32())}),
    "n": pa.table({"nk": pa.array([1, 0], pa.int32()), "nname": ["one", "zero"]}),
}


def test_fires_for_the_q10_shape_and_fetches_through_the_second_table():
    sql = QUERIES[0]
    text = _explain(Q10_TABLES, sql)
    assert f"rewrite={REWRITE}" in text
    got = _rows("auto", Q10_TABLES, sql)
    assert got == _plain_rows("reference", Q10_TABLES, sql)
    assert got == [{"k": 3, "name": None, "s": 4.0, "bal": 3.5, "nname": "zero", "c": 2},
                   {"k": 1, "name": "a", "s": 2.0, "bal": 1.5, "nname": "zero", "c": 1},
                   {"k": 2, "name": "b", "s": -0.0, "bal": 2.5, "nname": "one", "c": 1}]


def _with(table_name, **columns):
    tables = dict(Q10_TABLES)
    tables[table_name] = tables[table_name].drop_columns(list(columns)).append_column(
        list(columns)[0], pa.array(list(columns.values())[0], tables[table_name].schema.field(list(columns)[0]).type))
    return tables


@pytest.mark.parametrize("tables, sql", [
    (_with("d", k=[1, 2, 3, 3]), QUERIES[0]),                                       # d.k not unique
    (_with("d", k=[1, 2, 3, None]), QUERIES[0]),                                    # d.k with a NULL
    (Q10_TABLES, "SELECT d.k, d.name, SUM(f.v) AS s FROM f JOIN d ON f.k = d.k "    # ORDER BY reads it
                 "GROUP BY d.k, d.name ORDER BY d.name LIMIT 2"),
    (Q10_TABLES, "SELECT d.k, d.name, SUM(f.v) AS s FROM f JOIN d ON f.k = d.k GROUP BY d.k, d.name"),  # no LIMIT
    (Q10_TABLES, "SELECT d.k, upper(d.name) AS u, SUM(f.v) AS s FROM f JOIN d ON f.k = d.k "   # computed from it
                 "GROUP BY d.k, d.name LIMIT 2"),
    (Q10_TABLES, "SELECT d.k, d.bal, d.nk, SUM(f.v) AS s FROM f JOIN d ON f.k = d.k "          # no text key
                 "GROUP BY d.k, d.bal, d.nk LIMIT 2"),
    (Q10_TABLES, "SELECT d.k, d.name, SUM(f.v) AS s FROM f LEFT JOIN d ON f.k = d.k "          # outer join
                 "GROUP BY d.k, d.name LIMIT 2"),
    (Q10_TABLES, "SELECT f.v, d.name, COUNT(*) AS c FROM f JOIN d ON f.k = d.k "              # no key of d kept
                 "GROUP BY f.v, d.name LIMIT 2"),
])
def test_left_alone_where_not_exact_or_not_worth_it(tables, sql):
    assert f"rewrite={REWRITE}" not in _explain(tables, sql)
    assert _bits(_rows("auto", tables, sql)) == _bits(_plain_rows("reference", tables, sql))


def test_a_key_the_order_by_reads_stays_and_the_text_key_is_fetched():
    sql = ("SELECT d.k, d.bal, d.name, MAX(f.v) AS s FROM f JOIN d ON f.k = d.k "
           "GROUP BY d.k, d.bal, d.name ORDER BY d.bal DESC LIMIT 2")
    assert f"rewrite={REWRITE}" in _explain(Q10_TABLES, sql)
    assert _bits(_rows("auto", Q10_TABLES, sql)) == _bits(_plain_rows("reference", Q10_TABLES, sql))


def test_uniqueness_is_read_from_the_data():
    from velaria.io.base import ArrowTableSource

    src = ArrowTableSource(pa.table({"a": [3, 1, 2], "b": [1, 1, 2], "c": [1, None, 2],
                                     "d": pa.array([5, 6, 7], pa.date32()), "e": [1, 2, 3]}))
    assert column_is_unique(src, "a") and column_is_unique(src, "d") and column_is_unique(src, "e")
    assert not column_is_unique(src, "b") and not column_is_unique(src, "c")
    assert not column_is_unique(src, "missing") and not column_is_unique(object(), "a")


def test_a_csv_table_is_left_alone(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("k,name\n1,a\n2,b\n3,c\n")
    s = _session("auto", {"f": Q10_TABLES["f"]})
    s.create_temp_view("d", s.read_csv(str(path)))
    df = s.sql("SELECT d.k, d.name, SUM(f.v) AS s FROM f JOIN d ON f.k = d.k GROUP BY d.k, d.name LIMIT 2")
    rows = df.to_rows()
    assert f"rewrite={REWRITE}" not in df.explain() and len(rows) == 2


def test_the_single_node_runtime_runs_the_rewritten_plan():
    sql = QUERIES[0]
    embedded = _session("auto", Q10_TABLES).sql(sql).to_rows()
    s = _session("auto", Q10_TABLES, runtime_mode="single-node", parallelism=2)
    assert s.sql(sql).to_rows() == embedded
