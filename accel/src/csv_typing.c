/* CSV column typing in one pass over the raw bytes, without building text columns.
 *
 *   velaria_csv_column_kinds(buf, len, ncols, delim, nulls, null_lens, n_nulls, dates, simd,
 *                            threads, kinds, rows_out, keep, out, out_len)
 *
 * `buf` holds whole data lines of a CSV file (no header; it ends at a line end or at the end
 * of the file) in which the caller has not seen a quote character. Each cell is classified
 * by the CSV typing rules of velaria/io/typing_rules.py (the Python reference twin is
 * reference/csv_typing.py) and folded into kinds[col], which holds the kind seen so far and
 * is updated in place (so a caller can feed a file chunk by chunk). A column already
 * `string` is not looked at again: its cells are only skipped over.
 *
 * Kinds: 0 null, 1 bool, 2 int, 3 float, 4 date, 5 timestamp, 6 string.
 *
 * Lines end at \n, \r\n or a lone \r (as pyarrow's reader); empty lines are skipped. A cell
 * equal to one of the null markers is NULL. Returns 0, or a reason the caller must type the
 * bytes another way (the scanner never guesses):
 *   1 a quote character (quoting needs the full RFC 4180 parser),
 *   2 a line whose field count is not ncols (an error or a skipped row: the caller decides),
 *   3 invalid UTF-8 (an error the caller reports with its position),
 *   4 a cell that may be a vector ("[..."), which only the reference rules type.
 * On a non-zero return kinds and rows_out are unspecified.
 *
 * `threads` > 1 splits the buffer at line ends into that many parts scanned concurrently,
 * each with its own kinds, merged at the end (merging is associative and commutative).
 *
 * Projection: with `keep` (one flag per column) the same walk also copies the kept columns'
 * cells to `out` as a smaller CSV that pyarrow then parses instead of the file: each row is
 * its kept cells, each followed by the delimiter, then \n. The trailing delimiter makes an
 * extra, empty last field, so no row is ever an empty line (which a CSV reader skips) even
 * when its one kept cell is empty. A row takes at most two more bytes than its input line,
 * so `out` needs 2 * len + 16 * threads bytes (part t writes from 2 * its offset + 16 * t,
 * never reaching part t + 1's start); `out_len` receives the bytes written.
 *
 * The same walk also converts cells straight into Arrow buffers (csv_values.h parses them):
 *   velaria_csv_convert       the columns a scan reads, into their final types (a cell the
 *                             typing rules do not accept for its type: status 5);
 *   velaria_csv_type_convert  velaria_csv_column_kinds converting chosen columns while it
 *                             types them, by the kind of their cells so far (see the note on
 *                             speculative conversion below).
 * Both are documented at their definitions at the end of this file.
 */
/* madvise is POSIX / BSD, hidden by -std=c11 without these */
#define _POSIX_C_SOURCE 200112L
#define _DEFAULT_SOURCE 1
#include "velaria_accel.h"
#include "csv_values.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <pthread.h>
#define VELARIA_CSV_THREADS 1
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* malloc for an output buffer sized for the most rows a part could hold (usually several
 * times what it holds; the untouched rest costs nothing and is trimmed at the end). Such a
 * buffer must stay on 4 KB pages: memory the process had advised for transparent huge pages
 * (numpy advises its big arrays, and malloc hands that memory out again once they are freed)
 * would be faulted in 2 MB at a time, each zeroed whole, so the walk spent more time clearing
 * pages it never uses than parsing (measured: about 40% of a cold read's CPU time). */
static void *out_alloc(size_t size)
{
    void *p = malloc(size);
#if defined(__linux__) && defined(MADV_NOHUGEPAGE)
    const uintptr_t page = 4096, huge = (uintptr_t)2 << 20;
    if (p != NULL && size >= 2 * huge) {
        const uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1);
        const uintptr_t to = ((uintptr_t)p + size) & ~(page - 1);
        madvise((void *)from, to - from, MADV_NOHUGEPAGE); /* advice: failure is harmless */
    }
#endif
    return p;
}

/* the per-cell steps, inlined into the loops that call them once per cell; code shared by
 * the walk's two compiled copies (portable and AVX2), kept out of line */
#if defined(__GNUC__) || defined(__clang__)
#define VELARIA_CSV_INLINE __attribute__((always_inline))
#define VELARIA_CSV_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define VELARIA_CSV_INLINE
#define VELARIA_CSV_NOINLINE __declspec(noinline)
#else
#define VELARIA_CSV_INLINE
#define VELARIA_CSV_NOINLINE
#endif

enum { K_NULL = 0, K_BOOL, K_INT, K_FLOAT, K_DATE, K_TIMESTAMP, K_STRING, K_VECTOR };
enum { S_OK = 0, S_QUOTE = 1, S_RAGGED = 2, S_UTF8 = 3, S_REFERENCE = 4, S_CONVERT = 5,
       S_MEMORY = 6 };
/* velaria_csv_convert's type code of a column it does not read */
#define CONVERT_SKIP 255

static uint8_t merge_kind(uint8_t a, uint8_t b)
{
    if (a == b || b == K_NULL)
        return a;
    if (a == K_NULL)
        return b;
    if ((a == K_INT && b == K_FLOAT) || (a == K_FLOAT && b == K_INT))
        return K_FLOAT;
    if ((a == K_DATE && b == K_TIMESTAMP) || (a == K_TIMESTAMP && b == K_DATE))
        return K_TIMESTAMP;
    return K_STRING;
}

static inline int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int two_digits(const uint8_t *p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

static int all_digits(const uint8_t *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!is_digit(p[i]))
            return 0;
    return 1;
}

/* YYYY-MM-DD[(T| )HH:MM:SS[.f{1,6}]] naming a real day from year 1 on and a real time:
 * K_DATE / K_TIMESTAMP; -1 when the cell has that shape but is no real date (the column is
 * then text); 0 when it does not have the shape. */
static int iso_kind(const uint8_t *p, int64_t n)
{
    if (n < 10 || !all_digits(p, 4) || p[4] != '-' || !all_digits(p + 5, 2) || p[7] != '-' ||
        !all_digits(p + 8, 2))
        return 0;
    int kind = K_DATE;
    if (n > 10) {
        if (n < 19 || (p[10] != 'T' && p[10] != ' ') || !all_digits(p + 11, 2) || p[13] != ':' ||
            !all_digits(p + 14, 2) || p[16] != ':' || !all_digits(p + 17, 2))
            return 0;
        if (n > 19 && (p[19] != '.' || n == 20 || n > 26 || !all_digits(p + 20, n - 20)))
            return 0;
        if (two_digits(p + 11) > 23 || two_digits(p + 14) > 59 || two_digits(p + 17) > 59)
            return -1;
        kind = K_TIMESTAMP;
    }
    const int year = two_digits(p) * 100 + two_digits(p + 2);
    const int month = two_digits(p + 5), day = two_digits(p + 8);
    static const int days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days[month])
        return -1;
    if (month == 2 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return -1;
    return kind;
}

/* -?(0|[1-9][0-9]*) that fits int64: 1; the same shape but out of range: -1; else 0. */
static int int_kind(const uint8_t *p, int64_t n)
{
    int64_t i = 0;
    const int neg = n > 0 && p[0] == '-';
    i = neg;
    if (i >= n || !is_digit(p[i]))
        return 0;
    if (p[i] == '0')
        return n == i + 1 ? 1 : 0;
    for (int64_t j = i; j < n; j++)
        if (!is_digit(p[j]))
            return 0;
    const int64_t digits = n - i;
    if (digits < 19)
        return 1;
    if (digits > 19)
        return -1;
    /* 19 digits: compare with 9223372036854775807 (808 when negative) as text */
    const char *limit = neg ? "9223372036854775808" : "9223372036854775807";
    return memcmp(p + i, limit, 19) <= 0 ? 1 : -1;
}

/* Whether a float text of the grammar below is finite as a double: the decimal magnitude
 * decides all but the boundary decade, which strtod decides on a locale-free rewrite (an
 * integer mantissa and an exponent, no decimal point). */
static int float_is_finite(const uint8_t *p, int64_t n, int64_t mant_end, int64_t exp_value)
{
    /* position of the first significant digit relative to the decimal point */
    int64_t point = -1, first = -1, sig = 0;
    for (int64_t i = 0; i < mant_end; i++) {
        if (p[i] == '.')
            point = i;
        else if (is_digit(p[i]) && p[i] != '0' && first < 0)
            first = i;
    }
    if (first < 0)
        return 1; /* zero */
    if (point < 0)
        point = mant_end;
    /* the value is in [10^m, 10^(m+1)) */
    const int64_t m = (first < point ? point - first - 1 : point - first) + exp_value;
    if (m < 308)
        return 1;
    if (m > 308)
        return 0;
    for (int64_t i = first; i < mant_end; i++)
        sig += is_digit(p[i]);
    char small[512];
    char *text = sig + 32 <= (int64_t)sizeof small ? small : malloc((size_t)sig + 32);
    if (text == NULL)
        return 1; /* cannot happen in practice; a finite guess keeps the old rules' answer */
    int64_t k = 0;
    for (int64_t i = first; i < mant_end; i++)
        if (is_digit(p[i]))
            text[k++] = (char)p[i];
    /* value = 0.<digits> * 10^(m + 1) = <digits> * 10^(m + 1 - sig) */
    k += snprintf(text + k, 32, "e%lld", (long long)(m + 1 - sig));
    text[k] = 0;
    const double v = strtod(text, NULL);
    if (text != small)
        free(text);
    return !isinf(v);
}

