"""Session.vector_search / hybrid_search / explains, ingestion, errors, CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from kernel_counting import counting_session

from velaria import accel
from velaria.errors import VelariaError, VelariaValueError
from velaria.session import Session
from velaria.vector import hybrid_search_table, parse_vector_text, vector_column

REQUIRE_ACCEL = os.environ.get("VELARIA_REQUIRE_ACCEL") == "1"
ENGINES = ["reference", "auto"]


def fsl(rows, dim=3):
    return pa.array(rows, pa.list_(pa.float32(), dim))


@pytest.fixture(params=ENGINES)
def session(request):
    s = Session(engine=request.param)
    t = pa.table({"id": [1, 2, 3, 4], "v": fsl([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], None])})
    s.create_temp_view("t", s.create_dataframe_from_arrow(t))
    return s


def expected_backend(s):
    return accel.backend() if s.kernels.origin("vector_topk") == "accel" else "python"


def test_accel_is_used_by_auto_when_available():
    if not accel.c_available():
        if REQUIRE_ACCEL:
            pytest.fail(f"accelerator unavailable: {accel.status()}")
        pytest.skip("accelerator unavailable")
    assert Session(engine="auto").kernels.origin("vector_topk") == "accel"


def test_verified_values(session):
    assert session.vector_search("t", "v", [1, 0, 0], top_k=2).to_rows() == {
        "schema": ["row_id", "score"], "rows": [[0, 0.0], [1, 0.006116265828075562]]}
    assert session.vector_search("t", "v", [1, 0, 0], top_k=2, metric="l2").to_rows()["rows"] == [
        [0, 0.0], [1, 0.141421374149721]]
    out = session.hybrid_search("t", "v", [1, 0, 0], top_k=3, metric="dot", score_threshold=0.95)
    assert out.to_rows()["rows"] == [[1, [1.0, 0.0, 0.0], 1.0]]
    assert session.vector_search("t", "v", [1, 0, 0], metric="cosin").to_rows()["rows"][0] == [0, 0.0]


def test_schema_types_and_null_rows_keep_positions(session):
    t = session.vector_search("t", "v", [0, 1, 0], top_k=10, metric="dot").to_arrow()
    assert t.schema == pa.schema([("row_id", pa.int64()), ("score", pa.float64())])
    assert t.column("row_id").to_pylist() == [2, 1, 0]  # row 3 is NULL; tie order by row_id


def test_ties_by_ascending_row_id(session):
    s = Session(engine=session.kernels.engine)
    rows = [[1, 0, 0]] * 6
    s.create_temp_view("d", s.create_dataframe_from_arrow(pa.table({"v": fsl(rows)})))
    assert s.vector_search("d", "v", [1, 0, 0], top_k=10).to_arrow().column("row_id").to_pylist() == list(range(6))
    assert s.vector_search("d", "v", [1, 0, 0], top_k=3).to_arrow().column("row_id").to_pylist() == [0, 1, 2]


def test_batch_queries(session):
    out = session.vector_search("t", "v", [[1, 0, 0], [0, 1, 0]], top_k=1, metric="dot").to_rows()
    assert out == {"schema": ["query_index", "row_id", "score"], "rows": [[0, 0, 1.0], [1, 2, 1.0]]}


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_batch_is_one_kernel_call_equal_to_one_query_at_a_time(metric):
    # a list of query vectors goes to the kernel in one call (the accelerator scores it with
    # its several-query kernels), and gives what each query gives on its own
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((300, 20)).astype(np.float32)
    queries = rng.standard_normal((6, 20)).astype(np.float32).tolist()
    s, called = counting_session("auto")
    s.create_temp_view("b", s.create_dataframe_from_arrow(pa.table({"v": fsl(rows.tolist(), 20)})))
    batch = s.vector_search("b", "v", queries, top_k=7, metric=metric).to_arrow()
    assert called.count("vector_topk") == 1
    for qi, q in enumerate(queries):
        one = s.vector_search("b", "v", q, top_k=7, metric=metric).to_arrow()
        mine = batch.filter(pc.equal(batch.column("query_index"), qi))
        assert mine.column("row_id").to_pylist() == one.column("row_id").to_pylist()
        assert mine.column("score").to_pylist() == one.column("score").to_pylist()


def test_explain_vector_search_exact(session):
    text = session.explain_vector_search("t", "v", [1, 0, 0], top_k=2)
    assert text == ("mode=exact-scan\nmetric=cosine\ndimension=3\ntop_k=2\ncandidate_rows=3\n"
                    "acceleration=flat-buffer+simd-topk\n"
                    f"backend={expected_backend(session)}\nfilter_pushdown=false\n")
    assert "metric=cosine\n" in session.explain_vector_search("t", "v", [1, 0, 0], metric="cosin")
    assert "metric=l2\n" in session.explain_vector_search("t", "v", [], metric="l2")  # empty accepted


def test_explain_hybrid_exact(session):
    text = session.explain_hybrid_search("t", "v", [1, 0, 0], top_k=2, score_threshold=0.02)
    assert text == ("mode=exact-scan-hybrid-search\nmetric=cosine\ntop_k=2\nscore_threshold=0.02\n"
                    "score_threshold_compare=<=\ninput_rows=4\ncandidate_rows=3\nreturned_rows=2\n"
                    "column_filter_stage=before-vector\ncolumn_filter_execution=none\n"
                    f"acceleration=flat-buffer+simd-topk\nbackend={expected_backend(session)}\n")
    assert "score_threshold=none\nscore_threshold_compare=>=\n" in session.explain_hybrid_search(
        "t", "v", [1, 0, 0], metric="dot")


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_forced_simd_level_is_what_explain_names(engine):
    if not accel.c_available():
        pytest.skip("accelerator unavailable")
    s = Session(engine=engine)
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"v": fsl([[1, 2, 3]])})))
    for b in accel.available_backends():
        with accel.forced_backend(b):
            want = b if engine == "auto" else "python"
            assert f"backend={want}\n" in s.explain_vector_search("t", "v", [1, 2, 3])


def test_velaria_engine_reference_env_gives_python_backend():
    code = ("import pyarrow as pa; from velaria.session import Session; s=Session();"
            "s.create_temp_view('t', s.create_dataframe_from_arrow(pa.table({'v': pa.array([[1.0,2.0]],"
            " pa.list_(pa.float32(), 2))}))); print(s.explain_vector_search('t','v',[1,2]), end='')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "VELARIA_ENGINE": "reference"}).stdout
    assert "backend=python\n" in out


# ---- errors ---------------------------------------------------------------------------------

def test_error_messages(session):
    with pytest.raises(VelariaValueError, match="fixed vector length mismatch in vectorQuery: query vector has 2 dimensions, the vector column has 3"):
        session.vector_search("t", "v", [1, 0])
    with pytest.raises(RuntimeError, match="query vector dimension mismatch in explainVectorQuery: query vector has 4 dimensions, the vector column has 3"):
        session.explain_vector_search("t", "v", [1, 0, 0, 0])
    with pytest.raises(RuntimeError, match="fixed vector length mismatch in hybridSearch"):
        session.hybrid_search("t", "v", [1, 0])
    with pytest.raises(RuntimeError, match="query vector dimension mismatch in explainHybridSearch"):
        session.explain_hybrid_search("t", "v", [1, 0])
    with pytest.raises(ValueError, match=r"metric must be one of: cosine/cosin, dot, l2 \(got 'L2'\)") as ei:
        session.vector_search("t", "v", [1, 0, 0], metric="L2")
    assert isinstance(ei.value, RuntimeError)
    for bad in (0, -3):
        with pytest.raises(VelariaValueError, match=r"top_k must be >= 1"):
            session.vector_search("t", "v", [1, 0, 0], top_k=bad)
    with pytest.raises(TypeError, match="top_k must be an int"):
        session.vector_search("t", "v", [1, 0, 0], top_k=2.5)
    with pytest.raises(VelariaValueError, match="column is not a vector column: id"):
        session.vector_search("t", "id", [1, 0, 0])
    with pytest.raises(RuntimeError, match="column not found: nope"):
        session.vector_search("t", "nope", [1, 0, 0])
    with pytest.raises(RuntimeError, match="view not found: missing"):
        session.vector_search("missing", "v", [1, 0, 0])
    for q in ([float("nan"), 0, 0], [0, float("inf"), 0], [1e39, 0, 0]):
        with pytest.raises(VelariaValueError, match="query_vector must not contain NaN or infinity"):
            session.vector_search("t", "v", q)
    with pytest.raises(VelariaValueError, match="query vector cannot be empty"):
        session.vector_search("t", "v", [])
    with pytest.raises(VelariaValueError, match="query vector cannot be empty"):
        session.explain_hybrid_search("t", "v", [])
    with pytest.raises(TypeError, match="query_vector must be a sequence of floats"):
        session.vector_search("t", "v", 3.0)
    with pytest.raises(TypeError, match="query_vector must contain only numbers"):
        session.vector_search("t", "v", [1, "a", 0])
    with pytest.raises(TypeError, match="score_threshold must be numeric"):
        session.hybrid_search("t", "v", [1, 0, 0], score_threshold="x")


def test_hybrid_output_column_exists():
    t = pa.table({"v": fsl([[1, 0, 0]]), "vector_score": [1.0]})
    with pytest.raises(VelariaError, match="hybridSearch output column already exists: vector_score"):
        hybrid_search_table(t, "v", "[1 0 0]", "cosine", 1, None, Session().kernels)


# ---- ingestion ------------------------------------------------------------------------------

def test_fixed_size_list_is_scanned_in_place_and_cached():
    t = pa.table({"v": fsl([[1, 2, 3], [4, 5, 6], None, [7, 8, 9]])}).slice(1)
    vc = vector_column(t, "v")
    assert vc.zero_copy and vc.dim == 3 and vc.n_rows == 3 and vc.candidate_rows == 2
    child = t.column("v").chunk(0).values.buffers()[1]
    assert vc.flat.ctypes.data == child.address + 1 * 3 * 4  # row 1 of the child buffer, no copy
    assert vc.flat[:3].tolist() == [4, 5, 6] and vc.valid.tolist() == [1, 0, 1]
    assert vector_column(t, "v") is vc
    assert vc.inv_norms() is vc.inv_norms()


@pytest.mark.parametrize("column", [
    pa.array([[1, 0], [0, 1], None], pa.list_(pa.float64())),
    pa.chunked_array([pa.array([[1, 0]], pa.list_(pa.float32(), 2)), pa.array([[0, 1], None], pa.list_(pa.float32(), 2))]),
    pa.array([[1, 0], [0, 1], None], pa.list_(pa.float64(), 2)),
    pa.array(["[1 0]", "[0,1]", None]),
])
def test_other_vector_shapes_convert_once(column):
    for engine in ENGINES:
        s = Session(engine=engine)
        s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"v": column})))
        assert s.vector_search("t", "v", [0, 1], top_k=5, metric="dot").to_rows()["rows"] == [[1, 1.0], [0, 0.0]]
        assert "candidate_rows=2\n" in s.explain_vector_search("t", "v", [0, 1])


def test_ragged_vectors_and_bad_text():
    with pytest.raises(VelariaError, match="fixed vector length mismatch in vector column cache"):
        vector_column(pa.table({"v": pa.array([[1.0, 2.0], [1.0]])}), "v")
    with pytest.raises(VelariaValueError, match="column is not a vector column: v"):
        vector_column(pa.table({"v": ["hello"]}), "v")


def test_all_null_column_returns_nothing():
    s = Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"v": pa.array([None, None], pa.list_(pa.float32(), 3))})))
    assert s.vector_search("t", "v", [1, 2, 3]).to_rows()["rows"] == []
    assert "dimension=0\n" in s.explain_vector_search("t", "v", [1, 2, 3])


def test_parse_vector_text():
    assert parse_vector_text("[1 2 3]") == [1.0, 2.0, 3.0]
    assert parse_vector_text(" [1, 2.5,3] ") == [1.0, 2.5, 3.0]
    assert parse_vector_text("1.0,0.0") == [1.0, 0.0]
    assert parse_vector_text("[]") == []
    with pytest.raises(VelariaValueError, match="invalid vector text"):
        parse_vector_text("[1 x]")


def test_engines_agree_on_random_data():
    rng = np.random.default_rng(5)
    x = rng.integers(-5, 6, (300, 33)).astype(np.float32)
    t = pa.table({"v": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 33)})
    q = rng.integers(-5, 6, 33).tolist()
    outs = []
    for engine in ENGINES:
        s = Session(engine=engine)
        s.create_temp_view("t", s.create_dataframe_from_arrow(t))
        outs.append([s.vector_search("t", "v", q, top_k=20, metric=m).to_rows() for m in ("cosine", "dot", "l2")])
    assert outs[0] == outs[1]


# ---- CLI ------------------------------------------------------------------------------------

def cli(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "velaria", "vector-search", *argv], capture_output=True,
                          text=True, env={**os.environ, **(env or {})})


@pytest.fixture
def csv_path(tmp_path):
    p = tmp_path / "vec.csv"
    p.write_text("id,v\n1,[1 0 0]\n2,[0.9 0.1 0]\n3,[0 1 0]\n4,\n")
    return p


def test_cli_json_and_explain_match_api(csv_path, tmp_path):
    r = cli("--csv", str(csv_path), "--vector-column", "v", "--query-vector", "1,0,0", "--top-k", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["rows"] == [{"row_id": 0, "score": 0.0}, {"row_id": 1, "score": 0.006116265828075562}]
    s = Session()
    s.create_temp_view("input_table", s.read_csv(str(csv_path)))
    api = s.explain_vector_search("input_table", "v", [1, 0, 0], top_k=2)
    assert doc["explain"] == api
    r = cli("--csv", str(csv_path), "--vector-column", "v", "--query-vector", "[1 0 0]", "--top-k", "2", "--explain")
    assert r.stdout == api
    # Parquet input, hybrid mode
    pq.write_table(pa.table({"v": fsl([[1, 0, 0], [0, 1, 0]])}), tmp_path / "v.parquet")
    r = cli("--input-path", str(tmp_path / "v.parquet"), "--vector-column", "v", "--query-vector", "[1 0 0]",
            "--metric", "dot", "--score-threshold", "0.5")
    assert json.loads(r.stdout)["rows"] == [{"v": [1.0, 0.0, 0.0], "vector_score": 1.0}]


def test_cli_reference_engine_and_errors(csv_path):
    r = cli("--csv", str(csv_path), "--vector-column", "v", "--query-vector", "1,0,0", "--explain",
            env={"VELARIA_ENGINE": "reference"})
    assert "backend=python\n" in r.stdout
    r = cli("--csv", str(csv_path), "--vector-column", "v", "--query-vector", "1,0")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["error"] == "failed to execute vector search" and doc["phase"] == "vector_search"
    assert "fixed vector length mismatch in vectorQuery" in doc["details"]["cause"]
    r = cli("--csv", str(csv_path), "--vector-column", "v", "--query-vector", "")
    assert json.loads(r.stdout)["error"] == "--query-vector must not be empty"
    r = cli("--csv", str(csv_path) + ".missing", "--vector-column", "v", "--query-vector", "1")
    assert json.loads(r.stdout)["error_type"] == "file_not_found"


def _fsl_with_garbage_under_null(garbage: float):
    """A FixedSizeList<float32> column whose row 1 has a NULL element hiding ``garbage``."""
    values = np.array([1, 0, 0, garbage, 1, 0, 0, 1, 0], dtype=np.float32)
    bitmap = np.packbits(np.array([1, 1, 1, 0, 1, 1, 1, 1, 1], dtype=np.uint8), bitorder="little")
    child = pa.Array.from_buffers(pa.float32(), 9, [pa.py_buffer(bitmap.tobytes()), pa.py_buffer(values.tobytes())],
                                  null_count=1)
    return pa.FixedSizeListArray.from_arrays(child, 3)


@pytest.mark.parametrize("chunks", [1, 2])
def test_vectors_with_a_null_element_are_skipped_not_scored(session, chunks):
    # the bytes under a NULL element are arbitrary: such a vector has no score, like a NULL row
    col = _fsl_with_garbage_under_null(5e30)
    arrays = [col] if chunks == 1 else [col.slice(0, 2), col.slice(2)]
    session.create_temp_view("g", session.create_dataframe_from_arrow(
        pa.table({"v": pa.chunked_array(arrays)})))
    out = session.vector_search("g", "v", [1, 0, 0], top_k=3, metric="dot").to_rows()["rows"]
    assert out == [[0, 1.0], [2, 0.0]]
    assert "candidate_rows=2" in session.explain_vector_search("g", "v", [1, 0, 0], top_k=3)
    rows = session.hybrid_search("g", "v", [1, 0, 0], top_k=3, metric="l2").to_arrow()
    assert rows.num_rows == 2


def test_huge_top_k_returns_every_row_without_a_huge_allocation(session):
    out = session.vector_search("t", "v", [1, 0, 0], top_k=2 ** 33, metric="dot").to_rows()["rows"]
    assert [r[0] for r in out] == [0, 1, 2]


def test_engines_agree_bit_for_bit_on_float_data():
    rng = np.random.default_rng(9)
    rows = rng.standard_normal((400, 65)).astype(np.float32)
    table = pa.table({"v": pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), 65)})
    results = []
    for engine in ENGINES:
        s = Session(engine=engine)
        s.create_temp_view("r", s.create_dataframe_from_arrow(table))
        results.append([s.vector_search("r", "v", rows[7].tolist(), top_k=20, metric=m).to_rows()
                        for m in ("cosine", "dot", "l2")])
    assert results[0] == results[1]


@pytest.mark.parametrize("threshold, expect", [("-0.5", [0, 1, 2]), ("1e-3", [0, 1]), ("-1E0", [0, 1, 2])])
def test_sql_score_threshold_accepts_signed_and_exponent_literals(session, threshold, expect):
    sql = f"SELECT id, vector_score FROM t HYBRID SEARCH v QUERY '[1 0 0]' METRIC dot SCORE_THRESHOLD {threshold}"
    got = session.sql(sql).to_arrow()
    assert got.column("id").to_pylist() == [i + 1 for i in expect]
