"""Helpers the subcommands share: the Session, the engine flag, explain sections, steps that
turn any failure into a :class:`CliStructuredError` with upstream's message and phase."""
from __future__ import annotations

import contextlib
import json

from .errors import CliStructuredError

__all__ = ["make_session", "add_engine_option", "add_input_path_option", "step", "parse_explain_sections",
           "build_batch_explain", "progress_snapshot"]


def add_engine_option(parser) -> None:
    """``--engine auto|reference|accel`` (default: ``$VELARIA_ENGINE`` or auto)."""
    parser.add_argument("--engine", choices=["auto", "reference", "accel"], default=None,
                        help="kernels to use (default: $VELARIA_ENGINE or auto)")


def add_input_path_option(parser, dest: str, help: str) -> None:
    """The required input file flag, ``--input-path`` (alias ``--csv``, upstream's name), stored
    as ``dest``."""
    parser.add_argument("--csv", "--input-path", dest=dest, required=True, metavar="PATH", help=help)


def make_session(args):
    """A fresh Session with the engine the arguments ask for."""
    from ..session import Session
    return Session(engine=getattr(args, "engine", None))


@contextlib.contextmanager
def step(message: str, phase: str, details: dict | None = None, run_id: str | None = None):
    """Run the block; any failure (other than a CliStructuredError) is re-raised as
    ``CliStructuredError(message, phase=phase)`` with the original as its cause."""
    try:
        yield
    except CliStructuredError:
        raise
    except Exception as exc:
        raise CliStructuredError(message, phase=phase, details=details, run_id=run_id) from exc


def parse_explain_sections(text: str) -> dict:
    """``{"logical","physical","strategy"}`` from explain text: a line holding only a section
    name starts that section; lines of other sections (and before the first) are dropped."""
    sections = {"logical": [], "physical": [], "strategy": []}
    current = None
    for line in text.splitlines():
        name = line.strip()
        if name in ("logical", "physical", "strategy", "frontend"):
            current = name if name in sections else None
            continue
        if current is not None:
            sections[current].append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


def build_batch_explain(logical: str, output_path) -> dict:
    """The explain record of a query that had no ``explain_sql`` text (upstream's fallback)."""
    return {"logical": logical,
            "physical": f"local-batch\nresult_sink=file://{output_path}\nmaterialization=pyarrow-table",
            "strategy": "selected_mode=single-process\ntransport_mode=inproc\n"
                        "execution_reason=batch query executed through DataflowSession"}


def progress_snapshot(run_id: str | None, phase: str, **fields) -> None:
    """Append a progress line ``{"phase", "at", ...}`` to the run's ``progress.jsonl``."""
    if run_id is None:
        return
    from ..workspace.run_store import append_progress_snapshot, iso_utc
    append_progress_snapshot(run_id, json.dumps({"phase": phase, "at": iso_utc(), **fields}, ensure_ascii=False))