/* Text that Python's float() reads (within [0-9+-.eE] and holding '.', 'e' or 'E'):
 * [+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)? and finite as a double -> 1; the shape but infinite
 * -> -1; else 0. */
static int float_kind(const uint8_t *p, int64_t n)
{
    int64_t i = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    int64_t int_digits = 0, frac_digits = 0;
    while (i < n && is_digit(p[i]))
        i++, int_digits++;
    int point = 0;
    if (i < n && p[i] == '.') {
        point = 1;
        i++;
        while (i < n && is_digit(p[i]))
            i++, frac_digits++;
    }
    if (int_digits + frac_digits == 0)
        return 0;
    const int64_t mant_end = i;
    int64_t exp_value = 0;
    int has_exp = 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        has_exp = 1;
        i++;
        int neg = 0;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            neg = p[i++] == '-';
        if (i >= n || !is_digit(p[i]))
            return 0;
        while (i < n && is_digit(p[i])) {
            if (exp_value < 100000000)
                exp_value = exp_value * 10 + (p[i] - '0');
            i++;
        }
        if (neg)
            exp_value = -exp_value;
    }
    if (i != n || (!point && !has_exp))
        return 0;
    if (!has_exp && int_digits < 300)
        return 1;
    return float_is_finite(p, n, mant_end, exp_value) ? 1 : -1;
}

typedef struct {
    const uint8_t *nulls;
    const int64_t *null_lens;
    int64_t n_nulls;
    int dates;
} cell_rules;

/* Whether the cell is true, TRUE, false or FALSE. */
static inline int bool_text(const uint8_t *p, int64_t n)
{
    return (n == 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "TRUE", 4) == 0)) ||
           (n == 5 && (memcmp(p, "false", 5) == 0 || memcmp(p, "FALSE", 5) == 0));
}

/* The kind of one cell (K_VECTOR: only the reference rules can tell). */
static uint8_t cell_kind(const uint8_t *p, int64_t n, const cell_rules *r)
{
    const uint8_t *marker = r->nulls;
    for (int64_t k = 0; k < r->n_nulls; k++) {
        if (r->null_lens[k] == n && memcmp(marker, p, (size_t)n) == 0)
            return K_NULL;
        marker += r->null_lens[k];
    }
    if (n == 0)
        return K_STRING;
    const uint8_t c = p[0];
    if (is_digit(c) || c == '-' || c == '+' || c == '.') {
        if (r->dates && n >= 10 && p[4] == '-') {
            const int iso = iso_kind(p, n);
            if (iso)
                return iso > 0 ? (uint8_t)iso : K_STRING;
        }
        const int as_int = int_kind(p, n);
        if (as_int)
            return as_int > 0 ? K_INT : K_STRING;
        return float_kind(p, n) > 0 ? K_FLOAT : K_STRING;
    }
    if (bool_text(p, n))
        return K_BOOL;
    if (c == '[')
        return K_VECTOR;
    return K_STRING;
}

/* Length of the UTF-8 sequence at p (strict: no overlongs, surrogates or > U+10FFFF), or 0. */
static int utf8_sequence(const uint8_t *p, const uint8_t *end)
{
    const uint8_t c = p[0];
    int len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (end - p < len || p[1] < lo || p[1] > hi)
        return 0;
    for (int i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

static int valid_utf8(const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        const int len = utf8_sequence(p, end);
        if (!len)
            return 0;
        p += len;
    }
    return 1;
}

/* The value of a number cell found by plain_number: `kind` K_INT (in `i`) or K_FLOAT (in
 * `d`); 0 when the cell was not read that way (its value is parsed from the text). */
typedef struct {
    uint8_t kind;
    int64_t i;
    double d;
} cell_number;

/* The common number cells, recognised and valued in one pass: -?[1-9][0-9]* shorter than 19
 * bytes (always an int64 by the typing rules: K_INT) and, with `decimals`,
 * -?[1-9][0-9]*\.[0-9]* shorter than 19 bytes (K_FLOAT). Its value goes to *v: the integer,
 * or the double csv_parse_double gives (the same exact multiply-free division when the
 * digits fit 2^53, csv_parse_double itself when they do not). Anything else (a leading zero,
 * an exponent, a longer cell, a decimal in an int column, a null marker the caller has not
 * ruled out) is 0: the caller applies the general rules. */
static inline uint8_t plain_number(const uint8_t *p, int64_t n, int decimals, cell_number *v)
{
    v->kind = 0;
    if (n <= 0 || n >= 19)
        return 0;
    int64_t i = p[0] == '-';
    if (i >= n || p[i] < '1' || p[i] > '9')
        return 0;
    uint64_t mant = 0;
    for (; i < n && is_digit(p[i]); i++)
        mant = mant * 10 + (uint64_t)(p[i] - '0');
    if (i == n) {
        v->i = p[0] == '-' ? -(int64_t)mant : (int64_t)mant; /* < 10^18: no overflow */
        return v->kind = K_INT;
    }
    if (!decimals || p[i] != '.')
        return 0;
    const int64_t point = i++;
    for (; i < n && is_digit(p[i]); i++)
        mant = mant * 10 + (uint64_t)(p[i] - '0');
    if (i != n)
        return 0;
    const int64_t frac = n - point - 1; /* at most 16 */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    if (mant <= ((uint64_t)1 << 53)) { /* csv_parse_double's fast path, step for step */
        const double d = (double)mant / csv_pow10[frac];
        v->d = p[0] == '-' ? -d : d;
        return v->kind = K_FLOAT;
    }
#endif
    (void)frac;
    v->d = csv_parse_double(p, n);
    return v->kind = K_FLOAT;
}

/* A cell's kind given the column's kind so far: the common cases (another plain integer
 * in an int column, another plain decimal in a float column) are decided by plain_number
 * (which also leaves their value in *v) without the general rules. */
static inline uint8_t next_kind(uint8_t current, const uint8_t *p, int64_t n, const cell_rules *r,
                                cell_number *v)
{
    if ((current == K_INT || current == K_FLOAT) && plain_number(p, n, current == K_FLOAT, v))
        return v->kind;
    v->kind = 0;
    /* another boolean in a bool column (a null marker spelled "true" would be K_NULL by the
     * general rules, which merges into bool the same way) */
    if (current == K_BOOL && bool_text(p, n))
        return K_BOOL;
    return cell_kind(p, n, r);
}

/* ---- shape checks for typing a column whose kind is known so far ------------------------
 *
 * Most cells of an int, float or bool column are plainly of that kind. These checks say so
 * from the cell's shape, 16 bytes at a time and without a branch per byte, for cells whose
 * 16 bytes from their start are readable; 0 sends the cell to the general rules (next_kind),
 * which decide everything else. A null marker that passes the check is harmless: a NULL
 * leaves the column's kind as it is, which is what the check's answer does too. */
#define SHAPE_BYTES 16

/* the bytes of a short text as a little-endian word */
#define TEXT_WORD(a, b, c, d, e) \
    ((uint64_t)(a) | (uint64_t)(b) << 8 | (uint64_t)(c) << 16 | (uint64_t)(d) << 24 | \
     (uint64_t)(e) << 32)

/* true, TRUE, false or FALSE (8 readable bytes at p) */
static inline int bool_shape(const uint8_t *p, int64_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, p, 8);
    const uint64_t w4 = w & 0xFFFFFFFFull, w5 = w & 0xFFFFFFFFFFull;
    return ((n == 4) & ((w4 == TEXT_WORD('t', 'r', 'u', 'e', 0)) |
                        (w4 == TEXT_WORD('T', 'R', 'U', 'E', 0)))) |
           ((n == 5) & ((w5 == TEXT_WORD('f', 'a', 'l', 's', 'e')) |
                        (w5 == TEXT_WORD('F', 'A', 'L', 'S', 'E'))));
#else
    (void)p, (void)n;
    return 0; /* the general rules decide every cell */
#endif
}

#if defined(__SSE2__)
#include <emmintrin.h>
/* -?[1-9][0-9]* or -?0 of at most 16 bytes (an int64 by the typing rules), and with
 * `decimals` also -?[0-9]+\.[0-9]* (a double by them): 1; else 0. */
static inline int number_shape(const uint8_t *p, int64_t n, int decimals)
{
    if (n <= 0 || n > SHAPE_BYTES)
        return 0;
    const __m128i x = _mm_loadu_si128((const __m128i *)p);
    const __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    const unsigned digits =
        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d));
    const unsigned neg = p[0] == '-';
    const unsigned body = ((1u << n) - 1) & ~neg; /* the bytes after the sign */
    const unsigned first = digits >> neg & 1;     /* the body starts with a digit */
    if ((digits & body) == body)                  /* no leading zero but in "0" itself */
        return body != 0 && (p[neg] != '0' || (int64_t)neg + 1 == n);
    if (!decimals || !first)
        return 0;
    const unsigned dots = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('.')));
    const unsigned dot = dots & body;
    return ((digits | dot) & body) == body && (dot & (dot - 1)) == 0;
}
#else
static inline int number_shape(const uint8_t *p, int64_t n, int decimals)
{
    (void)p, (void)n, (void)decimals;
    return 0; /* the general rules decide every cell */
}
#endif

