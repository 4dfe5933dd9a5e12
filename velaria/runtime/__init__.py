"""Runtime modes: where a Session's batch queries run (embedded, single-node, distributed).

* :mod:`.modes` -- the valid (mode, placement) pairs, environment variables, validation;
* :mod:`.partition` -- splitting a scan's source into partitions;
* :mod:`.stages` -- cutting a plan at its exchange, partition tasks, merging partials;
* :mod:`.local_pool` -- ``single-node``: local worker processes, Arrow IPC in shared memory;
* :mod:`.dask_backend` -- ``distributed``: tasks on a Dask distributed cluster;
* :mod:`.runtime` -- the Session's :class:`Runtime`: annotate the plan's record, run it.
"""
from .modes import ADDRESS_ENV, MODE_ENV, MODES, PLACEMENTS, VALID_PAIRS, RuntimeConfig, resolve_config
from .runtime import Runtime, create_runtime

__all__ = ["MODES", "PLACEMENTS", "VALID_PAIRS", "MODE_ENV", "ADDRESS_ENV", "RuntimeConfig", "resolve_config",
           "Runtime", "create_runtime", "explain_sql"]


def explain_sql(session, sql: str, params=None) -> str:
    """``Session.explain_sql`` with the runtime section of the session's mode (embedded
    sessions keep the plain text)."""
    from ..sql.run import explain_select

    text = explain_select(session, sql, params)      # validates the statement, upstream sections
    if session.runtime.mode == "embedded":
        return text
    from pglast import ast

    from ..plan.explain import explain_batch
    from ..plan.optimize import prune
    from ..plan.physical import build_physical
    from ..sql import parser
    from ..sql.params import bind
    from ..sql.planner import plan_select
    from ..sql.shallow import deep_recursion

    parsed = parser.parse(sql)
    offset = (lambda node: parser.node_offset(parsed, node))
    bind(parsed.stmt, params, offset)
    stmt = parsed.stmt.query if isinstance(parsed.stmt, ast.ExplainStmt) else parsed.stmt
    plan = plan_select(session.context.catalog, parsed, offset, stmt)
    with deep_recursion():
        return explain_batch(session.runtime.annotate(build_physical(prune(plan), session.kernels)))
