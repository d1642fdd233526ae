/* Portable field arithmetic mod p = 2^255 - 19: radix 2^51, five 64-bit limbs,
 * products in unsigned __int128. One lane. Every public operation leaves the limbs
 * "weakly reduced": every limb below 2^52 (the same invariant as fe51x8_ifma.h). */
#ifndef FE51_H
#define FE51_H
#include <stdint.h>
#include "r255_consts.h"

#define LANES 1
#define FE_WORDS 5 /* uint64 limbs of one lane, as fe_gather / fe_scatter store them */
typedef struct { uint64_t v[5]; } fe;
typedef uint64_t msk; /* all ones = true, zero = false */
typedef int64_t dig;

/* One round of carries on all limbs at once: inputs below 2^62 leave every limb
 * below 2^51 + 19 * 2^11 < 2^52. */
static inline void fe_carry(fe *r, const uint64_t h[5]) {
    uint64_t c0 = h[0] >> 51, c1 = h[1] >> 51, c2 = h[2] >> 51, c3 = h[3] >> 51, c4 = h[4] >> 51;
    r->v[0] = (h[0] & MASK51) + 19 * c4;
    r->v[1] = (h[1] & MASK51) + c0;
    r->v[2] = (h[2] & MASK51) + c1;
    r->v[3] = (h[3] & MASK51) + c2;
    r->v[4] = (h[4] & MASK51) + c3;
}

/* The tail of a product of weakly reduced inputs: t0..t3 below 2^113 and t4 (which has
 * no factor 19) below 2^107, so 19 * (t4 >> 51) < 2^60 fits; leaves limbs weakly reduced. */
static inline void fe_reduce_wide(fe *r, unsigned __int128 t0, unsigned __int128 t1, unsigned __int128 t2,
                                  unsigned __int128 t3, unsigned __int128 t4) {
    uint64_t h0, h1, h2, h3, h4;
    t1 += (uint64_t)(t0 >> 51); h0 = (uint64_t)t0 & MASK51;
    t2 += (uint64_t)(t1 >> 51); h1 = (uint64_t)t1 & MASK51;
    t3 += (uint64_t)(t2 >> 51); h2 = (uint64_t)t2 & MASK51;
    t4 += (uint64_t)(t3 >> 51); h3 = (uint64_t)t3 & MASK51;
    h4 = (uint64_t)t4 & MASK51;
    h0 += 19 * (uint64_t)(t4 >> 51);
    h1 += h0 >> 51;
    h0 &= MASK51;
    r->v[0] = h0; r->v[1] = h1; r->v[2] = h2; r->v[3] = h3; r->v[4] = h4;
}

static inline void fe_const(fe *r, const uint64_t k[5]) {
    for (int i = 0; i < 5; i++) r->v[i] = k[i];
}

static inline void fe_add(fe *r, const fe *a, const fe *b) {
    uint64_t h[5];
    for (int i = 0; i < 5; i++) h[i] = a->v[i] + b->v[i];
    fe_carry(r, h);
}

/* a + 4p - b: every limb of 4p exceeds any weakly reduced limb, so nothing goes negative. */
static inline void fe_sub(fe *r, const fe *a, const fe *b) {
    uint64_t h[5];
    h[0] = a->v[0] + 0x1fffffffffffb4ULL - b->v[0];
    for (int i = 1; i < 5; i++) h[i] = a->v[i] + 0x1ffffffffffffcULL - b->v[i];
    fe_carry(r, h);
}

static inline void fe_neg(fe *r, const fe *a) {
    fe z = {{0, 0, 0, 0, 0}};
    fe_sub(r, &z, a);
}

static inline void fe_mul(fe *r, const fe *a, const fe *b) {
    typedef unsigned __int128 u128;
    const uint64_t *x = a->v, *y = b->v;
    uint64_t y1 = 19 * y[1], y2 = 19 * y[2], y3 = 19 * y[3], y4 = 19 * y[4];
    u128 t0 = (u128)x[0] * y[0] + (u128)x[1] * y4 + (u128)x[2] * y3 + (u128)x[3] * y2 + (u128)x[4] * y1;
    u128 t1 = (u128)x[0] * y[1] + (u128)x[1] * y[0] + (u128)x[2] * y4 + (u128)x[3] * y3 + (u128)x[4] * y2;
    u128 t2 = (u128)x[0] * y[2] + (u128)x[1] * y[1] + (u128)x[2] * y[0] + (u128)x[3] * y4 + (u128)x[4] * y3;
    u128 t3 = (u128)x[0] * y[3] + (u128)x[1] * y[2] + (u128)x[2] * y[1] + (u128)x[3] * y[0] + (u128)x[4] * y4;
    u128 t4 = (u128)x[0] * y[4] + (u128)x[1] * y[3] + (u128)x[2] * y[2] + (u128)x[3] * y[1] + (u128)x[4] * y[0];
    fe_reduce_wide(r, t0, t1, t2, t3, t4);
}

