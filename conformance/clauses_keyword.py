"""Clauses on keyword search (BM25): SQL ``KEYWORD SEARCH(col, ...) QUERY 'text' [TOP_K n]``.

What native Velaria defines: the clause grammar and its parse errors, the validation messages
of ``keywordSearch``, the fallback tokenizer (lower-cased ASCII alnum runs; CJK runs emit all
1-, 2-, 3-grams and, for 2 to 8 code points, the whole run), BM25 with k1 = 1.2 and b = 0.75
over the rows left after WHERE, only rows scoring above 0, best first with ties by row index,
the ``keyword_score`` output column, the ``KeywordSearch columns=<n> top_k=<k>`` explain step,
and the verified ``'bob smith'`` example. ``Session.keyword_search`` is this implementation's
Python entry point (native Velaria reaches keyword search through SQL), tagged as ours.
"""
from __future__ import annotations

from . import ApiMissing, ClauseFailure, Context, clause

NAMES = ["Alice Smith", "bob jones", "  Carol  ", "dave"]
VERIFIED = 1.0594960678068239  # native Velaria's score for 'bob smith' over NAMES (both hits)

_SETUP = """import pyarrow as pa
import {target} as target
s = {session}
s.create_temp_view("people", s.create_dataframe_from_arrow(pa.table({{"id": [1, 2, 3, 4],
    "name": ["Alice Smith", "bob jones", "  Carol  ", "dave"]}})))
"""


def _expect(cond: bool, msg: str):
    if not cond:
        raise ClauseFailure(msg)


def _session(ctx: Context, columns: dict | None = None):
    import pyarrow as pa

    s = ctx.session()
    table = pa.table(columns or {"id": [1, 2, 3, 4], "name": NAMES})
    ctx.api(s, "create_temp_view")("people", ctx.api(s, "create_dataframe_from_arrow")(table))
    return s


def _rows(s, ctx: Context, sql: str):
    return ctx.api(s, "sql")(sql).to_rows()


def _each_fails(s, ctx: Context, cases):
    """Every ``(sql, message)`` case raises a RuntimeError containing its message."""
    sql = ctx.api(s, "sql")
    for text, needle in cases:
        _raises(lambda: sql(text).to_rows(), needle, text)


def _raises(fn, needle: str, what: str):
    try:
        fn()
    except (ApiMissing, AttributeError):
        raise
    except Exception as exc:  # noqa: BLE001
        _expect(isinstance(exc, RuntimeError), "%s raised %s, not a RuntimeError: %s" % (what, type(exc).__name__, exc))
        _expect(needle in str(exc), "%s: error text lacks %r: %s" % (what, needle, exc))
        return
    raise ClauseFailure("%s succeeded; expected a RuntimeError containing %r" % (what, needle))


@clause("keyword-search-001", "KEYWORD SEARCH(name) QUERY 'bob smith' over [Alice Smith, bob jones, '  Carol  ', "
        "dave] returns the first two rows, in row order, each with keyword_score 1.0594960678068239 (verified)",
        repro=_SETUP + "print(s.sql(\"SELECT * FROM people KEYWORD SEARCH(name) QUERY 'bob smith'\").to_rows())")
def verified_example(ctx: Context):
    s = _session(ctx)
    out = _rows(s, ctx, "SELECT * FROM people KEYWORD SEARCH(name) QUERY 'bob smith'")
    _expect(out["schema"] == ["id", "name", "keyword_score"],
            "schema is %r, expected the input columns plus keyword_score" % (out["schema"],))
    want = [[1, "Alice Smith", VERIFIED], [2, "bob jones", VERIFIED]]
    _expect(out["rows"] == want, "rows are %r, expected %r" % (out["rows"], want))


@clause("keyword-search-002", "only rows scoring above 0 come back, best first, equal scores by row index, "
        "at most TOP_K (default 10) rows; keyword_score is visible to ORDER BY",
        repro=_SETUP + "print(s.sql(\"SELECT id, keyword_score FROM people KEYWORD SEARCH(name) QUERY 'bob bob jones' "
                       "TOP_K 1\").to_rows())")
