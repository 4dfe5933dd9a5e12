"""Explain rendering: a view of the physical plan's decision record.

Every line below is read from a :class:`~velaria.plan.physical.PhysicalPlan` -- the same
object whose operators run -- so explain cannot describe a decision other than the one that
ran. A frame that has already run shows the path its kernels reported (``ran_path``).

* :func:`explain_batch` -- ``Session.explain_sql``: sections ``frontend``, ``logical``,
  ``physical``, ``strategy``.
* :func:`render_tree` -- ``DataFrame.explain()``: an indented tree.
"""
from __future__ import annotations

from ..io.pushdown import render_pushdown
from . import logical as L
from . import types as T
from .expr import Call, Column, Literal, render, window_text
from .physical import PhysicalPlan, StepDecision

__all__ = ["explain_batch", "render_tree", "step_line"]

# upstream's physical stage assignment counts these kinds as barriers
_UPSTREAM_BARRIERS = (L.Scan, L.OneRow, L.Union, L.SetOp, L.Join, L.Aggregate, L.Sort, L.Distinct, L.KeywordSearch,
                      L.Window)


def _simple_comparison(pred):
    if isinstance(pred, Call) and pred.name in ("=", "!=", "<", "<=", ">", ">=") \
            and isinstance(pred.args[0], Column) and isinstance(pred.args[1], Literal):
        return pred.args[0], pred.name
    return None


def step_line(node: L.Node) -> str:
    """Upstream's logical step text for ``node`` (``Filter column=0 op=>``, ...)."""
    if isinstance(node, L.Scan):
        return f"Scan source={node.table_name}"
    if isinstance(node, L.OneRow):
        return "Scan source=__values__"
    if isinstance(node, L.Filter):
        simple = _simple_comparison(node.predicate)
        if simple is None:
            return "PredicateFilter"
        col, op = simple
        if node.origin == "having":
            return f"Having column={col.name} op={op}"
        return f"Filter column={col.index} op={op}"
    if isinstance(node, L.Project):
        return f"Project columns={len(node.exprs)}"
    if isinstance(node, L.Aggregate):
        return f"Aggregate keys={len(node.keys)} aggs={len(node.aggregates)}"
    if isinstance(node, L.Sort):
        return f"OrderBy columns={len(node.keys)}"
    if isinstance(node, L.Limit):
        text = f"Limit value={node.limit if node.limit is not None else 'all'}"
        return text + (f" offset={node.offset}" if node.offset else "")
    if isinstance(node, L.Join):
        if not node.left_keys:
            return f"Join kind={node.how} keys=none"
        kind = f"kind={node.how} " if node.how in L.SUBQUERY_JOINS else ""
        return f"Join {kind}left={node.left_keys[0].name} right={node.right_keys[0].name}"
    if isinstance(node, L.Union):
        return f"Union distinct={'true' if node.distinct else 'false'}"
    if isinstance(node, L.SetOp):
        return f"SetOp kind={node.kind} all={'true' if node.all else 'false'}"
    if isinstance(node, L.Distinct):
        return "Distinct"
    if isinstance(node, L.HybridSearch):
        return f"HybridSearch column={node.column} top_k={node.top_k}"
    if isinstance(node, L.KeywordSearch):
        return f"KeywordSearch columns={len(node.columns)} top_k={node.top_k}"
    if isinstance(node, L.Window):
        return f"Window functions={len(node.functions)}"
    return type(node).__name__


def _physical(steps: list[L.Node]) -> list[str]:
    """Upstream's physical stage assignment."""
    lines = []
    in_pipeline = False
    joins = 0
    for i, node in enumerate(steps, 1):
        barrier = isinstance(node, _UPSTREAM_BARRIERS)
        if isinstance(node, L.Join):
            joins += 1
            kind, reason = "Join", "first join chain" if joins == 1 else "joined chain uses right source"
        elif isinstance(node, L.Aggregate):
            kind, reason = "Aggregate", "aggregate barrier"
        elif isinstance(node, (L.Scan, L.OneRow)):
            kind, reason = "SourceOnly", "source load"
        elif not barrier and in_pipeline:
            kind, reason = "FusedUnary", "fused in local chain"
        else:
            kind, reason = "FusedUnary", "single unary stage"
        lines.append(f"{i}. {kind} barrier={'true' if barrier else 'false'} reason={reason}")
        in_pipeline = not barrier
    return lines


def _engine_lines(plan: PhysicalPlan) -> list[str]:
    used = plan.kernels_used()
    kernels = plan.kernels
    return [
        f"engine={kernels.engine}",
        f"backend={kernels.backend}",
        "kernels=" + (",".join(f"{k}={o}" for k, o in used) if used else "none"),
        f"accelerator={kernels.accel_status}",
        f"expression_path={_expression_path(plan)}",
    ]


