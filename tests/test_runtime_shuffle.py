"""Hash shuffles in the partitioned runtime modes (single-node here; Dask in
``test_runtime_modes_dask.py``): the key hash, the shuffled grouped aggregate and the
shuffle join, each with the embedded answer in the embedded order."""
from __future__ import annotations

import datetime
import math
import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import velaria
from velaria.runtime.join_shuffle import BROADCAST_LIMIT_ENV, broadcast_limit
from velaria.runtime.shuffle import bucket_ids, key_hashes, split_by_bucket

# ------------------------------------------------------------------------------ the hash

KEY_VALUES = {
    pa.int64(): st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.sampled_from([0, 1, -1])),
    pa.float64(): st.one_of(st.none(), st.floats(allow_nan=True), st.sampled_from([0.0, -0.0, math.nan, math.inf])),
    pa.string(): st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["", "a", "é", "日本"])),
    pa.bool_(): st.one_of(st.none(), st.booleans()),
    pa.date32(): st.one_of(st.none(), st.dates()),
    pa.timestamp("us"): st.one_of(st.none(), st.datetimes()),
    pa.month_day_nano_interval(): st.one_of(st.none(), st.tuples(
        st.integers(-30, 30), st.integers(-40, 40), st.sampled_from([0, 1, -86_400 * 10**9])).map(
        lambda t: pa.MonthDayNano(list(t)))),
}


def _same_key(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b and type(a) is type(b)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(KEY_VALUES)).flatmap(lambda t: st.tuples(st.just(t), st.lists(KEY_VALUES[t], max_size=40))),
       st.integers(1, 7))
def test_equal_keys_share_a_bucket_and_every_row_lands_once(typed, buckets):
    arrow_type, values = typed
    arr = pa.array(values, type=arrow_type)
    ids = bucket_ids([arr], buckets)
    assert len(ids) == len(values) and all(0 <= b < buckets for b in ids)
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            if _same_key(a, b):
                assert ids[i] == ids[j], (a, b)
    table = pa.table({"k": arr, "row": list(range(len(values)))})
    pieces = split_by_bucket(table, ["k"], buckets)
    assert len(pieces) == buckets and sum(p.num_rows for p in pieces) == len(values)
    for b, piece in enumerate(pieces):
        rows = piece.column("row").to_pylist()
        assert rows == sorted(rows) and all(ids[r] == b for r in rows)    # input order kept


def test_hash_is_stable_across_chunks_slices_and_zeros():
    words = ["", "a", "bb", "a", None, "ccc", ""]
    whole = key_hashes([pa.array(words)])
    chunked = key_hashes([pa.chunked_array([words[:3], words[3:]])])
    sliced = key_hashes([pa.array(["zz"] + words).slice(1)])
    assert (whole == chunked).all() and (whole == sliced).all()
    assert whole[1] == whole[3] and whole[0] == whole[6] and whole[0] != whole[1]
    floats = key_hashes([pa.array([0.0, -0.0, float("nan"), -float("nan")])])
    assert floats[0] == floats[1] and floats[2] == floats[3]
    # a fixed value: the same in every process (nothing depends on Python's salted hash)
    assert int(key_hashes([pa.array([1], pa.int64())])[0]) == int(key_hashes([pa.array([1], pa.int32())])[0])
    multi = key_hashes([pa.array([1, 1, 2]), pa.array(["x", "y", "x"])])
    assert len(set(multi.tolist())) == 3


def test_date_time_and_interval_keys_hash_without_arrow_casts():
    # Arrow casts no date type to int64 (a GROUP BY of a DATE column failed in a shuffle)
    day = datetime.date(2024, 1, 2)
    dates = key_hashes([pa.array([day, None, day], pa.date32())])
    assert dates[0] == dates[2] != dates[1]
    assert key_hashes([pa.array([None, day], pa.date32()).slice(1)])[0] == dates[0]
    times = key_hashes([pa.array([datetime.time(1, 2), datetime.time(1, 2)], pa.time32("s"))])
    assert times[0] == times[1]
    # intervals hash their length (a month counts 30 days), so equal lengths share a bucket
    ivs = key_hashes([pa.array([pa.MonthDayNano([1, 0, 0]), pa.MonthDayNano([0, 30, 0]),
                                pa.MonthDayNano([0, 0, 30 * 86_400 * 10**9]), pa.MonthDayNano([0, 31, 0])],
                               pa.month_day_nano_interval())])
    assert ivs[0] == ivs[1] == ivs[2] != ivs[3]


