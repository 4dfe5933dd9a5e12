"""Per-column typing edge cases (the typing rules of docs/io.md): leading zeros, overflow, null, empty, bools,
vectors."""
from __future__ import annotations

import pytest

from velaria.io.csv_source import CsvSource
from velaria.io.line_source import LineSource
from velaria.io.typed_source import clear_typing_cache


def csv_col(tmp_path, cells):
    clear_typing_cache()
    p = tmp_path / "c.csv"
    p.write_text("x\n" + "\n".join(cells) + "\n")
    src = CsvSource(str(p))
    return str(src.schema.field("x").type), [r["x"] for b in src.scan() for r in b.to_pylist()]


@pytest.mark.parametrize("cells,typ,values", [
    (["1", "2", "-3"], "int64", [1, 2, -3]),
    (["0", "-0"], "int64", [0, 0]),
    (["007", "1"], "string", ["007", "1"]),
    (["00"], "string", ["00"]),
    (["0.5", "-0.5", "2"], "double", [0.5, -0.5, 2.0]),
    (["1e3", "5.", ".5"], "double", [1000.0, 5.0, 0.5]),
    (["9223372036854775807"], "int64", [9223372036854775807]),
    (["9223372036854775808", "1"], "string", ["9223372036854775808", "1"]),
    (["99999999999999999999", "1.5"], "string", ["99999999999999999999", "1.5"]),
    (["+5", "1"], "string", ["+5", "1"]),
    (["inf", "1.0"], "string", ["inf", "1.0"]),
    (["true", "FALSE"], "bool", [True, False]),
    (["True", "false"], "string", ["True", "false"]),
    (["null", "1"], "string", ["null", "1"]),
    (['"42"', "1"], "int64", [42, 1]),
    (["[1 2 3]", '"[4,5,6]"'], "fixed_size_list<item: float>[3]", [[1, 2, 3], [4, 5, 6]]),
    (["[1]", '"[1,2]"'], "list<item: float>", [[1.0], [1.0, 2.0]]),
    (["[]", "x"], "string", ["[]", "x"]),
    (["1", "x"], "string", ["1", "x"]),
])
def test_csv_column_typing(tmp_path, cells, typ, values):
    got_type, got = csv_col(tmp_path, cells)
    assert got_type == typ
    assert got == values


def test_csv_empty_cells_are_null_and_do_not_change_type(tmp_path):
    clear_typing_cache()
    p = tmp_path / "e.csv"
    p.write_text('a,b\n1,\n,x\n"",y\n3,z\n')
    src = CsvSource(str(p))
    assert str(src.schema.field("a").type) == "int64"
    got = [r for b in src.scan() for r in b.to_pylist()]
    assert [r["a"] for r in got] == [1, None, None, 3]
    assert [r["b"] for r in got] == [None, "x", "y", "z"]


def test_csv_all_empty_column_is_string(tmp_path):
    clear_typing_cache()
    p = tmp_path / "n.csv"
    p.write_text("a,b\n1,\n2,\n")
    assert str(CsvSource(str(p)).schema.field("b").type) == "string"


def test_line_typing_nulls_and_leading_zeros(tmp_path):
    clear_typing_cache()
    p = tmp_path / "l.txt"
    p.write_text("007|null|TRUE\n1|NULL|false\n|x|true\n")
    src = LineSource(str(p), [("a", 0), ("b", 1), ("c", 2)], split_delimiter="|")
    assert [str(t) for t in src.schema.types] == ["int64", "string", "bool"]
    got = [r for b in src.scan() for r in b.to_pylist()]
    assert got == [{"a": 7, "b": None, "c": True}, {"a": 1, "b": None, "c": False},
                   {"a": None, "b": "x", "c": True}]


def test_contradiction_late_in_file_widens_whole_column(tmp_path):
    clear_typing_cache()
    p = tmp_path / "late.csv"
    with open(p, "w") as f:
        f.write("a\n")
        for i in range(200_000):
            f.write(f"{i}\n")
        f.write("1.5\n")
    src = CsvSource(str(p))
    assert str(src.schema.field("a").type) == "double"
    values = [v for b in src.scan() for v in b.column(0).to_pylist()]
    assert values[0] == 0.0 and values[-1] == 1.5 and len(values) == 200_001
