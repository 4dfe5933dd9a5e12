"""The executor works batch by batch (STYLE.md habit 9): the same corpus gives identical results
with ``batch_rows`` 1, 2 and the default, under both engines; and a source yielding many
batches is filtered, projected and aggregated without materialising it."""
from __future__ import annotations

import gc
import weakref

import pyarrow as pa
import pytest

from velaria import Session
from velaria.io.base import TableSource

DATA = {
    "id": list(range(1, 14)),
    "g": ["a", "b", None, "a", "c", "b", "a", None, "c", "a", "b", "b", "d"],
    "v": [5, None, 3, 8, 1, 1, 9, 2, None, 4, 7, 6, 0],
    "f": [0.5, 1.5, None, 2.0, float("nan"), -1.0, 3.25, 0.0, 1.0, None, 2.5, 2.5, -0.5],
    "b": [True, False, None, True, True, False, None, False, True, True, False, None, True],
}
OTHER = {"g": ["a", "b", "b", None, "e"], "w": [10, 20, 21, 30, 40]}

CORPUS = [
    "SELECT * FROM t",
    "SELECT id, v * 2 AS v2, f / 2 FROM t WHERE v > 2 OR b",
    "SELECT id FROM t WHERE b IS NOT TRUE AND id % 2 = 0",
    "SELECT g, COUNT(*), COUNT(v), SUM(v), AVG(f), MIN(f), MAX(g) FROM t GROUP BY g",
    "SELECT COUNT(*), SUM(v), COUNT(DISTINCT g) FROM t",
    "SELECT COUNT(*) FROM t",
    "SELECT COUNT(*) FROM t WHERE id > 100",
    "SELECT g, SUM(v) AS s FROM t GROUP BY g HAVING s > 5 ORDER BY s DESC",
    "SELECT id % 3 AS m, COUNT(*) FROM t GROUP BY 1",
    "SELECT id, f FROM t ORDER BY f DESC, id",
    "SELECT id, f FROM t ORDER BY f LIMIT 4",
    "SELECT id FROM t ORDER BY v NULLS FIRST, id LIMIT 3 OFFSET 2",
    "SELECT id FROM t LIMIT 5 OFFSET 3",
    "SELECT id FROM t LIMIT 0",
    "SELECT id FROM t WHERE v > 0 LIMIT 4 OFFSET 1",
    "SELECT DISTINCT g FROM t",
    "SELECT DISTINCT g, b FROM t ORDER BY g, b",
    "SELECT t.id, u.w FROM t JOIN u ON t.g = u.g",
    "SELECT t.id, u.w FROM t LEFT JOIN u ON t.g = u.g ORDER BY t.id, u.w",
    "SELECT g FROM t UNION SELECT g FROM u",
    "SELECT id FROM t UNION ALL SELECT w FROM u ORDER BY 1 LIMIT 6",
    "SELECT UPPER(g) AS ug, COUNT(*) FROM t WHERE g IS NOT NULL GROUP BY UPPER(g)",
    "SELECT CASE WHEN v > 4 THEN 'hi' ELSE 'lo' END AS k, SUM(id) FROM t GROUP BY 1",
    "SELECT id FROM t WHERE id IN (1, 3, 5, 13) AND g NOT IN ('x')",
    "SELECT 1 + 1",
]


def make(engine: str, batch_rows: int | None) -> Session:
    s = Session(engine) if batch_rows is None else Session(engine, batch_rows=batch_rows)
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table(DATA)))
    s.create_temp_view("u", s.create_dataframe_from_arrow(pa.table(OTHER)))
    return s


def canonical(table: pa.Table):
    def fix(v):
        return "NaN" if isinstance(v, float) and v != v else v
    return table.schema, [[fix(v) for v in row.values()] for row in table.to_pylist()]


