/* Cell text -> Arrow value, for the CSV converter in csv_typing.c (velaria_csv_convert).
 *
 * Each function takes a cell the typing rules have already accepted for its kind (the
 * caller checks with int_kind / float_kind / iso_kind first) and returns the value pyarrow's
 * CSV reader gives for the same text: int64, float64 correctly rounded, date32 as days since
 * 1970-01-01, timestamp[us] as microseconds since 1970-01-01 00:00:00.
 */
#ifndef VELARIA_CSV_VALUES_H
#define VELARIA_CSV_VALUES_H

#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* -?[0-9]+ known to fit int64 (int_kind said so). */
static inline int64_t csv_parse_int64(const uint8_t *p, int64_t n)
{
    const int neg = p[0] == '-';
    uint64_t v = 0;
    for (int64_t i = neg; i < n; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    /* unsigned negation: -9223372036854775808 has no positive twin in int64 */
    return (int64_t)(neg ? (uint64_t)0 - v : v);
}

/* The decimal text, rewritten without a decimal point as [-]<digits>e<exponent> and read by
 * strtod: glibc's strtod rounds correctly, and with no decimal point the text means the same
 * in every locale (the point is locale-dependent, digits and 'e' are not). */
static double csv_parse_double_strtod(const uint8_t *p, int64_t n)
{
    char small[256];
    char *text = n + 32 <= (int64_t)sizeof small ? small : malloc((size_t)n + 32);
    if (text == NULL)
        return 0.0 / 0.0; /* out of memory: a NaN nobody could have written (rejected below) */
    int64_t k = 0, i = 0, frac = 0, exp_value = 0;
    int point = 0;
    if (p[0] == '+' || p[0] == '-')
        text[k++] = p[i++] == '-' ? '-' : '+';
    for (; i < n && p[i] != 'e' && p[i] != 'E'; i++) {
        if (p[i] == '.') {
            point = 1;
            continue;
        }
        text[k++] = (char)p[i];
        frac += point;
    }
    if (i < n) { /* the exponent: capped as the typing rules cap it */
        int neg = 0;
        i++;
        if (p[i] == '+' || p[i] == '-')
            neg = p[i++] == '-';
        for (; i < n; i++)
            if (exp_value < 100000000)
                exp_value = exp_value * 10 + (p[i] - '0');
        if (neg)
            exp_value = -exp_value;
    }
    k += snprintf(text + k, 32, "e%lld", (long long)(exp_value - frac));
    text[k] = 0;
    const double v = strtod(text, NULL);
    if (text != small)
        free(text);
    return v;
}

/* Exact powers of ten as doubles (10^22 is the largest one a double holds exactly). */
static const double csv_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The double nearest a text of the float grammar ([+-]?digits[.digits][e[+-]digits], or a
 * plain integer). Clinger's fast path: when the significant digits form an integer m below
 * 2^53 and the decimal exponent e is within [-22, 22], m and 10^|e| are both exact doubles,
 * so the one IEEE multiplication or division m * 10^e (m / 10^-e) is correctly rounded.
 * Everything else goes to strtod. */
static inline double csv_parse_double(const uint8_t *p, int64_t n)
{
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    int64_t i = 0;
    const int neg = p[0] == '-';
    if (p[0] == '+' || p[0] == '-')
        i++;
    uint64_t mant = 0;
    int64_t kept = 0, scale = 0;
    int point = 0;
    for (; i < n; i++) {
        const uint8_t c = p[i];
        if (c == '.') {
            point = 1;
            continue;
        }
        if (c < '0' || c > '9')
            break;
        if (mant == 0 && c == '0') { /* a leading zero: only its place counts */
            scale -= point;
            continue;
        }
        if (kept == 19) /* more digits than a uint64 holds: strtod decides */
            return csv_parse_double_strtod(p, n);
        mant = mant * 10 + (uint64_t)(c - '0');
        kept++;
        scale -= point;
    }
    int64_t exp_value = 0;
    if (i < n) { /* 'e' or 'E' */
        int eneg = 0;
        i++;
        if (p[i] == '+' || p[i] == '-')
            eneg = p[i++] == '-';
        for (; i < n; i++) {
            exp_value = exp_value * 10 + (p[i] - '0');
            if (exp_value > 1000) /* far outside the fast path */
                return csv_parse_double_strtod(p, n);
        }
        if (eneg)
            exp_value = -exp_value;
    }
    if (mant == 0)
        return neg ? -0.0 : 0.0;
    const int64_t e = exp_value + scale;
    if (mant <= ((uint64_t)1 << 53) && e >= -22 && e <= 22) {
        const double m = (double)mant;
        const double v = e >= 0 ? m * csv_pow10[e] : m / csv_pow10[-e];
        return neg ? -v : v;
    }
#endif
    return csv_parse_double_strtod(p, n);
}

/* Days from 1970-01-01 to year-month-day of the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil). */
static inline int64_t csv_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static inline int64_t csv_digits(const uint8_t *p, int n)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

/* YYYY-MM-DD (iso_kind said it is a real day): days since 1970-01-01. */
static inline int64_t csv_parse_date(const uint8_t *p)
{
    return csv_days_from_civil(csv_digits(p, 4), csv_digits(p + 5, 2), csv_digits(p + 8, 2));
}

/* YYYY-MM-DD[(T| )HH:MM:SS[.f{1,6}]] (iso_kind said it is real): microseconds since
 * 1970-01-01 00:00:00 (a bare date is midnight). */
static inline int64_t csv_parse_timestamp(const uint8_t *p, int64_t n)
{
    int64_t seconds = csv_parse_date(p) * 86400;
    int64_t micros = 0;
    if (n > 10) {
        seconds += csv_digits(p + 11, 2) * 3600 + csv_digits(p + 14, 2) * 60 +
                   csv_digits(p + 17, 2);
        if (n > 20) { /* .f{1,6}: padded to six digits */
            micros = csv_digits(p + 20, (int)(n - 20));
            for (int64_t k = n - 20; k < 6; k++)
                micros *= 10;
        }
    }
    return seconds * 1000000 + micros;
}

#endif
