"""Pinned semantics of the reference sort kernels."""
import math

import pytest
from hypothesis import given, strategies as st

from velaria.errors import VelariaValueError
from velaria.reference.sort import sort_indices, sort_key, top_n_indices

NAN, INF = float("nan"), float("inf")


def test_nulls_placement_and_direction():
    col = [3, None, 1, 2, None]
    assert sort_indices([col], [False], [False]) == [2, 3, 0, 1, 4]   # ASC, NULLs last
    assert sort_indices([col], [True], [True]) == [1, 4, 0, 3, 2]     # DESC, NULLs first
    assert sort_indices([col], [False], [True]) == [1, 4, 2, 3, 0]
    assert sort_indices([col], [True], [False]) == [0, 3, 2, 1, 4]


def test_stability_and_multi_key():
    a = [1, 0, 1, 0, 1]
    b = ["x", "y", "x", "x", "a"]
    assert sort_indices([a], [False], [False]) == [1, 3, 0, 2, 4]
    assert sort_indices([a], [True], [False]) == [0, 2, 4, 1, 3]          # DESC keeps input order on ties
    assert sort_indices([a, b], [False, True], [False, False]) == [1, 3, 0, 2, 4]


def test_nan_and_negative_zero():
    col = [NAN, INF, -0.0, 0.0, -INF, None, NAN]
    assert sort_indices([col], [False], [False]) == [4, 2, 3, 1, 0, 6, 5]
    assert sort_indices([col], [True], [True]) == [5, 0, 6, 1, 2, 3, 4]


def test_strings_bools_vectors():
    assert sort_indices([["b", "B", "a", "é"]], [False], [False]) == [1, 2, 0, 3]
    assert sort_indices([[True, False, None]], [False], [False]) == [1, 0, 2]
    assert sort_indices([[[1.0, 0.0], [5.0], [0.0, 9.0]]], [False], [False]) == [1, 2, 0]


def test_empty_and_errors():
    assert sort_indices([[]], [False], [False]) == []
    assert top_n_indices([[]], [False], [False], 3) == []
    with pytest.raises(VelariaValueError):
        sort_indices([], [], [])
    with pytest.raises(VelariaValueError):
        sort_indices([[1]], [False, True], [False])
    with pytest.raises(VelariaValueError):
        top_n_indices([[1]], [False], [False], -1)


def test_top_n_ties_by_position():
    col = [2, 1, 2, 1, 2]
    assert top_n_indices([col], [True], [True], 2) == [0, 2]
    assert top_n_indices([col], [False], [False], 3) == [1, 3, 0]
    assert top_n_indices([col], [False], [False], 0) == []
    assert top_n_indices([col], [False], [False], 99) == sort_indices([col], [False], [False])


values = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([NAN, -0.0, 0.0, INF, -INF, 0.5]))


def oracle(columns, descending, nulls_first):
    """Stable sort, applied from the last key to the first (each pass stable)."""
    order = list(range(len(columns[0])))
    for col, desc, nf in reversed(list(zip(columns, descending, nulls_first))):
        nulls = [i for i in order if col[i] is None]
        rest = [i for i in order if col[i] is not None]
        rest.sort(key=lambda i: sort_key(col[i]), reverse=desc)
        order = nulls + rest if nf else rest + nulls
    return order


@given(st.data())
def test_property_sort_matches_oracle_and_top_n(data):
    n = data.draw(st.integers(0, 30))
    k = data.draw(st.integers(1, 3))
    cols = [data.draw(st.lists(values, min_size=n, max_size=n)) for _ in range(k)]
    desc = data.draw(st.lists(st.booleans(), min_size=k, max_size=k))
    nf = data.draw(st.lists(st.booleans(), min_size=k, max_size=k))
    full = sort_indices(cols, desc, nf)
    assert full == oracle(cols, desc, nf)
    assert sorted(full) == list(range(n))
    limit = data.draw(st.integers(0, n + 2))
    assert top_n_indices(cols, desc, nf, limit) == full[:limit]


def test_sort_key_nan_is_greatest():
    assert sort_key(NAN) > sort_key(INF) and sort_key(NAN) == sort_key(-NAN)
    assert sort_key(-0.0) == sort_key(0.0) and not math.isnan(sort_key(1.0)[1])
