"""The result of a conformance run and its three renderings: terminal text, JSON and Markdown."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from . import Clause
from .outcome import CLASSES, FAILING

__all__ = ["Result", "Report"]


@dataclass
class Result:
    """One clause's result: its class (see :mod:`.outcome`), a detail text and a repro."""

    clause: Clause
    cls: str
    detail: str = ""
    repro: str = ""

    @property
    def failed(self) -> bool:
        return self.cls in FAILING

    def to_json(self) -> dict:
        c = self.clause
        return {"id": c.id, "contract": c.title, "class": self.cls, "detail": self.detail, "repro": self.repro,
                "divergence_row": c.diverges, "extension_row": c.extension, "origin": c.origin}


def _first_line(text: str, width: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


@dataclass
class Report:
    """All results of one run against one target."""

    target: str
    python: str = ""
    target_file: str | None = None
    native: bool = False
    session_kwargs: dict = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    unknown_xfails: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.failed]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.unknown_xfails

    def by_id(self) -> dict[str, Result]:
        return {r.clause.id: r for r in self.results}

    def counts(self) -> dict[str, int]:
        """Clause count per class, in the order of :data:`CLASSES` (classes with no clause left out)."""
        out = {k: 0 for k in CLASSES}
        for r in self.results:
            out[r.cls] += 1
        return {k: n for k, n in out.items() if n}

    def summary(self) -> str:
        return ", ".join("%d %s" % (n, k) for k, n in self.counts().items()) + (
            ", %d stale xfail entries" % len(self.unknown_xfails) if self.unknown_xfails else "")

    def _heading(self) -> str:
        args = "".join(", %s=%r" % kv for kv in self.session_kwargs.items())
        return "target=%s%s (python %s%s), %d clauses" % (
            self.target, args, self.python or "?", ", native Velaria" if self.native else "", len(self.results))

    def format(self, verbose: bool = False) -> str:
        """The terminal report: a table, then every failure with its detail and repro, then a summary."""
        lines = ["Velaria conformance: " + self._heading()]
        w_id = max([len(r.clause.id) for r in self.results] + [2])
        w_t = min(max([len(r.clause.title) for r in self.results] + [5]), 70)
        lines.append("%-*s  %-*s  %s" % (w_id, "id", w_t, "contract", "class"))
        lines.append("%s  %s  %s" % ("-" * w_id, "-" * w_t, "-" * 20))
        for r in self.results:
            title = r.clause.title if len(r.clause.title) <= w_t else r.clause.title[: w_t - 3] + "..."
            note = ""
            if r.cls not in ("pass", "fail") and r.detail:
                note = "  " + _first_line(r.detail, 100)
            lines.append("%-*s  %-*s  %s%s" % (w_id, r.clause.id, w_t, title, r.cls, note))
            if verbose and r.detail and not r.failed:
                lines.append("    " + r.detail.replace("\n", "\n    "))
        for entry in self.unknown_xfails:
            lines.append("stale xfail entry: %s" % entry)
        if self.failures:
            lines += ["", "=" * 30 + " failures " + "=" * 30]
            for r in self.failures:
                lines.append("--- %s  %s  [%s]  (%s)" % (r.clause.id, r.clause.title, r.cls, r.clause.origin))
                if r.detail:
                    lines.append(r.detail)
                if r.repro:
                    lines.append("repro:")
                    lines.append(r.repro)
                lines.append("")
        lines.append("summary: %s (%.1f s)" % (self.summary(), self.seconds))
        lines.append("RESULT: %s" % ("OK" if self.ok else "FAILED"))
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"target": self.target, "python": self.python, "target_file": self.target_file,
                "native": self.native, "session_kwargs": self.session_kwargs, "ok": self.ok,
                "counts": self.counts(), "stale_xfail_entries": self.unknown_xfails, "seconds": round(self.seconds, 2),
                "clauses": [r.to_json() for r in self.results]}

    def write_json(self, path) -> None:
        _write_atomic(path, json.dumps(self.to_json(), indent=2) + "\n")

    def to_markdown(self) -> str:
        """One table row per clause: id, contract text, class and a one-line detail."""

        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        out = ["## Conformance: %s" % self._heading(), "", "Summary: %s." % self.summary(), "",
               "| id | contract | class | detail |", "|---|---|---|---|"]
        for r in self.results:
            detail = _first_line(r.detail) if r.cls != "pass" else ""
            out.append("| `%s` | %s | %s | %s |" % (r.clause.id, cell(r.clause.title), r.cls, cell(detail)))
        return "\n".join(out) + "\n"

    def write_markdown(self, path) -> None:
        _write_atomic(path, self.to_markdown())


def _write_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, fsync and rename (never a half file)."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
