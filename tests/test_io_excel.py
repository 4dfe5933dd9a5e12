"""read_excel on openpyxl read-only mode."""
from __future__ import annotations

import datetime as dt

import pytest

openpyxl = pytest.importorskip("openpyxl")

from velaria.errors import VelariaFileNotFoundError, VelariaValueError  # noqa: E402
from velaria.excel import read_excel  # noqa: E402


from io_fakes import FakeSession  # noqa: E402


def make_book(path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "员工"
    sheet.append(["employee_id", "name", "join_date", "dept"])
    sheet.append(["E1001", "Alice", "2024-02-01", "R&D"])
    sheet.append(["E1002", "Bob", "2024-02-05", "Ops"])
    sheet.append(["E1003", "Alice", "2024-02-10", "R&D"])
    other = book.create_sheet("nums")
    other.append(["id", "score", "ok", "when"])
    other.append([1, 1.5, True, dt.datetime(2024, 3, 1, 12, 0)])
    other.append([2, 2, False, None])
    other.append([None, None, None, None])
    other.append([3, 3.25, True, dt.datetime(2024, 3, 2)])
    book.save(path)


def rows(src):
    return [r for b in src.scan() for r in b.to_pylist()]


def test_fixture_sheet(tmp_path):
    p = tmp_path / "employee_import_mock.xlsx"
    make_book(p)
    src = read_excel(FakeSession(), p)
    assert src.kind == "excel"
    assert src.schema.names == ["employee_id", "name", "join_date", "dept"]
    assert rows(src)[2] == {"employee_id": "E1003", "name": "Alice", "join_date": "2024-02-10",
                            "dept": "R&D"}


def test_typed_columns_and_dates(tmp_path):
    p = tmp_path / "b.xlsx"
    make_book(p)
    src = read_excel(FakeSession(), str(p), sheet_name="nums")
    assert [str(t) for t in src.schema.types] == ["int64", "double", "bool", "string"]
    assert rows(src) == [{"id": 1, "score": 1.5, "ok": True, "when": "2024-03-01"},
                         {"id": 2, "score": 2.0, "ok": False, "when": None},
                         {"id": 3, "score": 3.25, "ok": True, "when": "2024-03-02"}]
    raw = read_excel(FakeSession(), str(p), sheet_name=1, coerce_datetime_to_string=False)
    assert str(raw.schema.field("when").type).startswith("timestamp")


def test_unknown_sheet_lists_sheets(tmp_path):
    p = tmp_path / "b.xlsx"
    make_book(p)
    with pytest.raises(VelariaValueError, match="'员工', 'nums'"):
        read_excel(FakeSession(), str(p), sheet_name="missing")
    with pytest.raises(ValueError, match="out of range"):
        read_excel(FakeSession(), str(p), sheet_name=5)


def test_missing_and_not_excel(tmp_path):
    with pytest.raises(VelariaFileNotFoundError, match="cannot open excel file"):
        read_excel(FakeSession(), tmp_path / "none.xlsx")
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a zip")
    with pytest.raises(RuntimeError, match="cannot read excel file"):
        read_excel(FakeSession(), bad)


def test_create_dataframe_from_arrow_fallback(tmp_path):
    p = tmp_path / "b.xlsx"
    make_book(p)

    class Old:
        def create_dataframe_from_arrow(self, table):
            return table

    assert read_excel(Old(), p).num_rows == 3
