"""The pure-Python reference kernels: the executable specification of every batch operator.

Each module holds one kernel family, pins its API with ``__all__`` and states its semantics
(NULLs, types, ordering, errors) in its docstring. ``velaria.accel`` may replace a kernel with a
C twin of the same signature; ``velaria.kernels`` says which one runs.

* ``functions``   -- scalar builtins and operators (``SCALAR_FUNCTIONS``, ``OPERATORS``,
  ``binary_result_type``, ``cast_value``, ``to_string``)
* ``expressions`` -- ``evaluate``: the column-at-a-time expression evaluator
* ``predicates``  -- three-valued logic and ``selection`` (keep rows where the predicate is TRUE)
* ``aggregate``   -- ``HashAggregator`` and ``aggregate_result_type`` (GROUP BY)
* ``sort``        -- ``sort_indices`` and ``top_n_indices`` (ORDER BY, ORDER BY ... LIMIT)
* ``join``        -- ``hash_join_indices`` (inner and left equi-joins)
* ``distinct``    -- ``distinct_indices`` (SELECT DISTINCT, UNION) and ``hash_key``
* ``topk``        -- vector top-k search
* ``keyword``     -- keyword (BM25) search: tokenizers and ``keyword_topk``
"""
