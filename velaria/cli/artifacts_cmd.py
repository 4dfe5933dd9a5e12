"""``velaria artifacts list|preview``: files that runs produced, and previews of their rows."""
from __future__ import annotations

from .errors import CliStructuredError
from .output import Output
from .parsing import add_format_option, positive_int

__all__ = ["register"]

EXAMPLES = """\
examples:
  velaria artifacts list --run-id 20260101T120000Z_1a2b3c4d --format table
  velaria artifacts preview --artifact-id artifact_0123456789abcdef --limit 10
"""
_COLUMNS = ["artifact_id", "run_id", "created_at", "format", "row_count", "tags_json", "uri"]


def register(sub) -> None:
    art = sub.add_parser("artifacts", help="list and preview run artifacts", description=__doc__, epilog=EXAMPLES)
    asub = art.add_subparsers(dest="artifacts_command", metavar="ARTIFACTS_COMMAND", required=True)
    p = asub.add_parser("list", help="artifacts, newest first")
    p.add_argument("--run-id")
    p.add_argument("--limit", type=positive_int, default=50)
    add_format_option(p)
    p.set_defaults(handler=_list)
    p = asub.add_parser("preview", help="the first rows of an artifact")
    p.add_argument("--artifact-id", required=True)
    p.add_argument("--limit", type=positive_int, default=50)
    add_format_option(p)
    p.set_defaults(handler=_preview)


def _list(args) -> Output:
    from ..workspace.index import ArtifactIndex
    artifacts = ArtifactIndex().list_artifacts(limit=args.limit, run_id=args.run_id)
    return Output({"ok": True, "artifacts": artifacts}, columns=_COLUMNS)


def _preview(args) -> Output:
    from ..workspace.index import ArtifactIndex
    from .run_cmd import _preview as preview_of
    index = ArtifactIndex()
    artifact = index.get_artifact(args.artifact_id)
    if artifact is None:
        raise CliStructuredError(f"artifact not found: {args.artifact_id}", error_type="file_not_found",
                                 phase="artifact_lookup", details={"artifact_id": args.artifact_id})
    preview = preview_of(index, artifact, args.limit)
    return Output({"ok": True, "artifact_id": args.artifact_id, "preview": preview, "artifact": artifact})
