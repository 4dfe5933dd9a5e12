"""BM25 keyword search side by side: the reference twin (row by row) and the Arrow-vectorised
twin, on the same generated corpus, plus ``Session.keyword_search`` end to end.

    .venv/bin/python -m pytest benchmarks/bench_keyword.py --benchmark-only \
        --benchmark-columns=median,min,rounds -q
    VELARIA_BENCH_SCALE=0.1 ...               # shrink the corpus
    .venv/bin/python benchmarks/bench_keyword.py   # one-shot table: ms and speed-up

The corpus: 100k rows (times the scale) of 2 text columns, ASCII words from a 5,000-word
vocabulary with a Zipf-like draw and one row in ten holding a CJK phrase.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa
import pytest

SCALE = float(os.environ.get("VELARIA_BENCH_SCALE", "1"))
ROWS = int(100_000 * SCALE)
QUERIES = ["word17 word4", "word1203 word7 word4999", "北京 word2"]
CJK = ["北京欢迎你", "我来到北京清华大学", "上海的天气", "中文分词测试"]


def corpus(n: int = ROWS) -> list[pa.Array]:
    rng = np.random.default_rng(0)
    vocab = np.array([f"word{i}" for i in range(5000)])
    columns = []
    for width in (6, 24):
        ids = np.minimum(rng.zipf(1.3, size=(n, width)), 5000) - 1
        texts = [" ".join(vocab[row]) for row in ids]
        for i in range(0, n, 10):
            texts[i] += " " + CJK[i % len(CJK)]
        columns.append(pa.array(texts, pa.string()))
    return columns


_CORPUS: list = []


def data() -> list[pa.Array]:
    if not _CORPUS:
        _CORPUS.append(corpus())
    return _CORPUS[0]


def contenders():
    from velaria import accel
    from velaria.reference import keyword as ref
    out = {"reference": ref.keyword_topk}
    if "keyword_topk" in accel.KERNELS:
        out["accel"] = accel.KERNELS["keyword_topk"]
    return out


def session_search(columns):
    from velaria.session import Session
    s = Session(engine="auto")
    s.create_temp_view("docs", s.create_dataframe_from_arrow(pa.table({"title": columns[0], "body": columns[1]})))
    return lambda query: s.keyword_search("docs", ["title", "body"], query, top_k=10).to_arrow()


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("name", ["reference", "accel"])
def test_keyword_topk(benchmark, name, query):
    fns = contenders()
    if name not in fns:
        pytest.skip("the accelerated keyword kernel is not available")
    cols = data()
    benchmark.extra_info.update(rows=ROWS)
    benchmark.pedantic(lambda: fns[name](cols, query, 10), rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("query", QUERIES)
def test_session_keyword_search(benchmark, query):
    run = session_search(data())
    benchmark.pedantic(lambda: run(query), rounds=3, warmup_rounds=1)


def report() -> str:
    cols = data()
    fns = contenders()
    run = session_search(cols)
    lines = [f"rows={ROWS}, 2 text columns", "| query | contender | ms | reference / contender |", "|---|---|---:|---:|"]
    for query in QUERIES:
        times = {}
        for name, fn in list(fns.items()) + [("session", lambda c, q, k: run(q))]:
            fn(cols, query, 10)
            ts = []
            for _ in range(3):
                t = time.perf_counter()
                fn(cols, query, 10)
                ts.append(time.perf_counter() - t)
            times[name] = float(np.median(ts))
        for name, sec in times.items():
            lines.append(f"| `{query}` | {name} | {sec * 1e3:.1f} | {times['reference'] / sec:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
