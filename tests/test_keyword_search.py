"""Keyword (BM25) search: tokenizers, scoring, the reference/accelerated twins, Session, SQL, CLI."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria import accel
from velaria.errors import VelariaError, VelariaValueError
from velaria.reference import keyword as ref
from velaria.session import Session
from velaria.vector import keyword as api

NAMES = ["Alice Smith", "bob jones", "  Carol  ", "dave"]
VERIFIED = float("1.0594960678068239")  # native Velaria's score for 'bob smith' over NAMES

needs_jieba = pytest.mark.skipif(not ref.jieba_available(), reason="jieba is not installed (pip install jieba)")


def accel_topk():
    if "keyword_topk" not in accel.KERNELS:
        pytest.fail(f"the accelerated keyword kernel did not load: {accel.status()}")
    return accel.KERNELS["keyword_topk"]


@pytest.fixture(params=["reference", "auto"])
def session(request):
    s = Session(engine=request.param)
    s.create_temp_view("people", s.create_dataframe_from_arrow(pa.table({"id": [1, 2, 3, 4], "name": NAMES})))
    return s


# ---- tokenizers ----------------------------------------------------------------------------

def test_fallback_tokenizer_ascii_runs_lower_cased():
    assert ref.fallback_tokens("Hello, WORLD-42 x_y") == ["hello", "world", "42", "x", "y"]
    assert ref.fallback_tokens("  !!! ") == []
    assert ref.fallback_tokens("café") == ["caf"]  # é is neither ASCII alnum nor CJK: a separator


def test_fallback_tokenizer_cjk_ngrams_then_whole_run():
    assert ref.fallback_tokens("世界和平") == ["世", "界", "和", "平", "世界", "界和", "和平", "世界和", "界和平", "世界和平"]
    assert ref.fallback_tokens("中文") == ["中", "文", "中文", "中文"]  # 2-gram and whole run both count
    assert ref.fallback_tokens("ab中c") == ["ab", "中", "c"]
    assert ref.fallback_tokens("一二三四五六七八九") [-1] == "七八九"  # 9 points: no whole run
    assert ref.fallback_tokens("カナ한글") [-1] == "カナ한글"  # kana and hangul are CJK ranges


@needs_jieba
def test_jieba_tokenizer_lower_cases_and_drops_separators():
    tokens = ref.jieba_tokens("我来到北京清华大学, Hello World!")
    assert "清华大学" in tokens and "hello" in tokens and "world" in tokens
    assert not any(t.strip(" ,!") == "" for t in tokens)
    assert ref.jieba_tokens("   ") == []  # nothing from jieba and nothing from the fallback


def test_unknown_tokenizer_is_a_value_error():
    with pytest.raises(ValueError, match="keyword tokenizer must be one of: fallback, jieba"):
        ref.tokenize("x", "whitespace")


# ---- scoring -------------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", ["reference", "accel"])
def test_verified_value_and_tie_order(kernel):
    fn = ref.keyword_topk if kernel == "reference" else accel_topk()
    assert fn([NAMES], "bob smith", 10) == ([0, 1], [VERIFIED, VERIFIED])
    assert fn([pa.array(NAMES)], "bob smith", 1) == ([0], [VERIFIED])


def test_bm25_by_hand():
    docs = ["a a b", "b", None, "c"]
    n, dl = 4, [3, 1, 0, 1]
    avgdl = sum(dl) / n
    idf_a = math.log(1 + (n - 1 + 0.5) / (1 + 0.5))
    norm0 = 1 - 0.75 + 0.75 * 3 / avgdl
    want = idf_a * (2 * 2.2) / (2 + 1.2 * norm0)
    assert ref.keyword_topk([docs], "A", 5) == ([0], [want])


def test_multiple_columns_and_non_string_cells():
    cols = [pa.array(["apple pie", None, "x"]), pa.array([7, 8, None]), pa.array([True, False, None])]
    rows, scores = ref.keyword_topk(cols, "8 false", 5)
    assert rows == [1]
    assert accel_topk()(cols, "8 false", 5) == (rows, scores)


alphabet = st.sampled_from(list("abcXYZ019 ,.-_") + list("世界和平中文") + ["é", "😀", "ア", "한", "\u3400", "\uf900", "\n"])
text = st.text(alphabet, max_size=14)


@st.composite
def corpora(draw):
    n = draw(st.integers(0, 14))
    n_cols = draw(st.integers(1, 3))
    cols = [draw(st.lists(st.one_of(st.none(), text), min_size=n, max_size=n)) for _ in range(n_cols)]
    query = draw(text.filter(lambda q: bool(ref.query_terms(q))))
    return cols, query


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(corpus=corpora(), k=st.integers(1, 20), arrow=st.booleans())
def test_property_vectorised_twin_equals_reference(corpus, k, arrow):
    cols, query = corpus
    if arrow:  # sliced Arrow arrays exercise buffer offsets
        cols = [pa.array(["pad"] + c, pa.string()).slice(1) for c in cols]
    want = ref.keyword_topk(cols, query, k)
    assert accel_topk()(cols, query, k) == want  # ids and float64 scores, exactly
    assert all(s > 0 for s in want[1])
    assert want[1] == sorted(want[1], reverse=True)


@needs_jieba
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(corpus=corpora(), k=st.integers(1, 20))
def test_property_twins_agree_with_jieba(corpus, k):
    cols, query = corpus
    if not ref.query_terms(query, "jieba"):
        return
    assert accel_topk()(cols, query, k, "jieba") == ref.keyword_topk(cols, query, k, "jieba")


# ---- Session API ---------------------------------------------------------------------------

def test_session_keyword_search_output(session):
    out = session.keyword_search("people", "name", "bob smith")
    assert out.to_rows() == {"schema": ["id", "name", "keyword_score"],
                             "rows": [[1, "Alice Smith", VERIFIED], [2, "bob jones", VERIFIED]]}
    assert out.to_arrow().schema.field("keyword_score").type == pa.float64()
    assert session.keyword_search("people", ["name"], "nobody").to_rows()["rows"] == []


def test_the_fast_path_runs_under_auto():
    s = Session(engine="auto")
    assert s.kernels.origin("keyword_topk") == "accel"
    s.create_temp_view("people", s.create_dataframe_from_arrow(pa.table({"name": NAMES})))
    assert "backend=arrow-vectorized\n" in s.explain_keyword_search("people", "name", "bob")
    r = Session(engine="reference")
    r.create_temp_view("people", r.create_dataframe_from_arrow(pa.table({"name": NAMES})))
    assert "backend=python\n" in r.explain_keyword_search("people", "name", "bob")


def test_explain_keyword_search_lines(session):
    text = session.explain_keyword_search("people", ["name"], "bob smith bob", top_k=3)
    lines = text.splitlines()
    assert lines[:9] == ["mode=bm25-keyword-search", "columns=name", "top_k=3", "tokenizer=fallback",
                         "query_terms=2", "k1=1.2", "b=0.75", "input_rows=4", "returned_rows=2"]
    assert text.endswith("\n")


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(text_columns=[]), VelariaValueError, "keywordSearch requires at least one text column"),
    (dict(top_k=0), VelariaValueError, "keywordSearch top_k must be positive"),
    (dict(query_text=""), VelariaValueError, "keywordSearch query text cannot be empty"),
    (dict(query_text="!!!"), VelariaValueError, "keywordSearch query must contain at least one token"),
    (dict(text_columns=["nope"]), VelariaError, "column not found: nope"),
    (dict(top_k="3"), TypeError, "top_k must be an int"),
    (dict(query_text=3), TypeError, "query_text must be a str"),
    (dict(text_columns=[1]), TypeError, "text_columns must be a str or a list of str"),
    (dict(tokenizer="x"), VelariaValueError, "tokenizer must be one of: fallback, jieba"),
])
def test_errors(session, kwargs, exc, message):
    args = dict(table="people", text_columns="name", query_text="bob", top_k=3)
    args.update(kwargs)
    with pytest.raises(exc) as info:
        session.keyword_search(**args)
    assert message in str(info.value)
    if exc is not TypeError:
        assert isinstance(info.value, RuntimeError)


def test_output_column_already_exists(session):
    session.create_temp_view("scored", session.create_dataframe_from_arrow(
        pa.table({"name": ["a"], "keyword_score": [1.0]})))
    with pytest.raises(VelariaError, match="^keywordSearch output column already exists: keyword_score$"):
        session.keyword_search("scored", "name", "a")


def test_jieba_requested_without_the_package_is_an_error(monkeypatch, session):
    monkeypatch.setattr(ref, "jieba_available", lambda: False)
    with pytest.raises(VelariaValueError, match="jieba package is not installed"):
        session.keyword_search("people", "name", "bob", tokenizer="jieba")


def test_tokenizer_from_environment(monkeypatch, session):
    monkeypatch.setenv(api.TOKENIZER_ENV, "bogus")
    with pytest.raises(VelariaValueError, match="VELARIA_KEYWORD_TOKENIZER must be one of"):
        session.keyword_search("people", "name", "bob")
    monkeypatch.setenv(api.TOKENIZER_ENV, "fallback")
    assert "tokenizer=fallback\n" in session.explain_keyword_search("people", "name", "bob")


@needs_jieba
def test_cjk_search_with_each_tokenizer(session):
    session.create_temp_view("docs", session.create_dataframe_from_arrow(
        pa.table({"body": ["我来到北京清华大学", "北京欢迎你", "上海"]})))
    fb = session.keyword_search("docs", "body", "北京", tokenizer="fallback").to_arrow()
    jb = session.keyword_search("docs", "body", "北京", tokenizer="jieba").to_arrow()
    assert fb.column("body").to_pylist()[0] in ("我来到北京清华大学", "北京欢迎你")
    assert sorted(jb.column("body").to_pylist()) == ["北京欢迎你", "我来到北京清华大学"]
    assert "tokenizer=jieba\n" in session.explain_keyword_search("docs", "body", "北京", tokenizer="jieba")


# ---- SQL -----------------------------------------------------------------------------------

def test_sql_keyword_search(session):
    out = session.sql("SELECT id, keyword_score FROM people KEYWORD SEARCH(name) QUERY 'bob smith' TOP_K 5")
    assert out.to_rows()["rows"] == [[1, VERIFIED], [2, VERIFIED]]
    # N and avgdl are computed over the rows left after WHERE
    where = session.sql("SELECT id, keyword_score FROM people WHERE id > 1 "
                        "KEYWORD SEARCH(name) QUERY 'bob smith' ORDER BY keyword_score DESC").to_rows()["rows"]
    assert [r[0] for r in where] == [2]
    assert where[0][1] == ref.keyword_topk([NAMES[1:]], "bob smith", 10)[1][0]


def test_sql_keyword_then_hybrid_search():
    s = Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({
        "name": NAMES, "v": pa.array([[1, 0], [0, 1], [1, 1], [0, 0]], pa.list_(pa.float32(), 2))})))
    out = s.sql("SELECT name, keyword_score, vector_score FROM t KEYWORD SEARCH(name) QUERY 'bob smith' "
                "HYBRID SEARCH v QUERY '[1 0]' METRIC dot").to_rows()
    assert out["rows"] == [["Alice Smith", VERIFIED, 1.0], ["bob jones", VERIFIED, 0.0]]


@pytest.mark.parametrize("sql, message", [
    ("SELECT * FROM people KEYWORD SEARCH(name) QUERY 'bob' TOP_K 0", "keywordSearch top_k must be positive"),
    ("SELECT * FROM people KEYWORD SEARCH(name) QUERY ''", "keywordSearch query text cannot be empty"),
    ("SELECT * FROM people KEYWORD SEARCH(name) QUERY '!!!'", "keywordSearch query must contain at least one token"),
    ("SELECT COUNT(*) FROM people KEYWORD SEARCH(name) QUERY 'bob'",
     "not supported in SQL v1: KEYWORD SEARCH does not support aggregate queries"),
    ("SELECT * FROM people a JOIN people b ON a.id = b.id KEYWORD SEARCH(name) QUERY 'bob'",
     "not supported in SQL v1: KEYWORD SEARCH does not support JOIN queries"),
    ("SELECT * FROM people KEYWORD SEARCH(nope) QUERY 'bob'", "column not found: nope"),
])
def test_sql_errors(session, sql, message):
    with pytest.raises(RuntimeError) as info:
        session.sql(sql)
    assert message in str(info.value)


# ---- CLI -----------------------------------------------------------------------------------

def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "velaria", *argv], capture_output=True, text=True)


def test_cli_keyword_search(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(NAMES, 1)))
    done = _cli("keyword-search", "--csv", str(path), "--text-columns", "name", "--query", "bob smith")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema"] == ["id", "name", "keyword_score"]
    assert [r["keyword_score"] for r in doc["rows"]] == [VERIFIED, VERIFIED]
    assert doc["tokenizer"] == "fallback"
    explain = _cli("keyword-search", "--csv", str(path), "--text-columns", "name", "--query", "bob smith", "--explain")
    assert explain.stdout == doc["explain"]
    bad = _cli("keyword-search", "--csv", str(path), "--text-columns", "name", "--query", "!!!")
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and doc["phase"] == "keyword_search"
    assert doc["details"]["cause"] == "keywordSearch query must contain at least one token"