def ordering(ctx: Context):
    s = _session(ctx, {"id": list(range(1, 14)), "name": ["x y"] * 12 + ["bob"]})
    out = _rows(s, ctx, "SELECT id FROM people KEYWORD SEARCH(name) QUERY 'x'")["rows"]
    _expect([r[0] for r in out] == list(range(1, 11)), "12 tied rows, default TOP_K: got ids %r, expected 1..10" % (out,))
    out = _rows(s, ctx, "SELECT id, keyword_score FROM people KEYWORD SEARCH(name) QUERY 'bob x' TOP_K 3")["rows"]
    _expect([r[0] for r in out] == [13, 1, 2] and out[0][1] > out[1][1] == out[2][1] > 0,
            "query 'bob x' TOP_K 3 gave %r, expected ids [13, 1, 2] with descending scores" % (out,))
    out = _rows(s, ctx, "SELECT id FROM people KEYWORD SEARCH(name) QUERY 'nothing'")["rows"]
    _expect(out == [], "a query matching nothing returned %r, expected no rows" % (out,))
    out = _rows(s, ctx, "SELECT id FROM people KEYWORD SEARCH(name) QUERY 'bob x' TOP_K 3 ORDER BY keyword_score, id")
    _expect([r[0] for r in out["rows"]] == [1, 2, 13], "ORDER BY keyword_score gave %r" % (out["rows"],))


@clause("keyword-search-003", "BM25 runs over the rows left after WHERE (N and avgdl), over every listed column "
        "(NULL cells add nothing)",
        repro=_SETUP + "print(s.sql(\"SELECT id, keyword_score FROM people WHERE id > 1 KEYWORD SEARCH(name) "
                       "QUERY 'bob smith'\").to_rows())")
def after_where(ctx: Context):
    s = _session(ctx)
    out = _rows(s, ctx, "SELECT id, keyword_score FROM people WHERE id > 1 KEYWORD SEARCH(name) QUERY 'bob smith'")
    # N = 3, doc_len = [2, 1, 1], avgdl = 4/3; 'bob': df = 1, idf = ln(1 + 2.5/1.5); 'smith': df = 0
    import math
    idf = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    norm = 1 - 0.75 + 0.75 * 2 / (4 / 3)
    want = [[2, idf * (1 * 2.2) / (1 + 1.2 * norm)]]
    _expect(out["rows"] == want, "rows are %r, expected %r" % (out["rows"], want))
    s = _session(ctx, {"a": ["red apple", None, "green"], "b": [None, "red red", "pear"]})
    out = _rows(s, ctx, "SELECT a, b FROM people KEYWORD SEARCH(a, b) QUERY 'red'")["rows"]
    _expect(out == [[None, "red red"], ["red apple", None]], "two columns gave %r, expected the 'red red' row first" % (out,))


@clause("keyword-search-004", "the fallback tokenizer: CJK text is searched by 1-/2-/3-grams (and whole runs of 2-8 "
        "points), ASCII case-insensitively",
        repro=_SETUP.replace("Alice Smith", "北京欢迎你") + "print(s.sql(\"SELECT * FROM people KEYWORD SEARCH(name) "
                                                          "QUERY '北京'\").to_rows())")
def cjk(ctx: Context):
    s = _session(ctx, {"name": ["北京欢迎你", "上海", "北京", None]})
    out = _rows(s, ctx, "SELECT name, keyword_score FROM people KEYWORD SEARCH(name) QUERY '北京'")["rows"]
    want = [["北京", 2.557374527594134], ["北京欢迎你", 1.2964939166748775]]
    _expect(out == want, "query '北京' gave %r, expected %r" % (out, want))
    out = _rows(s, ctx, "SELECT name FROM people KEYWORD SEARCH(name) QUERY '迎'")["rows"]
    _expect(out == [["北京欢迎你"]], "a single CJK character gave %r" % (out,))
    s = _session(ctx, {"name": ["Hello World", "hello", "WORLD-wide"]})
    out = _rows(s, ctx, "SELECT name FROM people KEYWORD SEARCH(name) QUERY 'WORLD'")["rows"]
    _expect(sorted(r[0] for r in out) == ["Hello World", "WORLD-wide"], "ASCII case folding gave %r" % (out,))


@clause("keyword-search-005", "non-string columns are searched as their text (as CAST(x AS STRING) writes it)",
        repro=_SETUP + "print(s.sql(\"SELECT id FROM people KEYWORD SEARCH(id, name) QUERY '3'\").to_rows())")
def non_string(ctx: Context):
    s = _session(ctx)
    out = _rows(s, ctx, "SELECT id FROM people KEYWORD SEARCH(id, name) QUERY '3 dave'")["rows"]
    _expect([r[0] for r in out] == [3, 4] or [r[0] for r in out] == [4, 3],
            "query '3 dave' over (id, name) gave %r, expected rows 3 and 4" % (out,))
    s = _session(ctx, {"flag": [True, False, None]})
    out = _rows(s, ctx, "SELECT flag FROM people KEYWORD SEARCH(flag) QUERY 'TRUE'")["rows"]
    _expect(out == [[True]], "a boolean column searched for 'TRUE' gave %r, expected [[True]]" % (out,))


