"""Pinned semantics of the reference hash equi-join."""
import pytest
from hypothesis import given, strategies as st

from velaria.errors import VelariaValueError
from velaria.reference.join import hash_join_indices

NAN = float("nan")


def test_inner_order_and_duplicates():
    left = [[1, 2, 1, 3]]
    right = [[1, 1, 2, 4]]
    assert hash_join_indices(left, right, "inner") == ([0, 0, 1, 2, 2], [0, 1, 2, 0, 1])


def test_left_pads_with_none_and_null_keys_never_match():
    left = [[1, None, 5]]
    right = [[None, 1]]
    assert hash_join_indices(left, right, "left") == ([0, 1, 2], [1, None, None])
    assert hash_join_indices(left, right, "inner") == ([0], [1])


def test_numeric_normalisation_and_type_separation():
    assert hash_join_indices([[1, 0.0, NAN]], [[1.0, -0.0, NAN]], "inner") == ([0, 1, 2], [0, 1, 2])
    assert hash_join_indices([["1", True]], [[1, 1]], "inner") == ([], [])


def test_multi_key():
    left = [[1, 1, 2], ["a", "b", None]]
    right = [[1, 2, 1], ["b", None, "a"]]
    assert hash_join_indices(left, right, "left") == ([0, 1, 2], [2, 0, None])


def test_empty_and_errors():
    assert hash_join_indices([[]], [[1]], "left") == ([], [])
    assert hash_join_indices([[1, 2]], [[]], "left") == ([0, 1], [None, None])
    with pytest.raises(VelariaValueError, match="join kind"):
        hash_join_indices([[1]], [[1]], "cross")


def test_right_and_full_append_unmatched_right_rows_in_order():
    left, right = [[1, None, 2, 5]], [[2, 3, None, 1, 3]]
    assert hash_join_indices(left, right, "right") == ([0, 2, None, None, None], [3, 0, 1, 2, 4])
    assert hash_join_indices(left, right, "full") == ([0, 1, 2, 3, None, None, None], [3, None, 0, None, 1, 2, 4])
    with pytest.raises(VelariaValueError):
        hash_join_indices([[1]], [], "inner")


keys = st.lists(st.one_of(st.none(), st.integers(0, 3), st.sampled_from([0.0, -0.0, 1.0, NAN])),
                max_size=15)


def same(a, b):
    if a is None or b is None:
        return False
    if a != a and b != b:
        return True
    return a == b


@given(keys, keys, st.sampled_from(["inner", "left"]))
def test_property_against_nested_loop(left, right, how):
    expected_l, expected_r = [], []
    for i, a in enumerate(left):
        matched = False
        for j, b in enumerate(right):
            if same(a, b):
                expected_l.append(i)
                expected_r.append(j)
                matched = True
        if not matched and how == "left":
            expected_l.append(i)
            expected_r.append(None)
    assert hash_join_indices([left], [right], how) == (expected_l, expected_r)
