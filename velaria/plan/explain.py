"""Explain rendering. The object that runs a plan is the one described: the lines below are
computed from the same plan tree and :class:`~velaria.kernels.KernelSet` the executor uses.

* :func:`explain_batch` -- ``Session.explain_sql``: sections ``frontend``, ``logical``,
  ``physical``, ``strategy``.
* :func:`render_tree` -- ``DataFrame.explain()``: an indented tree.
"""
from __future__ import annotations

from ..kernels import KernelSet
from . import logical as L
from . import types as T
from .expr import Call, Column, Literal, render

__all__ = ["explain_batch", "render_tree", "linearize", "kernels_used"]

_BARRIERS = (L.Scan, L.OneRow, L.Union, L.Join, L.Aggregate, L.Sort, L.Distinct)


def linearize(node: L.Node) -> list[L.Node]:
    """Plan nodes in execution order (children before parents, left before right)."""
    out: list[L.Node] = []
    for c in L.children(node):
        out.extend(linearize(c))
    out.append(node)
    return out


def _simple_comparison(pred):
    if isinstance(pred, Call) and pred.name in ("=", "!=", "<", "<=", ">", ">=") \
            and isinstance(pred.args[0], Column) and isinstance(pred.args[1], Literal):
        return pred.args[0], pred.name
    return None


def _step(node: L.Node) -> str:
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
        return f"Join left={node.left_keys[0].name} right={node.right_keys[0].name}"
    if isinstance(node, L.Union):
        return f"Union distinct={'true' if node.distinct else 'false'}"
    if isinstance(node, L.Distinct):
        return "Distinct"
    if isinstance(node, L.HybridSearch):
        return f"HybridSearch column={node.column} top_k={node.top_k}"
    return type(node).__name__


def _physical(steps: list[L.Node]) -> list[str]:
    """Upstream's physical stage assignment."""
    lines = []
    in_pipeline = False
    joins = 0
    for i, node in enumerate(steps, 1):
        barrier = isinstance(node, _BARRIERS)
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


def kernels_used(node: L.Node) -> list[str]:
    """Registry names of the kernels executing ``node`` will call, in first-use order."""
    names: list[str] = []

    def add(n):
        if n not in names:
            names.append(n)

    def evaluates(exprs):  # the executor reads bare columns without the evaluate kernel
        if any(e is not None and not isinstance(e, Column) for e in exprs):
            add("evaluate")
    for n in linearize(node):
        if isinstance(n, L.Filter):
            add("filter_batch")
        elif isinstance(n, L.Project):
            evaluates(n.exprs)
        elif isinstance(n, L.Aggregate):
            evaluates(list(n.keys) + [a.arg for a in n.aggregates])
            add("hash_aggregate")
        elif isinstance(n, L.Sort):
            evaluates(n.keys)
            add("sort_indices")
        elif isinstance(n, L.Join):
            evaluates(list(n.left_keys) + list(n.right_keys))
            add("hash_join")
        elif isinstance(n, L.Distinct) or (isinstance(n, L.Union) and n.distinct):
            add("distinct_indices")
        elif isinstance(n, L.HybridSearch):
            add("vector_topk")
    return names


def _engine_lines(node: L.Node, kernels: KernelSet) -> list[str]:
    used = kernels_used(node)
    return [
        f"engine={kernels.engine}",
        f"backend={kernels.backend}",
        "kernels=" + (",".join(kernels.describe(k) for k in used) if used else "none"),
        f"accelerator={kernels.accel_status}",
    ]


def _scan_lines(node: L.Node) -> list[str]:
    lines = []
    for n in linearize(node):
        if isinstance(n, L.Scan):
            cols = ",".join(n.columns) if n.columns is not None else "all"
            filters = ",".join(f.render() for f in n.filters) or "none"
            lines.append(f"scan source={n.table_name} kind={n.source.kind} projected_columns={cols} "
                         f"pushed_filters={filters}")
    return lines