def test_long_string_columns_hash_in_slices_with_the_same_result(monkeypatch):
    import velaria.runtime.shuffle as shuffle

    words = pa.array([None if i % 7 == 0 else "w" * (i % 5) + str(i % 300) for i in range(5000)])
    whole = key_hashes([words])
    monkeypatch.setattr(shuffle, "_SLICE_ROWS", 333)
    assert (key_hashes([words]) == whole).all()


def test_hash_rejects_no_columns_and_bad_bucket_counts():
    with pytest.raises(ValueError, match="at least one key column"):
        key_hashes([])
    with pytest.raises(ValueError, match="buckets must be >= 1"):
        bucket_ids([pa.array([1])], 0)


# ------------------------------------------------------------------------------ sessions

def _tables():
    rnd = random.Random(11)
    n = 4000
    facts = pa.table({
        "k": [rnd.choice([None, -0.0, 0.0, 1.5, math.nan, 2.0, 3.25, 1e300]) for _ in range(n)],
        "s": [rnd.choice([None, "", "a", "bb", "é", "日本"]) for _ in range(n)],
        "i": [rnd.choice([None, 1, 2, 3, 5, 8, 13]) for _ in range(n)],
        "v": list(range(n)),
    })
    dims = pa.table({"i": [rnd.choice([None, 1.0, 2.0, -0.0, 5.0, 21.0]) for _ in range(60)],
                     "name": [f"d{j % 9}" for j in range(60)], "w": list(range(60))})
    return facts, dims


@pytest.fixture(scope="module")
def sessions():
    facts, dims = _tables()
    out = {}
    for mode, kwargs in (("embedded", {}), ("single-node", {"runtime_mode": "single-node", "parallelism": 3})):
        s = velaria.Session(**kwargs)
        s.create_temp_view("f", s.create_dataframe_from_arrow(facts))
        s.create_temp_view("d", s.create_dataframe_from_arrow(dims))
        out[mode] = s
    yield out
    out["single-node"].runtime.close()


def _same(a, b) -> bool:
    return repr(a) == repr(b)        # NaN == NaN, -0.0 vs 0.0 told apart


AGGREGATES = [
    "SELECT k, s, COUNT(*) AS n, SUM(v) AS sv, MIN(v) AS lo, COUNT(DISTINCT i) AS di FROM f GROUP BY k, s",
    "SELECT DATE '2024-01-01' + i AS day, COUNT(*) AS n, SUM(v) AS sv FROM f GROUP BY 1",
    "SELECT CAST(DATE '2024-01-01' + i AS TIMESTAMP) AS ts, s, MAX(v) AS hi FROM f GROUP BY 1, 2",
    "SELECT s, AVG(v) AS a, MAX(k) AS hi FROM f GROUP BY s HAVING COUNT(*) > 2",
    "SELECT i, COUNT(*) AS n FROM f WHERE v % 3 = 0 GROUP BY i ORDER BY n DESC, i",
]


def test_the_aggregate_shuffle_can_be_turned_off(sessions, monkeypatch):
    from velaria.runtime.record import AGGREGATE_SHUFFLE_ENV, aggregate_shuffle_enabled

    sql = AGGREGATES[0]
    monkeypatch.setenv(AGGREGATE_SHUFFLE_ENV, "0")
    df = sessions["single-node"].sql(sql)
    assert _same(df.to_rows(), sessions["embedded"].sql(sql).to_rows())
    rec = df.run_record()
    assert (rec["exchange"], rec["task_count"], rec["stage_count"]) == ("partial-aggregate+merge", 3, 2)
    with pytest.raises(ValueError, match=f"{AGGREGATE_SHUFFLE_ENV}='yes' is not 0 or 1"):
        aggregate_shuffle_enabled({AGGREGATE_SHUFFLE_ENV: "yes"})


def test_an_aggregate_without_keys_is_merged_on_the_client(sessions):
    df = sessions["single-node"].sql("SELECT COUNT(*) AS n, SUM(v) AS s FROM f")
    assert df.to_rows() == sessions["embedded"].sql("SELECT COUNT(*) AS n, SUM(v) AS s FROM f").to_rows()
    assert df.run_record()["exchange"] == "partial-aggregate+merge" and df.run_record()["task_count"] == 3


JOINS = [
    "SELECT f.v, d.w FROM f RIGHT JOIN d ON f.i = d.i",
    "SELECT f.v, f.s, d.name FROM f FULL JOIN d ON f.i = d.i",
    "SELECT f.v, d.w FROM f FULL OUTER JOIN d ON f.i = d.i AND f.v > d.w * 40",
    "SELECT a.v, b.w FROM d b FULL JOIN f a ON a.s = b.name",
    "SELECT a.v, b.v AS bv FROM f a RIGHT JOIN (SELECT s, k, v FROM f WHERE v < 50) b ON a.s = b.s AND a.k = b.k",
]


