"""Progress bars: on a terminal for long reads, never otherwise."""
from __future__ import annotations

import io
import sys

import pytest

import velaria
from velaria.io.typed_source import clear_typing_cache

pytest.importorskip("rich")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def _read(path):
    clear_typing_cache()
    return velaria.Session().read_csv(path).count()


def test_bar_on_a_terminal(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "1,x\n" * 5000)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("VELARIA_PROGRESS", "1")
    assert _read(path) == 5000
    assert "typing big.csv" in terminal.getvalue()


def test_no_bar_when_not_a_terminal_or_small(tmp_path, monkeypatch, capsys):
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "1,x\n" * 5000)
    monkeypatch.setenv("VELARIA_PROGRESS", "1")
    assert _read(path) == 5000  # pytest's stderr is not a terminal
    assert capsys.readouterr().err == ""
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv("VELARIA_PROGRESS")
    assert _read(path) == 5000  # below the 64 MB threshold
    assert terminal.getvalue() == ""


def test_bar_while_materializing(tmp_path, monkeypatch):
    path = tmp_path / "m.csv"
    path.write_text("a,b\n" + "1,x\n" * 5000)
    clear_typing_cache()
    session = velaria.Session()
    df = session.read_csv(path, materialization=True, materialization_dir=str(tmp_path / "c"))
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("VELARIA_PROGRESS", "1")
    assert df.count() == 5000
    assert "materializing m.csv" in terminal.getvalue()
