/* Four-lane field arithmetic mod p = 2^255 - 19 on AVX2.
 *
 * Radix 2^25.5 (ten limbs of 26, 25, 26, ... bits, limb i at bit ceil(25.5 i)), one
 * lane per 64-bit element of a 256-bit register; vpmuludq multiplies the low 32 bits
 * of each lane into 64. Limbs are unsigned. "Weakly reduced", the invariant every
 * public operation leaves: even limbs below 2^27, odd limbs below 2^26, so 19 times
 * a limb (below 2^31.3) and twice an odd limb still fit a 32-bit multiplier operand.
 * Same lane-generic interface as fe51.h and fe51x8_ifma.h (fe, msk, dig, fe_*).
 * Every loop is unrolled so limb indices, widths and factors are compile-time constants.
 * Include only from a translation unit compiled for avx2. */
#ifndef FE25X4_AVX2_H
#define FE25X4_AVX2_H
#include <immintrin.h>
#include <stdint.h>
#include "r255_consts.h"

#define LANES 4
#define FE_WORDS 10 /* uint64 limbs of one lane, as fe_gather / fe_scatter store them */
typedef struct { __m256i v[10]; } fe;
typedef __m256i msk; /* per lane all ones = true, zero = false */
typedef __m256i dig;

static const int FE25_SHIFT[10] = {26, 25, 26, 25, 26, 25, 26, 25, 26, 25};
static const int FE25_POS[10] = {0, 26, 51, 77, 102, 128, 153, 179, 204, 230};

static inline __m256i fe25_mask(int i) { return _mm256_set1_epi64x((1LL << FE25_SHIFT[i]) - 1); }

static inline __m256i times19(__m256i x) {
    return _mm256_add_epi64(_mm256_add_epi64(_mm256_slli_epi64(x, 4), _mm256_slli_epi64(x, 1)), x);
}

/* One round of carries on all limbs at once: limbs below 2^30 come out weakly reduced
 * (each limb below 2^w + 2^5, limb 0 below 2^26 + 19 * 2^5). */
static inline void fe_carry_round(fe *r, const __m256i t[10]) {
    __m256i c[10];
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) c[i] = _mm256_srli_epi64(t[i], FE25_SHIFT[i]);
    r->v[0] = _mm256_add_epi64(_mm256_and_si256(t[0], fe25_mask(0)), times19(c[9]));
    #pragma GCC unroll 10
    for (int i = 1; i < 10; i++) r->v[i] = _mm256_add_epi64(_mm256_and_si256(t[i], fe25_mask(i)), c[i - 1]);
}

/* Carry limb i into limb i + 1 (limb 9 into limb 0 times 19). */
static inline void fe25_carry(__m256i h[10], int i) {
    __m256i c = _mm256_srli_epi64(h[i], FE25_SHIFT[i]);
    h[i] = _mm256_and_si256(h[i], fe25_mask(i));
    if (i == 9) h[0] = _mm256_add_epi64(h[0], times19(c));
    else h[i + 1] = _mm256_add_epi64(h[i + 1], c);
}

/* Products below 2^62 per limb -> weakly reduced: two interleaved carry chains (ref10's
 * order). Every limb ends below its width except limb 1 (+2^17) and limb 5 (+2^12). */
static inline void fe_reduce_wide(fe *r, __m256i h[10]) {
    fe25_carry(h, 0); fe25_carry(h, 4);
    fe25_carry(h, 1); fe25_carry(h, 5);
    fe25_carry(h, 2); fe25_carry(h, 6);
    fe25_carry(h, 3); fe25_carry(h, 7);
    fe25_carry(h, 4); fe25_carry(h, 8);
    fe25_carry(h, 9);
    fe25_carry(h, 0);
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) r->v[i] = h[i];
}

/* K (five 51-bit limbs, value below 2^255) -> ten limbs. */
static inline void fe_const(fe *r, const uint64_t k[5]) {
    uint64_t w[4];
    w[0] = k[0] | (k[1] << 51);
    w[1] = (k[1] >> 13) | (k[2] << 38);
    w[2] = (k[2] >> 26) | (k[3] << 25);
    w[3] = (k[3] >> 39) | (k[4] << 12);
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) {
        int pos = FE25_POS[i], word = pos / 64, shift = pos % 64;
        uint64_t bits = w[word] >> shift;
        if (shift + FE25_SHIFT[i] > 64) bits |= w[word + 1] << (64 - shift);
        r->v[i] = _mm256_set1_epi64x((long long)(bits & ((1ULL << FE25_SHIFT[i]) - 1)));
    }
}

static inline void fe_add(fe *r, const fe *a, const fe *b) {
    __m256i t[10];
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) t[i] = _mm256_add_epi64(a->v[i], b->v[i]);
    fe_carry_round(r, t);
}

/* a + 4p - b: each limb of 4p (2^28 - 76, 2^27 - 4, 2^28 - 4, ...) exceeds any weakly
 * reduced limb of b, so nothing goes negative. */
