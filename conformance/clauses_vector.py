"""Clauses on the vector contract: exact-scan top-k, its explain, hybrid search.

What they pin: the runtime contract's vector explain fields and preferred ingestion shapes
(FixedSizeList<float32> in Arrow, ``[1 2 3]`` / ``[1,2,3]`` text in CSV); native Velaria's
``vector_search`` ... ``explain_hybrid_search`` signatures, messages, metrics, result order and
verified values. Clauses tagged ``diverges`` name their docs/divergences.md row.

Explain line order: the runtime contract lists the required fields; native Velaria's verified
order puts ``acceleration`` before ``backend`` and
``filter_pushdown``. The clause requires exactly those eight lines in that verified order.
"""
from __future__ import annotations

import math
import os
import re
import tempfile

from . import ApiMissing, ClauseFailure, Context, clause, contract_or_native

ROWS = [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0]]
Q = [1.0, 0.0, 0.0]
TOL = 1e-6  # native Velaria's SIMD backends may differ from its scalar definition in the last bits

_SETUP = """import pyarrow as pa
import {target} as target
s = {session}
v = pa.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], None], pa.list_(pa.float32(), 3))
s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({{"id": [1, 2, 3, 4], "v": v}})))
"""


def _expect(cond: bool, msg: str, repro: str | None = None):
    if not cond:
        raise ClauseFailure(msg, repro)


def _fsl(rows, dim=3):
    import pyarrow as pa

    return pa.array(rows, pa.list_(pa.float32(), dim))


def _session(ctx: Context, rows=None, with_null: bool = True):
    """A Session with view ``t``: ``id`` int64 and ``v`` FixedSizeList<float32, 3>
    (default: native's documented example rows plus a NULL vector as the 4th row)."""
    import pyarrow as pa

    rows = list(ROWS if rows is None else rows)
    if with_null:
        rows.append(None)
    s = ctx.session()
    t = pa.table({"id": pa.array(range(1, len(rows) + 1), pa.int64()), "v": _fsl(rows, len(Q))})
    ctx.api(s, "create_temp_view")("t", ctx.api(s, "create_dataframe_from_arrow")(t))
    return s


def _close(a, b) -> bool:
    return isinstance(a, float) and math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


def _raises(fn, needle: str, what: str, cls=RuntimeError) -> BaseException:
    try:
        fn()
    except (ApiMissing, AttributeError):  # a missing API is reported as such by the runner
        raise
    except Exception as exc:  # noqa: BLE001
        _expect(isinstance(exc, cls), "%s raised %s (not a %s): %s" % (what, type(exc).__name__, cls.__name__, exc))
        _expect(needle in str(exc), "%s: error text lacks %r: %s" % (what, needle, exc))
        return exc
    raise ClauseFailure("%s succeeded; expected %s containing %r" % (what, cls.__name__, needle))


# ------------------------------------------------------------------------------------ explain

def _explain_lines(text: str, what: str) -> list[str]:
    _expect(isinstance(text, str), "%s returned %s, expected str" % (what, type(text).__name__))
    _expect(text.endswith("\n"), "%s output does not end with a newline: %r" % (what, text))
    return text[:-1].split("\n")


@clause("vector-explain-001", "explain_vector_search prints exactly mode, metric, dimension, top_k, candidate_rows, "
        "acceleration, backend, filter_pushdown lines, each ending in \\n",
        repro=_SETUP + "print(repr(s.explain_vector_search('t', 'v', [1, 0, 0], top_k=2)))")
def explain_lines(ctx: Context):
    s = _session(ctx)
    explain = ctx.api(s, "explain_vector_search")
    for metric, printed, top_k in (("cosine", "cosine", 2), ("cosin", "cosine", 2), ("dot", "dot", 5), ("l2", "l2", 1)):
        what = "explain_vector_search('t', 'v', [1, 0, 0], top_k=%d, metric=%r)" % (top_k, metric)
        lines = _explain_lines(explain("t", "v", Q, top_k=top_k, metric=metric), what)
        _expect(len(lines) == 8 and lines[6].startswith("backend="),
                "%s printed %r, expected 8 lines with backend=<...> 7th" % (what, lines))
        backend = lines[6][len("backend="):]
        _expect(re.fullmatch(r"[A-Za-z0-9_.+-]+", backend) is not None,
                "%s: backend value %r is not a non-empty token" % (what, backend))
        want = ["mode=exact-scan", "metric=%s" % printed, "dimension=3", "top_k=%d" % top_k, "candidate_rows=3",
                "acceleration=flat-buffer+simd-topk", "backend=%s" % backend, "filter_pushdown=false"]
        _expect(lines == want, "%s printed\n%s\nexpected\n%s" % (what, "\n".join(lines), "\n".join(want)))