@pytest.mark.parametrize("sql", CORPUS)
def test_batch_size_and_engine_do_not_change_answers(sql):
    want = canonical(make("reference", None).sql(sql).to_arrow())
    for engine in ("reference", "auto"):
        for batch_rows in (1, 2, 5, None):
            got = canonical(make(engine, batch_rows).sql(sql).to_arrow())
            assert got == want, (sql, engine, batch_rows)


def test_results_are_single_chunk_with_small_batches():
    s = make("reference", 1)
    tbl = s.sql("SELECT id FROM t WHERE v > 1").to_arrow()
    assert all(c.num_chunks == 1 for c in tbl.columns)


# ------------------------------------------------------------------------------- lazy sources
class ManyBatches(TableSource):
    """Yields ``n`` one-row-per-value batches lazily, counting how many are alive at once."""

    kind = "memory"

    def __init__(self, n: int, rows: int = 4):
        self.n = n
        self.rows = rows
        self.yielded = 0
        self.alive = 0
        self.max_alive = 0
        self.scans = 0

    @property
    def schema(self):
        return pa.schema([("k", pa.int64()), ("x", pa.int64()), ("pad", pa.string())])

    def _dead(self):
        self.alive -= 1

    def scan(self, columns=None, filters=(), batch_rows=65536):
        self.scans += 1
        names = list(columns) if columns is not None else self.schema.names
        for i in range(self.n):
            base = i * self.rows
            full = {"k": [(base + j) % 7 for j in range(self.rows)],
                    "x": [base + j for j in range(self.rows)],
                    "pad": ["p" * 10] * self.rows}
            # select() keeps the row count also for columns=[] (COUNT(*) reads no columns)
            b = pa.record_batch([pa.array(full[f.name], f.type) for f in self.schema],
                                schema=self.schema).select(names)
            self.yielded += 1
            self.alive += 1
            self.max_alive = max(self.max_alive, self.alive)
            weakref.finalize(b, self._dead)
            yield b
            del b
            if i % 50 == 0:
                gc.collect()


def frame(s, src):
    return s._frame_from_source(src)


def test_aggregate_over_many_batches_does_not_materialise():
    s = Session("reference")
    src = ManyBatches(1000)
    s.create_temp_view("big", frame(s, src))
    df = s.sql("SELECT k, COUNT(*) AS n, SUM(x) AS sx FROM big WHERE x % 2 = 0 GROUP BY k ORDER BY k")
    assert src.scans == 0  # lazy: nothing read at sql()
    got = df.to_rows()["rows"]
    assert src.yielded == 1000 and src.scans == 1
    xs = [x for x in range(4000) if x % 2 == 0]
    want = [[k, sum(1 for x in xs if x % 7 == k), sum(x for x in xs if x % 7 == k)] for k in range(7)]
    assert got == want
    assert src.max_alive <= 5, src.max_alive  # batches were released as the aggregate folded them


def test_count_star_over_many_batches_reads_no_columns():
    s = Session("reference")
    src = ManyBatches(1000)
    s.create_temp_view("big", frame(s, src))
    assert s.sql("SELECT COUNT(*) FROM big").to_rows()["rows"] == [[4000]]
    assert src.max_alive <= 5


def test_filter_project_limit_stream_and_stop_early():
    s = Session("reference")
    src = ManyBatches(1000)
    s.create_temp_view("big", frame(s, src))
    got = s.sql("SELECT x + 1 AS y FROM big WHERE k = 3 LIMIT 5").to_rows()["rows"]
    assert got == [[4], [11], [18], [25], [32]]
    assert src.yielded < 20  # LIMIT stopped the scan early instead of reading 1000 batches


def test_top_n_over_many_batches():
    s = Session("reference")
    src = ManyBatches(300)
    s.create_temp_view("big", frame(s, src))
    got = s.sql("SELECT x FROM big ORDER BY x DESC LIMIT 3").to_rows()["rows"]
    assert got == [[1199], [1198], [1197]]
