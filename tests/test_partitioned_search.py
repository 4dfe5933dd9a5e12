"""Searches split over partitions: BM25 corpus statistics that add up (both kernel twins),
and ``Session.vector_search`` / ``Session.keyword_search`` / SQL ``KEYWORD SEARCH`` in
single-node mode giving the embedded answer (Dask runs the same tasks: see
``test_runtime_modes_dask.py``)."""
from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import velaria
from velaria import accel
from velaria.reference import keyword as ref

WORDS = st.sampled_from(["alpha", "Beta", "gamma", "x1", "日本語", "数据", "", " ", "a-b", "7"])
TEXTS = st.lists(WORDS, max_size=6).map(" ".join)


def _accel(name):
    if name not in accel.KERNELS:
        pytest.fail(f"the accelerated keyword kernels did not load: {accel.status()}")
    return accel.KERNELS[name]


@st.composite
def split_corpora(draw):
    n = draw(st.integers(0, 16))
    cols = [draw(st.lists(st.one_of(st.none(), TEXTS), min_size=n, max_size=n)) for _ in range(draw(st.integers(1, 2)))]
    query = draw(TEXTS.filter(lambda q: bool(ref.query_terms(q))))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    return cols, query, [0] + cuts + [n]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=split_corpora(), k=st.integers(1, 20))
def test_partition_statistics_add_up_and_score_as_the_whole(case, k):
    """Summed per-partition statistics equal the whole table's; each partition scored with
    them returns exactly the whole search's scores for its rows; the twins agree bit for bit."""
    cols, query, bounds = case
    whole_ids, whole_scores = ref.keyword_topk(cols, query, 10_000)
    whole = dict(zip(whole_ids, whole_scores))
    stats = ref.keyword_stats(cols, query)
    assert _accel("keyword_stats")(cols, query) == stats
    parts = [[c[a:b] for c in cols] for a, b in zip(bounds, bounds[1:])]
    summed = [ref.keyword_stats(p, query) for p in parts]
    assert (sum(s[0] for s in summed), sum(s[1] for s in summed)) == stats[:2]
    assert [sum(s[2][j] for s in summed) for j in range(len(stats[2]))] == stats[2]
    for (a, _), part in zip(zip(bounds, bounds[1:]), parts):
        got = ref.keyword_topk(part, query, k, corpus=stats)
        assert _accel("keyword_topk")(part, query, k, corpus=stats) == got
        assert all(whole[a + i] == s for i, s in zip(*got))      # the same float64 score as the whole
        mine = sorted((-s, r - a) for r, s in whole.items() if a <= r < a + len(part[0]))[:k]
        assert got == ([r for _, r in mine], [-s for s, _ in mine])


def test_keyword_stats_of_nothing():
    assert ref.keyword_stats([[]], "alpha beta") == (0, 0, [0, 0])
    assert _accel("keyword_stats")([pa.array([], pa.string())], "alpha beta") == (0, 0, [0, 0])
    assert ref.keyword_topk([[]], "alpha", 3, corpus=(5, 10, [1])) == ([], [])


# ------------------------------------------------------------------------------ sessions