/* Whether the cell surely leaves a column of kind `kind` as it is (see above). */
static inline int keeps_kind(uint8_t kind, const uint8_t *p, int64_t n)
{
    if (kind == K_INT || kind == K_FLOAT)
        return number_shape(p, n, kind == K_FLOAT);
    return kind == K_BOOL && bool_shape(p, n);
}

typedef struct {
    const uint8_t *begin, *end;
    int64_t ncols;
    uint8_t delim;
    int simd;
    const cell_rules *rules;
    uint8_t *kinds; /* ncols, updated */
    const uint8_t *keep; /* ncols flags of the columns to copy out, or NULL */
    uint8_t *out;        /* where the kept cells go */
    int64_t out_len;
    const uint8_t *run;  /* kept cells of this row not copied yet: adjacent ones are */
    int64_t run_len;     /* copied as one span, with the delimiters between them */
    int has_run;
    const uint8_t *conv_types;    /* velaria_csv_convert: each column's type, or CONVERT_SKIP */
    velaria_csv_column **conv;    /* ncols: where a read column's values go (this part's) */
    struct spec_col **spec;       /* velaria_csv_type_convert: ncols, NULL if not converted */
    int64_t rows;
    int status;
} scan_job;

/* Bit masks over 64 bytes: cell ends (delimiter, \n, \r), line ends (\n, \r), \r alone,
 * quotes, non-ASCII bytes. */
typedef struct {
    uint64_t ends, lines, crs, quotes, high;
} block_masks;

static block_masks masks_scalar(const uint8_t *p, uint8_t delim)
{
    block_masks m = {0, 0, 0, 0, 0};
    for (int i = 0; i < 64; i++) {
        const uint8_t c = p[i];
        const uint64_t bit = (uint64_t)1 << i;
        if (c == delim || c == '\n' || c == '\r')
            m.ends |= bit;
        if (c == '\n' || c == '\r')
            m.lines |= bit;
        if (c == '\r')
            m.crs |= bit;
        if (c == '"')
            m.quotes |= bit;
        if (c >= 0x80)
            m.high |= bit;
    }
    return m;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define VELARIA_CSV_AVX2 1
__attribute__((target("avx2"))) static inline block_masks masks_avx2(const uint8_t *p,
                                                                   uint8_t delim)
{
    const __m256i d = _mm256_set1_epi8((char)delim), nl = _mm256_set1_epi8('\n'),
                  cr = _mm256_set1_epi8('\r'), q = _mm256_set1_epi8('"');
    block_masks m;
    uint64_t half[2][5];
    for (int h = 0; h < 2; h++) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(p + 32 * h));
        const __m256i c = _mm256_cmpeq_epi8(x, cr);
        const __m256i l = _mm256_or_si256(_mm256_cmpeq_epi8(x, nl), c);
        half[h][0] = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(_mm256_cmpeq_epi8(x, d), l));
        half[h][1] = (uint32_t)_mm256_movemask_epi8(l);
        half[h][2] = (uint32_t)_mm256_movemask_epi8(c);
        half[h][3] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, q));
        half[h][4] = (uint32_t)_mm256_movemask_epi8(x);
    }
    m.ends = half[0][0] | half[1][0] << 32;
    m.lines = half[0][1] | half[1][1] << 32;
    m.crs = half[0][2] | half[1][2] << 32;
    m.quotes = half[0][3] | half[1][3] << 32;
    m.high = half[0][4] | half[1][4] << 32;
    return m;
}
#endif

#if defined(VELARIA_CSV_AVX2)
/* masks_avx2 for callers compiled without AVX2 (which cannot inline it) */
__attribute__((target("avx2"), noinline)) static block_masks masks_avx2_call(const uint8_t *p,
                                                                             uint8_t delim)
{
    return masks_avx2(p, delim);
}
#endif

static inline block_masks block_at(const scan_job *job, const uint8_t *p)
{
#if defined(VELARIA_CSV_AVX2)
    if (job->simd)
        return masks_avx2_call(p, job->delim);
#endif
    return masks_scalar(p, job->delim);
}

/* a bit above every cell end, so lowest_bit is defined on a mask with no bit left */
#define TOP_BIT ((uint64_t)1 << 63)

static inline int highest_bit(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return 63 - __builtin_clzll(x);
#else
    int n = 63;
    while (!(x >> n))
        n--;
    return n;
#endif
}

static inline int popcount64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_popcountll(x);
#else
    int n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
#endif
}

static inline int lowest_bit(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int n = 0;
    while (!(x & 1)) {
        x >>= 1;
        n++;
    }
    return n;
#endif
}

/* Copies the pending run of kept cells, then a delimiter (after every kept cell). */
static inline void flush_run(scan_job *job)
{
    if (!job->has_run)
        return;
    memcpy(job->out + job->out_len, job->run, (size_t)job->run_len);
    job->out_len += job->run_len;
    job->out[job->out_len++] = job->delim;
    job->has_run = 0;
}

static inline int is_null_cell(const uint8_t *p, int64_t n, const cell_rules *r)
{
    const uint8_t *marker = r->nulls;
    for (int64_t k = 0; k < r->n_nulls; k++) {
        if (r->null_lens[k] == n && memcmp(marker, p, (size_t)n) == 0)
            return 1;
        marker += r->null_lens[k];
    }
    return 0;
}

static inline void set_bit(uint8_t *bits, int64_t i)
{
    bits[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* A converted column's validity bits are written only from its first NULL on: until then
 * every row is valid and no bitmap is needed (an array without NULLs is built without one),
 * so the per-row bit is saved in the common case. At the first NULL, in row `row`, the rows
 * before it are marked valid at once. */
static void first_null(uint8_t *valid, int64_t row)
{
    memset(valid, 0xFF, (size_t)(row >> 3));
    for (int64_t i = row & ~(int64_t)7; i < row; i++)
        set_bit(valid, i);
}

/* Converts one cell into row `row` of its column's buffers: S_OK, or S_CONVERT when the
 * cell is no value of the column's type by the typing rules (the caller then lets pyarrow
 * parse the bytes, which reports or accepts it as before). */
static inline int convert_cell(const scan_job *job, int64_t col, int64_t row, const uint8_t *p,
                               int64_t n)
{
    velaria_csv_column *o = job->conv[col];
    const uint8_t type = job->conv_types[col];
    if (is_null_cell(p, n, job->rules)) {
        if (o->nulls++ == 0)
            first_null(o->valid, row);
        /* the value under a NULL is zero, never left uninitialised */
        if (type == K_STRING)
            o->offsets[row + 1] = (int32_t)o->values_len;
        else if (type == K_DATE)
            ((int32_t *)o->values)[row] = 0;
        else if (type != K_BOOL)
            ((int64_t *)o->values)[row] = 0;
        return S_OK;
    }
    switch (type) {
    case K_STRING:
        memcpy(o->values + o->values_len, p, (size_t)n);
        o->values_len += n;
        o->offsets[row + 1] = (int32_t)o->values_len;
        break;
    case K_INT: {
        cell_number number;
        if (plain_number(p, n, 0, &number)) {
            ((int64_t *)o->values)[row] = number.i;
            break;
        }
        if (int_kind(p, n) != 1)
            return S_CONVERT;
        ((int64_t *)o->values)[row] = csv_parse_int64(p, n);
        break;
    }
    case K_FLOAT: {
        /* an integer cell's double: int64 -> double rounds to nearest as parsing its text
         * does (both are correctly rounded) */
        cell_number number;
        if (plain_number(p, n, 1, &number)) {
            ((double *)o->values)[row] = number.kind == K_INT ? (double)number.i : number.d;
            break;
        }
        if (int_kind(p, n) != 1 && float_kind(p, n) != 1)
            return S_CONVERT;
        ((double *)o->values)[row] = csv_parse_double(p, n);
        break;
    }
    case K_BOOL:
        if (n == 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "TRUE", 4) == 0))
            set_bit(o->values, row);
        else if (!(n == 5 && (memcmp(p, "false", 5) == 0 || memcmp(p, "FALSE", 5) == 0)))
            return S_CONVERT;
        break;
    case K_DATE:
        if (n != 10 || iso_kind(p, n) != K_DATE)
            return S_CONVERT;
        ((int32_t *)o->values)[row] = (int32_t)csv_parse_date(p);
        break;
    case K_TIMESTAMP: {
        const int iso = iso_kind(p, n);
        if (iso != K_DATE && iso != K_TIMESTAMP)
            return S_CONVERT;
        ((int64_t *)o->values)[row] = csv_parse_timestamp(p, n);
        break;
    }
    default:
        return S_CONVERT;
    }
    if (o->nulls)
        set_bit(o->valid, row);
    return S_OK;
}

static void *shrink(void *ptr, int64_t size)
{
    void *smaller = realloc(ptr, (size_t)size);
    return smaller != NULL ? smaller : ptr;
}