@clause("keyword-error-001", "keywordSearch validation messages: TOP_K 0 'keywordSearch top_k must be positive', "
        "QUERY '' '...query text cannot be empty', QUERY '!!!' '...must contain at least one token' (verified)",
        repro=_SETUP + "s.sql(\"SELECT * FROM people KEYWORD SEARCH(name) QUERY '!!!'\")")
def validation(ctx: Context):
    cases = (("QUERY 'bob' TOP_K 0", "keywordSearch top_k must be positive"),
             ("QUERY ''", "keywordSearch query text cannot be empty"),
             ("QUERY '!!!'", "keywordSearch query must contain at least one token"))
    _each_fails(_session(ctx), ctx, [("SELECT * FROM people KEYWORD SEARCH(name) " + t, m) for t, m in cases])


@clause("keyword-error-002", "KEYWORD SEARCH parse errors use native Velaria's texts",
        repro=_SETUP + "s.sql(\"SELECT * FROM people KEYWORD SEARCH(name) QUERY bob\")")
def parse_errors(ctx: Context):
    cases = (("KEYWORD SEARCH(name QUERY 'x'", "KEYWORD SEARCH column list must end with ')'."),
             ("KEYWORD SEARCH(name) QUERY bob", "KEYWORD SEARCH QUERY must be a quoted string literal."),
             ("KEYWORD SEARCH(name) QUERY 'x' TOP_K many", "KEYWORD SEARCH TOP_K must be numeric."),
             ("KEYWORD SEARCH(name) QUERY 'x' FOO", "Unexpected token in KEYWORD SEARCH clause: FOO"))
    _each_fails(_session(ctx), ctx, [("SELECT * FROM people " + t, m) for t, m in cases])


@clause("keyword-error-003", "KEYWORD SEARCH with a JOIN or an aggregate is rejected, and a view that already has "
        "keyword_score gives 'keywordSearch output column already exists: keyword_score'",
        repro=_SETUP + "s.sql(\"SELECT COUNT(*) FROM people KEYWORD SEARCH(name) QUERY 'bob'\")")
def shapes(ctx: Context):
    _each_fails(_session(ctx), ctx, [
        ("SELECT COUNT(*) FROM people KEYWORD SEARCH(name) QUERY 'bob'", "KEYWORD SEARCH does not support aggregate queries"),
        ("SELECT * FROM people a JOIN people b ON a.id = b.id KEYWORD SEARCH(name) QUERY 'bob'",
         "KEYWORD SEARCH does not support JOIN queries")])
    _each_fails(_session(ctx, {"name": ["bob"], "keyword_score": [1.0]}), ctx, [
        ("SELECT * FROM people KEYWORD SEARCH(name) QUERY 'bob'", "keywordSearch output column already exists: keyword_score")])


@clause("keyword-explain-001", "explain_sql shows the step 'KeywordSearch columns=<n> top_k=<k>' after the scan",
        repro=_SETUP + "print(s.explain_sql(\"SELECT id FROM people KEYWORD SEARCH(id, name) QUERY 'bob' TOP_K 3\"))")
def explain_step(ctx: Context):
    s = _session(ctx)
    text = ctx.api(s, "explain_sql")("SELECT id FROM people KEYWORD SEARCH(id, name) QUERY 'bob' TOP_K 3")
    _expect("\n2. KeywordSearch columns=2 top_k=3\n" in text, "explain_sql lacks step 2 'KeywordSearch columns=2 "
            "top_k=3':\n%s" % text)


@clause("keyword-api-001", "Session.keyword_search(table, text_columns, query_text, top_k=10) returns the same rows "
        "as SQL KEYWORD SEARCH, and explain_keyword_search names the tokenizer",
        extension="keyword-python-api",
        repro=_SETUP + "print(s.keyword_search('people', ['name'], 'bob smith').to_rows())")
def session_api(ctx: Context):
    s = _session(ctx)
    got = ctx.api(s, "keyword_search")("people", ["name"], "bob smith", top_k=5).to_rows()
    want = _rows(s, ctx, "SELECT * FROM people KEYWORD SEARCH(name) QUERY 'bob smith' TOP_K 5")
    _expect(got == want, "keyword_search gave %r, SQL gives %r" % (got, want))
    text = ctx.api(s, "explain_keyword_search")("people", "name", "bob smith")
    _expect("tokenizer=fallback\n" in text, "explain_keyword_search lacks tokenizer=fallback:\n%s" % text)