def _corpus(n=600):
    rnd = random.Random(4)
    words = ["alpha", "beta", "gamma", "delta", "日本語", "x1", "Alpha"]
    vecs = [None if i % 41 == 0 else [rnd.choice([0.0, -0.0, 1.0, rnd.uniform(-1, 1)]) for _ in range(4)]
            for i in range(n)]
    return pa.table({
        "id": list(range(n)),
        "a": [None if i % 13 == 0 else " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 6))) for i in range(n)],
        "b": [rnd.choice(["beta", "", None, "gamma gamma"]) for _ in range(n)],
        "emb": pa.array(vecs, type=pa.list_(pa.float32(), 4)),
    })


@pytest.fixture(scope="module", params=["auto", "reference"])
def pair(request):
    table = _corpus()
    out = []
    for kwargs in ({}, {"runtime_mode": "single-node", "parallelism": 3}):
        s = velaria.Session(engine=request.param, **kwargs)
        s.create_temp_view("d", s.create_dataframe_from_arrow(table))
        out.append(s)
    yield out
    out[1].runtime.close()


@pytest.mark.parametrize("columns,query,k", [("a", "alpha beta", 10), (["a", "b"], "gamma 日本", 50),
                                             (["a", "a"], "delta", 1000), ("b", "gamma", 1)])
def test_keyword_search_api_is_partitioned_with_global_statistics(pair, columns, query, k):
    embedded, single = pair
    want = embedded.keyword_search("d", columns, query, k).to_rows()
    assert repr(single.keyword_search("d", columns, query, k).to_rows()) == repr(want)
    rec = single.runtime.last_search_record
    assert (rec.exchange, rec.partitions, rec.task_count, rec.stage_count) == ("keyword-top-k+merge", 3, 6, 3)
    assert rec.ran and rec.workers and rec.shuffle_bytes > 0


@pytest.mark.parametrize("sql", [
    "SELECT id, keyword_score FROM d WHERE id > 20 KEYWORD SEARCH(a, b) QUERY 'alpha gamma' TOP_K 15",
    "SELECT id, a FROM d KEYWORD SEARCH(a) QUERY 'beta' TOP_K 400",
])
def test_sql_keyword_search_is_partitioned(pair, sql):
    embedded, single = pair
    df = single.sql(sql)
    assert "exchange=keyword-top-k+merge" in df.explain()
    assert repr(df.to_rows()) == repr(embedded.sql(sql).to_rows())
    rec = df.run_record()
    assert rec["task_count"] == 6 and rec["stage_count"] == 3 and rec["fallbacks"] == []


@pytest.mark.parametrize("query,k,metric", [([1, 0, 0.5, 0], 7, "cosine"), ([[1, 0, 0, 0], [0, 0, 0, 0], [0.5, 0.5, 1, 1]], 20, "dot"),
                                            ([0, 1, 0, 1], 1000, "l2"), (np.array([[0.0, 1.0, 0.0, 0.0]]), 3, "cosin")])
def test_vector_search_api_is_partitioned(pair, query, k, metric):
    embedded, single = pair
    want = embedded.vector_search("d", "emb", query, k, metric).to_rows()
    assert repr(single.vector_search("d", "emb", query, k, metric).to_rows()) == repr(want)
    rec = single.runtime.last_search_record
    assert (rec.exchange, rec.task_count, rec.stage_count) == ("vector-top-k+merge", 3, 2) and rec.ran


def test_partitioned_searches_report_bad_input_like_embedded(pair):
    embedded, single = pair
    for call in (lambda s: s.vector_search("d", "emb", [1, 0], 3),
                 lambda s: s.vector_search("d", "emb", [1, 0, 0, 0], 0),
                 lambda s: s.keyword_search("d", "nope", "alpha", 3),
                 lambda s: s.keyword_search("d", "a", "", 3)):
        with pytest.raises(Exception) as want:
            call(embedded)
        with pytest.raises(type(want.value)) as got:
            call(single)
        assert str(got.value) == str(want.value)


@pytest.mark.parametrize("query,k,metric,threshold", [
    ([1, 0, 0.5, 0], 7, "cosine", None), ("[0 1 0 1]", 40, "l2", 1.5), ([0.5, 0.5, 1, 1], 25, "dot", 0.25),
    ([1, 0, 0, 0], 1000, "cosin", 0.9), ([0, 0, 0, 0], 5, "cosine", None)])
def test_hybrid_search_api_is_partitioned(pair, query, k, metric, threshold):
    """Session.hybrid_search: per-partition top-k, the same search over the candidates, then the
    threshold; the view's rows and scores are embedded's, and the record says so."""
    embedded, single = pair
    want = embedded.hybrid_search("d", "emb", query, k, metric, threshold).to_rows()
    got = single.hybrid_search("d", "emb", query, k, metric, threshold)
    assert repr(got.to_rows()) == repr(want) and got.to_rows()["schema"][-1] == "vector_score"
    rec = single.runtime.last_search_record
    assert (rec.exchange, rec.task_count, rec.stage_count, rec.partitions) == ("vector-top-k+merge", 3, 2, 3)
    assert rec.ran and rec.workers and rec.fallbacks == [] and "score threshold" in rec.final_stage


def test_hybrid_search_reports_bad_input_like_embedded(pair):
    embedded, single = pair
    for call in (lambda s: s.hybrid_search("d", "emb", [1, 0], 3),
                 lambda s: s.hybrid_search("d", "emb", [1, 0, 0, 0], 0),
                 lambda s: s.hybrid_search("d", "emb", [1, 0, 0, 0], 3, "cos"),
                 lambda s: s.hybrid_search("d", "emb", [], 3),
                 lambda s: s.hybrid_search("d", "emb", [1, 0, 0, 0], 3, score_threshold="x"),
                 lambda s: s.hybrid_search("d", "nope", [1, 0, 0, 0], 3),
                 lambda s: s.hybrid_search("d", "a", [1, 0, 0, 0], 3)):
        with pytest.raises(Exception) as want:
            call(embedded)
        with pytest.raises(type(want.value)) as got:
            call(single)
        assert str(got.value) == str(want.value)


def test_a_search_over_a_view_too_small_to_split_records_why_it_ran_here(pair):
    embedded, single = pair
    for s in pair:
        s.create_temp_view("one", s.create_dataframe_from_arrow(_corpus().slice(1, 1)))
    want = embedded.hybrid_search("one", "emb", [1, 0, 0, 0], 3).to_rows()
    assert repr(single.hybrid_search("one", "emb", [1, 0, 0, 0], 3).to_rows()) == repr(want)
    rec = single.runtime.last_search_record
    assert rec.fallbacks == ["search not partitionable (in-memory table too small to split): ran in this process"]
    assert (rec.task_count, rec.exchange) == (1, "none")
