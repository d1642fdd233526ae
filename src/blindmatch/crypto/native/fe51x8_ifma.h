/* Eight-lane field arithmetic mod p = 2^255 - 19 on AVX-512 IFMA.
 *
 * Same representation as fe51.h (radix 2^51, five limbs, limb 0 below 2^52 and
 * limbs 1..4 below 2^51 after every operation), one lane per 64-bit element of a
 * 512-bit register. vpmadd52luq/vpmadd52huq read the low 52 bits of each operand,
 * which weakly reduced limbs satisfy; the high half of a 51x51-bit-radix product
 * has weight 2^52 = 2 * 2^51, hence the doubling of the high accumulators.
 * Include only from a translation unit compiled for avx512f + avx512ifma. */
#ifndef FE51X8_IFMA_H
#define FE51X8_IFMA_H
#include <immintrin.h>
#include <stdint.h>
#include "r255_consts.h"

#define LANES 8
#define FE_WORDS 5 /* uint64 limbs of one lane, as fe_gather / fe_scatter store them */
typedef struct { __m512i v[5]; } fe;
typedef __mmask8 msk;
typedef __m512i dig;

/* One round of carries, all limbs at once (short dependency chains): inputs below 2^62
 * leave every limb below 2^51 + 2^11 + 19 * 2^11 < 2^52, the IFMA operand limit. */
static inline void fe_carry_v(fe *r, __m512i t0, __m512i t1, __m512i t2, __m512i t3, __m512i t4) {
    const __m512i m = _mm512_set1_epi64((long long)MASK51);
    __m512i c0 = _mm512_srli_epi64(t0, 51), c1 = _mm512_srli_epi64(t1, 51), c2 = _mm512_srli_epi64(t2, 51);
    __m512i c3 = _mm512_srli_epi64(t3, 51), c4 = _mm512_srli_epi64(t4, 51);
    /* + 19 c4 as one multiply-add (c4 < 2^13, so 19 c4 is exact in the low 52 bits): the
     * shifts it replaces compete with the multiplications for the same vector port. */
    r->v[0] = _mm512_madd52lo_epu64(_mm512_and_si512(t0, m), c4, _mm512_set1_epi64(19));
    r->v[1] = _mm512_add_epi64(_mm512_and_si512(t1, m), c0);
    r->v[2] = _mm512_add_epi64(_mm512_and_si512(t2, m), c1);
    r->v[3] = _mm512_add_epi64(_mm512_and_si512(t3, m), c2);
    r->v[4] = _mm512_add_epi64(_mm512_and_si512(t4, m), c3);
}

static inline void fe_const(fe *r, const uint64_t k[5]) {
    for (int i = 0; i < 5; i++) r->v[i] = _mm512_set1_epi64((long long)k[i]);
}

static inline void fe_add(fe *r, const fe *a, const fe *b) {
    fe_carry_v(r, _mm512_add_epi64(a->v[0], b->v[0]), _mm512_add_epi64(a->v[1], b->v[1]),
               _mm512_add_epi64(a->v[2], b->v[2]), _mm512_add_epi64(a->v[3], b->v[3]),
               _mm512_add_epi64(a->v[4], b->v[4]));
}

static inline void fe_sub(fe *r, const fe *a, const fe *b) {
    const __m512i p0 = _mm512_set1_epi64(0x1fffffffffffb4LL), pi = _mm512_set1_epi64(0x1ffffffffffffcLL);
    fe_carry_v(r, _mm512_sub_epi64(_mm512_add_epi64(a->v[0], p0), b->v[0]),
               _mm512_sub_epi64(_mm512_add_epi64(a->v[1], pi), b->v[1]),
               _mm512_sub_epi64(_mm512_add_epi64(a->v[2], pi), b->v[2]),
               _mm512_sub_epi64(_mm512_add_epi64(a->v[3], pi), b->v[3]),
               _mm512_sub_epi64(_mm512_add_epi64(a->v[4], pi), b->v[4]));
}