@clause("vector-explain-002", "explain_vector_search backend= names the kernel that runs: velaria.accel.backend() "
        "for the accelerated engine, python for engine=reference (our implementation only)",
        diverges="backend-names",
        repro=_SETUP + "print(s.explain_vector_search('t', 'v', [1, 0, 0], top_k=2))\n"
                       "print(target.accel.backend(), target.accel.available())")
def explain_backend(ctx: Context):
    accel = getattr(ctx.target, "accel", None)
    if accel is None:  # not our implementation: only the token shape of vector-explain-001 applies
        return
    engine = ctx.session_kwargs.get("engine") or os.environ.get("VELARIA_ENGINE") or "auto"
    if engine == "reference" or not accel.available():
        want = "python"
    else:
        want = accel.backend()
    s = _session(ctx)
    text = ctx.api(s, "explain_vector_search")("t", "v", Q, top_k=2)
    _expect("\nbackend=%s\n" % want in text,
            "engine=%s: explain_vector_search has no line backend=%s:\n%s" % (engine, want, text))


@clause("vector-explain-003", "explain_hybrid_search prints the hybrid explain lines in order (no dimension line)",
        repro=_SETUP + "print(s.explain_hybrid_search('t', 'v', [1, 0, 0], top_k=2, score_threshold=0.02))")
def explain_hybrid(ctx: Context):
    s = _session(ctx)
    explain = ctx.api(s, "explain_hybrid_search")
    # thresholds whose %.17g text (native) equals their shortest text (ours); 0.95 or 1.0 would differ
    cases = [("cosine", None, "none", "<=", 2), ("cosine", 0.02, "0.02", "<=", 2), ("cosine", 0.001, "0.001", "<=", 1),
             ("dot", 0.5, "0.5", ">=", 2), ("l2", 0.125, "0.125", "<=", 1)]
    for metric, threshold, printed, cmp, returned in cases:
        what = "explain_hybrid_search('t', 'v', [1, 0, 0], top_k=2, metric=%r, score_threshold=%r)" % (metric, threshold)
        lines = _explain_lines(explain("t", "v", Q, top_k=2, metric=metric, score_threshold=threshold), what)
        _expect(len(lines) == 12 and lines[11].startswith("backend=") and len(lines[11]) > len("backend="),
                "%s printed %r, expected 12 lines ending with backend=<...>" % (what, lines))
        want = ["mode=exact-scan-hybrid-search", "metric=%s" % metric, "top_k=2", "score_threshold=%s" % printed,
                "score_threshold_compare=%s" % cmp, "input_rows=4", "candidate_rows=3", "returned_rows=%d" % returned,
                "column_filter_stage=before-vector", "column_filter_execution=none",
                "acceleration=flat-buffer+simd-topk", lines[11]]
        _expect(lines == want, "%s printed\n%s\nexpected\n%s" % (what, "\n".join(lines), "\n".join(want)))


# ------------------------------------------------------------------------------------ vector_search

@clause("vector-search-001", "vector_search returns a DataFrame with schema [row_id, score] (int, float), "
        "at most top_k rows", repro=_SETUP + "print(s.vector_search('t', 'v', [1, 0, 0], top_k=2).to_rows())")
def search_shape(ctx: Context):
    s = _session(ctx)
    search = ctx.api(s, "vector_search")
    for top_k, n in ((1, 1), (2, 2), (10, 3)):
        out = search("t", "v", Q, top_k=top_k).to_rows()
        _expect(out["schema"] == ["row_id", "score"], "schema is %r, expected ['row_id', 'score']" % (out["schema"],))
        _expect(len(out["rows"]) == n, "top_k=%d over 3 non-NULL vectors gave %d rows, expected %d: %r"
                % (top_k, len(out["rows"]), n, out["rows"]))
        for row in out["rows"]:
            _expect(type(row[0]) is int and type(row[1]) is float, "row %r is not [int, float]" % (row,))


