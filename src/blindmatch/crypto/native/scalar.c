#include "scalar.h"
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef struct { uint64_t w[4]; } sc;

static const uint64_t L_[4] = {0x5812631a5cf5d3edULL, 0x14def9dea2f79cd6ULL, 0, 0x1000000000000000ULL};
static const uint64_t N0 = 0xd2b51da312547e1bULL;                       /* -L^-1 mod 2^64 */
static const sc R2 = {{0xa40611e3449c0f01ULL, 0xd00e1ba768859347ULL, 0xceec73d217f5be65ULL,
                       0x0399411b7c309a3dULL}};                          /* 2^512 mod L */
static const sc ONE = {{1, 0, 0, 0}};

/* r = a b 2^-256 mod L (CIOS); inputs below L give an output below L. */
static void sc_mont_mul(sc *r, const sc *a, const sc *b) {
    uint64_t t[6] = {0};
    for (int i = 0; i < 4; i++) {
        u128 c = 0;
        for (int j = 0; j < 4; j++) {
            c += (u128)a->w[j] * b->w[i] + t[j];
            t[j] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[4] = (uint64_t)c;
        t[5] = (uint64_t)(c >> 64);
        uint64_t m = t[0] * N0;
        c = (u128)m * L_[0] + t[0];
        c >>= 64;
        for (int j = 1; j < 4; j++) {
            c += (u128)m * L_[j] + t[j];
            t[j - 1] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[3] = (uint64_t)c;
        t[4] = t[5] + (uint64_t)(c >> 64);
    }
    /* conditional subtraction of L without branches */
    uint64_t d[4], borrow = 0;
    for (int j = 0; j < 4; j++) {
        u128 x = (u128)t[j] - L_[j] - borrow;
        d[j] = (uint64_t)x;
        borrow = (uint64_t)(x >> 127);
    }
    uint64_t keep_t = 0 - (uint64_t)((borrow & 1) & (t[4] == 0)); /* t < L: keep t */
    for (int j = 0; j < 4; j++) r->w[j] = (t[j] & keep_t) | (d[j] & ~keep_t);
}

static void sc_load(sc *r, const uint8_t s[32]) {
    for (int i = 0; i < 4; i++) {
        r->w[i] = 0;
        for (int j = 7; j >= 0; j--) r->w[i] = (r->w[i] << 8) | s[8 * i + j];
    }
}

static void sc_store(uint8_t s[32], const sc *a) {
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) s[8 * i + j] = (uint8_t)(a->w[i] >> (8 * j));
}

/* r = a^(L-2) in Montgomery form; the exponent is public, so its bits may steer the loop. */
static void sc_mont_invert(sc *r, const sc *a) {
    static const uint64_t e[4] = {0x5812631a5cf5d3ebULL, 0x14def9dea2f79cd6ULL, 0, 0x1000000000000000ULL};
    sc acc;
    sc_mont_mul(&acc, &ONE, &R2); /* 1 in Montgomery form */
    for (int bit = 252; bit >= 0; bit--) {
        sc_mont_mul(&acc, &acc, &acc);
        if ((e[bit / 64] >> (bit % 64)) & 1) sc_mont_mul(&acc, &acc, a);
    }
    *r = acc;
}

int scalar_invert_batch(uint8_t *out, const uint8_t *scalars, size_t n) {
    if (n == 0) return 0;
    sc *prefix = malloc(n * sizeof(sc));
    if (prefix == NULL) return -2;
    sc x, acc, inv, t;
    for (size_t i = 0; i < n; i++) {
        sc_load(&x, scalars + 32 * i);
        sc_mont_mul(&x, &x, &R2); /* to Montgomery form */
        if (i == 0) acc = x;
        else sc_mont_mul(&acc, &acc, &x);
        prefix[i] = acc;
    }
    uint64_t nz = acc.w[0] | acc.w[1] | acc.w[2] | acc.w[3];
    if (nz == 0) {
        memset(out, 0, 32 * n);
        free(prefix);
        return -1;
    }
    sc_mont_invert(&inv, &acc); /* (prod)^-1 in Montgomery form */
    for (size_t i = n; i-- > 1;) {
        sc_mont_mul(&t, &inv, &prefix[i - 1]); /* s_i^-1 */
        sc_mont_mul(&t, &t, &ONE);             /* out of Montgomery form */
        sc_store(out + 32 * i, &t);
        sc_load(&x, scalars + 32 * i);
        sc_mont_mul(&x, &x, &R2);
        sc_mont_mul(&inv, &inv, &x);
    }
    sc_mont_mul(&t, &inv, &ONE);
    sc_store(out, &t);
    memset(prefix, 0, n * sizeof(sc));
    free(prefix);
    return 0;
}
