"""The Python API of Session and DataFrame: catalogs, engine choice, laziness, result shapes,
Arrow ingest and export (pyarrow, polars, duckdb), show / repr / count."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pyarrow as pa
import pytest

import velaria
from velaria import Session
from velaria.dataframe import DataFrame
from velaria.errors import CatalogNotFoundError, VelariaError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small():
    return pa.table({"id": [1, 2, 3], "name": ["a", "b", None]})


# ------------------------------------------------------------------------------- catalog
def test_each_session_has_its_own_catalog():
    a, b = Session(), Session()
    a.create_temp_view("v", a.create_dataframe_from_arrow(small()))
    assert a.tables() == ["v"]
    assert b.tables() == []
    with pytest.raises(CatalogNotFoundError):
        b.sql("SELECT * FROM v")


def test_create_temp_view_type_errors():
    s = Session()
    df = s.create_dataframe_from_arrow(small())
    with pytest.raises(TypeError):
        s.create_temp_view(1, df)
    with pytest.raises(TypeError):
        s.create_temp_view("v", small())  # a pa.Table, not a DataFrame
    with pytest.raises(ValueError):
        s.create_temp_view("", df)


def test_create_temp_view_replaces():
    s = Session()
    s.create_temp_view("v", s.create_dataframe_from_arrow(small()))
    s.create_temp_view("v", s.create_dataframe_from_arrow(pa.table({"x": [9]})))
    assert s.sql("SELECT * FROM v").to_rows() == {"schema": ["x"], "rows": [[9]]}
    assert s.tables() == ["v"]


def test_view_over_sql_result_and_case_insensitive_name():
    s = Session()
    s.create_temp_view("Base", s.create_dataframe_from_arrow(small()))
    s.create_temp_view("odd", s.sql("SELECT id FROM base WHERE id % 2 = 1"))
    assert s.sql("SELECT SUM(id) FROM odd").to_rows()["rows"] == [[4]]


# ------------------------------------------------------------------------------- engine choice
def test_engine_selection_and_bad_values():
    assert Session(engine="reference").engine == "reference"
    assert Session("reference").kernels.origin("evaluate") == "reference"
    assert Session(engine="auto").engine == "auto"
    with pytest.raises(ValueError) as info:
        Session(engine="turbo")
    assert isinstance(info.value, RuntimeError)
    assert "auto, reference, accel" in str(info.value)
    with pytest.raises(TypeError):
        Session(engine=3)


def test_batch_rows_validation():
    with pytest.raises(TypeError):
        Session(batch_rows="2")
    with pytest.raises(ValueError):
        Session(batch_rows=0)


def _run_with_env(value: str, code: str):
    env = dict(os.environ, VELARIA_ENGINE=value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_velaria_engine_env_in_subprocess():
    p = _run_with_env("reference", "import velaria; s = velaria.Session(); print(s.engine, s.kernels.origin('hash_aggregate'))")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["reference", "reference"]
    p = _run_with_env("  REFERENCE ", "import velaria; print(velaria.Session().engine)")
    assert p.stdout.strip() == "reference"
    # an explicit argument wins over the environment
    p = _run_with_env("reference", "import velaria; print(velaria.Session(engine='auto').engine)")
    assert p.stdout.strip() == "auto"
    p = _run_with_env("bogus", "import velaria\ntry:\n velaria.Session()\nexcept ValueError as e:\n print('ERR', e)")
    assert p.stdout.startswith("ERR VELARIA_ENGINE must be one of"), p.stdout + p.stderr


# ------------------------------------------------------------------------------- laziness
def test_planning_errors_at_sql_execution_once_and_cached(monkeypatch):
    s = Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(small()))
    import velaria.dataframe as dfmod
    calls = []
    real = dfmod.run_table

    def counting(plan, ctx):
        calls.append(plan)
        return real(plan, ctx)
    monkeypatch.setattr(dfmod, "run_table", counting)
    df = s.sql("SELECT id * 2 AS d FROM t")
    assert calls == []  # nothing ran yet
    assert df.columns == ["d"] and df.schema.field("d").type == pa.int64()
    assert calls == []  # schema is known without executing
    first = df.to_arrow()
    df.to_rows(); df.count(); df.to_arrow(); pa.table(df); repr(df)
    assert len(calls) == 1
    assert df.to_arrow() is first


def test_execution_error_surfaces_at_materialisation():
    s = Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"s": ["x"]})))
    df = s.sql("SELECT CAST(s AS INT) FROM t")  # plans fine
    with pytest.raises(RuntimeError):
        df.to_rows()


# ------------------------------------------------------------------------------- to_rows / to_arrow
def test_to_rows_shape():
    s = Session()
    got = s.create_dataframe_from_arrow(small()).to_rows()
    assert list(got) == ["schema", "rows"]
    assert got == {"schema": ["id", "name"], "rows": [[1, "a"], [2, "b"], [3, None]]}
    assert all(type(r) is list for r in got["rows"])
    assert s.sql("SELECT 1 AS one").to_rows() == {"schema": ["one"], "rows": [[1]]}


def test_to_rows_empty_result_keeps_schema():
    s = Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(small()))
    assert s.sql("SELECT id, name FROM t WHERE id > 9").to_rows() == {"schema": ["id", "name"], "rows": []}


def rich_table():
    return pa.table({
        "b": pa.array([True, None, False]),
        "i32": pa.array([1, None, -3], pa.int32()),
        "f32": pa.array([1.5, None, -0.25], pa.float32()),
        "ls": pa.array(["x", None, "zé"], pa.large_string()),
        "vec": pa.array([[1, 2, 3], None, [0.5, 0, -1]], pa.list_(pa.float32(), 3)),
        "ts": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(1970, 1, 1)], pa.timestamp("ms")),
        "tsu": pa.array([dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc), None, None], pa.timestamp("us", tz="UTC")),
        "d": pa.array([dt.date(2024, 2, 29), None, dt.date(2000, 1, 1)], pa.date32()),
    })


def test_to_arrow_round_trips_types():
    s = Session()
    t = rich_table()
    out = s.create_dataframe_from_arrow(t).to_arrow()
    assert out.schema.equals(t.schema)
    assert out.equals(t)
    # through a view and SELECT * too
    s.create_temp_view("r", s.create_dataframe_from_arrow(t))
    out = s.sql("SELECT * FROM r").to_arrow()
    assert out.schema.equals(t.schema)
    assert out.to_pylist() == t.to_pylist()
    # filtered + projected columns keep their types
    out = s.sql("SELECT vec, f32, i32 FROM r WHERE b").to_arrow()
    assert [f.type for f in out.schema] == [pa.list_(pa.float32(), 3), pa.float32(), pa.int32()]
    assert out.to_pylist() == [{"vec": [1.0, 2.0, 3.0], "f32": 1.5, "i32": 1}]


def test_to_rows_python_values():
    s = Session()
    got = s.create_dataframe_from_arrow(rich_table()).to_rows()
    assert got["rows"][0][:5] == [True, 1, 1.5, "x", [1.0, 2.0, 3.0]]
    assert got["rows"][1] == [None] * 8


# ------------------------------------------------------------------------------- Arrow export
def test_arrow_c_stream_read_by_pyarrow():
    s = Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(small()))
    df = s.sql("SELECT id, name FROM t WHERE id >= 2")
    assert pa.table(df).to_pylist() == [{"id": 2, "name": "b"}, {"id": 3, "name": None}]
    reader = pa.RecordBatchReader.from_stream(df)
    assert reader.read_all().num_rows == 2


def test_arrow_c_array_export():
    s = Session()
    df = s.create_dataframe_from_arrow(small())
    batch = pa.record_batch(df)
    assert batch.to_pylist() == small().to_pylist()


def test_arrow_export_read_by_polars():
    pl = pytest.importorskip("polars")
    s = Session()
    df = s.create_dataframe_from_arrow(rich_table().select(["b", "i32", "ls"]))
    a = pl.from_arrow(df.to_arrow())
    b = pl.DataFrame(df)
    assert a.equals(b)
    assert b.to_dict(as_series=False) == {"b": [True, None, False], "i32": [1, None, -3], "ls": ["x", None, "zé"]}


def test_arrow_export_read_by_duckdb():
    duckdb = pytest.importorskip("duckdb")
    s = Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(small()))
    vdf = s.sql("SELECT id, name FROM t")
    con = duckdb.connect()
    got = con.sql("SELECT SUM(id), COUNT(name) FROM vdf").fetchall()
    assert got == [(6, 2)]


# ------------------------------------------------------------------------------- ingest
def test_ingest_record_batch_and_reader():
    s = Session()
    batch = pa.record_batch({"x": [1, 2]})
    assert s.create_dataframe_from_arrow(batch).to_rows()["rows"] == [[1], [2]]
    reader = pa.RecordBatchReader.from_batches(batch.schema, [batch, batch])
    assert s.create_dataframe_from_arrow(reader).count() == 4


def test_ingest_polars_and_duckdb():
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    s = Session()
    pdf = pl.DataFrame({"a": [1, 2], "s": ["x", None]})
    assert s.create_dataframe_from_arrow(pdf).to_rows() == {"schema": ["a", "s"], "rows": [[1, "x"], [2, None]]}
    rel = duckdb.connect().sql("SELECT 1::INTEGER AS i, 'q' AS t UNION ALL SELECT 2, NULL ORDER BY i")
    df = s.create_dataframe_from_arrow(rel)
    assert df.to_rows() == {"schema": ["i", "t"], "rows": [[1, "q"], [2, None]]}
    assert df.to_arrow().schema.field("i").type == pa.int32()


def test_ingest_list_of_batches_and_mismatched_schemas():
    s = Session()
    b1 = pa.record_batch({"x": [1]})
    b2 = pa.record_batch({"x": [2, 3]})
    assert s.create_dataframe_from_arrow([b1, b2]).to_rows()["rows"] == [[1], [2], [3]]
    with pytest.raises(VelariaError) as info:
        s.create_dataframe_from_arrow([b1, pa.record_batch({"y": [1]})])
    assert "same schema" in str(info.value)
    with pytest.raises(VelariaError) as info:
        s.create_dataframe_from_arrow([b1, pa.record_batch({"x": ["s"]})])
    assert "same schema" in str(info.value)


def test_ingest_dict_of_lists_and_bad_input():
    s = Session()
    assert s.create_dataframe_from_arrow({"a": [1, 2], "b": ["x", "y"]}).to_rows() == \
        {"schema": ["a", "b"], "rows": [[1, "x"], [2, "y"]]}
    for bad in ("text", 5, None):
        with pytest.raises(TypeError):
            s.create_dataframe_from_arrow(bad)


def test_dataframe_is_not_constructed_by_users_but_has_api():
    s = Session()
    df = s.create_dataframe_from_arrow(small())
    assert isinstance(df, DataFrame)
    for name in ("to_rows", "to_arrow", "count", "explain", "show", "__arrow_c_stream__", "__arrow_c_array__"):
        assert callable(getattr(df, name))


# ------------------------------------------------------------------------------- show / repr / count
def test_show_prints_a_table(capsys):
    s = Session()
    s.create_dataframe_from_arrow(pa.table({"id": [1, 22], "name": ["a", None], "f": [True, False]})).show()
    out = capsys.readouterr().out
    assert out == ("+-------+--------+-------+\n"
                   "| id    | name   | f     |\n"
                   "| int64 | string | bool  |\n"
                   "+-------+--------+-------+\n"
                   "|     1 | a      | true  |\n"
                   "|    22 | NULL   | false |\n"
                   "+-------+--------+-------+\n"
                   "2 rows\n")


def test_show_max_rows(capsys):
    s = Session()
    s.create_dataframe_from_arrow(pa.table({"i": list(range(30))})).show(3)
    out = capsys.readouterr().out
    assert out.rstrip().endswith("30 rows (showing first 3)")
    assert "|     2 |" in out and "|     3 |" not in out
    with pytest.raises(TypeError):
        s.create_dataframe_from_arrow(small()).show("3")


def test_repr_shows_schema_and_rows():
    s = Session()
    text = repr(s.create_dataframe_from_arrow(small()))
    assert text.startswith("DataFrame[id: int64, name: string]")
    assert "|     3 | NULL   |" in text


def test_repr_never_raises():
    s = Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"s": ["x"]})))
    text = repr(s.sql("SELECT CAST(s AS INT) AS n FROM t"))
    assert text.startswith("DataFrame[n: int64]") and "execution failed" in text


def test_count_and_len():
    s = Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(small()))
    assert s.sql("SELECT * FROM t WHERE name IS NOT NULL").count() == 2
    assert len(s.sql("SELECT * FROM t")) == 3
    assert s.sql("SELECT COUNT(*) FROM t WHERE id > 5").count() == 1


def test_session_repr_and_package_exports():
    s = Session("reference")
    assert "engine='reference'" in repr(s)
    assert velaria.Session is Session
