"""The demo: build an Arrow table in memory, run a few SQL queries, print results and an explain.

Run with ``python3 dev.py demo`` (or ``python -m velaria.demo`` inside the environment).
"""
from __future__ import annotations

import pyarrow as pa

import velaria

TRADES = pa.table({
    "id": pa.array([1, 2, 3, 4, 5, 6, 7, 8], pa.int64()),
    "symbol": ["AAPL", "MSFT", "AAPL", "GOOG", "MSFT", "AAPL", None, "GOOG"],
    "qty": pa.array([10, 5, 7, 3, 12, None, 4, 9], pa.int64()),
    "price": [189.5, 411.2, 190.1, 142.8, 409.9, 188.7, 100.0, 143.5],
    "ts": ["2026-03-29T10:00:00", "2026-03-29T10:00:20", "2026-03-29T10:01:05", "2026-03-30T09:30:00",
           "2026-03-30T09:31:00", "2026-03-30T09:45:00", "2026-03-31T11:00:00", "2026-03-31T11:02:00"],
})

SECTORS = pa.table({"symbol": ["AAPL", "MSFT", "GOOG"], "sector": ["hardware", "software", "ads"]})

QUERIES = [
    ("Filter and compute", "SELECT id, symbol, qty * price AS notional FROM trades "
                           "WHERE qty IS NOT NULL AND price > 150 ORDER BY notional DESC"),
    ("Group by with HAVING", "SELECT symbol, COUNT(*) AS n, SUM(qty) AS total_qty, AVG(price) AS avg_price "
                             "FROM trades WHERE symbol IS NOT NULL GROUP BY symbol HAVING COUNT(*) >= 2 "
                             "ORDER BY total_qty DESC"),
    ("Join and date functions", "SELECT t.id, s.sector, DAY(t.ts) AS day, UPPER(t.symbol) AS sym "
                                "FROM trades t LEFT JOIN sectors s ON t.symbol = s.symbol ORDER BY t.id LIMIT 5"),
    ("UNION and CASE", "SELECT symbol, CASE WHEN price > 300 THEN 'high' ELSE 'low' END AS band FROM trades "
                       "WHERE id <= 2 UNION ALL SELECT symbol, 'listed' FROM sectors"),
]


DOCS_CSV = """doc_id,title,embedding
1,intro to arrow,[0.9 0.1 0.0]
2,vector search,[0.1 0.9 0.2]
3,sql planning,[0.2 0.3 0.9]
4,columnar formats,[0.8 0.2 0.1]
"""


def _files_and_vectors(session) -> None:
    """Read a CSV written from embedded text, query it with SQL and search its vectors."""
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "docs.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write(DOCS_CSV)
        probe = session.probe(path)
        print(f"\n== probe(docs.csv): kind={probe['kind']} final_format={probe['final_format']} "
              f"confidence={probe['confidence']} schema={probe['schema']}")
        session.sql(f"CREATE TABLE docs OPTIONS(path: '{path}')")
        session.sql("SELECT doc_id, UPPER(title) AS title FROM docs WHERE doc_id >= 2").show()
        query = [1.0, 0.0, 0.0]
        print(f"\n== vector_search(docs, embedding, {query}, top_k=2, metric='cosine')")
        session.create_temp_view("docs_mem", session.sql("SELECT * FROM docs"))
        session.vector_search("docs_mem", "embedding", query, top_k=2, metric="cosine").show()
        print(session.explain_vector_search("docs_mem", "embedding", query, top_k=2, metric="cosine"))


def _stream(session) -> None:
    """A windowed stream query over three Arrow micro-batches: results, progress, explain."""
    import pyarrow as pa

    ts = [0, 20_000, 61_000, 65_000, 121_000, 130_000]
    events = pa.table({"ts": ts, "sym": ["ACME", "INIT", "ACME", "ACME", "INIT", "ACME"],
                       "qty": [10, 5, 7, 3, 8, 1]})
    session.create_temp_view("ticks", session.create_stream_from_arrow(events.to_batches(max_chunksize=2)))
    sql = ("SELECT w, sym, SUM(qty) AS qty FROM ticks WINDOW BY ts EVERY 60000 AS w GROUP BY w, sym")
    print(f"\n== stream_sql over 3 micro-batches (each batch emits the groups it updated)\n{sql}")
    sink = session.create_realtime_stream_sink()
    query = session.stream_sql(sql).write_stream_queue_sink(sink, trigger_interval_ms=0)
    query.start()
    query.await_termination()
    while (part := sink.poll_arrow()) is not None:
        print("  batch:", [list(r.values()) for r in part.to_pylist()])
    p = query.progress()
    print("  progress:", {k: p[k] for k in ("status", "execution_mode", "batches_processed",
                                            "last_source_offset", "aggregate_impl")})
    print("\n== explain_stream_sql\n")
    print(session.explain_stream_sql(sql))


def main() -> None:
    session = velaria.Session()
    print(f"velaria {velaria.__version__}: engine={session.engine} backend={session.kernels.backend}")
    session.create_temp_view("trades", session.create_dataframe_from_arrow(TRADES))
    session.create_temp_view("sectors", session.create_dataframe_from_arrow(SECTORS))
    for title, sql in QUERIES:
        print(f"\n== {title}\n{sql}")
        session.sql(sql).show()
    sql = QUERIES[1][1]
    print(f"\n== explain_sql\n{sql}\n")
    print(session.explain_sql(sql))
    print("\n== DataFrame.explain()\n")
    print(session.sql(QUERIES[0][1]).explain())
    _files_and_vectors(session)
    _stream(session)
    print("\n== an error names the problem and the fix\n")
    try:
        session.sql("SELECT symbl FROM trades")
    except velaria.VelariaError as exc:
        print(type(exc).__name__ + ":", exc)


if __name__ == "__main__":
    main()
