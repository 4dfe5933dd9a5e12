"""The physical plan: the operators a query runs, plus one record of every decision.

Planning produces a :class:`PhysicalPlan` once. It holds the (immutable) optimised plan tree,
the kernel set, and a :class:`StepDecision` per operator in execution order: which kernels
it calls and where each comes from (reference or accelerated), the implementation path
chosen within a kernel (for the aggregate: dense lookup in C, Arrow hash, packed keys, the
reference) and why, pushdowns actually applied to a source, state. Kernels that choose a
path while running report it back (``ran_path``, with the reason) when the run ends.

Explain (``explain_sql``, ``DataFrame.explain()``) and, for streams, stream explain and
``progress()`` render this record; none of them has a second model of what the executor
does. The operators themselves are instantiated fresh for every run
(:meth:`PhysicalPlan.instantiate`), so running a plan twice, or shipping it to a worker
process, never changes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..kernels import KernelSet
from . import logical as L
from .expr import Column
from .fold_args import foldable_arg
from .probe_keys import arriving_rows_target, probe_filter_target

__all__ = ["StepDecision", "RuntimeRecord", "PhysicalPlan", "build_physical", "filter_kernel", "linearize",
           "path_reason"]


def linearize(node: L.Node) -> list[L.Node]:
    """Plan nodes in execution order (children before parents, left before right)."""
    out: list[L.Node] = []
    for c in L.children(node):
        out.extend(linearize(c))
    out.append(node)
    return out


@dataclass
class StepDecision:
    """What was decided for one operator (``index`` is its 1-based execution-order position)."""

    index: int
    node: L.Node
    kind: str                                  # plan node kind: Scan, Filter, Aggregate, ...
    kernels: list[tuple[str, str]] = field(default_factory=list)   # (kernel, reference|accel)
    path: str = ""                             # planned implementation path within the kernel
    reason: str = ""                           # why ``path`` (after a run: why the path that ran)
    stateful: bool = False
    pushed_columns: list[str] | None = None    # scans: projection applied (None = all)
    pushed_filters: list = field(default_factory=list)   # scans: filters the source receives
    ran_path: str | None = None                # reported by the kernel after a run
    built_apart: bool = False                  # aggregates: the operator is built apart from its input


def takes_selection(parent: L.Node | None) -> bool:
    """True when a Filter right below ``parent`` hands it whole batches with the kept rows
    marked (``filter_select``) in a batch run: a GROUP BY aggregate skips the other rows in
    place. (Without keys the kept rows feed one sum, where compacting costs no more.)"""
    return isinstance(parent, L.Aggregate) and bool(parent.keys)


def folds_filter(parent: L.Node | None) -> bool:
    """True when a Filter right below ``parent`` passes its batches unfiltered in a batch run
    and ``parent`` folds the rows the predicate keeps (``filter_fold``): an aggregate without
    keys whose aggregates are all ``COUNT(*)`` or SUM / AVG (not DISTINCT) of a bare column or
    of a product of two float64 columns (``foldable_arg``), so the sums can be fed in the pass
    that tests the predicate; ``filter_fold`` evaluates such a product itself."""
    return (isinstance(parent, L.Aggregate) and not parent.keys and all(
        not a.distinct and ((a.func == "count" and a.arg is None) or (a.func in ("sum", "avg") and foldable_arg(a.arg)))
        for a in parent.aggregates))


def filter_kernel(parent: L.Node | None, child: L.Node | None, mode: str = "final") -> str:
    """The one decision how a Filter feeds the operator above it, taken both where the
    operators are built and for the plan record explain renders: the kernel the Filter
    ``child`` runs under the operator for ``parent``. ``child`` is the node that operator is
    built over (None when it is built apart from its input, as a runtime stage's partial
    aggregate is: then no Filter feeds it directly); ``mode`` is the aggregate operator's (a
    ``running`` aggregate emits per batch and neither folds nor takes a selection).
    ``filter_fold`` (:func:`folds_filter`), ``filter_select`` (:func:`takes_selection`) or
    ``filter_batch`` (the Filter compacts its batches itself)."""
    if mode != "final" or not isinstance(child, L.Filter):
        return "filter_batch"
    if folds_filter(parent):
        return "filter_fold"
    return "filter_select" if takes_selection(parent) else "filter_batch"


def _kernels_of(node: L.Node, parent: L.Node | None = None, apart: frozenset = frozenset()) -> list[str]:
    """Registry names of the kernels the operator for ``node`` calls, in first-use order.
    ``apart``: ids of the aggregate nodes whose operators are built apart from their input."""
    names: list[str] = []

    def evaluates(exprs):  # operators read bare columns without the evaluate kernel
        if any(e is not None and not isinstance(e, Column) for e in exprs):
            names.append("evaluate")
    if isinstance(node, L.Filter):
        names.append(filter_kernel(parent, None if id(parent) in apart else node))
    elif isinstance(node, L.Project):
        evaluates(node.exprs)
    elif isinstance(node, L.Aggregate):
        # filter_fold evaluates the arguments itself
        folded = filter_kernel(node, None if id(node) in apart else node.input) == "filter_fold"
        evaluates(list(node.keys) + ([] if folded else [a.arg for a in node.aggregates]))
        names.append("hash_aggregate")
    elif isinstance(node, L.Sort):
        evaluates(node.keys)
        names.append("sort_take")
    elif isinstance(node, L.Join):
        evaluates(list(node.left_keys) + list(node.right_keys))
        if node.how in ("semi", "anti", "mark"):
            if node.left_keys:               # keyless: only whether the right side has rows
                names.append("key_matches")
        elif node.left_keys or node.how != "single":
            names.append("hash_join")
        if probe_filter_target(node) is not None or arriving_rows_target(node) is not None:
            names.append("key_set")
        if node.residual is not None:
            evaluates([node.residual])
    elif isinstance(node, L.Distinct) or (isinstance(node, L.Union) and node.distinct):
        names.append("distinct_indices")
    elif isinstance(node, L.SetOp):
        names.append("setop_indices")
    elif isinstance(node, L.Window):
        evaluates([e for f in node.functions for e in f.children()])
        names.append("window_eval")
    elif isinstance(node, L.HybridSearch):
        names.append("vector_topk")
    elif isinstance(node, L.KeywordSearch):
        names.append("keyword_topk")
    return names


def _aggregate_path(node: L.Aggregate, kernels: KernelSet) -> str:
    plan_path = getattr(kernels.hash_aggregate, "plan_path", None)
    if plan_path is None:            # a kernel replaced by hand (tests) predicts nothing
        return "unplanned"
    return plan_path(node.aggregates, [k.type for k in node.keys])


_PATH_REASONS = {
    "reference": "the reference aggregator (Python dict of groups) runs",
    "global": "aggregate has no group keys; use the scalar accumulator path",
    "dense-c": "single integer key: dense lookup table in C while the key range stays within 2**20 slots "
               "(else Arrow hashing)",
    "dense-numpy": "single integer key: dense lookup table (numpy) while the key range stays within 2**20 slots "
                   "(else Arrow hashing)",
    "arrow-hash": "single key hashed by Arrow dictionary encoding of normalised values",
    "packed-hash": "several group keys: per-column codes packed pairwise into one int64 per row, groups "
                   "numbered by persistent hash tables",
    "key-bitmap": "several small-range integer keys and no aggregate call (the first step of COUNT(DISTINCT x) "
                  "per group): the key combinations packed into one slot each, first occurrences found "
                  "in a bitmap in C",
    "byte-pair": "two string keys of one-byte values (flags, status letters): the pair of values indexes a "
                 "258 x 258 table of group ids in C, no hashing",
    "python-dict": "group keys packed into one code per row (per-column dictionary codes), groups in a dict "
                   "(a key of NULL type)",
    # Filter / Project: how the accelerated evaluate / filter_batch computed the expressions
    "numexpr": "numeric expression or compound predicate fused into one multi-threaded numexpr pass",
    "numpy-fused": "float arithmetic fused over cache-sized blocks with numpy (numexpr not used)",
    "select-cmp": "column-vs-constant filter: compare and compact in one C pass",
    "and-cmp": "AND of column-vs-constant terms: one C pass writes the mask of kept rows",
    "sum-where": "the aggregate's float sums fed in the pass that tests the predicate: no filtered column built",
    "selection": "most rows kept: the batch passed whole to the aggregate with the kept rows marked, "
                 "nothing compacted",
    # Join: how the accelerated hash_join reduced the keys, then how it paired the rows
    "int-key": "one integer or date key pair used as int64 as it is",
    "packed-int-keys": "integer / date key columns packed into one int64 per row (mixed radix over their ranges)",
    "factorised-keys": "key columns factorised over both sides together into one int64 code per row",
    "join-key-prefilter": "rows whose join key the join's left input lacks dropped before the right input's "
                          "predicate, or as they reach the join when that input has none",
    "c-key-set": "the join's left keys held in the C join table, looked up per row",
    "c-hash": "C hash join: the smaller side numbered in a dense lookup table or a hash table, the other "
              "side probing it, pairs written in the reference order without a sort",
    "numpy-sort": "no C module: right rows sorted by key code, matches expanded with numpy",
    "unique-build": "the built side's keys are distinct: one threaded pass writes each probe row with its "
                    "one match, no match counts or buckets",
}


def _expression_path_reason(path: str) -> str:
    """Why a Filter / Project ran on ``path`` (``a+b``: several paths, one per subtree)."""
    parts = path.split("+")
    reasons = [_PATH_REASONS.get(p, "a subtree ran on the reference evaluator" if p == "reference" else p)
               for p in parts]
    return "; ".join(reasons)


def path_reason(path: str) -> str:
    """Why an aggregate runs on ``path`` (the explain ``reason=`` line)."""
    return _PATH_REASONS.get(path, path)


def _decide(index: int, node: L.Node, kernels: KernelSet, parent: L.Node | None = None,
            apart: frozenset = frozenset()) -> StepDecision:
    d = StepDecision(index=index, node=node, kind=type(node).__name__,
                     kernels=[(k, kernels.origin(k)) for k in _kernels_of(node, parent, apart)],
                     stateful=isinstance(node, L.Aggregate))
    if isinstance(node, L.Scan):
        d.pushed_columns = list(node.columns) if node.columns is not None else None
        if node.filters and node.source.supports_filter_pushdown():
            d.pushed_filters = list(node.filters)
            d.reason = "source skips rows failing the pushed filters; WHERE is still evaluated"
        elif node.filters:
            d.reason = f"source kind {node.source.kind} does not take filters; WHERE evaluates them"
        d.path = "scan"
    elif isinstance(node, L.Aggregate):
        d.path = _aggregate_path(node, kernels)
        d.reason = path_reason(d.path)
    elif d.kernels:
        d.path = "+".join(f"{k}={o}" for k, o in d.kernels)
    return d


@dataclass
class RuntimeRecord:
    """Where the plan runs and how it is cut into stages (decided before the run), then
    what really ran (filled in by the run: ``ran`` is True, counts are the real ones).

    ``fallbacks`` lists every part of the plan that did not run partitioned, with its reason;
    a plan is never run as one task without an entry here.
    """

    runtime_mode: str = "embedded"           # embedded | single-node | distributed
    placement: str = "in_process"            # in_process | local_workers | remote_required
    backend: str = "in-process"              # in-process | process-pool | dask
    parallelism: int = 1                     # workers (slots) available to the query
    stage_count: int = 1
    task_count: int = 1
    partitions: int = 1                      # partitions of the scan
    partitioning: str = "none"               # how the scan was split (files, row groups, chunks)
    exchange: str = "none"                   # the cut: partial-aggregate+merge, top-n+merge, ...
    shuffle: str = "none"                    # how partial results move: gather-merge to the client
    shuffle_bytes: int = 0                   # bytes of partial results moved (Arrow buffers)
    final_stage: str = "none"                # where the rest of the plan above the cut runs
    fallbacks: list[str] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)   # workers that ran tasks (after a run)
    ran: bool = False

    def lines(self) -> list[str]:
        """The record as ``key=value`` lines (explain's runtime section)."""
        lines = [f"runtime_mode={self.runtime_mode}", f"placement={self.placement}",
                 f"backend={self.backend}", f"parallelism={self.parallelism}",
                 f"stage_count={self.stage_count}", f"task_count={self.task_count}",
                 f"partitions={self.partitions} ({self.partitioning})", f"exchange={self.exchange}",
                 f"shuffle={self.shuffle}", f"shuffle_bytes={self.shuffle_bytes}",
                 f"final_stage={self.final_stage}",
                 "fallbacks=" + ("; ".join(self.fallbacks) if self.fallbacks else "none")]
        if self.ran:
            lines.append("workers=" + (",".join(self.workers) if self.workers else "none"))
        lines.append("status=" + ("ran" if self.ran else "planned"))
        return lines

    def as_dict(self) -> dict:
        from dataclasses import asdict
        return asdict(self)


@dataclass
class PhysicalPlan:
    """An optimised plan tree, the kernels that run it and the record of every decision."""

    root: L.Node
    kernels: KernelSet
    steps: list[StepDecision]
    bounded: bool = True
    stateful: bool = False
    #: runtime mode, placement, stages, tasks, partitions, shuffle and fallbacks (None: not
    #: yet decided by a runtime; explain then shows no runtime section)
    runtime: RuntimeRecord | None = None

    def kernels_used(self) -> list[tuple[str, str]]:
        """(kernel, origin) in first-use order over all operators."""
        seen: list[tuple[str, str]] = []
        for step in self.steps:
            for pair in step.kernels:
                if pair not in seen:
                    seen.append(pair)
        return seen

    def step_for(self, node: L.Node) -> StepDecision:
        for step in self.steps:
            if step.node is node:
                return step
        raise KeyError(node)

    def instantiate(self, aggregate_mode: str = "final"):
        """A fresh operator tree for one run (the plan itself never changes)."""
        from ..exec.operators import OPERATORS, AggregateOperator

        def build(node: L.Node):
            children = [build(c) for c in L.children(node)]
            cls = OPERATORS[type(node)]
            if cls is AggregateOperator:
                return cls(node, children, mode=aggregate_mode)
            if not children:
                return cls(node)
            return cls(node, children)
        return build(self.root)

    def build_apart(self, aggregate: L.Node) -> None:
        """Record that a runtime builds the operator of ``aggregate`` apart from its input
        (partial aggregates over rows other tasks computed): the decisions of that aggregate
        and of the node below it are taken again, as those operators will run."""
        self.step_for(aggregate).built_apart = True
        apart = frozenset(id(s.node) for s in self.steps if s.built_apart)
        below = set(map(id, L.children(aggregate)))
        for old, new in zip(self.steps, _decide_all(self.root, self.kernels, apart)):
            if old.node is aggregate or id(old.node) in below:
                old.kernels, old.path, old.reason = new.kernels, new.path, new.reason

    def record_run(self, operators) -> None:
        """Take the paths kernels report after running (``ran_path``) and the reason for them."""
        for op in operators:
            path = getattr(op, "path", None)
            if path is None:
                continue
            try:
                step = self.step_for(op.node)
            except KeyError:
                continue
            step.ran_path = path
            if step.kind in ("Filter", "Project", "Join"):
                step.reason = _expression_path_reason(path)
                continue
            step.reason = path_reason(path)
            if path != step.path:
                step.reason += f" (planned {step.path}; switched while running)"


def _decide_all(root: L.Node, kernels: KernelSet, apart: frozenset = frozenset()) -> list[StepDecision]:
    nodes = linearize(root)
    parents = {id(c): n for n in nodes for c in L.children(n)}
    return [_decide(i, n, kernels, parents.get(id(n)), apart) for i, n in enumerate(nodes, 1)]


def build_physical(root: L.Node, kernels: KernelSet, bounded: bool = True) -> PhysicalPlan:
    """Decide, once, how the optimised plan ``root`` runs with ``kernels``."""
    steps = _decide_all(root, kernels)
    return PhysicalPlan(root=root, kernels=kernels, steps=steps, bounded=bounded,
                        stateful=any(s.stateful for s in steps))
