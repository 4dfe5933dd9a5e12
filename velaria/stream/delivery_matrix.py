"""The delivery paths we claim, with their status and the tests that back them.

Each :class:`MatrixRow` names a path (source kind, sink kind, durability profile, checkpoint)
and the guarantee we claim for it. ``rows_with_guarantees()`` recomputes every guarantee with
:func:`~velaria.stream.delivery.effective_guarantee` over the built-in sources' and sinks' own
``capabilities()``, so the table cannot claim more than the code reports. ``render()`` writes
the generated part of ``docs/delivery.md``; the test suite checks that the committed page
equals it, that every certified row names evidence, and that every evidence id is a test the
suite collects.

Regenerate the page after changing this table or a capability::

    python -m velaria.stream.delivery_matrix docs/delivery.md
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .delivery import DeliveryGuarantee, delivery_view

__all__ = ["MatrixRow", "ROWS", "STATUSES", "SOURCES", "SINKS", "render", "replace_section", "rewrite_doc", "BEGIN",
           "END"]

STATUSES = ("certified", "preview", "experimental")
BEGIN = "<!-- BEGIN GENERATED: delivery matrix (python -m velaria.stream.delivery_matrix docs/delivery.md) -->"
END = "<!-- END GENERATED: delivery matrix -->"


def _arrow_source():
    from .sources import ArrowStreamSource
    return ArrowStreamSource([])


def _csv_dir_source():
    from .sources import CsvDirectorySource
    return CsvDirectorySource("<dir>")


def _queue_source():
    from .sources import QueueStreamSource
    return QueueStreamSource(["x"])


def _csv_sink():
    from .sinks import CsvFileStreamSink
    return CsvFileStreamSink("<file>.csv")


def _queue_sink():
    from .sinks import QueueStreamSink
    return QueueStreamSink()


def _console_sink():
    from .sinks import ConsoleStreamSink
    return ConsoleStreamSink()


#: source kind -> (how a user makes it, factory of the built-in object)
SOURCES = {
    "arrow": ("create_stream_from_arrow", _arrow_source),
    "csv-dir": ("read_stream_csv_dir / CREATE SOURCE TABLE", _csv_dir_source),
    "realtime-queue": ("create_realtime_stream_source", _queue_source),
}
#: sink kind -> (how a user makes it, factory of the built-in object)
SINKS = {
    "csv-file": ("write_stream_csv / CREATE SINK TABLE", _csv_sink),
    "realtime-queue": ("write_stream_queue_sink", _queue_sink),
    "console": ("write_stream_console", _console_sink),
}

_T = "tests/test_stream_delivery.py::"


@dataclass(frozen=True)
class MatrixRow:
    """One delivery path: ``checkpoint`` is ``none`` or a ``checkpoint_delivery_mode``."""

    source: str
    sink: str
    profile: str
    checkpoint: str
    claim: str
    status: str
    evidence: tuple[str, ...] = ()
    notes: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.source, self.sink, self.profile, self.checkpoint)

    def computed(self):
        """The guarantee the runtime reports for this path (a ``DeliveryView``)."""
        from .strategy import StreamOptions
        opts = StreamOptions(checkpoint_path="" if self.checkpoint == "none" else "<checkpoint>",
                             checkpoint_delivery_mode="at-least-once" if self.checkpoint == "none" else self.checkpoint,
                             durability_profile=self.profile)
        return delivery_view(SOURCES[self.source][1](), SINKS[self.sink][1](), opts)


ROWS: tuple[MatrixRow, ...] = (
    MatrixRow("csv-dir", "csv-file", "single-node-durable", "at-least-once", "at-least-once", "certified",
              (_T + "test_sigkill_then_restart_delivers_every_row_at_least_once[1]",
               _T + "test_sigkill_then_restart_delivers_every_row_at_least_once[3]",
               _T + "test_reported_guarantee_of_each_path[csv-dir-csv-file-single-node-durable-at-least-once]"),
              "killed with SIGKILL between checkpoints and restarted: every input row is in the file, some twice"),
    MatrixRow("arrow", "csv-file", "single-node-durable", "at-least-once", "at-least-once", "certified",
              (_T + "test_restart_over_the_same_arrow_data_delivers_every_row",
               _T + "test_reported_guarantee_of_each_path[arrow-csv-file-single-node-durable-at-least-once]"),
              "a restart must be given the same Arrow data again (it is replayed from the start)"),
    MatrixRow("csv-dir", "console", "single-node-durable", "at-least-once", "at-least-once", "preview",
              (_T + "test_reported_guarantee_of_each_path[csv-dir-console-single-node-durable-at-least-once]",),
              "stdout is flushed before every checkpoint; no crash test reads a killed process's stdout yet"),
    MatrixRow("csv-dir", "csv-file", "single-node-durable", "best-effort", "best-effort", "certified",
              (_T + "test_reported_guarantee_of_each_path[csv-dir-csv-file-single-node-durable-best-effort]",),
              "the source resumes after the checkpointed file, but the contract's best-effort mode makes no claim"),
    MatrixRow("csv-dir", "csv-file", "dev-local", "at-least-once", "best-effort", "certified",
              (_T + "test_reported_guarantee_of_each_path[csv-dir-csv-file-dev-local-at-least-once]",),
              "the checkpoint file is still written; dev-local just does not promise restarts"),
    MatrixRow("arrow", "csv-file", "dev-local", "none", "best-effort", "certified",
              (_T + "test_reported_guarantee_of_each_path[arrow-csv-file-dev-local-none]",),
              "the default: no checkpoint, nothing promised across a restart"),
    MatrixRow("realtime-queue", "csv-file", "single-node-durable", "at-least-once", "best-effort", "certified",
              (_T + "test_reported_guarantee_of_each_path[realtime-queue-csv-file-single-node-durable-at-least-once]",),
              "pushed batches are kept nowhere: a crash loses what was consumed but not checkpointed"),
    MatrixRow("arrow", "realtime-queue", "single-node-durable", "at-least-once", "best-effort", "certified",
              (_T + "test_reported_guarantee_of_each_path[arrow-realtime-queue-single-node-durable-at-least-once]",),
              "the queue sink lives in the process: a crash loses what was not polled"),
    MatrixRow("realtime-queue", "realtime-queue", "dev-local", "none", "best-effort", "experimental", (),
              "in-process queues at both ends: for tests and notebooks"),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(rows=ROWS) -> str:
    """The generated section of docs/delivery.md (between the BEGIN and END markers)."""
    out = [BEGIN, "",
           "| source | sink | profile | checkpoint | guarantee | limited by | status | evidence | notes |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        view = r.computed()
        evidence = "<br>".join(f"`{e.split('::', 1)[1]}`" for e in r.evidence) or "–"
        out.append(f"| {r.source} | {r.sink} | {r.profile} | {r.checkpoint} | {view.effective.label} | "
                   f"{view.limited_by_text} | {r.status} | {evidence} | {_cell(r.notes)} |")
    out += ["", "Sources: " + "; ".join(f"`{k}` = `{v[0]}`" for k, v in SOURCES.items()) + ".",
            "Sinks: " + "; ".join(f"`{k}` = `{v[0]}`" for k, v in SINKS.items()) + ".",
            "Evidence ids are test functions in `" + _T.rstrip(":") + "`.", "", END]
    return "\n".join(out) + "\n"


def replace_section(doc: str, section: str) -> str:
    """``doc`` with the text from the BEGIN marker through the END marker replaced by ``section``."""
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the page lacks the markers {BEGIN!r} ... {END!r}; add them where the table goes")
    return doc[:start] + section + doc[end + len(END) + 1:]


def rewrite_doc(path: str) -> None:
    """Regenerate the matrix section of the page at ``path`` in place (atomic replace)."""
    from ..workspace.atomic import write_bytes_atomic
    with open(path, encoding="utf-8") as f:
        text = replace_section(f.read(), render())
    write_bytes_atomic(Path(path), text.encode("utf-8"))


def _claims_hold() -> list[str]:
    """Rows whose claim differs from what the runtime computes (empty when all hold)."""
    return [f"{r.key}: claims {r.claim}, runtime reports {r.computed().effective.label}"
            for r in ROWS if DeliveryGuarantee.parse(r.claim) != r.computed().effective]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m velaria.stream.delivery_matrix docs/delivery.md")
    if bad := _claims_hold():
        sys.exit("the matrix claims what the runtime does not report:\n" + "\n".join(bad))
    rewrite_doc(sys.argv[1])