#: the plan above a shuffle join that runs in its bucket tasks, and the exchange recorded
ABOVE_JOINS = [
    ("SELECT d.name, COUNT(*) AS n, SUM(f.v) AS sv FROM f RIGHT JOIN d ON f.i = d.i GROUP BY d.name ORDER BY d.name",
     "hash-shuffle-join+partial-aggregate+merge"),
    ("SELECT d.name, f.s, COUNT(*) AS n, SUM(f.v) AS sv, COUNT(DISTINCT f.k) AS dk, MIN(f.v) AS lo, MAX(d.w) AS hi "
     "FROM f FULL JOIN d ON f.i = d.i WHERE f.v IS NULL OR f.v % 2 = 0 GROUP BY d.name, f.s HAVING COUNT(*) > 1",
     "hash-shuffle-join+partial-aggregate+merge"),
    ("SELECT COUNT(*) AS n, SUM(f.v) AS sv, COUNT(f.v) AS nv FROM f RIGHT JOIN d ON f.i = d.i",
     "hash-shuffle-join+partial-aggregate+merge"),
    ("SELECT f.v, d.w FROM f RIGHT JOIN d ON f.i = d.i ORDER BY d.w DESC LIMIT 7", "hash-shuffle-join+top-n+merge"),
    ("SELECT f.v, d.w, d.name FROM f FULL JOIN d ON f.i = d.i ORDER BY d.name NULLS FIRST LIMIT 30",
     "hash-shuffle-join+top-n+merge"),
    ("SELECT f.v + 1 AS x, d.w FROM f FULL JOIN d ON f.i = d.i LIMIT 15 OFFSET 3", "hash-shuffle-join+limit+merge"),
    ("SELECT f.v * 2 AS x, d.w FROM f RIGHT JOIN d ON f.i = d.i WHERE d.w > 3 OR f.v IS NULL", "hash-shuffle-join"),
]

SHUFFLED = [(sql, "partial-aggregate+hash-shuffle") for sql in AGGREGATES] + \
    [(sql, "hash-shuffle-join") for sql in JOINS] + ABOVE_JOINS


@pytest.mark.parametrize("sql,exchange", SHUFFLED)
def test_grouped_aggregates_and_outer_joins_are_hash_shuffled_with_the_embedded_answer_and_order(
        sessions, sql, exchange, monkeypatch):
    monkeypatch.setenv(BROADCAST_LIMIT_ENV, "0")      # every join input is "large": shuffle, never broadcast
    want = sessions["embedded"].sql(sql).to_rows()
    df = sessions["single-node"].sql(sql)
    assert f"exchange={exchange}" in df.explain() and "status=planned" in df.explain()
    assert _same(df.to_rows(), want)
    rec = df.run_record()
    assert rec["exchange"] == exchange and rec["stage_count"] == 3 and rec["fallbacks"] == []
    assert rec["shuffle_bytes"] > 0 and rec["workers"] and "into 3 buckets" in rec["shuffle"]
    if exchange.startswith("hash-shuffle-join"):   # both inputs split 3 ways, then 3 bucket joins
        assert (rec["partitions"], rec["task_count"]) == (6, 9) and "JOIN pads unmatched right rows" in rec["shuffle"]
    else:                                 # 3 map tasks, then 3 bucket aggregates
        assert (rec["partitions"], rec["task_count"]) == (3, 6)


@pytest.mark.parametrize("sql,exchange", [(sql, "broadcast-outer-join") for sql in JOINS] + [
    (sql, exchange.replace("hash-shuffle-join", "broadcast-outer-join")) for sql, exchange in ABOVE_JOINS] + [
    ("SELECT f.v, d.w FROM f RIGHT JOIN d ON f.v < d.w", "broadcast-outer-join"),
    ("SELECT d.w, COUNT(f.v) AS n FROM f FULL JOIN d ON f.v = d.w * 70 OR f.s = d.name GROUP BY d.w",
     "broadcast-outer-join+partial-aggregate+merge")])
def test_right_and_full_joins_with_a_small_right_input_broadcast_it_and_pad_on_the_client(sessions, sql, exchange):
    """The right input runs once and goes to every left partition; the partitions report the
    right rows they matched and the client pads the others: embedded's answer and order,
    also for joins without equality keys."""
    want = sessions["embedded"].sql(sql).to_rows()
    df = sessions["single-node"].sql(sql)
    assert f"exchange={exchange}" in df.explain()
    assert _same(df.to_rows(), want)
    rec = df.run_record()
    assert rec["exchange"] == exchange and rec["fallbacks"] == [] and rec["stage_count"] == 3
    assert (rec["partitions"], rec["task_count"]) == (3, 4) and "within the broadcast limit" in rec["shuffle"]
    assert rec["final_stage"].startswith("client: the plan above the join over the padded unmatched right rows")


