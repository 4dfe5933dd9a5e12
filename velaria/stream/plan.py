"""A stream plan: the batch plan nodes of one query, in the order a micro-batch visits them,
plus the upstream-format logical and physical explain lines rendered from those same nodes.

A stream query is planned exactly like a batch SELECT (same planner, same expression typing,
same node kinds) over a scan of the stream's schema; a ``WINDOW BY`` adds a
:class:`~velaria.exec.window.WindowAssign` node above the scan. The chain is linear (stream
SQL has no JOIN or UNION), so the driver pushes each batch through ``nodes[1:]`` in order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from ..errors import ExecutionError
from ..exec.window import WindowAssign
from ..io.base import TableSource
from ..plan import logical as L
from ..plan.expr import AggregateCall, Call, Cast, Column, Expr, Literal
from ..reference.functions import to_string

__all__ = ["StreamScanSource", "StatelessAggregate", "StreamPlan", "linearize"]

#: upstream's logical node kinds that run batch-locally (partition_local=true)
PARTITION_LOCAL = ("Scan", "Filter", "Project", "WithColumn", "WindowAssign")


class StreamScanSource(TableSource):
    """Plan-time stand-in for a stream source: its schema only (batches come from the driver)."""

    kind = "stream"

    def __init__(self, schema: pa.Schema):
        self._schema = schema

    @property
    def schema(self):
        return self._schema

    def scan(self, columns=None, filters=(), batch_rows=0):
        raise ExecutionError("a stream source is read by the stream runtime, not scanned as a batch table")


@dataclass(eq=False)
class StatelessAggregate(L.Aggregate):
    """A GROUP BY over each micro-batch on its own (DataFrame ``group_sum(stateful=False)``)."""

    running: bool = False


def linearize(root: L.Node) -> list[L.Node]:
    """The nodes from the scan up to ``root`` (the order a batch flows through them)."""
    chain = []
    node = root
    while True:
        chain.append(node)
        kids = L.children(node)
        if not kids:
            break
        if len(kids) > 1:
            raise ExecutionError(f"stream plans are linear; {type(node).__name__} has {len(kids)} inputs")
        node = kids[0]
    chain.reverse()
    if not isinstance(chain[0], L.Scan):
        raise ExecutionError("a stream plan must start with a scan of the stream source")
    return chain


# ---------------------------------------------------------------------- explain rendering

def _arg_text(e: Expr) -> str:
    if isinstance(e, Column):
        return f"column({e.name})"
    if isinstance(e, Literal):
        return f"literal({'null' if e.value is None else to_string(e.value)})"
    return f"function({_fn_name(e)}({', '.join(_arg_text(a) for a in _fn_args(e))}))"


def _fn_name(e: Expr) -> str:
    if isinstance(e, Cast):
        return "cast"
    return getattr(e, "name", type(e).__name__).lower()


def _fn_args(e: Expr) -> list[Expr]:
    if isinstance(e, Cast):
        return [e.arg, Literal(type=pa.string(), value=e.target)]
    return list(getattr(e, "args", ()) or ())


def _function_line(output: str, e: Expr) -> str:
    return f"WithColumn output={output} function={_fn_name(e)} args=[{', '.join(_arg_text(a) for a in _fn_args(e))}]"


def _filter_line(pred: Expr, names: list[str]) -> str:
    if isinstance(pred, Call) and len(pred.args) == 2 and isinstance(pred.args[0], Column):
        return f"Filter column={names[pred.args[0].index]} op={pred.name}"
    return f"Filter predicate={_fn_name(pred)}"


def _agg_default_name(a: AggregateCall) -> str:
    if a.arg is None:
        return "count"
    arg = a.arg.name if isinstance(a.arg, Column) else _fn_name(a.arg)
    return f"{a.func}_{arg}"


@dataclass
class StreamPlan:
    """One planned stream query: the node chain and its explain lines."""

    root: L.Node
    source_name: str
    sink_name: str | None = None
    nodes: list = field(default_factory=list)
    lines: list = field(default_factory=list)        # [(kind, text)] upstream logical nodes

    def __post_init__(self):
        self.nodes = linearize(self.root)
        self.lines = self._render_lines()

    # ---------------------------------------------------------------- shape
    @property
    def input_schema(self) -> pa.Schema:
        return self.nodes[0].schema

    @property
    def output_schema(self) -> pa.Schema:
        return self.root.schema

    @property
    def has_window(self) -> bool:
        return any(isinstance(n, WindowAssign) for n in self.nodes)

    @property
    def has_stateful_ops(self) -> bool:
        return any(isinstance(n, L.Aggregate) and getattr(n, "running", True) for n in self.nodes)

    @property
    def has_order_by(self) -> bool:
        return any(isinstance(n, L.Sort) for n in self.nodes)

    def aggregate_index(self) -> int | None:
        """Position in ``nodes`` of the (first) aggregate, if any."""
        for i, n in enumerate(self.nodes):
            if isinstance(n, L.Aggregate):
                return i
        return None

    # ---------------------------------------------------------------- actor eligibility
    def eligibility(self) -> tuple[bool, str]:
        """(eligible, reason): one stateful grouped aggregate with keys, partition-local
        transforms before it and nothing after it (in upstream's logical nodes)."""
        kinds = [k for k, _ in self.lines]
        agg_at = [i for i, k in enumerate(kinds) if k == "Aggregate"]
        agg = self.nodes[self.aggregate_index()] if self.aggregate_index() is not None else None
        if len(agg_at) != 1 or agg is None or not agg.keys or not agg.aggregates \
                or not getattr(agg, "running", True):
            return False, "query plan is not eligible for actor acceleration"
        if agg_at[0] != len(kinds) - 1 or any(k not in PARTITION_LOCAL for k in kinds[:agg_at[0]]):
            return False, "actor acceleration requires the eligible grouped aggregate to be the final stream transform"
        return True, ("final stateful grouped aggregate with supported SUM/COUNT/MIN/MAX/AVG outputs "
                      "is eligible for actor acceleration")

    def partition_local_prefix(self) -> int:
        n = 0
        for kind, _ in self.lines:
            if kind not in PARTITION_LOCAL:
                break
            n += 1
        return n

    @property
    def transform_count(self) -> int:
        return len(self.lines) - 1

    # ---------------------------------------------------------------- rendering
    def logical_text(self) -> list[str]:
        out = [f"source={self.source_name}"]
        if self.sink_name:
            out.append(f"sink={self.sink_name}")
        out.extend(f"{i}. {text}" for i, (_, text) in enumerate(self.lines, start=1))
        return out

    def physical_text(self) -> list[str]:
        eligible, reason = self.eligibility()
        out = [f"writes_to_sink={'true' if self.sink_name else 'false'}"]
        if self.sink_name:
            out.append(f"sink={self.sink_name}")
        out += [f"has_window={_b(self.has_window)}", f"has_stateful_ops={_b(self.has_stateful_ops)}",
                f"partition_local_prefix_nodes={self.partition_local_prefix()}",
                f"actor_eligible={_b(eligible)}", f"actor_eligibility_reason={reason}"]
        for i, (kind, _) in enumerate(self.lines, start=1):
            line = f"{i}. {kind} partition_local={_b(kind in PARTITION_LOCAL)}"
            if kind == "Aggregate":
                line += " stateful=true"
            out.append(line)
        return out

    def _render_lines(self) -> list[tuple[str, str]]:
        lines: list[tuple[str, str]] = []
        agg_names: list[str] | None = None     # output names of the aggregate's columns
        for pos, node in enumerate(self.nodes):
            below = self.nodes[pos - 1].schema.names if pos else []
            if isinstance(node, L.Scan):
                lines.append(("Scan", f"Scan source={self.source_name}"))
            elif isinstance(node, WindowAssign):
                lines.append(("WindowAssign", f"WindowAssign time_column={node.time_column} "
                              f"window_ms={node.window_ms} slide_ms={node.slide_ms} output={node.output}"))
            elif isinstance(node, L.Filter):
                names = agg_names if agg_names is not None and node.origin == "having" else below
                lines.append(("Filter", _filter_line(node.predicate, names)))
            elif isinstance(node, L.Aggregate):
                agg_names = self._aggregate_lines(node, pos, below, lines)
            elif isinstance(node, L.Project):
                self._project_lines(node, below, agg_names, lines)
                agg_names = None
            elif isinstance(node, L.Sort):
                cols = ", ".join(f"{k.name if isinstance(k, Column) else _fn_name(k)} {'DESC' if d else 'ASC'}"
                                 for k, d in zip(node.keys, node.descending))
                lines.append(("OrderBy", f"OrderBy columns=[{cols}]"))
            elif isinstance(node, L.Limit):
                lines.append(("Limit", f"Limit limit={node.limit}"))
            else:
                lines.append((type(node).__name__, type(node).__name__))
        return lines

    def _aggregate_lines(self, node: L.Aggregate, pos: int, below: list[str], lines) -> list[str]:
        """Lines for an Aggregate (group-expression WithColumns first); returns the output
        names of its columns as later nodes see them."""
        key_names = []
        g = 0
        for k in node.keys:
            if isinstance(k, Column):
                key_names.append(below[k.index])
            else:
                name = f"__group_expr_{g}"
                g += 1
                lines.append(("WithColumn", _function_line(name, k)))
                key_names.append(name)
        # aggregate output names: the SELECT alias that shows the aggregate as it is
        after = self.nodes[pos + 1] if pos + 1 < len(self.nodes) else None
        while isinstance(after, L.Filter):
            after = self.nodes[self.nodes.index(after) + 1] if self.nodes.index(after) + 1 < len(self.nodes) else None
        nk = len(node.keys)
        agg_out = [_agg_default_name(a) for a in node.aggregates]
        if isinstance(after, L.Project):
            for e, f in zip(after.exprs, after.schema):
                if isinstance(e, Column) and e.index >= nk:
                    agg_out[e.index - nk] = f.name
        aggs = ", ".join(f"{a.func.upper()}({'*' if a.arg is None else (a.arg.name if isinstance(a.arg, Column) else _fn_name(a.arg))}) AS {o}"
                         for a, o in zip(node.aggregates, agg_out))
        lines.append(("Aggregate", f"Aggregate keys=[{', '.join(key_names)}] aggs=[{aggs}] stateful=true"))
        return key_names + agg_out

    def _project_lines(self, node: L.Project, below: list[str], agg_names, lines) -> None:
        names = node.schema.names
        source_names = agg_names if agg_names is not None else below
        if agg_names is None and len(node.exprs) == len(below) and all(
                isinstance(e, Column) and e.index == i and n == below[i]
                for i, (e, n) in enumerate(zip(node.exprs, names))):
            return                                              # SELECT *: no Project node
        copies = []
        for e, n in zip(node.exprs, names):
            if isinstance(e, Column):
                if source_names[e.index] != n:
                    copies.append(("WithColumn", f"WithColumn output={n} from={source_names[e.index]}"))
            else:
                lines.append(("WithColumn", _function_line(n, e)))
        lines.extend(copies)
        natural = agg_names is not None and not copies and \
            [source_names[e.index] for e in node.exprs if isinstance(e, Column)] == source_names
        if not natural:
            lines.append(("Project", f"Project columns=[{', '.join(names)}]"))


def _b(v: bool) -> str:
    return "true" if v else "false"