static inline void fe_sub(fe *r, const fe *a, const fe *b) {
    __m256i t[10];
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) {
        long long four_p = i == 0 ? (1LL << 28) - 76 : (4LL << FE25_SHIFT[i]) - 4;
        t[i] = _mm256_sub_epi64(_mm256_add_epi64(a->v[i], _mm256_set1_epi64x(four_p)), b->v[i]);
    }
    fe_carry_round(r, t);
}

static inline void fe_neg(fe *r, const fe *a) {
    fe z;
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) z.v[i] = _mm256_setzero_si256();
    fe_sub(r, &z, a);
}

/* The schoolbook product's column sums, column by column (one accumulator live at a time:
 * no spills of partial sums), then the wide reduction. Column k adds x_i * y_j over the
 * limb pairs with i + j = k mod 10: a pair of odd limbs carries a factor 2 (their
 * positions round up twice), a pair past limb 9 a factor 19 (2^255 = 19 mod p), taken
 * from y19 = 19 y. x[d] is the left operand times 2^d. Squaring (y = x) adds each cross
 * pair once, with one more doubling. Every index and choice is a compile-time constant
 * once unrolled, so the work does not depend on the operands' values. */
static inline __attribute__((always_inline)) void fe25_product(
    fe *r, const __m256i *const x[3], const __m256i y[10], const __m256i y19[10], int square) {
    __m256i h[10];
#pragma GCC unroll 10
    for (int k = 0; k < 10; k++) {
        __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 10
        for (int i = 0; i < 10; i++) {
            int j = (k - i + 10) % 10;
            if (square && j < i) continue;
            int doublings = ((i & 1) && (j & 1)) + (square && i != j);
            __m256i yj = i + j >= 10 ? y19[j] : y[j];
            acc = _mm256_add_epi64(acc, _mm256_mul_epu32(x[doublings][i], yj));
        }
        h[k] = acc;
    }
    fe_reduce_wide(r, h);
}

/* Terms below 2^27 * 2^31.3, ten per limb, so sums stay below 2^62. */
static __attribute__((noinline)) void fe_mul(fe *r, const fe *a, const fe *b) {
    __m256i a2[10], b19[10];
    const __m256i k19 = _mm256_set1_epi64x(19);
#pragma GCC unroll 10
    for (int i = 0; i < 10; i++) {
        a2[i] = _mm256_add_epi64(a->v[i], a->v[i]);
        b19[i] = _mm256_mul_epu32(b->v[i], k19);
    }
    const __m256i *const x[3] = {a->v, a2, a2}; /* a product doubles a term at most once */
    fe25_product(r, x, b->v, b19, 0);
}

/* The factors 2 on the left operand (below 2^28), the 19 on the right (below 2^31.3);
 * terms below 2^59.3. */
static __attribute__((noinline)) void fe_sq(fe *r, const fe *a) {
    __m256i a2[10], a4[10], a19[10];
    const __m256i k19 = _mm256_set1_epi64x(19);
#pragma GCC unroll 10
    for (int i = 0; i < 10; i++) {
        a2[i] = _mm256_add_epi64(a->v[i], a->v[i]);
        a4[i] = _mm256_add_epi64(a2[i], a2[i]);
        a19[i] = _mm256_mul_epu32(a->v[i], k19);
    }
    const __m256i *const x[3] = {a->v, a2, a4};
    fe25_product(r, x, a->v, a19, 1);
}

/* Fully reduced limbs (value in [0, p)), constant time: after one carry round the value
 * is below 2p, q = floor((value + 19) / 2^255) is 0 or 1, and value + 19 q - q 2^255 < p. */
static inline void fe_canonical_v(__m256i h[10], const fe *a) {
    fe t;
    __m256i in[10];
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) in[i] = a->v[i];
    fe_carry_round(&t, in);
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) h[i] = t.v[i];
    __m256i q = _mm256_srli_epi64(_mm256_add_epi64(h[0], _mm256_set1_epi64x(19)), FE25_SHIFT[0]);
    #pragma GCC unroll 10
    for (int i = 1; i < 10; i++) q = _mm256_srli_epi64(_mm256_add_epi64(h[i], q), FE25_SHIFT[i]);
    h[0] = _mm256_add_epi64(h[0], times19(q));
    #pragma GCC unroll 10
    for (int i = 0; i < 9; i++) {
        h[i + 1] = _mm256_add_epi64(h[i + 1], _mm256_srli_epi64(h[i], FE25_SHIFT[i]));
        h[i] = _mm256_and_si256(h[i], fe25_mask(i));
    }
    h[9] = _mm256_and_si256(h[9], fe25_mask(9));
}

static inline void fe_cmov(fe *r, const fe *a, msk m) {
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) r->v[i] = _mm256_blendv_epi8(r->v[i], a->v[i], m);
}