/* Gives back what the buffers did not use (they were sized for the most rows the part could
 * hold), so the arrays that outlive the call hold only their values. */
static void trim_column(velaria_csv_column *c, uint8_t type, int64_t rows)
{
    if (type != K_STRING)
        c->values_len = type == K_BOOL ? (rows + 7) / 8 : rows * (type == K_DATE ? 4 : 8);
    c->values = shrink(c->values, c->values_len + 1);
    c->valid = shrink(c->valid, (rows + 7) / 8 + 1);
    if (type == K_STRING)
        c->offsets = shrink(c->offsets, (rows + 1) * 4);
}

/* ---- speculative conversion while typing (velaria_csv_type_convert) ----------------------
 *
 * A column's final type is known only after the whole file, so the typing walk converts a
 * column's cells into the buffers of the kind its cells in this part have so far: a mode,
 * set by the first non-NULL cell. NUM keeps int64 values while every cell is an integer; at
 * the first decimal they become doubles (an int64 converts to the double its text parses to,
 * correctly rounded; the rows that held "-0" are noted, to become -0.0 as pyarrow parses it)
 * and only float64 is kept from there; TIME keeps microseconds (a part of only
 * dates gives date32 days at its end); BOOL bits; STR the text. A cell the mode cannot hold
 * (text after numbers, a number after booleans) drops the column's conversion for the part
 * (FAILED): the caller then parses it again from the file. */
enum { M_NONE = 0, M_NUM, M_BOOL, M_TIME, M_STR, M_FAILED };

typedef struct spec_col {
    velaria_csv_column out; /* the result: values / offsets / valid of the final mode */
    int64_t *i64;           /* NUM: integer values (while no float cell was seen) */
    double *f64;            /* NUM: double values */
    int64_t bound, part_len;
    int64_t *neg_zero;      /* NUM: the rows of "-0" while no float cell was seen */
    int64_t n_neg_zero, cap_neg_zero;
    uint8_t mode, saw_float, saw_timestamp, kind; /* kind: the part's kind at the end */
} spec_col;

static void spec_release(spec_col *s)
{
    free(s->i64);
    free(s->f64);
    free(s->neg_zero);
    s->neg_zero = NULL;
    free(s->out.values);
    free(s->out.offsets);
    free(s->out.valid);
    s->i64 = NULL;
    s->f64 = NULL;
    s->out = (velaria_csv_column){NULL, 0, NULL, NULL, 0};
}

static void spec_fail(spec_col *s)
{
    spec_release(s);
    s->mode = M_FAILED;
}

/* Enters `mode` at row `row` (all earlier rows NULL): 1, or 0 when out of memory. The
 * value buffers are sized for the most rows the part can hold but not cleared (clearing
 * would touch every page): the rows before `row` are zeroed here, each later row is
 * written, a NULL as zero. */
static int spec_start(spec_col *s, uint8_t mode, int64_t row)
{
    const size_t bits = (size_t)(s->bound + 7) / 8 + 1, wide = (size_t)s->bound * 8 + 8;
    s->out.valid = calloc(bits, 1);
    s->mode = mode;
    if (mode == M_NUM) {
        s->i64 = out_alloc(wide);
        s->f64 = out_alloc(wide); /* written only from the first decimal on */
        if (s->i64)
            memset(s->i64, 0, (size_t)row * 8);
        return s->out.valid && s->i64 && s->f64;
    }
    if (mode == M_BOOL) {
        s->out.values = calloc(bits, 1);
        return s->out.valid && s->out.values;
    }
    if (mode == M_TIME) {
        s->out.values = out_alloc(wide);
        if (s->out.values)
            memset(s->out.values, 0, (size_t)row * 8);
        return s->out.valid && s->out.values;
    }
    s->out.values = out_alloc((size_t)s->part_len + 1);
    s->out.offsets = out_alloc(((size_t)s->bound + 1) * 4);
    if (s->out.offsets)
        memset(s->out.offsets, 0, ((size_t)row + 1) * 4);
    return s->out.valid && s->out.values && s->out.offsets;
}

