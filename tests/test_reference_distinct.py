"""Pinned semantics of the reference DISTINCT kernel."""
from hypothesis import given, strategies as st

from velaria.reference.distinct import distinct_indices, hash_key

NAN = float("nan")


def test_first_occurrence_in_input_order():
    assert distinct_indices([[3, 1, 3, None, 1, None]]) == [0, 1, 3]
    assert distinct_indices([[1, 1, 1], ["a", "b", "a"]]) == [0, 1]


def test_nulls_nan_negative_zero():
    assert distinct_indices([[0.0, -0.0, NAN, float("nan"), None, None]]) == [0, 2, 4]
    assert distinct_indices([[[1.0, 2.0], [1.0, 2.0], [2.0, 1.0]]]) == [0, 2]


def test_bool_never_equals_number_and_string_never_equals_number():
    assert hash_key(True) != hash_key(1)
    assert distinct_indices([["1", 1]]) == [0, 1]


def test_empty():
    assert distinct_indices([[]]) == []
    assert distinct_indices([]) == []


def canon(v):
    if v is None:
        return ("null",)
    if isinstance(v, float) and v != v:
        return ("nan",)
    return ("v", v + 0.0)


values = st.one_of(st.none(), st.integers(-2, 2), st.sampled_from([NAN, -0.0, 0.0, 1.0]))


@given(st.data())
def test_property_against_oracle(data):
    n = data.draw(st.integers(0, 25))
    cols = [data.draw(st.lists(values, min_size=n, max_size=n)) for _ in range(data.draw(st.integers(1, 2)))]
    expected, seen = [], []
    for i in range(n):
        row = [canon(c[i]) for c in cols]
        if row not in seen:
            seen.append(row)
            expected.append(i)
    assert distinct_indices(cols) == expected