/* r = a - b - c and r = -(a + b) with one carry instead of two: a + 8p - b - c, where every
 * limb of weakly reduced inputs (below 2^52) gives a value in (0, 2^62), fe_carry_v's range.
 * The doubling's three folded carries are 4.5% of the port the multiplications wait for. */
#define FE_HAS_SUB_SUM 1
static inline void fe_sub_sum(fe *r, const fe *a, const fe *b, const fe *c) {
    const __m512i p0 = _mm512_set1_epi64(0x3fffffffffff68LL), pi = _mm512_set1_epi64(0x3ffffffffffff8LL);
    __m512i t[5];
    for (int i = 0; i < 5; i++)
        t[i] = _mm512_sub_epi64(_mm512_sub_epi64(_mm512_add_epi64(a->v[i], i ? pi : p0), b->v[i]), c->v[i]);
    fe_carry_v(r, t[0], t[1], t[2], t[3], t[4]);
}

static inline void fe_neg_sum(fe *r, const fe *a, const fe *b) {
    const __m512i p0 = _mm512_set1_epi64(0x3fffffffffff68LL), pi = _mm512_set1_epi64(0x3ffffffffffff8LL);
    __m512i t[5];
    for (int i = 0; i < 5; i++) t[i] = _mm512_sub_epi64(_mm512_sub_epi64(i ? pi : p0, a->v[i]), b->v[i]);
    fe_carry_v(r, t[0], t[1], t[2], t[3], t[4]);
}

static inline void fe_neg(fe *r, const fe *a) {
    fe z;
    for (int i = 0; i < 5; i++) z.v[i] = _mm512_setzero_si512();
    fe_sub(r, &z, a);
}

/* The multiplications are bound by the one vector port that runs both vpmadd52 and 512-bit
 * shifts; additions run on two ports. So 2x is computed as x + x, not x << 1. */
static inline __m512i twice(__m512i x) { return _mm512_add_epi64(x, x); }

static inline __m512i times19(__m512i x) {
    return _mm512_add_epi64(_mm512_add_epi64(_mm512_slli_epi64(x, 4), twice(x)), x);
}

static inline void fe_mul(fe *r, const fe *a, const fe *b) {
    __m512i lo[10], hi[10];
    for (int k = 0; k < 10; k++) lo[k] = hi[k] = _mm512_setzero_si512();
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], a->v[i], b->v[j]);
            hi[i + j] = _mm512_madd52hi_epu64(hi[i + j], a->v[i], b->v[j]);
        }
    __m512i z[10];
    z[0] = lo[0];
    for (int k = 1; k < 10; k++) z[k] = _mm512_add_epi64(_mm512_add_epi64(lo[k], hi[k - 1]), hi[k - 1]);
    fe_carry_v(r, _mm512_add_epi64(z[0], times19(z[5])), _mm512_add_epi64(z[1], times19(z[6])),
               _mm512_add_epi64(z[2], times19(z[7])), _mm512_add_epi64(z[3], times19(z[8])),
               _mm512_add_epi64(z[4], times19(z[9])));
}

/* Squaring: the ten cross products once, doubled by a shift (operands stay below 2^52). */
static inline void fe_sq(fe *r, const fe *a) {
    __m512i lo[10], hi[10], dlo[10], dhi[10];
    for (int k = 0; k < 10; k++) lo[k] = hi[k] = dlo[k] = dhi[k] = _mm512_setzero_si512();
    for (int i = 0; i < 5; i++) {
        dlo[2 * i] = _mm512_madd52lo_epu64(dlo[2 * i], a->v[i], a->v[i]);
        dhi[2 * i] = _mm512_madd52hi_epu64(dhi[2 * i], a->v[i], a->v[i]);
        for (int j = i + 1; j < 5; j++) {
            lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], a->v[i], a->v[j]);
            hi[i + j] = _mm512_madd52hi_epu64(hi[i + j], a->v[i], a->v[j]);
        }
    }
    /* z_k = 2 lo_k + dlo_k + 4 hi_(k-1) + 2 dhi_(k-1) = 2 (lo_k + 2 hi_(k-1) + dhi_(k-1)) + dlo_k:
     * the same integers, doubled by additions (see twice). */
    __m512i z[10];
    z[0] = _mm512_add_epi64(twice(lo[0]), dlo[0]);
    for (int k = 1; k < 10; k++) {
        __m512i half = _mm512_add_epi64(_mm512_add_epi64(_mm512_add_epi64(lo[k], hi[k - 1]), hi[k - 1]), dhi[k - 1]);
        z[k] = _mm512_add_epi64(twice(half), dlo[k]);
    }
    fe_carry_v(r, _mm512_add_epi64(z[0], times19(z[5])), _mm512_add_epi64(z[1], times19(z[6])),
               _mm512_add_epi64(z[2], times19(z[7])), _mm512_add_epi64(z[3], times19(z[8])),
               _mm512_add_epi64(z[4], times19(z[9])));
}