/* Notes that row `row` held "-0" as an int64 0: 1, or 0 when out of memory. */
static int spec_note_neg_zero(spec_col *s, int64_t row)
{
    if (s->n_neg_zero == s->cap_neg_zero) {
        const int64_t cap = s->cap_neg_zero ? 2 * s->cap_neg_zero : 16;
        int64_t *grown = realloc(s->neg_zero, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return 0;
        s->neg_zero = grown;
        s->cap_neg_zero = cap;
    }
    s->neg_zero[s->n_neg_zero++] = row;
    return 1;
}

/* A NUM column's first decimal, at row `row`: its integers so far become doubles. */
static void spec_to_doubles(spec_col *s, int64_t row)
{
    for (int64_t i = 0; i < row; i++)
        s->f64[i] = (double)s->i64[i];
    for (int64_t k = 0; k < s->n_neg_zero; k++)
        s->f64[s->neg_zero[k]] = -0.0;
    free(s->neg_zero);
    s->neg_zero = NULL;
    free(s->i64);
    s->i64 = NULL;
    s->saw_float = 1;
}

/* Converts one cell of a column converted while typing: `k` is the cell's kind (K_NULL for
 * a null marker; K_STRING when the column is already text and its cells are not
 * classified). */
static inline void spec_cell(spec_col *s, int64_t row, uint8_t k, const uint8_t *p, int64_t n,
                             const cell_number *number)
{
    if (s->mode == M_FAILED)
        return;
    if (k == K_NULL) {
        /* before the mode starts there is no bitmap: spec_start clears its earlier rows */
        if (s->out.nulls++ == 0 && s->mode != M_NONE)
            first_null(s->out.valid, row);
        if (s->mode == M_STR) {
            s->out.offsets[row + 1] = (int32_t)s->out.values_len;
        } else if (s->mode == M_NUM) {
            if (!s->saw_float)
                s->i64[row] = 0;
            else
                s->f64[row] = 0.0;
        } else if (s->mode == M_TIME) {
            ((int64_t *)s->out.values)[row] = 0;
        }
        return;
    }
    if (s->mode == M_NONE) {
        const uint8_t mode = k == K_INT || k == K_FLOAT ? M_NUM : k == K_BOOL ? M_BOOL
                           : k == K_DATE || k == K_TIMESTAMP ? M_TIME : M_STR;
        if (!spec_start(s, mode, row)) {
            spec_fail(s);
            return;
        }
    }
    switch (s->mode) {
    case M_NUM:
        if (k == K_INT) {
            const int64_t v = number->kind == K_INT ? number->i : csv_parse_int64(p, n);
            const int minus_zero = v == 0 && p[0] == '-';
            if (s->saw_float) {
                s->f64[row] = minus_zero ? -0.0 : (double)v; /* rounds as parsing does */
            } else {
                s->i64[row] = v;
                if (minus_zero && !spec_note_neg_zero(s, row)) {
                    spec_fail(s);
                    return;
                }
            }
        } else if (k == K_FLOAT) {
            if (!s->saw_float)
                spec_to_doubles(s, row);
            s->f64[row] = number->kind == K_FLOAT ? number->d : csv_parse_double(p, n);
        } else {
            spec_fail(s);
            return;
        }
        break;
    case M_BOOL:
        if (k != K_BOOL) {
            spec_fail(s);
            return;
        }
        if (p[0] == 't' || p[0] == 'T')
            set_bit(s->out.values, row);
        break;
    case M_TIME:
        if (k != K_DATE && k != K_TIMESTAMP) {
            spec_fail(s);
            return;
        }
        s->saw_timestamp |= k == K_TIMESTAMP;
        ((int64_t *)s->out.values)[row] = csv_parse_timestamp(p, n);
        break;
    default: /* M_STR */
        if (k != K_STRING) { /* text, then a number: the column's kind is text only later */
            spec_fail(s);
            return;
        }
        memcpy(s->out.values + s->out.values_len, p, (size_t)n);
        s->out.values_len += n;
        s->out.offsets[row + 1] = (int32_t)s->out.values_len;
        break;
    }
    if (s->out.nulls)
        set_bit(s->out.valid, row);
}

/* The part's result for one column: its kind (K_NULL: no value, K_STRING ... or 255: not
 * converted) and buffers trimmed to `rows`. */
static void spec_finish(spec_col *s, int64_t rows)
{
    switch (s->mode) {
    case M_NONE:
        s->kind = K_NULL;
        return;
    case M_NUM:
        s->kind = s->saw_float ? K_FLOAT : K_INT;
        if (s->saw_float) {
            s->out.values = (uint8_t *)s->f64;
        } else {
            s->out.values = (uint8_t *)s->i64;
            free(s->f64);
        }
        s->i64 = NULL;
        s->f64 = NULL;
        free(s->neg_zero);
        s->neg_zero = NULL;
        break;
    case M_BOOL:
        s->kind = K_BOOL;
        break;
    case M_TIME:
        s->kind = s->saw_timestamp ? K_TIMESTAMP : K_DATE;
        if (!s->saw_timestamp) { /* midnights: days, written over the front of the buffer */
            int64_t *micros = (int64_t *)s->out.values;
            int32_t *days = (int32_t *)s->out.values;
            for (int64_t i = 0; i < rows; i++)
                days[i] = (int32_t)(micros[i] / 86400000000LL);
        }
        break;
    case M_STR:
        s->kind = K_STRING;
        break;
    default:
        s->kind = CONVERT_SKIP;
        return;
    }
    trim_column(&s->out, s->kind, rows);
}

/* Folds one cell of row `row` into its column's kind (and converts it when the column is
 * read): S_OK, or why this part cannot be typed here. */
static inline VELARIA_CSV_INLINE int type_cell(scan_job *job, int64_t col, int64_t row,
                                              const uint8_t *cell, int64_t n)
{
    if (job->conv_types != NULL && job->conv_types[col] != CONVERT_SKIP) {
        const int status = convert_cell(job, col, row, cell, n);
        if (status != S_OK)
            return status;
    }
    uint8_t *kind = &job->kinds[col];
    if (job->spec != NULL && job->spec[col] != NULL) {
        /* the null markers first: the fast path of next_kind does not look at them */
        uint8_t next = K_STRING;
        cell_number number = {0, 0, 0.0};
        if (is_null_cell(cell, n, job->rules))
            next = K_NULL;
        else if (*kind != K_STRING &&
                 (next = next_kind(*kind, cell, n, job->rules, &number)) == K_VECTOR)
            return S_REFERENCE;
        *kind = merge_kind(*kind, next);
        spec_cell(job->spec[col], row, next, cell, n, &number);
    } else if (*kind != K_STRING) {
        cell_number number;
        const uint8_t next = next_kind(*kind, cell, n, job->rules, &number);
        if (next == K_VECTOR)
            return S_REFERENCE;
        *kind = merge_kind(*kind, next);
    }
    return S_OK;
}

/* type_cell for the row-by-row walk (scan_part), which also copies a kept cell out. */
static inline int fold_cell(scan_job *job, int64_t col, const uint8_t *cell, int64_t n)
{
    if (col >= job->ncols)
        return S_RAGGED;
    const int status = type_cell(job, col, job->rows, cell, n);
    if (status != S_OK)
        return status;
    if (job->keep != NULL && job->keep[col]) {
        if (job->has_run && cell == job->run + job->run_len + 1) { /* right after the run */
            job->run_len = cell + n - job->run;
        } else {
            flush_run(job);
            job->run = cell;
            job->run_len = n;
            job->has_run = 1;
        }
    }
    return S_OK;
}

/* Ends a kept row: its last cells, then the row's end. */
static inline void end_kept_row(scan_job *job)
{
    if (job->keep != NULL) {
        flush_run(job);
        job->out[job->out_len++] = '\n';
    }
}

/* Walks the cell ends of [begin, end) 64 bytes at a time (a bit mask per block), classifying
 * each cell of a column not yet known to be text. */
static void scan_part(scan_job *job)
{
    const uint8_t *const begin = job->begin, *const end = job->end;
    const uint8_t delim = job->delim;
    int high = 0; /* a non-ASCII byte was seen: validate the part at the end */
    int64_t col = 0;
    const uint8_t *cell = begin;
    job->rows = 0; /* counts the rows as they end: a converted cell's row */
    for (const uint8_t *base = begin; base < end; base += 64) {
        block_masks m;
        if (end - base >= 64) {
            m = block_at(job, base);
        } else { /* the last, partial block: scanned from a zero-padded copy */
            uint8_t tail[64] = {0};
            memcpy(tail, base, (size_t)(end - base));
            m = block_at(job, tail);
        }
        if (m.quotes) {
            job->status = S_QUOTE;
            return;
        }
        high |= m.high != 0;
        for (uint64_t ends = m.ends; ends; ends &= ends - 1) {
            const uint8_t *at = base + lowest_bit(ends);
            if (*at != delim && col == 0 && at == cell) { /* an empty line (or \r\n's \n) */
                cell = at + 1;
                continue;
            }
            if ((job->status = fold_cell(job, col, cell, at - cell)) != S_OK)
                return;
            cell = at + 1;
            if (*at == delim) {
                col++;
                continue;
            }
            if (col + 1 != job->ncols) {
                job->status = S_RAGGED;
                return;
            }
            end_kept_row(job);
            job->rows++;
            col = 0;
        }
    }
    /* a last line without a line end (its last cell may be empty: "1,") */
    if (cell < end || col != 0) {
        if ((job->status = fold_cell(job, col, cell, end - cell)) != S_OK)
            return;
        if (col + 1 != job->ncols) {
            job->status = S_RAGGED;
            return;
        }
        end_kept_row(job);
        job->rows++;
    }
    job->status = high && !valid_utf8(begin, end) ? S_UTF8 : S_OK;
}

/* ---- the indexed walk: cell ends first, then one column at a time --------------------------
 *
 * The row-by-row walk above decides, for every cell, which column it belongs to and what that
 * column needs (typing, converting, nothing), so each cell pays for branches that change from
 * one cell to the next. The indexed walk splits the work: a structural pass finds the cell
 * ends of a batch of whole rows 64 bytes at a time (checking each row's field count on the
 * way) and records their offsets; then each column's cells of the batch are handled in one
 * loop, where what the column needs is the same for every cell. A column that is text, not
 * converted and not read is not looked at at all. A batch holds about INDEX_CELLS cells, so
 * its index and its bytes stay in the core's cache for the column loops. Statuses and results
 * are those of scan_part (which problem is met first may differ; that there is one may not). */
#define INDEX_CELLS 32768

/* Counts the batches the indexed walk handled (a test checks that it really ran). */
static int64_t indexed_batches;

int64_t velaria_csv_indexed_batches(void)
{
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_load_n(&indexed_batches, __ATOMIC_RELAXED);
#else
    return indexed_batches;
#endif
}

/* ---- the common number and text cells of a column being converted ---------------------
 *
 * In a column converted into int64 or float64 almost every cell is a plain number
 * (plain_number's cells) and in a text column a short text. These steps write such a cell
 * straight into the column's buffers, deciding its shape 16 bytes at a time and valuing its
 * digits 8 at a time (no branch per byte); every other cell goes the general way
 * (type_cell). The values are plain_number's, bit for bit. They need 32 readable bytes at
 * the cell's start, and a text buffer with 16 bytes to spare after its end (a cell that
 * leaves 32 bytes of the part after its start leaves them: the buffer holds the part). */
#define FAST_BYTES 32

#if defined(__SSE2__)
/* -?[1-9][0-9]* (1) or, with `decimals`, -?[1-9][0-9]*\.[0-9]* (2; *dot: the point's
 * index) of at most 16 bytes: the cells plain_number reads; else 0. */
static inline int plain_shape(const uint8_t *p, int64_t n, int decimals, int *dot)
{
    if (n <= 0 || n > 16)
        return 0;
    const __m128i x = _mm_loadu_si128((const __m128i *)p);
    const __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    const unsigned digits =
        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d));
    const unsigned neg = p[0] == '-';
    const unsigned body = ((1u << n) - 1) & ~neg;
    if ((int64_t)neg == n || p[neg] == '0' || !(digits >> neg & 1))
        return 0; /* no digit, or a leading zero */
    if ((digits & body) == body)
        return 1;
    const unsigned dots = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('.')));
    const unsigned point = dots & body;
    if (!decimals || ((digits | point) & body) != body || (point & (point - 1)))
        return 0;
    *dot = lowest_bit(point);
    return 2;
}
#else
static inline int plain_shape(const uint8_t *p, int64_t n, int decimals, int *dot)
{
    (void)p, (void)n, (void)decimals, (void)dot;
    return 0; /* every cell goes the general way */
}
#endif

/* The number the `len` (0..8) digits at p spell (8 readable bytes at p): the eight-digit
 * multiply-and-shift reduction, the digits moved to the low end of the word first. */
static inline uint64_t digits8(const uint8_t *p, int64_t len)
{
    uint64_t v;
    memcpy(&v, p, 8);
    if (len == 0)
        return 0;
    /* a byte after the digits that borrows only borrows from the bytes after it */
    v = (v - 0x3030303030303030ull) << (8 * (8 - len));
    v = (v & 0x0F0F0F0F0F0F0F0Full) * 2561 >> 8;
    v = (v & 0x00FF00FF00FF00FFull) * 6553601 >> 16;
    return (v & 0x0000FFFF0000FFFFull) * 42949672960001ull >> 32;
}

/* The number the `len` (0..16) digits at p spell (16 readable bytes at p). */
static inline uint64_t digits16(const uint8_t *p, int64_t len)
{
    if (len <= 8)
        return digits8(p, len);
    return digits8(p, len - 8) * 100000000ull + digits8(p + len - 8, 8);
}

static const uint64_t pow10_u64[16] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull,
                                       1000000ull, 10000000ull, 100000000ull, 1000000000ull,
                                       10000000000ull, 100000000000ull, 1000000000000ull,
                                       10000000000000ull, 100000000000000ull,
                                       1000000000000000ull};

