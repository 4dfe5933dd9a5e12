"""cffi build script for the C accelerator (out-of-line API mode).

Used by ``setup.py`` (``cffi_modules=["accel/build_accel.py:ffibuilder"]``) at install time,
and runnable directly for an in-tree build: ``python accel/build_accel.py``.

Each ISA lives in its own C file; the file sets its own target (``#pragma GCC target`` /
``clang attribute``), so the common code and the scalar kernels are compiled for the baseline
CPU and run anywhere, and the AVX2 / AVX-512 code runs only where the loader's runtime
dispatch (CPUID + XCR0) allows it.
"""
from __future__ import annotations

import os
import re
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "src")
SOURCES = ["topk.c", "cpu.c", "topk_scalar.c", "topk_avx2.c", "topk_avx512.c", "topk_neon.c",
           "bandwidth.c", "batch_ops.c", "group_hash.c", "group_int_sum.c", "sum_lanes.c", "group_stats.c",
           "csv_typing.c",
           "select_terms.c", "group_multi_sum.c", "hash_join.c", "byte_keys.c",
           "key_bitmap.c", "dense_group_sum.c",
           "compact_rows.c", "sum_where.c", "parallel_jobs.c",
           "radix_sort.c", "pair_ids.c", "key_select.c", "string_take.c"]

