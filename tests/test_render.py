"""show(), repr and notebook display: readable, unambiguous, aligned, and cheap."""
from __future__ import annotations

import pyarrow as pa

import velaria
from velaria.render import display_width, format_table


def frame(**columns):
    return velaria.Session().create_dataframe_from_arrow(pa.table(columns))


def test_null_is_distinct_from_the_text_null(capsys):
    frame(s=[None, "null", "NULL", "x"]).show()
    out = capsys.readouterr().out
    assert "| NULL   |" in out and "| 'null' |" in out and "| 'NULL' |" in out


def test_wide_characters_align():
    text = format_table(pa.table({"name": ["中文", "ab", "日本語テキスト"]}))
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len({display_width(line) for line in lines}) == 1


def test_long_cells_are_cut_and_line_breaks_escaped():
    text = format_table(pa.table({"s": ["x" * 100, "a\nb"]}))
    assert "x" * 39 + "…" in text and "x" * 41 not in text
    assert "a\\nb" in text


def test_types_are_shown_under_names():
    lines = format_table(pa.table({"i": [1], "f": [1.5], "s": ["a"]})).splitlines()
    assert lines[2] == "| int64 | double | string |"


def test_repr_of_unexecuted_frame_runs_only_a_limited_query(monkeypatch):
    s = velaria.Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"i": list(range(1000))})))
    import velaria.dataframe as dfmod

    seen = []
    real = dfmod.run_table

    def spy(plan, ctx):
        table = real(plan, ctx)
        seen.append(table.num_rows)
        return table

    monkeypatch.setattr(dfmod, "run_table", spy)
    df = s.sql("SELECT i FROM t")
    text = repr(df)
    assert seen == [11]  # a LIMIT 11 preview, not the 1000-row result
    assert df._table is None  # nothing kept: the first real use executes the query
    assert text.rstrip().endswith("showing the first 10 rows (more follow)")


def test_repr_html():
    html = frame(a=[1, None], s=["<b>", "x"])._repr_html_()
    assert "<th>a<br><small>int64</small></th>" in html
    assert "<i>NULL</i>" in html and "&lt;b&gt;" in html
    assert html.endswith("<p>2 rows</p>")


def test_py_typed_is_shipped():
    import importlib.resources

    assert importlib.resources.files("velaria").joinpath("py.typed").is_file()