@clause("vector-search-002", "query [1,0,0] over [[1,0,0],[0.9,0.1,0],[0,1,0]]: best first for cosine and l2 "
        "(ascending distance) and dot (descending), verified values",
        repro=_SETUP + "for m in ('cosine', 'dot', 'l2'):\n    print(m, s.vector_search('t', 'v', [1, 0, 0], top_k=3, metric=m).to_rows())")
def search_ordering(ctx: Context):
    s = _session(ctx)
    search = ctx.api(s, "vector_search")
    expected = {
        "cosine": [(0, 0.0), (1, 0.0061162658280755622), (2, 1.0)],
        "cosin": [(0, 0.0), (1, 0.0061162658280755622), (2, 1.0)],
        "dot": [(0, 1.0), (1, 0.9), (2, 0.0)],
        "l2": [(0, 0.0), (1, 0.141421374149721), (2, math.sqrt(2.0))],
    }
    for metric, want in expected.items():
        rows = search("t", "v", Q, top_k=3, metric=metric).to_rows()["rows"]
        _expect(rows and rows[0][0] == 0, "metric=%s: rows[0][0] is not 0: %r" % (metric, rows))
        ok = len(rows) == len(want) and all(r[0] == w[0] and _close(r[1], w[1]) for r, w in zip(rows, want))
        _expect(ok, "metric=%s gave %r, expected about %r" % (metric, rows, [list(w) for w in want]))


@clause("vector-search-003", "cosine distance: identical direction 0.0, a zero-norm row or query 1.0",
        repro="""import pyarrow as pa
import {target} as target
s = {session}
s.create_temp_view("z", s.create_dataframe_from_arrow(pa.table({{"v": pa.array([[0, 0, 0], [2, 0, 0]], pa.list_(pa.float32(), 3))}})))
print(s.vector_search("z", "v", [1, 0, 0], top_k=2).to_rows(), s.vector_search("z", "v", [0, 0, 0], top_k=2).to_rows())""")
def cosine_edges(ctx: Context):
    s = _session(ctx, rows=[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]], with_null=False)
    search = ctx.api(s, "vector_search")
    rows = search("t", "v", Q, top_k=2).to_rows()["rows"]
    _expect(len(rows) == 2 and rows[0][0] == 1 and rows[0][1] == 0.0 and rows[1] == [0, 1.0],
            "query [1,0,0] over [[0,0,0],[2,0,0]] gave %r, expected [[1, 0.0], [0, 1.0]]" % (rows,))
    rows = search("t", "v", [0.0, 0.0, 0.0], top_k=2).to_rows()["rows"]
    _expect(sorted(r[1] for r in rows) == [1.0, 1.0], "zero query vector gave %r, expected distance 1.0 for every row"
            % (rows,))


@clause("vector-search-004", "NULL vectors are skipped and row_id is the position in the view "
        "(a hit on the 3rd row of a sparse column is row_id 2)",
        repro="""import pyarrow as pa
import {target} as target
s = {session}
s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({{"v": pa.array([None, [1, 0, 0], [0, 1, 0]], pa.list_(pa.float32(), 3))}})))
print(s.vector_search("t", "v", [0, 1, 0], top_k=10).to_rows())""")
def null_rows(ctx: Context):
    import pyarrow as pa

    s = ctx.session()
    t = pa.table({"v": _fsl([None, [1, 0, 0], [0, 1, 0]])})
    ctx.api(s, "create_temp_view")("t", ctx.api(s, "create_dataframe_from_arrow")(t))
    rows = ctx.api(s, "vector_search")("t", "v", [0.0, 1.0, 0.0], top_k=10).to_rows()["rows"]
    _expect([r[0] for r in rows] == [2, 1], "gave %r, expected row_ids [2, 1] (the NULL row 0 skipped)" % (rows,))