CDEF = """
int velaria_cpu_level(void);
int velaria_compiled_levels(void);
int velaria_topk_f32(int level, const float *data, int64_t n_rows, int64_t dim,
                     const uint8_t *valid, const double *inv_norms,
                     const float *queries, int64_t n_queries, int64_t k, int metric,
                     int threads, int64_t *out_ids, double *out_scores, int64_t *out_counts);
void velaria_inv_norms_f32(const float *data, int64_t n_rows, int64_t dim, double *out);
double velaria_read_bandwidth(const void *ptr, int64_t n_bytes, int threads);
int64_t velaria_dense_group_ids(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo,
                                int64_t *lut, int64_t null_slot, int64_t next_gid,
                                int64_t *out_gids, int64_t *new_rows);
void velaria_group_sum_f64(const int64_t *gids, const double *x, const uint8_t *valid, int64_t n,
                           double *totals, int64_t *counts);
void velaria_group_count(const int64_t *gids, const uint8_t *valid, int64_t n, int64_t *counts);
int64_t velaria_sort_rows(int ncols, const int *kinds, const void *const *data,
                          const uint8_t *const *valid, const int *descending, const int *nulls_first,
                          int64_t n, int64_t limit, int threads, int64_t *out);
int64_t velaria_sort_rows_take(int ncols, const int *kinds, const void *const *data,
                               const uint8_t *const *valid, const int *descending, const int *nulls_first,
                               int64_t n, int64_t limit, int threads, int64_t *out,
                               int npay, const void *const *pay, const int *pay_width, void *const *pay_out);
int64_t velaria_sort_bar_skips(void);
int64_t velaria_select_cmp_f64(const double *x, const uint8_t *valid, int64_t n, int op, double c,
                               int64_t *out_idx, double *out_vals);
int64_t velaria_select_cmp_i64(const int64_t *x, const uint8_t *valid, int64_t n, int op, int64_t c,
                               int64_t *out_idx, int64_t *out_vals);
void velaria_gather_u64(const uint64_t *src, const int64_t *idx, int64_t k, uint64_t *out);
int64_t velaria_hash_group_ids(const int64_t *keys, int64_t n, int64_t *slot_keys, int64_t *slot_gids,
                               int bits, int64_t next_gid, int64_t *out_gids, int64_t *new_rows);
void velaria_group_sum_i64(const int64_t *gids, const int64_t *x, const uint8_t *valid, int64_t n,
                           int64_t *lo, int64_t *hi, int64_t *counts);
int64_t velaria_sum_lanes_f64(int level, const double *x, const uint8_t *valid, int64_t n,
                              double *lanes, int64_t pos);
double velaria_combine_lanes_f64(const double *lanes);
int64_t velaria_compact_u64(const uint64_t *src, const uint8_t *mask, int64_t n, uint64_t *out);
int64_t velaria_compact_cols_u64(int level, int threads, int64_t n, const uint8_t *mask, int ncols,
                                 const uint64_t *const *srcs, uint64_t *const *outs, int64_t room);
void velaria_group_welford_f64(const int64_t *gids, const double *x, const uint8_t *valid, int64_t n,
                               int64_t *counts, double *mean, double *m2);
int velaria_csv_column_kinds(const uint8_t *buf, int64_t len, int64_t ncols, int delim,
                             const uint8_t *nulls, const int64_t *null_lens, int64_t n_nulls,
                             int dates, int simd, int threads, uint8_t *kinds,
                             int64_t *rows_out, const uint8_t *keep, uint8_t *out,
                             int64_t *out_len);
typedef struct {
    uint8_t *values; int64_t values_len; int32_t *offsets; uint8_t *valid; int64_t nulls;
} velaria_csv_column;
int velaria_csv_convert(const uint8_t *buf, int64_t len, int64_t ncols, int delim,
                        const uint8_t *nulls, const int64_t *null_lens, int64_t n_nulls,
                        int simd, int threads, const uint8_t *types, int *parts_out,
                        int64_t *part_rows, velaria_csv_column *columns);
void velaria_csv_free(void *ptr);
int velaria_csv_type_convert(const uint8_t *buf, int64_t len, int64_t ncols, int delim,
                             const uint8_t *nulls, const int64_t *null_lens, int64_t n_nulls,
                             int dates, int simd, int threads, uint8_t *kinds,
                             int64_t *rows_out, const uint8_t *hint, int *parts_out,
                             int64_t *part_rows, velaria_csv_column *columns,
                             uint8_t *spec_kinds);
int64_t velaria_csv_indexed_batches(void);
int64_t velaria_and_cmp(int level, int threads, int64_t n, int n_terms, const int *kinds,
                        const void *const *cols, const uint8_t *const *valids, const int *ops,
                        const double *fconsts, const int64_t *iconsts, uint8_t *out_mask,
                        int64_t *out_idx, int *out_idx_complete);
void velaria_group_sum_multi_i64(const int64_t *gids, int64_t n, int k, const int64_t *const *xs,
                                 const uint8_t *const *valids, int64_t *const *lo, int64_t *const *hi,
                                 int64_t *const *counts);
void velaria_group_sum_multi_f64(const int64_t *gids, int64_t n, int k, const double *const *xs,
                                 const uint8_t *const *valids, double *const *totals,
                                 int64_t *const *counts);
int64_t velaria_bitmap_first_rows(int ncols, const int64_t *const *cols, const uint8_t *const *valids,
                                  const int64_t *lows, const int64_t *radixes, int64_t n,
                                  uint8_t *bitmap, int64_t *new_rows);
int64_t velaria_dense_group_sum_f64(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo,
                                    int64_t *lut, int64_t null_slot, int64_t next_gid, int64_t *new_rows,
                                    int k, const double *const *xs, double *const *totals, int64_t *count);
int64_t velaria_and_compact_u64(int level, int threads, int64_t n, int n_terms, const int *kinds,
                                const void *const *cols, const uint8_t *const *valids, const int *ops,
                                const double *fconsts, const int64_t *iconsts, int ncols,
                                const uint64_t *const *srcs, uint64_t *const *outs);
int64_t velaria_sum_lanes_where_f64(int level, int threads, int64_t n, int n_terms, const int *kinds,
                                    const void *const *cols, const uint8_t *const *valids,
                                    const int *ops, const double *fconsts, const int64_t *iconsts,
                                    const double *x, const uint8_t *valid, const double *y,
                                    const uint8_t *y_valid, double *lanes, int64_t pos, int64_t *rows_kept);
int velaria_pack_short_str(const int32_t *offsets, const uint8_t *data, int64_t data_len,
                           const uint8_t *valid, int64_t n, int64_t *out);
int64_t velaria_join_build(const int64_t *keys, const uint8_t *valid, int64_t n,
                           int64_t *slots, int bits, int64_t *out_gids);
void velaria_join_bitmap(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, uint64_t *bitmap);
int64_t velaria_join_bitmap_contains(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, int64_t span,
                                     const uint64_t *bitmap, uint8_t *out, int threads);
int64_t velaria_join_lookup(const int64_t *keys, const uint8_t *valid, int64_t n, const int64_t *slots, int bits,
                            const uint64_t *bitmap, int64_t lo, int64_t span, int64_t *out_gids, int64_t *counts,
                            int64_t n_groups, int threads);
int64_t velaria_join_build_dense(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo,
                                 int32_t *lut, int64_t *out_gids);
int64_t velaria_join_lookup_dense(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, int64_t span,
                                  const int32_t *lut, int64_t *out_gids, int64_t *counts, int64_t n_groups,
                                  int threads);
void velaria_join_bucket(const int64_t *gids, int64_t n, int64_t n_groups, int64_t *starts, int64_t *order);
void velaria_join_gather(const int64_t *gids, const int64_t *emit, int64_t n, const int64_t *starts,
                         const int64_t *order, int64_t *out_left, int64_t *out_right, int threads);
int64_t velaria_byte_pair_ids(int64_t n,
                              const int32_t *off0, const uint8_t *data0, const uint8_t *bits0, int64_t bit_off0,
                              const int32_t *off1, const uint8_t *data1, const uint8_t *bits1, int64_t bit_off1,
                              const uint8_t *sel, int32_t *lut, int64_t next_gid,
                              int64_t *out_gids, int64_t *new_rows, int64_t *n_new, int threads);
int velaria_join_scatter(const int64_t *gids, int64_t n, int64_t n_groups, const int64_t *starts,
                         const int64_t *order, const int64_t *cursor, int64_t *out, int threads);
int64_t velaria_bitmap_select_rows(int level, int threads, const int64_t *keys, const uint8_t *valid, int64_t n,
                                   int64_t lo, int64_t span, const uint64_t *bitmap, int64_t *out);
int velaria_join_build_unique_dense(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, int32_t *lut);
int velaria_join_build_unique(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t *slots, int bits);
int64_t velaria_join_probe_unique(const int64_t *keys, const uint8_t *valid, int64_t n, const int64_t *slots,
                                  int bits, const int32_t *lut, const uint64_t *bitmap, int64_t lo, int64_t span,
                                  const int64_t *rows, int outer, int64_t *out_left, int64_t *out_right,
                                  uint8_t *hit, int threads);
int64_t velaria_take_str_bytes(const void *offsets, int wide, int64_t n_values, const int64_t *idx, int64_t n,
                               int64_t *range_bytes, int threads);
void velaria_take_str_copy(const void *offsets, int wide, int64_t n_values, const uint8_t *data, int64_t data_len,
                           const int64_t *idx, int64_t n, void *out_offsets, uint8_t *out_data,
                           const int64_t *range_bytes, int threads);
int64_t velaria_pair_ids(int64_t n, const void *ia, int a32, const int64_t *map_a, int64_t map_a_len,
                         const void *ib, int b32, const int64_t *map_b, int64_t map_b_len,
                         int64_t rows, int64_t stride, int64_t *lut, int64_t next_gid,
                         int64_t *out_gids, int64_t *new_rows, int64_t *bounds);
"""