@pytest.mark.parametrize("sql,node", [
    ("SELECT DISTINCT d.name FROM f RIGHT JOIN d ON f.i = d.i", "Distinct"),
    ("SELECT f.v, d.w FROM f RIGHT JOIN d ON f.i = d.i ORDER BY d.w, f.v", "Sort"),
])
def test_a_node_above_a_shuffle_join_that_does_not_split_runs_on_the_client_and_says_so(sessions, sql, node):
    df = sessions["single-node"].sql(sql)
    assert _same(df.to_rows(), sessions["embedded"].sql(sql).to_rows())
    rec = df.run_record()
    assert rec["exchange"] == "broadcast-outer-join" and rec["task_count"] == 4
    assert rec["fallbacks"] == [f"{node} above the partitioned join is not split into partial steps: it runs once on "
                                "the client over the joined rows"]


def test_the_buckets_of_a_shuffle_join_send_partial_states_not_joined_rows(sessions, monkeypatch):
    """Aggregating in the buckets moves the groups' states, far fewer bytes than the rows."""
    monkeypatch.setenv(BROADCAST_LIMIT_ENV, "0")
    rows = "SELECT d.name, f.v FROM f RIGHT JOIN d ON f.i = d.i"
    grouped = "SELECT d.name, COUNT(*) AS n, SUM(f.v) AS sv FROM f RIGHT JOIN d ON f.i = d.i GROUP BY d.name"
    moved = {}
    for sql in (rows, grouped):
        df = sessions["single-node"].sql(sql)
        df.to_rows()
        moved[sql] = df.run_record()["shuffle_bytes"]
    map_bytes = moved[rows] - sessions["embedded"].sql(rows).to_arrow().nbytes
    assert moved[grouped] < map_bytes + 10_000 < moved[rows]


def test_a_right_input_over_the_broadcast_limit_is_shuffled(sessions, monkeypatch):
    sql = "SELECT f.v, d.name FROM f JOIN d ON f.i = d.i WHERE f.v < 3000"
    left = "SELECT f.v, d.name FROM f LEFT JOIN d ON f.i = d.i"
    broadcast = sessions["single-node"].sql(sql)
    assert _same(broadcast.to_rows(), sessions["embedded"].sql(sql).to_rows())
    rec = broadcast.run_record()
    assert rec["exchange"] == "broadcast-join+gather" and "within the broadcast limit of 67108864 bytes" in rec["shuffle"]
    monkeypatch.setenv(BROADCAST_LIMIT_ENV, "100")
    for q in (sql, left):
        df = sessions["single-node"].sql(q)
        assert _same(df.to_rows(), sessions["embedded"].sql(q).to_rows())
        rec = df.run_record()
        assert rec["exchange"] == "hash-shuffle-join" and "> broadcast limit 100 bytes" in rec["shuffle"]
    # no equality key: nothing to hash on, so it stays a broadcast and says why
    cross = sessions["single-node"].sql("SELECT f.v, d.w FROM f CROSS JOIN d WHERE f.v < 3")
    assert cross.run_record()["exchange"] == "broadcast-join+gather"
    assert "cannot be shuffled" in cross.run_record()["shuffle"]


@pytest.mark.parametrize("raw", ["lots", "-1"])
def test_a_bad_broadcast_limit_says_how_to_fix_it(raw):
    with pytest.raises(ValueError, match=rf"{BROADCAST_LIMIT_ENV}='{raw}' is not a byte count"):
        broadcast_limit({BROADCAST_LIMIT_ENV: raw})
    assert broadcast_limit({BROADCAST_LIMIT_ENV: "0"}) == 0 and broadcast_limit({}) == 64 << 20


@pytest.mark.parametrize("limit,partitioning,tasks", [("0", "left: 4 (4 files of", 4 + 2 + 2),
                                                      (None, "4 files of", 1 + 4)], ids=["shuffle", "broadcast"])