/* plain_number's value of a cell plain_shape gave `shape` (and `dot`). */
static inline void plain_value(const uint8_t *p, int64_t n, int shape, int dot, cell_number *v)
{
    const int neg = p[0] == '-';
    if (shape == 1) {
        const uint64_t m = digits16(p + neg, n - neg);
        v->i = neg ? -(int64_t)m : (int64_t)m;
        v->kind = K_INT;
        return;
    }
    v->kind = K_FLOAT;
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    const int64_t frac = n - dot - 1; /* at most 14 digits after, 15 in all: under 2^53 */
    const uint64_t m = digits16(p + neg, dot - neg) * pow10_u64[frac] + digits16(p + dot + 1, frac);
    const double d = (double)m / csv_pow10[frac];
    v->d = neg ? -d : d;
#else
    (void)dot;
    v->d = csv_parse_double(p, n);
#endif
}

/* A text cell of at most 16 bytes copied with one 16-byte move, else memcpy. */
static inline void copy_text(uint8_t *to, const uint8_t *p, int64_t n)
{
#if defined(__SSE2__)
    if (n <= 16) {
        _mm_storeu_si128((__m128i *)to, _mm_loadu_si128((const __m128i *)p));
        return;
    }
#endif
    memcpy(to, p, (size_t)n);
}

/* A cell of a column converted while typing (velaria_csv_type_convert), in the column's
 * settled state: 1 when written, 0 when the general way must take it. */
static inline int fast_spec_cell(spec_col *s, uint8_t kind, int64_t row, const uint8_t *p,
                                 int64_t n, const cell_rules *r)
{
    if (s->mode == M_STR) {
        if (kind != K_STRING || is_null_cell(p, n, r))
            return 0;
        copy_text(s->out.values + s->out.values_len, p, n);
        s->out.values_len += n;
        s->out.offsets[row + 1] = (int32_t)s->out.values_len;
    } else if (s->mode == M_NUM) {
        int dot = 0;
        const int shape = plain_shape(p, n, s->saw_float, &dot);
        if (!shape || kind != (s->saw_float ? K_FLOAT : K_INT) || is_null_cell(p, n, r))
            return 0;
        cell_number v = {0, 0, 0.0};
        plain_value(p, n, shape, dot, &v);
        if (s->saw_float)
            s->f64[row] = shape == 1 ? (double)v.i : v.d;
        else
            s->i64[row] = v.i;
    } else {
        return 0;
    }
    if (s->out.nulls)
        set_bit(s->out.valid, row);
    return 1;
}

/* A cell of a column velaria_csv_convert converts into `type`: 1 when written, 0 when the
 * general way (convert_cell) must take it. */
static inline int fast_convert_cell(velaria_csv_column *o, uint8_t type, int64_t row,
                                    const uint8_t *p, int64_t n, const cell_rules *r)
{
    if (type == K_STRING) {
        if (is_null_cell(p, n, r))
            return 0;
        copy_text(o->values + o->values_len, p, n);
        o->values_len += n;
        o->offsets[row + 1] = (int32_t)o->values_len;
    } else if (type == K_INT || type == K_FLOAT) {
        int dot = 0;
        const int shape = plain_shape(p, n, type == K_FLOAT, &dot);
        if (!shape || is_null_cell(p, n, r))
            return 0;
        cell_number v = {0, 0, 0.0};
        plain_value(p, n, shape, dot, &v);
        if (type == K_INT)
            ((int64_t *)o->values)[row] = v.i;
        else
            ((double *)o->values)[row] = shape == 1 ? (double)v.i : v.d;
    } else {
        return 0;
    }
    if (o->nulls)
        set_bit(o->valid, row);
    return 1;
}

/* The cells of one column in a batch of `nrows` rows (row `row0` of the part first): cell
 * (r, col) spans [starts[r], ends[r * ncols]) for col 0 and [ends[r * ncols + col - 1] + 1,
 * ends[r * ncols + col]) after it, offsets from `base`. */
static int fold_column(scan_job *job, int64_t col, const uint8_t *base, const uint32_t *starts,
                       const uint32_t *ends, int64_t nrows, int64_t row0)
{
    const int64_t ncols = job->ncols;
    const int converted = job->conv_types != NULL && job->conv_types[col] != CONVERT_SKIP;
    const int speculative = job->spec != NULL && job->spec[col] != NULL;
    if (!converted && !speculative && job->kinds[col] == K_STRING)
        return S_OK; /* text already, and nobody reads it */
    const uint32_t *e = ends + col;
    if (!converted && !speculative) { /* only the kind: most cells pass the shape check */
        uint8_t kind = job->kinds[col];
        int status = S_OK;
        for (int64_t r = 0; r < nrows; r++, e += ncols) {
            const uint32_t from = col == 0 ? starts[r] : e[-1] + 1;
            const uint8_t *p = base + from;
            const int64_t n = (int64_t)(*e - from);
            if (job->end - p >= SHAPE_BYTES && keeps_kind(kind, p, n))
                continue;
            cell_number number;
            const uint8_t next = next_kind(kind, p, n, job->rules, &number);
            if (next == K_VECTOR) {
                status = S_REFERENCE;
                break;
            }
            if ((kind = merge_kind(kind, next)) == K_STRING)
                break; /* nobody reads it: nothing more to do */
        }
        job->kinds[col] = kind;
        return status;
    }
    /* converted: its kind is not looked at (velaria_csv_convert types nothing) */
    velaria_csv_column *const out = converted && !speculative ? job->conv[col] : NULL;
    spec_col *const spec = speculative && !converted ? job->spec[col] : NULL;
    for (int64_t r = 0; r < nrows; r++, e += ncols) {
        const uint32_t from = col == 0 ? starts[r] : e[-1] + 1;
        const uint8_t *p = base + from;
        const int64_t n = (int64_t)(*e - from);
        if (job->end - p >= FAST_BYTES &&
            (out != NULL ? fast_convert_cell(out, job->conv_types[col], row0 + r, p, n,
                                             job->rules)
             : spec != NULL && fast_spec_cell(spec, job->kinds[col], row0 + r, p, n,
                                              job->rules)))
            continue;
        const int status = type_cell(job, col, row0 + r, p, n);
        if (status != S_OK)
            return status;
    }
    return S_OK;
}

/* Handles the batch's columns one by one: S_OK or the first problem met. (Not inlined: the
 * same code serves both copies of index_part.) */
VELARIA_CSV_NOINLINE static int fold_batch(scan_job *job, const uint8_t *base,
                                            const uint32_t *starts, const uint32_t *ends,
                                            int64_t nrows)
{
#if defined(__GNUC__) || defined(__clang__)
    __atomic_add_fetch(&indexed_batches, 1, __ATOMIC_RELAXED);
#else
    indexed_batches++; /* a count for tests: a lost update between threads is harmless */
#endif
    for (int64_t col = 0; col < job->ncols; col++) {
        const int status = fold_column(job, col, base, starts, ends, nrows, job->rows);
        if (status != S_OK)
            return status;
    }
    job->rows += nrows;
    return S_OK;
}

/* Hands a batch's `nrows` whole rows (cell ends and row starts as offsets from *base) to
 * fold_batch, then moves the row in progress (its first `col` cell ends; its start at `cell`
 * when it has none yet) to the front of the next batch, which starts at the new *base. */
static int flush_rows(scan_job *job, const uint8_t **base, uint32_t *starts, uint32_t *ends,
                      int64_t nrows, int64_t col, const uint8_t *cell)
{
    if (nrows == 0)
        return S_OK;
    const int status = fold_batch(job, *base, starts, ends, nrows);
    if (status != S_OK)
        return status;
    const uint8_t *start = col == 0 ? cell : *base + starts[nrows];
    const uint32_t shift = (uint32_t)(start - *base);
    const uint32_t *partial = ends + nrows * job->ncols;
    for (int64_t i = 0; i < col; i++)
        ends[i] = partial[i] - shift;
    *base = start;
    starts[0] = 0;
    return S_OK;
}

/* scan_part's work (without projection) by the indexed walk; see above. Offsets are 32-bit:
 * the caller keeps parts under 4 GB. `avx2`: find the cell ends with AVX2 (a constant in
 * each of the two copies index_part compiles, so each has its block scan inlined).
 *
 * A block without \r and without an empty line (the common case) is indexed without a
 * branch on its bytes: every cell end is recorded, every line end ends a row, and a row
 * whose line end is not its ncols-th cell end marks the part ragged. Other blocks go cell by
 * cell, skipping empty lines and the \n of \r\n as pyarrow's reader does. */