@clause("vector-ties-001", "equal scores are ordered by ascending row_id (also for the cut at top_k)",
        diverges="vector-ties",
        repro="""import pyarrow as pa
import {target} as target
s = {session}
s.create_temp_view("d", s.create_dataframe_from_arrow(pa.table({{"v": pa.array([[1, 0, 0]] * 6, pa.list_(pa.float32(), 3))}})))
print(s.vector_search("d", "v", [1, 0, 0], top_k=10).to_rows())""")
def ties(ctx: Context):
    s = _session(ctx, rows=[[1.0, 0.0, 0.0]] * 6 + [[0.0, 1.0, 0.0]], with_null=False)
    search = ctx.api(s, "vector_search")
    got = {(metric, k): [r[0] for r in search("t", "v", Q, top_k=k, metric=metric).to_rows()["rows"]]
           for metric in ("cosine", "dot", "l2") for k in (10, 3)}

    def contract():
        for (metric, k), ids in got.items():
            want = [0, 1, 2, 3, 4, 5, 6][:k]
            _expect(ids == want, "metric=%s top_k=%d gave row_ids %r, expected %r" % (metric, k, ids, want))

    def native():  # the same tied rows, in some order: the six ties first, then row 6
        for (metric, k), ids in got.items():
            n = min(k, 7)  # the table has 7 rows
            if len(ids) != n or len(set(ids)) != n or not set(ids[:min(k, 6)]) <= set(range(6)):
                return None
            if k == 10 and ids[6] != 6:
                return None
        return "tied rows come back in another order: %r" % got

    contract_or_native(contract, native)


# ------------------------------------------------------------------------------------ errors

@clause("vector-error-001", "top_k=0 raises ValueError ('top_k must be >= 1')",
        diverges="top-k-zero", repro=_SETUP + "s.vector_search('t', 'v', [1, 0, 0], top_k=0)")
def top_k_zero(ctx: Context):
    s = _session(ctx)

    def contract():
        for name in ("vector_search", "hybrid_search"):
            _raises(lambda: ctx.api(s, name)("t", "v", Q, top_k=0).to_rows(), "top_k must be >= 1",
                    "%s(top_k=0)" % name, cls=ValueError)

    def native():  # top_k < 1 is treated as 1
        counts = [len(ctx.api(s, name)("t", "v", Q, top_k=0).to_rows()["rows"]) for name in ("vector_search", "hybrid_search")]
        return "top_k=0 returned one row" if counts == [1, 1] else None

    contract_or_native(contract, native)


@clause("vector-error-002", "an unknown metric is a RuntimeError 'metric must be one of: cosine/cosin, dot, l2' "
        "(metric names are case-sensitive)", repro=_SETUP + "s.vector_search('t', 'v', [1, 0, 0], metric='euclid')")
def bad_metric(ctx: Context):
    s = _session(ctx)
    for name in ("vector_search", "explain_vector_search", "hybrid_search", "explain_hybrid_search"):
        for metric in ("euclid", "COSINE"):
            _raises(lambda: _call_out(ctx.api(s, name)("t", "v", Q, top_k=2, metric=metric)),
                    "metric must be one of: cosine/cosin, dot, l2", "%s(metric=%r)" % (name, metric))


def _call_out(result):
    """Force a lazy result (DataFrame) so that errors raised only at execution surface."""
    return result if isinstance(result, str) else result.to_rows()


@clause("vector-error-003", "a query of the wrong dimension is a RuntimeError with the upstream text of each entry point",
        repro=_SETUP + "s.vector_search('t', 'v', [1, 0], top_k=2)")
def bad_dimension(ctx: Context):
    s = _session(ctx)
    for name, needle in (("vector_search", "fixed vector length mismatch in vectorQuery"),
                         ("explain_vector_search", "query vector dimension mismatch in explainVectorQuery"),
                         ("hybrid_search", "fixed vector length mismatch in hybridSearch"),
                         ("explain_hybrid_search", "query vector dimension mismatch in explainHybridSearch")):
        _raises(lambda: _call_out(ctx.api(s, name)("t", "v", [1.0, 0.0], top_k=2)), needle, "%s([1, 0])" % name)


@clause("vector-error-004", "an unknown view or column is a RuntimeError 'view not found: <t>' / 'column not found: <c>'",
        repro=_SETUP + "s.vector_search('nope', 'v', [1, 0, 0])")
def bad_names(ctx: Context):
    s = _session(ctx)
    for name in ("vector_search", "explain_vector_search", "hybrid_search", "explain_hybrid_search"):
        fn = ctx.api(s, name)
        _raises(lambda: _call_out(fn("nope", "v", Q, top_k=2)), "view not found: nope", "%s('nope', ...)" % name)
        _raises(lambda: _call_out(fn("t", "nope", Q, top_k=2)), "column not found: nope", "%s('t', 'nope', ...)" % name)


# ------------------------------------------------------------------------------------ ingestion

CSV_SPACE = "id,v\n1,[1 0 0]\n2,[0.9 0.1 0]\n3,[0 1 0]\n"
CSV_COMMA = 'id,v\n1,"[1,0,0]"\n2,"[0.9,0.1,0]"\n3,"[0,1,0]"\n'