def test_shuffle_join_over_parquet_files_reads_each_file_in_its_own_task(tmp_path, monkeypatch, limit, partitioning,
                                                                        tasks):
    import pyarrow.parquet as pq

    if limit is not None:
        monkeypatch.setenv(BROADCAST_LIMIT_ENV, limit)

    facts, dims = _tables()
    for j in range(4):
        pq.write_table(facts.slice(j * 1000, 1000), tmp_path / f"f{j}.parquet")
    sql = "SELECT d.name, f.s, f.v FROM f FULL JOIN d ON f.i = d.i"
    answers = []
    for kwargs in ({}, {"runtime_mode": "single-node", "parallelism": 2}):
        s = velaria.Session(**kwargs)
        s.create_temp_view("f", s.read_parquet(str(tmp_path / "f*.parquet")))
        s.create_temp_view("d", s.create_dataframe_from_arrow(dims))
        df = s.sql(sql)
        answers.append(df.to_rows())
    assert _same(answers[0], answers[1]) and np.isfinite(len(answers[0]["rows"]))
    rec = df.run_record()
    assert rec["partitioning"].startswith(partitioning) and rec["task_count"] == tasks


_KEYS = st.one_of(st.none(), st.integers(0, 4))
_ROWS = st.lists(st.tuples(_KEYS, st.one_of(st.none(), st.integers(-3, 9))), min_size=0, max_size=14)
_ABOVE = [
    "SELECT r.w, COUNT(*) AS n, SUM(l.v) AS s, MIN(l.v) AS lo, COUNT(DISTINCT l.k) AS dk "
    "FROM l {how} JOIN r ON l.k = r.k GROUP BY r.w",
    "SELECT l.v, r.w FROM l {how} JOIN r ON l.k = r.k ORDER BY r.w NULLS FIRST LIMIT 5",
    "SELECT l.v, r.w FROM l {how} JOIN r ON l.k = r.k WHERE l.v IS NULL OR l.v > 2 LIMIT 7 OFFSET 1",
    "SELECT COUNT(*) AS n, COUNT(l.v) AS nv, MAX(r.w) AS hi FROM l {how} JOIN r ON l.k = r.k",
    "SELECT l.v + r.w AS x, l.k FROM l {how} JOIN r ON l.k = r.k AND l.v < r.w",
]


@settings(max_examples=30, deadline=None)
@given(left=_ROWS, right=_ROWS, how=st.sampled_from(["RIGHT", "FULL"]), sql=st.sampled_from(_ABOVE),
       limit=st.sampled_from([None, "0"]))
def test_outer_joins_with_the_plan_above_them_match_embedded_on_random_inputs(sessions, left, right, how, sql,
                                                                               limit):
    """NULL and duplicate keys, empty inputs, ties: broadcast outer and shuffle joins, with the
    aggregate / top-n / LIMIT / projection above them in the tasks, give embedded's answer."""
    import os

    tables = {"l": pa.table({"k": pa.array([k for k, _ in left], pa.int64()),
                             "v": pa.array([v for _, v in left], pa.int64())}),
              "r": pa.table({"k": pa.array([k for k, _ in right], pa.int64()),
                             "w": pa.array([w for _, w in right], pa.int64())})}
    query = sql.format(how=how)
    answers = []
    old = os.environ.pop(BROADCAST_LIMIT_ENV, None)
    if limit is not None:
        os.environ[BROADCAST_LIMIT_ENV] = limit
    try:
        for mode in ("embedded", "single-node"):
            s = sessions[mode]
            for name, table in tables.items():
                s.create_temp_view(name, s.create_dataframe_from_arrow(table))
            df = s.sql(query)
            answers.append(repr(df.to_rows()))
    finally:
        os.environ.pop(BROADCAST_LIMIT_ENV, None)
        if old is not None:
            os.environ[BROADCAST_LIMIT_ENV] = old
    assert answers[0] == answers[1], query
    if len(left) >= 2 and (limit is None or len(right) >= 2):
        assert df.run_record()["task_count"] > 1


def test_join_order_check_and_sort_agree():
    """A task's joined rows skip the sort only when they already are in one join's order:
    by left ordinal, then right ordinal, padded (NULL) sides last."""
    from velaria.runtime.join_above import _in_join_order, join_order

    rnd = random.Random(3)
    for _ in range(200):
        n = rnd.randint(0, 9)
        left = pa.chunked_array([pa.array([rnd.choice([None, 0, 1, 2]) for _ in range(n)], pa.int64())])
        right = pa.chunked_array([pa.array([rnd.choice([None, 0, 1, 2]) for _ in range(n)], pa.int64())])
        order = join_order(left, right)
        assert _in_join_order(left.take(order), right.take(order))
        already = left.take(order).to_pylist() == left.to_pylist() and \
            right.take(order).to_pylist() == right.to_pylist()
        assert _in_join_order(left, right) == already