static inline VELARIA_CSV_INLINE void index_part_with(scan_job *job, int avx2)
{
    const uint8_t *const begin = job->begin, *const end = job->end;
    const uint8_t delim = job->delim;
    const int64_t ncols = job->ncols, last = ncols - 1;
    int64_t max_rows = INDEX_CELLS / ncols;
    if (max_rows < 16)
        max_rows = 16;
    /* a block adds at most 64 cell ends (and 3 scratch slots) and 64 rows past max_rows.
     * starts[nrows] always holds where the row in progress starts (or will, past empty
     * lines): each row end sets the next one's. */
    uint32_t *const ends = malloc((size_t)((max_rows + 1) * ncols + 134) * sizeof *ends);
    uint32_t *const starts = malloc((size_t)(max_rows + 130) * sizeof *starts);
    job->rows = 0;
    if (ends == NULL || starts == NULL) {
        free(ends);
        free(starts);
        job->status = S_MEMORY;
        return;
    }
    starts[0] = 0;
    const uint8_t *base = begin; /* where the batch's first row starts */
    int64_t k = 0, nrows = 0;    /* cell ends and whole rows in the batch */
    int high = 0;
    int64_t col = 0;
    uint64_t line_before = 1; /* the byte before the block ended a line (or the part starts) */
    const uint8_t *cell = begin;
    int status = S_OK;
    for (const uint8_t *block = begin; block < end; block += 64) {
        block_masks m;
        uint64_t live = ~(uint64_t)0;
        uint8_t tail[64];
        const uint8_t *at64 = block;
        if (end - block < 64) { /* the last, partial block: scanned from a zero-padded copy */
            memset(tail, 0, sizeof tail);
            memcpy(tail, block, (size_t)(end - block));
            at64 = tail;
            live = ((uint64_t)1 << (end - block)) - 1;
        }
#if defined(VELARIA_CSV_AVX2)
        m = avx2 ? masks_avx2(at64, delim) : masks_scalar(at64, delim);
#else
        (void)avx2;
        m = masks_scalar(at64, delim);
#endif
        if (m.quotes & live) {
            status = S_QUOTE;
            break;
        }
        high |= (m.high & live) != 0;
        const uint64_t lines = m.lines & live, cell_ends = m.ends & live;
        if (!(m.crs & live) && !(lines & (lines << 1 | line_before))) {
            /* every cell end, four at a time (a few slots past the last are scratch) */
            const uint32_t off = (uint32_t)(block - base);
            const int count = popcount64(cell_ends);
            uint64_t bits = cell_ends;
            for (int j = 0; j < count; j += 4, k += 4) {
                ends[k] = off + (uint32_t)lowest_bit(bits | TOP_BIT);
                bits &= bits - 1;
                ends[k + 1] = off + (uint32_t)lowest_bit(bits | TOP_BIT);
                bits &= bits - 1;
                ends[k + 2] = off + (uint32_t)lowest_bit(bits | TOP_BIT);
                bits &= bits - 1;
                ends[k + 3] = off + (uint32_t)lowest_bit(bits | TOP_BIT);
                bits &= bits - 1;
            }
            k = nrows * ncols + col; /* the cell ends before the block */
            /* each line end must be its row's ncols-th cell end */
            int64_t row_end = k - col + ncols;
            uint64_t bad = 0;
            for (uint64_t rows = lines; rows; rows &= rows - 1) {
                const int i = lowest_bit(rows);
                const uint64_t through = cell_ends & (((uint64_t)2 << i) - 1);
                bad |= (uint64_t)(k + popcount64(through) != row_end);
                row_end += ncols;
                starts[++nrows] = off + (uint32_t)i + 1;
            }
            k += count;
            col = k - nrows * ncols;
            if (bad || col > last) {
                status = S_RAGGED;
                break;
            }
            if (cell_ends)
                cell = block + highest_bit(cell_ends) + 1;
        } else {
            for (uint64_t bits = cell_ends; bits; bits &= bits - 1) {
                const uint8_t *at = block + lowest_bit(bits);
                const int is_line = *at != delim;
                if (is_line && col == 0 && at == cell) { /* an empty line (or \r\n's \n) */
                    cell = at + 1;
                    starts[nrows] = (uint32_t)(cell - base);
                    continue;
                }
                if (is_line != (col == last)) {
                    status = S_RAGGED;
                    break;
                }
                ends[k++] = (uint32_t)(at - base);
                cell = at + 1;
                if (is_line) { /* the next row starts here unless an empty line follows */
                    starts[++nrows] = (uint32_t)(cell - base);
                    col = 0;
                } else {
                    col++;
                }
            }
            if (status != S_OK)
                break;
        }
        line_before = lines >> 63;
        if (nrows >= max_rows) {
            if ((status = flush_rows(job, &base, starts, ends, nrows, col, cell)) != S_OK)
                break;
            k = col;
            nrows = 0;
        }
    }
    /* a last line without a line end (its last cell may be empty: "1,") */
    if (status == S_OK && (cell < end || col != 0)) {
        if (col != last) {
            status = S_RAGGED;
        } else {
            ends[k++] = (uint32_t)(end - base);
            nrows++;
        }
    }
    if (status == S_OK)
        status = flush_rows(job, &base, starts, ends, nrows, 0, end);
    free(ends);
    free(starts);
    if (status == S_OK && high && !valid_utf8(begin, end))
        status = S_UTF8;
    job->status = status;
}

#if defined(VELARIA_CSV_AVX2)
/* popcnt and bmi (tzcnt) come with every AVX2 processor */
__attribute__((target("avx2,popcnt,bmi"))) static void index_part_avx2(scan_job *job)
{
    index_part_with(job, 1);
}
#endif

static void index_part(scan_job *job)
{
#if defined(VELARIA_CSV_AVX2)
    if (job->simd) {
        index_part_avx2(job);
        return;
    }
#endif
    index_part_with(job, 0);
}

/* Walks one part: the indexed walk, or the row-by-row one where cells are copied out (the
 * projection) or a part is too long for 32-bit offsets. */
static void walk_part(scan_job *job)
{
    if (job->keep != NULL || job->end - job->begin >= (int64_t)UINT32_MAX || job->ncols < 1)
        scan_part(job);
    else
        index_part(job);
}

#if defined(VELARIA_CSV_THREADS)
static void *scan_thread(void *arg)
{
    walk_part((scan_job *)arg);
    return NULL;
}
#endif

/* How many parts to scan `len` bytes in: 1 for small buffers (a thread costs more than it
 * saves), else `threads` (at most 16, and 1 without threads). */
static int part_count(int64_t len, int threads)
{
    if (threads < 1 || len < ((int64_t)1 << 20))
        threads = 1;
    if (threads > 16)
        threads = 16;
#if !defined(VELARIA_CSV_THREADS)
    threads = 1;
#endif
    return threads;
}

/* Splits [buf, buf + len) into `parts` ranges that end just after a \n (a line end; \r\n
 * is never split): part t is [bounds[t], bounds[t + 1]). */
static void split_parts(const uint8_t *buf, int64_t len, int parts, const uint8_t **bounds)
{
    const uint8_t *at = buf, *const end = buf + len;
    bounds[0] = buf;
    for (int t = 0; t < parts; t++) {
        const uint8_t *stop = end;
        if (t < parts - 1) {
            stop = buf + len / parts * (t + 1);
            if (stop < at)
                stop = at;
            const uint8_t *nl = memchr(stop, '\n', (size_t)(end - stop));
            stop = nl ? nl + 1 : end;
        }
        bounds[t + 1] = at = stop;
    }
}

/* Runs scan_part on every job, concurrently (the calling thread takes the first). */
static void run_parts(scan_job *jobs, int parts)
{
#if defined(VELARIA_CSV_THREADS)
    pthread_t tids[16];
    int started[16] = {0};
    for (int t = 1; t < parts; t++)
        started[t] = pthread_create(&tids[t], NULL, scan_thread, &jobs[t]) == 0;
    walk_part(&jobs[0]);
    for (int t = 1; t < parts; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            walk_part(&jobs[t]);
    }
#else
    for (int t = 0; t < parts; t++)
        walk_part(&jobs[t]);
#endif
}