def _expression_path(plan: PhysicalPlan) -> str:
    """How the plan's expressions are evaluated: ``reference`` (the list evaluator), or the
    accelerated evaluator's own account (``vectorised``, plus the nodes it leaves to the
    reference)."""
    exprs = []
    for step in plan.steps:
        node = step.node
        if isinstance(node, L.Project):
            exprs += list(node.exprs)
        elif isinstance(node, L.Filter):
            exprs.append(node.predicate)
        elif isinstance(node, L.Aggregate):
            exprs += list(node.keys) + [a.arg for a in node.aggregates if a.arg is not None]
    plan_path = getattr(plan.kernels.evaluate, "plan_path", None)
    if plan.kernels.origin("evaluate") != "accel" or plan_path is None:
        return "reference"
    return plan_path(exprs) if exprs else "none"


def _render_filters(filters) -> str:
    return ",".join(f.render() for f in filters) or "none"


def _scan_lines(plan: PhysicalPlan) -> list[str]:
    lines = []
    for step in plan.steps:
        if step.kind == "Scan":
            n = step.node
            cols = ",".join(step.pushed_columns) if step.pushed_columns is not None else "all"
            lines.append(f"scan source={n.table_name} kind={n.source.kind} projected_columns={cols} "
                         f"pushed_filters={_render_filters(step.pushed_filters)}")
    return lines


#: aggregate path -> upstream's selected_impl name
_SELECTED_IMPL = {"global": "hash-fixed", "dense-c": "dense", "dense-numpy": "dense", "arrow-hash": "hash-fixed",
                  "python-dict": "hash-packed", "packed-hash": "hash-packed",
                  "key-bitmap": "hash-packed", "reference": "hash-ref"}


def _aggregate_strategy(plan: PhysicalPlan, step: StepDecision) -> list[str]:
    agg = step.node
    path = step.ran_path or step.path
    impl = _SELECTED_IMPL.get(path, "hash-ref")
    if path == "reference" and not agg.keys:
        impl = "hash-fixed"
    if path == "arrow-hash" and not all(T.is_integer(k.type) or T.is_bool(k.type) or T.is_floating(k.type)
                                        for k in agg.keys):
        impl = "hash-ref"
    # the accelerated aggregate's helpers are scalar C (no SIMD); the reference is Python
    simd = {"dense-c": "scalar", "global": "scalar", "python-dict": "scalar", "packed-hash": "scalar", "arrow-hash": "scalar",
            "key-bitmap": "scalar", "dense-numpy": "numpy"}.get(path, "python")
    fixed = all(T.is_integer(k.type) or T.is_bool(k.type) for k in agg.keys)
    affected = [render(k) for k in agg.keys] + [render(a.arg) for a in agg.aggregates if a.arg is not None]
    shape = (f"generic-single-{T.type_name(agg.keys[0].type).lower()}-key" if len(agg.keys) == 1
             else f"{step.kernels[-1][1]}-hash-aggregate")
    return [
        f"selected_impl={impl}",
        f"simd_backend={simd}",
        f"compiled_backends={plan.kernels.backend if plan.kernels.backend != 'python' else 'none'}",
        f"partial_layout={'key-columnar' if len(agg.keys) == 2 else 'generic-table'}",
        f"runtime_shape={shape}",
        f"key_count={len(agg.keys)}",
        "ordered_input=false",
        "partition_local=false",
        f"fixed_width_keys={'true' if fixed else 'false'}",
        f"packable_keys={'true' if path in ('python-dict', 'packed-hash', 'key-bitmap') else 'false'}",
        f"low_cardinality={'true' if path.startswith('dense') else 'false'}",
        f"reason={step.reason}",
        f"aggregate_path={path}",
        "columnar_operator=aggregate",
        "columnar_fallback_type=none",
        "columnar_reason=aggregate input streams as Arrow record batches",
        "columnar_input_row_count=0",
        f"columnar_affected_columns={','.join(affected) or 'none'}",
    ]


def _strategy(plan: PhysicalPlan) -> list[str]:
    aggs = [s for s in plan.steps if s.kind == "Aggregate"]
    if not aggs:
        lines = [
            "selected_impl=not-applicable",
            "reason=query does not contain GROUP BY aggregate planning",
            "columnar_operator=plan",
            "columnar_fallback_type=not-observed",
            "columnar_reason=query explain did not need a materialized aggregate input; "
            "runtime operators keep columnar cache when executed",
            "columnar_input_row_count=0",
            "columnar_affected_columns=all",
        ]
    else:
        lines = _aggregate_strategy(plan, aggs[0])
    return lines + _scan_lines(plan) + _engine_lines(plan)