def _same_results(ctx: Context, a, b, what: str):
    """``a`` and ``b`` are (session, view) pairs; every metric must rank and score them alike."""
    for metric in ("cosine", "dot", "l2"):
        for q in (Q, [0.0, 1.0, 0.0], [0.3, -0.2, 0.5]):
            ra = ctx.api(a[0], "vector_search")(a[1], "v", q, top_k=3, metric=metric).to_rows()["rows"]
            rb = ctx.api(b[0], "vector_search")(b[1], "v", q, top_k=3, metric=metric).to_rows()["rows"]
            ok = len(ra) == len(rb) == 3 and all(x[0] == y[0] and math.isclose(x[1], y[1], rel_tol=1e-9, abs_tol=1e-12)
                                                 for x, y in zip(ra, rb))
            _expect(ok, "%s: metric=%s query=%r: FixedSizeList<float32> gives %r, text gives %r"
                    % (what, metric, q, ra, rb))


@clause("vector-ingest-001", "CSV vector text '[1 2 3]' and '[1,2,3]' gives the same results as FixedSizeList<float32> "
        "Arrow input", repro="""import os, tempfile
import {target} as target
s = {session}
p = os.path.join(tempfile.mkdtemp(), "v.csv")
open(p, "w").write("id,v\\n1,[1 0 0]\\n2,[0.9 0.1 0]\\n3,[0 1 0]\\n")
s.create_temp_view("c", s.read_csv(p))
print(s.vector_search("c", "v", [1, 0, 0], top_k=3, metric="l2").to_rows())""")
def ingest_csv(ctx: Context):
    base = _session(ctx, with_null=False)
    with tempfile.TemporaryDirectory(prefix="velaria_conf_") as d:
        for name, text in (("space.csv", CSV_SPACE), ("comma.csv", CSV_COMMA)):
            p = os.path.join(d, name)
            with open(p, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            s = ctx.session()
            ctx.api(s, "create_temp_view")("c", ctx.api(s, "read_csv")(p))
            _same_results(ctx, (base, "t"), (s, "c"), "read_csv(%s)" % name)
            s2 = ctx.session()
            ctx.api(s2, "sql")("CREATE TABLE c USING csv OPTIONS(path: '%s')" % p.replace("'", "''")).to_rows()
            _same_results(ctx, (base, "t"), (s2, "c"), "CREATE TABLE c USING csv OPTIONS(path: %s)" % name)


@clause("vector-ingest-002", "an Arrow string column of vector text ('[1 0 0]', '[0.9,0.1,0]') is searched like "
        "FixedSizeList<float32>", repro="""import pyarrow as pa
import {target} as target
s = {session}
s.create_temp_view("c", s.create_dataframe_from_arrow(pa.table({{"v": ["[1 0 0]", "[0.9,0.1,0]", "[0 1 0]"]}})))
print(s.vector_search("c", "v", [1, 0, 0], top_k=3).to_rows())""")
def ingest_text(ctx: Context):
    import pyarrow as pa

    base = _session(ctx, with_null=False)
    s = ctx.session()
    t = pa.table({"v": pa.array(["[1 0 0]", "[0.9,0.1,0]", "[0 1 0]"], pa.string())})
    ctx.api(s, "create_temp_view")("c", ctx.api(s, "create_dataframe_from_arrow")(t))
    _same_results(ctx, (base, "t"), (s, "c"), "string column")


# ------------------------------------------------------------------------------------ hybrid

@clause("vector-hybrid-001", "hybrid_search returns the view's columns in order plus vector_score, best first, "
        "top_k then score_threshold (<= for cosine/l2, >= for dot)",
        repro=_SETUP + "print(s.hybrid_search('t', 'v', [1, 0, 0], top_k=2).to_rows())")
def hybrid_shape(ctx: Context):
    s = _session(ctx)
    hybrid = ctx.api(s, "hybrid_search")
    out = hybrid("t", "v", Q, top_k=2).to_rows()
    _expect(out["schema"] == ["id", "v", "vector_score"],
            "schema is %r, expected ['id', 'v', 'vector_score']" % (out["schema"],))
    rows = out["rows"]
    _expect([r[0] for r in rows] == [1, 2] and _close(rows[0][2], 0.0) and _close(rows[1][2], 0.0061162658280755622),
            "rows are %r, expected ids [1, 2] with vector_score 0.0, 0.00611..." % (rows,))
    _expect(rows[0][1] == [1.0, 0.0, 0.0], "the vector cell came back as %r" % (rows[0][1],))
    rows = hybrid("t", "v", Q, top_k=3, metric="dot", score_threshold=0.95).to_rows()["rows"]
    _expect([r[0] for r in rows] == [1], "dot, score_threshold=0.95 kept ids %r, expected [1]" % ([r[0] for r in rows],))
    rows = hybrid("t", "v", Q, top_k=3, metric="l2", score_threshold=0.5).to_rows()["rows"]
    _expect([r[0] for r in rows] == [1, 2], "l2, score_threshold=0.5 kept ids %r, expected [1, 2]" % ([r[0] for r in rows],))


@clause("vector-hybrid-002", "SQL HYBRID SEARCH col QUERY '[1 0 0]' [METRIC m] TOP_K n gives the same rows as hybrid_search",
        repro=_SETUP + "print(s.sql(\"SELECT * FROM t HYBRID SEARCH v QUERY '[1 0 0]' TOP_K 2\").to_rows())\n"
                       "print(s.hybrid_search('t', 'v', [1, 0, 0], top_k=2).to_rows())")
def hybrid_sql(ctx: Context):
    s = _session(ctx)
    sql, hybrid = ctx.api(s, "sql"), ctx.api(s, "hybrid_search")
    cases = [("SELECT * FROM t HYBRID SEARCH v QUERY '[1 0 0]' TOP_K 2", {"top_k": 2}),
             ("SELECT * FROM t HYBRID SEARCH v QUERY '[1,0,0]' METRIC l2 TOP_K 3", {"top_k": 3, "metric": "l2"}),
             ("SELECT * FROM t HYBRID SEARCH v QUERY '[1 0 0]' METRIC dot TOP_K 3 SCORE_THRESHOLD 0.5",
              {"top_k": 3, "metric": "dot", "score_threshold": 0.5})]
    for text, kwargs in cases:
        got = sql(text).to_rows()
        want = hybrid("t", "v", Q, **kwargs).to_rows()
        _expect(got == want, "%s gave %r\nhybrid_search(%r) gives %r" % (text, got, kwargs, want))


_PLAN_REPRO = _SETUP + """s.create_temp_view("j", s.sql("SELECT t.id, t.v FROM t JOIN t AS u ON t.id = u.id"))
s.hybrid_search("j", "v", [1, 0, 0], top_k=2).to_rows()  # expected: RuntimeError hybridSearch only supports single-source ..."""


@clause("vector-hybrid-003", "hybrid_search over a view whose plan has a JOIN, UNION or aggregate is a RuntimeError "
        "'hybridSearch only supports single-source DataFrame plans...'",
        repro=_PLAN_REPRO)
def hybrid_plan_shape(ctx: Context):
    s = _session(ctx)
    sql = ctx.api(s, "sql")
    views = {"j": "SELECT t.id, t.v FROM t JOIN t AS u ON t.id = u.id",
             "un": "SELECT id, v FROM t UNION ALL SELECT id, v FROM t",
             "g": "SELECT v, COUNT(*) AS c FROM t GROUP BY v"}
    for name, text in views.items():
        ctx.api(s, "create_temp_view")(name, sql(text))
        _raises(lambda: ctx.api(s, "hybrid_search")(name, "v", Q, top_k=2).to_rows(),
                "hybridSearch only supports single-source DataFrame plans",
                "hybrid_search over the view %r (%s)" % (name, text))


@clause("vector-hybrid-004", "SQL HYBRID SEARCH with an aggregate or a JOIN is rejected: 'HYBRID SEARCH does not "
        "support aggregate queries' / '... JOIN queries'",
        repro=_SETUP + "s.sql(\"SELECT COUNT(*) FROM t HYBRID SEARCH v QUERY '[1 0 0]' TOP_K 2\").to_rows()")
def hybrid_sql_restrictions(ctx: Context):
    s = _session(ctx)
    sql = ctx.api(s, "sql")
    for text, needle in (
            ("SELECT COUNT(*) FROM t HYBRID SEARCH v QUERY '[1 0 0]' TOP_K 2",
             "HYBRID SEARCH does not support aggregate queries"),
            ("SELECT t.id FROM t JOIN t AS u ON t.id = u.id HYBRID SEARCH v QUERY '[1 0 0]' TOP_K 2",
             "HYBRID SEARCH does not support JOIN queries")):
        _raises(lambda: sql(text).to_rows(), needle, text)


@clause("vector-error-005", "SQL HYBRID SEARCH with an unknown METRIC is a RuntimeError 'unsupported HYBRID SEARCH "
        "metric: <m>'",
        repro=_SETUP + "s.sql(\"SELECT * FROM t HYBRID SEARCH v QUERY '[1 0 0]' METRIC cos TOP_K 2\").to_rows()")
def hybrid_sql_metric(ctx: Context):
    s = _session(ctx)
    text = "SELECT * FROM t HYBRID SEARCH v QUERY '[1 0 0]' METRIC cos TOP_K 2"
    _raises(lambda: ctx.api(s, "sql")(text).to_rows(), "unsupported HYBRID SEARCH metric: cos", text)


@clause("vector-hybrid-005", "SQL SCORE_THRESHOLD takes signed and exponent literals (-0.5, 1e-3), as the Python "
        "API takes any float",
        extension="hybrid-score-threshold",
        repro=_SETUP + "print(s.sql(\"SELECT id FROM t HYBRID SEARCH v QUERY '[1 0 0]' METRIC dot "
                       "SCORE_THRESHOLD -0.5\").to_rows())")
def hybrid_signed_threshold(ctx: Context):
    s = _session(ctx)
    for literal, value in (("-0.5", -0.5), ("1e-3", 1e-3), ("+2.5E-1", 0.25)):
        text = "SELECT * FROM t HYBRID SEARCH v QUERY '[1 0 0]' METRIC dot TOP_K 3 SCORE_THRESHOLD " + literal
        got = ctx.api(s, "sql")(text).to_rows()
        want = ctx.api(s, "hybrid_search")("t", "v", Q, top_k=3, metric="dot", score_threshold=value).to_rows()
        _expect(got == want, "%s gave %r\nhybrid_search(score_threshold=%r) gives %r" % (text, got, value, want))


@clause("vector-ingest-003", "a FixedSizeList vector with a NULL element is skipped like a NULL vector "
        "(never scored from the bytes under the NULL slot)",
        diverges="vector-null-element",
        repro="""import pyarrow as pa
import {target} as target
s = {session}
v = pa.array([[1, 0, 0], [1, None, 0], [0, 1, 0]], pa.list_(pa.float32(), 3))
s.create_temp_view("n", s.create_dataframe_from_arrow(pa.table({{"v": v}})))
print(s.vector_search("n", "v", [1, 0, 0], top_k=3, metric="dot").to_rows())""")
def null_element(ctx: Context):
    import pyarrow as pa

    s = ctx.session()
    v = pa.array([[1, 0, 0], [1, None, 0], [0, 1, 0]], pa.list_(pa.float32(), 3))
    ctx.api(s, "create_temp_view")("n", ctx.api(s, "create_dataframe_from_arrow")(pa.table({"v": v})))
    rows = ctx.api(s, "vector_search")("n", "v", Q, top_k=3, metric="dot").to_rows()["rows"]
    _expect([r[0] for r in rows] == [0, 2], "row_ids %r, expected [0, 2] (row 1 has a NULL element)" % (rows,))


@clause("vector-levels-001", "every SIMD dispatch level returns the reference engine's row_ids and scores bit for bit "
        "(our implementation only)",
        extension="simd-identical",
        repro=_SETUP + "print(target.accel.available_backends())")
def levels_identical(ctx: Context):
    accel = getattr(ctx.target, "accel", None)
    if accel is None or not accel.c_available():  # not our implementation, or no C accelerator
        return
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(4)
    rows = rng.standard_normal((300, 37)).astype(np.float32)
    rows[9] = rows[4]
    table = pa.table({"v": pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), 37)})
    query = rows[4].tolist()

    def results(**kwargs):
        s = ctx.api(ctx.target, "Session")(**kwargs)
        ctx.api(s, "create_temp_view")("r", ctx.api(s, "create_dataframe_from_arrow")(table))
        return [s.vector_search("r", "v", query, top_k=15, metric=m).to_rows() for m in ("cosine", "dot", "l2")]

    want = results(engine="reference")
    for level in accel.available_backends():
        with accel.forced_backend(level):
            got = results(engine="accel")
        _expect(got == want, "level %s differs from the reference engine:\n%r\n%r" % (level, got, want))