/* velaria_csv_column_kinds, and with `hint` velaria_csv_type_convert (see there). */
static int column_kinds(const uint8_t *buf, int64_t len, int64_t ncols, int delim,
                        const cell_rules *rules, int simd, int threads, uint8_t *kinds,
                        int64_t *rows_out, const uint8_t *keep, uint8_t *out, int64_t *out_len,
                        const uint8_t *hint, int *parts_out, int64_t *part_rows,
                        velaria_csv_column *columns, uint8_t *spec_kinds)
{
    threads = part_count(len, threads);
    scan_job jobs[16];
    uint8_t *own = NULL;
    if (threads > 1) {
        own = malloc((size_t)(ncols * (threads - 1)) + 1);
        if (own == NULL)
            threads = 1;
    }
    int64_t hinted = 0;
    for (int64_t c = 0; hint != NULL && c < ncols; c++)
        hinted += hint[c] != 0;
    spec_col *specs = hinted ? calloc((size_t)(hinted * threads), sizeof *specs) : NULL;
    spec_col **slots = hinted ? calloc((size_t)(ncols * threads), sizeof *slots) : NULL;
    if (hinted && (specs == NULL || slots == NULL)) { /* type only: nothing is converted */
        free(specs);
        free(slots);
        specs = NULL;
        slots = NULL;
        hinted = 0;
    }
    const uint8_t *bounds[17];
    split_parts(buf, len, threads, bounds);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (scan_job){bounds[t], bounds[t + 1], ncols, (uint8_t)delim, simd, rules,
                             kinds, keep, NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, S_OK};
        if (keep != NULL) /* each part writes its own region; see the projection note */
            jobs[t].out = out + 2 * (bounds[t] - buf) + 16 * t;
        if (t > 0) {
            jobs[t].kinds = own + ncols * (t - 1);
            memcpy(jobs[t].kinds, kinds, (size_t)ncols);
        }
        if (hinted) {
            jobs[t].spec = slots + t * ncols;
            const int64_t part_len = bounds[t + 1] - bounds[t];
            for (int64_t c = 0, k = 0; c < ncols; c++) {
                if (!hint[c])
                    continue;
                spec_col *sc = &specs[t * hinted + k++];
                sc->part_len = part_len;
                sc->bound = part_len / (ncols > 0 ? ncols : 1) + 1; /* see velaria_csv_convert */
                jobs[t].spec[c] = sc;
            }
        }
    }
    run_parts(jobs, threads);
    int status = S_OK;
    int64_t rows = 0;
    for (int t = 0; t < threads; t++) {
        if (status == S_OK)
            status = jobs[t].status;
        rows += jobs[t].rows;
        if (t > 0)
            for (int64_t c = 0; c < ncols; c++)
                kinds[c] = merge_kind(kinds[c], jobs[t].kinds[c]);
    }
    free(own);
    *rows_out = rows;
    if (keep != NULL) { /* the parts' outputs, moved together */
        int64_t total = 0;
        for (int t = 0; t < threads; t++) {
            memmove(out + total, jobs[t].out, (size_t)jobs[t].out_len);
            total += jobs[t].out_len;
        }
        *out_len = total;
    }
    if (parts_out != NULL)
        *parts_out = threads;
    for (int t = 0; t < threads; t++) {
        if (part_rows != NULL)
            part_rows[t] = jobs[t].rows;
        for (int64_t k = 0; k < hinted; k++) {
            spec_col *sc = &specs[t * hinted + k];
            if (status == S_OK)
                spec_finish(sc, jobs[t].rows);
            else
                spec_fail(sc);
            if (sc->mode == M_FAILED)
                sc->kind = CONVERT_SKIP;
            spec_kinds[t * hinted + k] = sc->kind;
            columns[t * hinted + k] = sc->out; /* the caller owns the buffers now */
        }
    }
    free(specs);
    free(slots);
    return status;
}

int velaria_csv_column_kinds(const uint8_t *buf, int64_t len, int64_t ncols, int delim,
                             const uint8_t *nulls, const int64_t *null_lens, int64_t n_nulls,
                             int dates, int simd, int threads, uint8_t *kinds,
                             int64_t *rows_out, const uint8_t *keep, uint8_t *out,
                             int64_t *out_len)
{
    const cell_rules rules = {nulls, null_lens, n_nulls, dates};
    return column_kinds(buf, len, ncols, delim, &rules, simd, threads, kinds, rows_out, keep,
                        out, out_len, NULL, NULL, NULL, NULL, NULL);
}

/* velaria_csv_column_kinds (without projection) that also converts the columns with
 * hint[col] != 0 while it types them, by the kind of their cells in each part (see the
 * speculative conversion note): the buffer is typed in *parts_out parts (at most `threads`,
 * at most 16); part t has part_rows[t] rows, and the k-th hinted column (in file order) of
 * part t is columns[t * hinted + k], of kind spec_kinds[t * hinted + k]: 0 (every cell
 * NULL; no buffers), 1 bool, 2 int64, 3 float64, 4 date32, 5 timestamp[us], 6 string, or
 * 255 (not converted: a cell the part's kind could not hold, or out of memory; no buffers).
 * The caller owns the buffers (velaria_csv_free). On a non-zero status nothing is
 * converted (every kind 255). */
int velaria_csv_type_convert(const uint8_t *buf, int64_t len, int64_t ncols, int delim,
                             const uint8_t *nulls, const int64_t *null_lens, int64_t n_nulls,
                             int dates, int simd, int threads, uint8_t *kinds,
                             int64_t *rows_out, const uint8_t *hint, int *parts_out,
                             int64_t *part_rows, velaria_csv_column *columns,
                             uint8_t *spec_kinds)
{
    const cell_rules rules = {nulls, null_lens, n_nulls, dates};
    if (len >= INT32_MAX) /* string offsets are int32 */
        return S_REFERENCE;
    return column_kinds(buf, len, ncols, delim, &rules, simd, threads, kinds, rows_out, NULL,
                        NULL, NULL, hint, parts_out, part_rows, columns, spec_kinds);
}

/* ---- conversion straight into Arrow buffers ------------------------------------------ */

void velaria_csv_free(void *ptr)
{
    free(ptr);
}

static void free_column(velaria_csv_column *c)
{
    free(c->values);
    free(c->offsets);
    free(c->valid);
    *c = (velaria_csv_column){NULL, 0, NULL, NULL, 0};
}

/* Buffers for at most `bound` rows of a `part_len`-byte part: 0, or S_MEMORY. */
static int alloc_column(velaria_csv_column *c, uint8_t type, int64_t bound, int64_t part_len)
{
    const size_t bits = (size_t)(bound + 7) / 8 + 1;
    size_t size = (size_t)bound * 8 + 8;
    if (type == K_STRING)
        size = (size_t)part_len + 1;
    else if (type == K_DATE)
        size = (size_t)bound * 4 + 4;
    c->values = type == K_BOOL ? calloc(bits, 1) : out_alloc(size);
    c->valid = calloc(bits, 1);
    c->offsets = type == K_STRING ? out_alloc((size_t)(bound + 1) * 4) : NULL;
    if (c->values == NULL || c->valid == NULL || (type == K_STRING && c->offsets == NULL))
        return S_MEMORY;
    if (type == K_STRING)
        c->offsets[0] = 0;
    return S_OK;
}

/* Converts the data lines in [buf, buf + len) (as velaria_csv_column_kinds reads them: no
 * header, no quote character) straight into Arrow buffers: the columns with types[col] !=
 * CONVERT_SKIP (255) become arrays of that kind (1 bool, 2 int64, 3 float64, 4 date32,
 * 5 timestamp[us], 6 string), NULL where the cell is a null marker. The buffer is split
 * into *parts_out parts (at most `threads`, at most 16) converted concurrently; part t has
 * part_rows[t] rows and its columns at columns[t * kept + k] (k: the k-th read column in
 * file order), which the caller owns and releases with velaria_csv_free.
 *
 * Returns 0, or a status of velaria_csv_column_kinds, or 5 (a cell that is not a value of
 * its column's type by the typing rules), or 6 (out of memory); then nothing is allocated
 * and the caller parses the bytes another way. */
int velaria_csv_convert(const uint8_t *buf, int64_t len, int64_t ncols, int delim,
                        const uint8_t *nulls, const int64_t *null_lens, int64_t n_nulls,
                        int simd, int threads, const uint8_t *types, int *parts_out,
                        int64_t *part_rows, velaria_csv_column *columns)
{
    if (len >= INT32_MAX) /* string offsets are int32 */
        return S_REFERENCE;
    const int parts = part_count(len, threads);
    *parts_out = parts;
    int64_t kept = 0;
    for (int64_t c = 0; c < ncols; c++)
        kept += types[c] != CONVERT_SKIP;
    const cell_rules rules = {nulls, null_lens, n_nulls, 0};
    uint8_t *as_text = malloc((size_t)ncols + 1); /* no column is typed, only converted */
    velaria_csv_column **slots = calloc((size_t)(ncols * parts) + 1, sizeof *slots);
    int status = as_text == NULL || slots == NULL ? S_MEMORY : S_OK;
    if (as_text != NULL)
        memset(as_text, K_STRING, (size_t)ncols);
    const uint8_t *bounds[17];
    split_parts(buf, len, parts, bounds);
    scan_job jobs[16];
    for (int t = 0; t < parts * kept; t++)
        columns[t] = (velaria_csv_column){NULL, 0, NULL, NULL, 0};
    for (int t = 0; t < parts && status == S_OK; t++) {
        const int64_t part_len = bounds[t + 1] - bounds[t];
        /* a row takes at least ncols bytes (its delimiters and its line end); the unused
         * tail of a buffer is never touched, and trim_column gives it back */
        const int64_t bound = part_len / (ncols > 0 ? ncols : 1) + 1;
        velaria_csv_column *own = columns + t * kept;
        for (int64_t c = 0, k = 0; c < ncols && status == S_OK; c++) {
            if (types[c] == CONVERT_SKIP)
                continue;
            slots[t * ncols + c] = &own[k];
            status = alloc_column(&own[k++], types[c], bound, part_len);
        }
        jobs[t] = (scan_job){bounds[t], bounds[t + 1], ncols, (uint8_t)delim, simd, &rules,
                             as_text, NULL, NULL, 0, NULL, 0, 0, types, slots + t * ncols, NULL,
                             0, S_OK};
    }
    if (status == S_OK) {
        run_parts(jobs, parts);
        for (int t = 0; t < parts && status == S_OK; t++)
            status = jobs[t].status;
    }
    for (int t = 0; t < parts && status == S_OK; t++) {
        part_rows[t] = jobs[t].rows;
        for (int64_t c = 0, k = 0; c < ncols; c++)
            if (types[c] != CONVERT_SKIP)
                trim_column(&columns[t * kept + k++], types[c], jobs[t].rows);
    }
    if (status != S_OK)
        for (int t = 0; t < parts * kept; t++)
            free_column(&columns[t]);
    free(as_text);
    free(slots);
    return status;
}