def _strategy(node: L.Node, kernels: KernelSet) -> list[str]:
    aggs = [n for n in linearize(node) if isinstance(n, L.Aggregate)]
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
        agg = aggs[0]
        origin = kernels.origin("hash_aggregate")
        fixed = all(T.is_integer(k.type) or T.is_bool(k.type) for k in agg.keys)
        affected = [render(k) for k in agg.keys] + [render(a.arg) for a in agg.aggregates if a.arg is not None]
        if not agg.keys:
            impl, reason = "hash-fixed", "aggregate has no group keys; use the scalar accumulator path"
        else:
            impl, reason = "hash-ref", ("group keys are hashed by value in one generic table; groups keep "
                                        "first-appearance order")
        lines = [
            f"selected_impl={impl}",
            f"simd_backend={kernels.backend if origin == 'accel' else 'python'}",
            f"compiled_backends={kernels.backend if kernels.backend != 'python' else 'none'}",
            f"partial_layout={'key-columnar' if len(agg.keys) == 2 else 'generic-table'}",
            f"runtime_shape={origin}-hash-aggregate",
            f"key_count={len(agg.keys)}",
            "ordered_input=false",
            "partition_local=false",
            f"fixed_width_keys={'true' if fixed else 'false'}",
            "packable_keys=false",
            "low_cardinality=false",
            f"reason={reason}",
            "columnar_operator=aggregate",
            "columnar_fallback_type=none",
            "columnar_reason=aggregate input streams as Arrow record batches",
            "columnar_input_row_count=0",
            f"columnar_affected_columns={','.join(affected) or 'none'}",
        ]
    return lines + _scan_lines(node) + _engine_lines(node, kernels)


def explain_batch(plan: L.Node, kernels: KernelSet) -> str:
    """``Session.explain_sql`` text for an optimised plan."""
    steps = linearize(plan)
    first = steps[0]
    seed = len(first.source.schema) if isinstance(first, L.Scan) else 1  # the FROM table's width
    lines = ["frontend", "name=pg_query", "dialect=velaria_sql_v1", "logical", f"seed_columns={seed}"]
    lines += [f"{i}. {_step(n)}" for i, n in enumerate(steps, 1)]
    lines.append("physical")
    lines += _physical(steps)
    lines.append("strategy")
    lines += _strategy(plan, kernels)
    return "\n".join(lines)


_TREE_NAMES = {L.Scan: "Source", L.OneRow: "Source", L.Project: "Select", L.Filter: "Filter",
               L.Union: "Union", L.Limit: "Limit", L.Sort: "OrderBy", L.Aggregate: "Aggregate",
               L.Join: "Join", L.Distinct: "Distinct", L.HybridSearch: "HybridSearch"}


def _details(node: L.Node) -> list[str]:
    if isinstance(node, L.Scan):
        d = [f"source={node.source.kind}"]
        if node.columns is not None:
            d.append(f"columns={','.join(node.columns)}")
        if node.filters:
            d.append("pushed_filters=" + ",".join(f.render() for f in node.filters))
        return d
    if isinstance(node, L.OneRow):
        return ["source=values"]
    if isinstance(node, L.Project):
        return [f"keep={len(node.exprs)}"]
    if isinstance(node, L.Filter):
        return [f"predicate={render(node.predicate)}"]
    if isinstance(node, L.Limit):
        return [f"n={node.limit if node.limit is not None else 'all'}"] + ([f"offset={node.offset}"] if node.offset else [])
    if isinstance(node, L.Sort):
        return [f"keys={len(node.keys)}"] + ([f"top_n={node.limit}"] if node.limit is not None else [])
    if isinstance(node, L.Aggregate):
        return [f"keys={len(node.keys)}, aggs={len(node.aggregates)}"]
    if isinstance(node, L.Join):
        return [f"left_key={node.left_keys[0].index}, right_key={node.right_keys[0].index}", f"how={node.how}"]
    if isinstance(node, L.Union):
        return [f"distinct={'true' if node.distinct else 'false'}"]
    if isinstance(node, L.HybridSearch):
        return [f"column={node.column}, metric={node.metric}, top_k={node.top_k}"]
    return []


def render_tree(plan: L.Node, kernels: KernelSet) -> str:
    """``DataFrame.explain()``: the plan tree, 2 spaces per level, then engine lines."""
    lines: list[str] = []

    def visit(node, depth):
        lines.append("  " * depth + _TREE_NAMES.get(type(node), type(node).__name__))
        for d in _details(node):
            lines.append("  " * (depth + 1) + d)
        for c in L.children(node):
            visit(c, depth + 1)
    visit(plan, 0)
    return "\n".join(lines + _engine_lines(plan, kernels))