static inline void fe_canonical_v(__m512i h[5], const fe *a) {
    const __m512i m = _mm512_set1_epi64((long long)MASK51);
    fe t;
    fe_carry_v(&t, a->v[0], a->v[1], a->v[2], a->v[3], a->v[4]);
    for (int i = 0; i < 5; i++) h[i] = t.v[i];
    __m512i q = _mm512_srli_epi64(_mm512_add_epi64(h[0], _mm512_set1_epi64(19)), 51);
    for (int i = 1; i < 5; i++) q = _mm512_srli_epi64(_mm512_add_epi64(h[i], q), 51);
    h[0] = _mm512_add_epi64(h[0], times19(q));
    for (int i = 0; i < 4; i++) {
        h[i + 1] = _mm512_add_epi64(h[i + 1], _mm512_srli_epi64(h[i], 51));
        h[i] = _mm512_and_si512(h[i], m);
    }
    h[4] = _mm512_and_si512(h[4], m);
}

static inline void fe_cmov(fe *r, const fe *a, msk m) {
    for (int i = 0; i < 5; i++) r->v[i] = _mm512_mask_blend_epi64(m, r->v[i], a->v[i]);
}

static inline msk fe_isneg(const fe *a) {
    __m512i h[5];
    fe_canonical_v(h, a);
    return _mm512_test_epi64_mask(h[0], _mm512_set1_epi64(1));
}

static inline msk fe_iszero(const fe *a) {
    __m512i h[5];
    fe_canonical_v(h, a);
    __m512i z = _mm512_or_si512(_mm512_or_si512(h[0], h[1]), _mm512_or_si512(_mm512_or_si512(h[2], h[3]), h[4]));
    return _mm512_testn_epi64_mask(z, z);
}

static inline msk msk_and(msk a, msk b) { return (msk)(a & b); }
static inline msk msk_or(msk a, msk b) { return (msk)(a | b); }
static inline msk msk_not(msk a) { return (msk)~a; }
static inline msk msk_from_flags(const uint64_t f[LANES]) {
    __m512i v = _mm512_loadu_si512((const void *)f);
    return _mm512_test_epi64_mask(v, _mm512_set1_epi64(1));
}
static inline void msk_to_flags(uint64_t f[LANES], msk m) {
    for (int i = 0; i < LANES; i++) f[i] = (m >> i) & 1;
}

static inline dig dig_load(const int64_t v[LANES]) { return _mm512_loadu_si512((const void *)v); }
static inline msk dig_eq(dig d, int64_t j) { return _mm512_cmpeq_epi64_mask(d, _mm512_set1_epi64(j)); }

/* Lane i's 32 bytes are at src + 32 * i. */
static inline void fe_load(fe *r, const uint8_t *src) {
    uint64_t t[5][LANES], h[5];
    for (int l = 0; l < LANES; l++) {
        limbs_from_bytes(h, src + 32 * l);
        for (int i = 0; i < 5; i++) t[i][l] = h[i];
    }
    for (int i = 0; i < 5; i++) r->v[i] = _mm512_loadu_si512((const void *)t[i]);
}

static inline void fe_store(uint8_t *dst, const fe *a) {
    __m512i h[5];
    uint64_t t[5][LANES], w[5];
    fe_canonical_v(h, a);
    for (int i = 0; i < 5; i++) _mm512_storeu_si512((void *)t[i], h[i]);
    for (int l = 0; l < LANES; l++) {
        for (int i = 0; i < 5; i++) w[i] = t[i][l];
        limbs_to_bytes(dst + 32 * l, w);
    }
}