def _rel(path: str) -> str:
    # setuptools wants source paths relative to setup.py's directory
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


if sys.platform == "win32":
    _ARGS: list[str] = ["/O2"]
else:
    # -ffp-contract=off keeps the scalar sums bit-identical to the reference (no implicit FMA)
    _ARGS = ["-O3", "-std=c11", "-ffp-contract=off", "-fno-strict-aliasing"]

def _prototypes(cdef: str) -> str:
    """``cdef`` without its ``typedef`` declarations: the function prototypes only."""
    return re.sub(r"typedef\b[^;{]*(\{[^}]*\})?[^;]*;", "", cdef)


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "velaria.accel._velaria_accel",
    # CDEF's prototypes go into the wrapper too: it calls every declared function, and one
    # without a prototype in scope is an error on current compilers (an int-returning guess on
    # older ones, which garbles double and int64_t results); its type definitions come from
    # the header (a second copy of an unnamed struct's typedef would be a conflicting type)
    '#include "velaria_accel.h"\n' + _prototypes(CDEF),
    sources=[_rel(os.path.join(SRC, name)) for name in SOURCES],
    include_dirs=[_rel(SRC)],
    extra_compile_args=_ARGS,
    libraries=[] if sys.platform == "win32" else ["m", "pthread"],
)

if __name__ == "__main__":  # in-tree build: python accel/build_accel.py
    ffibuilder.compile(tmpdir=os.path.join(HERE, "..", "build", "cffi"), verbose=True)