def explain_batch(plan: PhysicalPlan) -> str:
    """``Session.explain_sql`` text: sections frontend, logical, physical, strategy."""
    nodes = [s.node for s in plan.steps]
    first = nodes[0]
    seed = len(first.source.schema) if isinstance(first, L.Scan) else 1  # the FROM table's width
    lines = ["frontend", "name=pg_query", "dialect=velaria_sql_v1", "logical", f"seed_columns={seed}"]
    lines += [f"{s.index}. {step_line(s.node)}" for s in plan.steps]
    lines.append("physical")
    lines += _physical(nodes)
    lines.append("strategy")
    lines += _strategy(plan)
    lines += _runtime_lines(plan, "runtime")
    return "\n".join(lines)


def _runtime_lines(plan: PhysicalPlan, header: str) -> list[str]:
    """The runtime record's section; embedded runs (the default) keep upstream's text."""
    record = plan.runtime
    if record is None or record.runtime_mode == "embedded":
        return []
    return [header] + record.lines()


_TREE_NAMES = {L.Scan: "Source", L.OneRow: "Source", L.Project: "Select", L.Filter: "Filter",
               L.Union: "Union", L.Limit: "Limit", L.Sort: "OrderBy", L.Aggregate: "Aggregate",
               L.Join: "Join", L.Distinct: "Distinct", L.HybridSearch: "HybridSearch",
               L.KeywordSearch: "KeywordSearch", L.Window: "Window", L.SetOp: "SetOp"}


def _key_text(key) -> str:
    """A join key: its column position, or the expression when the key is computed."""
    return str(key.index) if isinstance(key, Column) else render(key)


def _details(node: L.Node, step: StepDecision) -> list[str]:
    if isinstance(node, L.Scan):
        d = [f"source={node.source.kind}"]
        if step.pushed_columns is not None:
            d.append(f"columns={','.join(step.pushed_columns)}")
        if step.pushed_filters:
            d.append("pushed_filters=" + _render_filters(step.pushed_filters))
        # a file source says what it read and how: path, options, the parser that ran, lines a
        # regex did not match, skipped bad lines, the materialisation cache's state (its
        # pushdown is the two lines above, so it is not repeated)
        filters = list(step.pushed_filters or ())
        detail = node.source.describe(step.pushed_columns, filters)
        detail = " ".join(detail.replace(render_pushdown(step.pushed_columns, filters), "").split())
        if detail:
            d.append(f"file: {detail}")
        return d
    if isinstance(node, L.OneRow):
        return ["source=values"]
    ran = [f"path={step.ran_path}"] if step.ran_path else []    # after a run: what computed it
    if isinstance(node, L.Project):
        return [f"keep={len(node.exprs)}"] + ran
    if isinstance(node, L.Filter):
        return [f"predicate={render(node.predicate)}"] + ran
    if isinstance(node, L.Limit):
        return [f"n={node.limit if node.limit is not None else 'all'}"] + ([f"offset={node.offset}"] if node.offset else [])
    if isinstance(node, L.Sort):
        return [f"keys={len(node.keys)}"] + ([f"top_n={node.limit}"] if node.limit is not None else [])
    if isinstance(node, L.Aggregate):
        return ([f"keys={len(node.keys)}, aggs={len(node.aggregates)}", f"path={step.ran_path or step.path}"]
                + ([f"rewrite={node.rewrite}"] if node.rewrite else []))
    if isinstance(node, L.Join):
        keys = (f"left_key={_key_text(node.left_keys[0])}, right_key={_key_text(node.right_keys[0])}"
                if node.left_keys else "keys=none")
        return ([keys, f"how={node.how}"] + ([f"residual={render(node.residual)}"] if node.residual is not None else [])
                + ran)
    if isinstance(node, L.Union):
        return [f"distinct={'true' if node.distinct else 'false'}"]
    if isinstance(node, L.HybridSearch):
        return [f"column={node.column}, metric={node.metric}, top_k={node.top_k}"]
    if isinstance(node, L.KeywordSearch):
        return [f"columns={','.join(node.columns)}, top_k={node.top_k}, tokenizer={node.tokenizer}"]
    if isinstance(node, L.Window):
        return [window_text(f) for f in node.functions]
    if isinstance(node, L.SetOp):
        return [f"kind={node.kind}, all={'true' if node.all else 'false'}"]
    return []


def render_tree(plan: PhysicalPlan) -> str:
    """``DataFrame.explain()``: the plan tree, 2 spaces per level, then engine lines."""
    lines: list[str] = []

    def visit(node, depth):
        lines.append("  " * depth + _TREE_NAMES.get(type(node), type(node).__name__))
        for d in _details(node, plan.step_for(node)):
            lines.append("  " * (depth + 1) + d)
        for c in L.children(node):
            visit(c, depth + 1)
    visit(plan.root, 0)
    return "\n".join(lines + _engine_lines(plan) + _runtime_lines(plan, "runtime:"))