/* Lane l's five limbs from / to src[l] (for the multi-scalar multiplication's buckets). */
static inline void fe_gather(fe *r, const uint64_t *const src[LANES]) {
    for (int i = 0; i < 5; i++)
        r->v[i] = _mm512_set_epi64((long long)src[7][i], (long long)src[6][i], (long long)src[5][i], (long long)src[4][i],
                                   (long long)src[3][i], (long long)src[2][i], (long long)src[1][i], (long long)src[0][i]);
}
static inline void fe_scatter(uint64_t *const dst[LANES], const fe *a) {
    uint64_t t[LANES];
    for (int i = 0; i < 5; i++) {
        _mm512_storeu_si512((void *)t, a->v[i]);
        for (int l = 0; l < LANES; l++) dst[l][i] = t[l];
    }
}

/* 8 x 8 transpose of 64-bit words: x[k] lane l <- x[l] lane k (unpack, then two rounds of
 * two-source permutes: 24 shuffles instead of 64 scalar inserts). */
static inline void transpose8x8(__m512i x[8]) {
    const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0), hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    const __m512i low4 = _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0), high4 = _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4);
    __m512i a[8], b[8];
    for (int j = 0; j < 8; j += 2) {
        a[j] = _mm512_unpacklo_epi64(x[j], x[j + 1]);     /* words 0 2 4 6 of rows j, j + 1 */
        a[j + 1] = _mm512_unpackhi_epi64(x[j], x[j + 1]); /* words 1 3 5 7 */
    }
    for (int j = 0; j < 8; j += 4)
        for (int o = 0; o < 2; o++) {
            b[j + o] = _mm512_permutex2var_epi64(a[j + o], lo, a[j + o + 2]);     /* words o, o + 4 of 4 rows */
            b[j + o + 2] = _mm512_permutex2var_epi64(a[j + o], hi, a[j + o + 2]); /* words o + 2, o + 6 */
        }
    for (int k = 0; k < 4; k++) {
        x[k] = _mm512_permutex2var_epi64(b[k], low4, b[k + 4]);
        x[k + 4] = _mm512_permutex2var_epi64(b[k], high4, b[k + 4]);
    }
}

/* The multi-scalar multiplication's buckets and points as rows of count * 5 words (one
 * coordinate after another, fe_gather's limbs): r[c] lane l = the five words at rows[l] + 5 c,
 * by masked row loads and transposes rather than word-by-word inserts (which took more of
 * a bucket addition than its field arithmetic). */
#define FE_HAS_ROWS 1
static inline void fe_gather_rows(fe *r, int count, const uint64_t *const rows[LANES]) {
    int words = 5 * count;
    for (int w0 = 0; w0 < words; w0 += 8) {
        __mmask8 m = (__mmask8)(words - w0 >= 8 ? 0xff : (1u << (words - w0)) - 1);
        __m512i x[8];
        for (int l = 0; l < 8; l++) x[l] = _mm512_maskz_loadu_epi64(m, rows[l] + w0);
        transpose8x8(x);
        for (int k = 0; k < 8 && w0 + k < words; k++) r[(w0 + k) / 5].v[(w0 + k) % 5] = x[k];
    }
}

static inline void fe_scatter_rows(uint64_t *const rows[LANES], const fe *a, int count) {
    int words = 5 * count;
    for (int w0 = 0; w0 < words; w0 += 8) {
        __mmask8 m = (__mmask8)(words - w0 >= 8 ? 0xff : (1u << (words - w0)) - 1);
        __m512i x[8];
        for (int k = 0; k < 8; k++) x[k] = w0 + k < words ? a[(w0 + k) / 5].v[(w0 + k) % 5] : _mm512_setzero_si512();
        transpose8x8(x);
        for (int l = 0; l < 8; l++) _mm512_mask_storeu_epi64(rows[l] + w0, m, x[l]);
    }
}

#endif
