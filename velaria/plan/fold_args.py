"""Which aggregate arguments a global aggregate folds in the pass that tests its WHERE clause
(``filter_fold``): a bare column, or the product of two float64 columns (TPC-H Q6's
``SUM(l_extendedprice * l_discount)``), whose values the accelerated pass computes for the kept
rows only, with the same multiplication the evaluator does."""
from __future__ import annotations

import pyarrow.types as pat

from .expr import Call, Column, Expr

__all__ = ["foldable_arg", "product_factors"]


def product_factors(arg: Expr | None) -> tuple[Column, Column] | None:
    """The two columns of ``a * b`` when both and the product are float64, else None."""
    if not (isinstance(arg, Call) and arg.name == "*" and len(arg.args) == 2 and pat.is_float64(arg.type)):
        return None
    a, b = arg.args
    if isinstance(a, Column) and isinstance(b, Column) and pat.is_float64(a.type) and pat.is_float64(b.type):
        return a, b
    return None


def foldable_arg(arg: Expr | None) -> bool:
    """True for an argument ``filter_fold`` takes: a bare column or ``product_factors``' shape."""
    return isinstance(arg, Column) or product_factors(arg) is not None