/* Squaring with the cross products computed once (15 products instead of 25). */
static inline void fe_sq(fe *r, const fe *a) {
    typedef unsigned __int128 u128;
    const uint64_t *x = a->v;
    uint64_t d0 = 2 * x[0], d1 = 2 * x[1], d2 = 2 * x[2];
    uint64_t x3_19 = 19 * x[3], x4_19 = 19 * x[4];
    u128 t0 = (u128)x[0] * x[0] + (u128)d1 * x4_19 + (u128)d2 * x3_19;
    u128 t1 = (u128)d0 * x[1] + (u128)d2 * x4_19 + (u128)x[3] * x3_19;
    u128 t2 = (u128)d0 * x[2] + (u128)x[1] * x[1] + (u128)(2 * x[3]) * x4_19;
    u128 t3 = (u128)d0 * x[3] + (u128)d1 * x[2] + (u128)x[4] * x4_19;
    u128 t4 = (u128)d0 * x[4] + (u128)d1 * x[3] + (u128)x[2] * x[2];
    fe_reduce_wide(r, t0, t1, t2, t3, t4);
}

/* Fully reduced limbs (value in [0, p)), constant time. */
static inline void fe_canonical(uint64_t out[5], const fe *a) {
    fe t;
    fe_carry(&t, a->v);
    uint64_t *h = t.v, q;
    q = (h[0] + 19) >> 51;
    q = (h[1] + q) >> 51;
    q = (h[2] + q) >> 51;
    q = (h[3] + q) >> 51;
    q = (h[4] + q) >> 51;
    h[0] += 19 * q;
    h[1] += h[0] >> 51; h[0] &= MASK51;
    h[2] += h[1] >> 51; h[1] &= MASK51;
    h[3] += h[2] >> 51; h[2] &= MASK51;
    h[4] += h[3] >> 51; h[3] &= MASK51;
    h[4] &= MASK51;
    for (int i = 0; i < 5; i++) out[i] = h[i];
}

static inline void fe_cmov(fe *r, const fe *a, msk m) {
    for (int i = 0; i < 5; i++) r->v[i] ^= m & (r->v[i] ^ a->v[i]);
}

static inline msk fe_isneg(const fe *a) {
    uint64_t h[5];
    fe_canonical(h, a);
    return 0 - (h[0] & 1);
}

static inline msk fe_iszero(const fe *a) {
    uint64_t h[5];
    fe_canonical(h, a);
    uint64_t z = h[0] | h[1] | h[2] | h[3] | h[4];
    return ((z | (0 - z)) >> 63) - 1; /* all ones iff z == 0 */
}

static inline msk msk_and(msk a, msk b) { return a & b; }
static inline msk msk_or(msk a, msk b) { return a | b; }
static inline msk msk_not(msk a) { return ~a; }
static inline msk msk_from_flags(const uint64_t f[LANES]) { return 0 - (f[0] & 1); }
static inline void msk_to_flags(uint64_t f[LANES], msk m) { f[0] = m & 1; }

static inline dig dig_load(const int64_t v[LANES]) { return v[0]; }
static inline msk dig_eq(dig d, int64_t j) {
    uint64_t x = (uint64_t)(d ^ j);
    return ((x | (0 - x)) >> 63) - 1;
}

/* Lane i's 32 bytes are at src + 32 * i. */
static inline void fe_load(fe *r, const uint8_t *src) { limbs_from_bytes(r->v, src); }
static inline void fe_store(uint8_t *dst, const fe *a) {
    uint64_t h[5];
    fe_canonical(h, a);
    limbs_to_bytes(dst, h);
}

/* One lane's limbs from / to memory (for the multi-scalar multiplication's buckets). */
static inline void fe_gather(fe *r, const uint64_t *const src[LANES]) {
    for (int i = 0; i < 5; i++) r->v[i] = src[0][i];
}
static inline void fe_scatter(uint64_t *const dst[LANES], const fe *a) {
    for (int i = 0; i < 5; i++) dst[0][i] = a->v[i];
}

#endif
