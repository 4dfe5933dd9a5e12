"""Result checks shared by the SQL benchmarks: a fast wrong engine must not win."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["check_result"]


def check_result(workload: str, table: pa.Table, result) -> None:
    """Compare an engine's result for ``workload`` over ``table`` (columns k, v) with numpy."""
    result = result if isinstance(result, pa.Table) else pa.table(result)
    v = table.column("v").to_numpy()
    if workload == "filter_sum":
        got = result.column(0).to_pylist()[0]
        assert abs(got - v[v > 0.5].sum()) <= 1e-6 * max(1.0, abs(got))
    elif workload == "groupby":
        assert result.num_rows == len(np.unique(table.column("k").to_numpy()))
        assert sum(result.column(2).to_pylist()) == table.num_rows
    elif workload == "sort":
        out = result.column(1).to_numpy()
        assert len(out) == len(v) and bool(np.all(out[:-1] <= out[1:]))
    elif workload == "projection":
        want = v * 2 + table.column("k").to_numpy()
        assert np.allclose(result.column(0).to_numpy(), want)
    elif workload == "multi_where":
        k = table.column("k").to_numpy()
        keep = (v > 0.25) & (v < 0.75) & (k < 500)
        assert result.num_rows == int(keep.sum())
        assert np.array_equal(result.column("k").to_numpy(), k[keep])
        assert np.array_equal(result.column("v").to_numpy(), v[keep])
    else:
        raise ValueError(f"unknown workload {workload!r}")