static inline msk fe_isneg(const fe *a) {
    __m256i h[10];
    const __m256i one = _mm256_set1_epi64x(1);
    fe_canonical_v(h, a);
    return _mm256_cmpeq_epi64(_mm256_and_si256(h[0], one), one);
}

static inline msk fe_iszero(const fe *a) {
    __m256i h[10], z;
    fe_canonical_v(h, a);
    z = h[0];
    #pragma GCC unroll 10
    for (int i = 1; i < 10; i++) z = _mm256_or_si256(z, h[i]);
    return _mm256_cmpeq_epi64(z, _mm256_setzero_si256());
}

static inline msk msk_and(msk a, msk b) { return _mm256_and_si256(a, b); }
static inline msk msk_or(msk a, msk b) { return _mm256_or_si256(a, b); }
static inline msk msk_not(msk a) { return _mm256_xor_si256(a, _mm256_set1_epi64x(-1)); }
static inline msk msk_from_flags(const uint64_t f[LANES]) {
    const __m256i one = _mm256_set1_epi64x(1);
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)f);
    return _mm256_cmpeq_epi64(_mm256_and_si256(v, one), one);
}
static inline void msk_to_flags(uint64_t f[LANES], msk m) {
    _mm256_storeu_si256((__m256i *)(void *)f, _mm256_and_si256(m, _mm256_set1_epi64x(1)));
}

static inline dig dig_load(const int64_t v[LANES]) { return _mm256_loadu_si256((const __m256i *)(const void *)v); }
static inline msk dig_eq(dig d, int64_t j) { return _mm256_cmpeq_epi64(d, _mm256_set1_epi64x(j)); }

/* 32 little-endian bytes -> ten limbs; bit 255 is ignored (callers check it). */
static inline void fe25_limbs_from_bytes(uint64_t h[10], const uint8_t s[32]) {
    uint64_t w[4];
    #pragma GCC unroll 10
    for (int i = 0; i < 4; i++) {
        w[i] = 0;
        #pragma GCC unroll 10
        for (int j = 7; j >= 0; j--) w[i] = (w[i] << 8) | s[8 * i + j];
    }
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) {
        int pos = FE25_POS[i], word = pos / 64, shift = pos % 64;
        uint64_t bits = w[word] >> shift;
        if (shift + FE25_SHIFT[i] > 64) bits |= w[word + 1] << (64 - shift);
        h[i] = bits & ((1ULL << FE25_SHIFT[i]) - 1);
    }
}

/* Lane i's 32 bytes are at src + 32 * i. */
static inline void fe_load(fe *r, const uint8_t *src) {
    uint64_t t[10][LANES], h[10];
    #pragma GCC unroll 10
    for (int l = 0; l < LANES; l++) {
        fe25_limbs_from_bytes(h, src + 32 * l);
        #pragma GCC unroll 10
        for (int i = 0; i < 10; i++) t[i][l] = h[i];
    }
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) r->v[i] = _mm256_loadu_si256((const __m256i *)(const void *)t[i]);
}

static inline void fe_store(uint8_t *dst, const fe *a) {
    __m256i h[10];
    uint64_t t[10][LANES];
    fe_canonical_v(h, a);
    #pragma GCC unroll 10
    for (int i = 0; i < 10; i++) _mm256_storeu_si256((__m256i *)(void *)t[i], h[i]);
    #pragma GCC unroll 10
    for (int l = 0; l < LANES; l++) {
        uint64_t w[4] = {0, 0, 0, 0};
        #pragma GCC unroll 10
        for (int i = 0; i < 10; i++) {
            int pos = FE25_POS[i], word = pos / 64, shift = pos % 64;
            w[word] |= t[i][l] << shift;
            if (shift + FE25_SHIFT[i] > 64) w[word + 1] |= t[i][l] >> (64 - shift);
        }
        #pragma GCC unroll 10
        for (int i = 0; i < 4; i++)
            #pragma GCC unroll 10
            for (int j = 0; j < 8; j++) dst[32 * l + 8 * i + j] = (uint8_t)(w[i] >> (8 * j));
    }
}

/* Lane l's ten limbs from / to src[l] (for the multi-scalar multiplication's buckets). */
static inline void fe_gather(fe *r, const uint64_t *const src[LANES]) {
#pragma GCC unroll 10
    for (int i = 0; i < 10; i++)
        r->v[i] = _mm256_set_epi64x((long long)src[3][i], (long long)src[2][i], (long long)src[1][i], (long long)src[0][i]);
}
static inline void fe_scatter(uint64_t *const dst[LANES], const fe *a) {
    uint64_t t[LANES];
#pragma GCC unroll 10
    for (int i = 0; i < 10; i++) {
        _mm256_storeu_si256((__m256i *)(void *)t, a->v[i]);
        for (int l = 0; l < LANES; l++) dst[l][i] = t[l];
    }
}

#endif
