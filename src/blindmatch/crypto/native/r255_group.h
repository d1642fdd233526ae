/* ristretto255 (RFC 9496) over the field of the including backend (fe51.h or
 * fe51x8_ifma.h): square roots, point arithmetic, decode, encode and the one-way map.
 * Written once against the lane-generic field interface (fe, msk, fe_*); every
 * selection is a mask, so no branch or memory index depends on a lane's data. */
#ifndef R255_GROUP_H
#define R255_GROUP_H

typedef struct { fe X, Y, Z, T; } ge;             /* extended coordinates */
typedef struct { fe YpX, YmX, Z, T2d; } ge_cached; /* (Y+X, Y-X, Z, 2dT) for additions */

static inline void fe_sqn(fe *r, const fe *a, int n) {
    fe_sq(r, a);
    for (int i = 1; i < n; i++) fe_sq(r, r);
}

/* z^((p-5)/8) = z^(2^252 - 3), the usual addition chain. */
static void fe_pow22523(fe *r, const fe *z) {
    fe t0, t1, t2;
    fe_sq(&t0, z);              /* z^2 */
    fe_sqn(&t1, &t0, 2);        /* z^8 */
    fe_mul(&t1, z, &t1);        /* z^9 */
    fe_mul(&t0, &t0, &t1);      /* z^11 */
    fe_sq(&t0, &t0);            /* z^22 */
    fe_mul(&t0, &t1, &t0);      /* z^31 = z^(2^5-1) */
    fe_sqn(&t1, &t0, 5);
    fe_mul(&t0, &t1, &t0);      /* 2^10-1 */
    fe_sqn(&t1, &t0, 10);
    fe_mul(&t1, &t1, &t0);      /* 2^20-1 */
    fe_sqn(&t2, &t1, 20);
    fe_mul(&t1, &t2, &t1);      /* 2^40-1 */
    fe_sqn(&t1, &t1, 10);
    fe_mul(&t0, &t1, &t0);      /* 2^50-1 */
    fe_sqn(&t1, &t0, 50);
    fe_mul(&t1, &t1, &t0);      /* 2^100-1 */
    fe_sqn(&t2, &t1, 100);
    fe_mul(&t1, &t2, &t1);      /* 2^200-1 */
    fe_sqn(&t1, &t1, 50);
    fe_mul(&t0, &t1, &t0);      /* 2^250-1 */
    fe_sqn(&t0, &t0, 2);        /* 2^252-4 */
    fe_mul(r, &t0, z);          /* 2^252-3 */
}

static inline msk fe_eq(const fe *a, const fe *b) {
    fe d;
    fe_sub(&d, a, b);
    return fe_iszero(&d);
}

static inline void fe_abs(fe *r, const fe *a) {
    fe n;
    fe_neg(&n, a);
    *r = *a;
    fe_cmov(r, &n, fe_isneg(a));
}

/* RFC 9496 section 4.2 SQRT_RATIO_M1; returns the was_square mask. */
static msk sqrt_ratio_m1(fe *out, const fe *u, const fe *v) {
    fe v3, v7, r, check, t, neg_u, neg_u_i, sqrt_m1, r_prime;
    fe_const(&sqrt_m1, K_SQRT_M1);
    fe_sq(&v3, v);
    fe_mul(&v3, &v3, v);        /* v^3 */
    fe_sq(&v7, &v3);
    fe_mul(&v7, &v7, v);        /* v^7 */
    fe_mul(&t, u, &v7);
    fe_pow22523(&t, &t);        /* (u v^7)^((p-5)/8) */
    fe_mul(&r, u, &v3);
    fe_mul(&r, &r, &t);
    fe_sq(&check, &r);
    fe_mul(&check, &check, v);
    fe_neg(&neg_u, u);
    fe_mul(&neg_u_i, &neg_u, &sqrt_m1);
    msk correct = fe_eq(&check, u);
    msk flipped = fe_eq(&check, &neg_u);
    msk flipped_i = fe_eq(&check, &neg_u_i);
    fe_mul(&r_prime, &r, &sqrt_m1);
    fe_cmov(&r, &r_prime, msk_or(flipped, flipped_i));
    fe_abs(out, &r);
    return msk_or(correct, flipped);
}

static inline void ge_identity(ge *p) {
    fe_const(&p->X, K_ONE); fe_sub(&p->X, &p->X, &p->X);
    fe_const(&p->Y, K_ONE);
    fe_const(&p->Z, K_ONE);
    p->T = p->X;
}

static inline void ge_to_cached(ge_cached *c, const ge *p) {
    fe d2;
    fe_const(&d2, K_D2);
    fe_add(&c->YpX, &p->Y, &p->X);
    fe_sub(&c->YmX, &p->Y, &p->X);
    c->Z = p->Z;
    fe_mul(&c->T2d, &p->T, &d2);
}

/* Unified addition, complete on edwards25519 (a = -1 square, d non-square), of p and the
 * cached q = (Y+X, Y-X, 2dT) given zz2 = 2 * Z1 * Z2, which the callers compute: ge_add below,
 * and msm_lanes.h's ge_add_z1 one multiplication cheaper for a decoded q (Z2 = 1). */
static inline void ge_add_cached_parts(ge *r, const ge *p, const fe *ypx, const fe *ymx, const fe *t2d,
                                       const fe *zz2) {
    fe a, b, c, e, f, g, h;
    fe_sub(&a, &p->Y, &p->X);
    fe_mul(&a, &a, ymx);
    fe_add(&b, &p->Y, &p->X);
    fe_mul(&b, &b, ypx);
    fe_mul(&c, &p->T, t2d);
    fe_sub(&e, &b, &a);
    fe_sub(&f, zz2, &c);
    fe_add(&g, zz2, &c);
    fe_add(&h, &b, &a);
    fe_mul(&r->X, &e, &f);
    fe_mul(&r->Y, &g, &h);
    fe_mul(&r->T, &e, &h);
    fe_mul(&r->Z, &f, &g);
}

/* r = p + q. */
static void ge_add(ge *r, const ge *p, const ge_cached *q) {
    fe zz2;
    fe_mul(&zz2, &p->Z, &q->Z);
    fe_add(&zz2, &zz2, &zz2);
    ge_add_cached_parts(r, p, &q->YpX, &q->YmX, &q->T2d, &zz2);
}

#ifndef FE_HAS_SUB_SUM
/* r = a - b - c and r = -(a + b); a field may define both with fewer carries (fe51x8_ifma.h). */
static inline void fe_sub_sum(fe *r, const fe *a, const fe *b, const fe *c) {
    fe t;
    fe_add(&t, b, c);
    fe_sub(r, a, &t);
}

static inline void fe_neg_sum(fe *r, const fe *a, const fe *b) {
    fe_add(r, a, b);
    fe_neg(r, r);
}
#endif

/* dbl-2008-hwcd with a = -1; T is skipped when the next step is another doubling. */
static void ge_dbl(ge *r, const ge *p, int want_t) {
    fe a, b, c, e, f, g, h;
    fe_sq(&a, &p->X);
    fe_sq(&b, &p->Y);
    fe_sq(&c, &p->Z);
    fe_add(&e, &p->X, &p->Y);
    fe_sq(&e, &e);
    fe_sub_sum(&e, &e, &a, &b); /* E = (X + Y)^2 - A - B */
    fe_sub(&g, &b, &a);         /* G = B - A */
    fe_sub_sum(&f, &g, &c, &c); /* F = G - 2 Z^2 */
    fe_neg_sum(&h, &a, &b);     /* H = -A - B */
    fe_mul(&r->X, &e, &f);
    fe_mul(&r->Y, &g, &h);
    fe_mul(&r->Z, &f, &g);
    if (want_t) fe_mul(&r->T, &e, &h);
}

/* RFC 9496 section 4.3.1 Decode. src holds LANES encodings; returns the valid mask.
 * Rejects values >= p, the top bit set, negative s, non-squares, negative t and y = 0. */
static msk r255_decode(ge *p, const uint8_t *src) {
    uint8_t again[32 * LANES];
    uint64_t canon[LANES];
    fe s, ss, u1, u2, u2_sqr, v, t, invsqrt, den_x, den_y, one, dd;
    fe_load(&s, src);
    fe_store(again, &s);
    for (int l = 0; l < LANES; l++) {
        uint8_t diff = 0;
        for (int i = 0; i < 32; i++) diff |= (uint8_t)(again[32 * l + i] ^ src[32 * l + i]);
        canon[l] = 1 & ((uint64_t)(diff - 1) >> 8); /* 1 iff diff == 0 */
    }
    msk ok = msk_and(msk_from_flags(canon), msk_not(fe_isneg(&s)));
    fe_const(&one, K_ONE);
    fe_const(&dd, K_D);
    fe_sq(&ss, &s);
    fe_sub(&u1, &one, &ss);
    fe_add(&u2, &one, &ss);
    fe_sq(&u2_sqr, &u2);
    fe_sq(&v, &u1);
    fe_mul(&v, &v, &dd);
    fe_neg(&v, &v);
    fe_sub(&v, &v, &u2_sqr);
    fe_mul(&t, &v, &u2_sqr);
    ok = msk_and(ok, sqrt_ratio_m1(&invsqrt, &one, &t));
    fe_mul(&den_x, &invsqrt, &u2);
    fe_mul(&den_y, &invsqrt, &den_x);
    fe_mul(&den_y, &den_y, &v);
    fe_add(&p->X, &s, &s);
    fe_mul(&p->X, &p->X, &den_x);
    fe_abs(&p->X, &p->X);
    fe_mul(&p->Y, &u1, &den_y);
    fe_const(&p->Z, K_ONE);
    fe_mul(&p->T, &p->X, &p->Y);
    ok = msk_and(ok, msk_not(fe_isneg(&p->T)));
    return msk_and(ok, msk_not(fe_iszero(&p->Y)));
}

/* RFC 9496 section 4.3.2 Encode into LANES x 32 bytes at dst. */
static void r255_encode(uint8_t *dst, const ge *p) {
    fe u1, u2, t, invsqrt, den1, den2, z_inv, ix, iy, ench, x, y, den_inv, one, k;
    fe_const(&one, K_ONE);
    fe_add(&u1, &p->Z, &p->Y);
    fe_sub(&t, &p->Z, &p->Y);
    fe_mul(&u1, &u1, &t);
    fe_mul(&u2, &p->X, &p->Y);
    fe_sq(&t, &u2);
    fe_mul(&t, &t, &u1);
    (void)sqrt_ratio_m1(&invsqrt, &one, &t);
    fe_mul(&den1, &invsqrt, &u1);
    fe_mul(&den2, &invsqrt, &u2);
    fe_mul(&z_inv, &den1, &den2);
    fe_mul(&z_inv, &z_inv, &p->T);
    fe_const(&k, K_SQRT_M1);
    fe_mul(&ix, &p->X, &k);
    fe_mul(&iy, &p->Y, &k);
    fe_const(&k, K_INVSQRT_A_MINUS_D);
    fe_mul(&ench, &den1, &k);
    fe_mul(&t, &p->T, &z_inv);
    msk rotate = fe_isneg(&t);
    x = p->X; fe_cmov(&x, &iy, rotate);
    y = p->Y; fe_cmov(&y, &ix, rotate);
    den_inv = den2; fe_cmov(&den_inv, &ench, rotate);
    fe_mul(&t, &x, &z_inv);
    fe_neg(&k, &y);
    fe_cmov(&y, &k, fe_isneg(&t));
    fe_sub(&t, &p->Z, &y);
    fe_mul(&t, &den_inv, &t);
    fe_abs(&t, &t);
    fe_store(dst, &t);
}

/* RFC 9496 section 4.3.4 MAP (Elligator 2 variant) from a field element. */
static void r255_map(ge *p, const fe *t) {
    fe r, u, v, s, s_prime, c, n, w0, w1, w2, w3, one, k, tmp;
    fe_const(&one, K_ONE);
    fe_sq(&r, t);
    fe_const(&k, K_SQRT_M1);
    fe_mul(&r, &r, &k);
    fe_add(&u, &r, &one);
    fe_const(&k, K_ONE_MINUS_D_SQ);
    fe_mul(&u, &u, &k);
    fe_const(&k, K_D);
    fe_mul(&v, &r, &k);
    fe_add(&v, &v, &one);
    fe_neg(&v, &v);               /* -1 - r D */
    fe_add(&tmp, &r, &k);
    fe_mul(&v, &v, &tmp);         /* (-1 - r D)(r + D) */
    msk was_square = sqrt_ratio_m1(&s, &u, &v);
    fe_mul(&s_prime, &s, t);
    fe_abs(&s_prime, &s_prime);
    fe_neg(&s_prime, &s_prime);
    fe_cmov(&s, &s_prime, msk_not(was_square));
    fe_neg(&c, &one);
    fe_cmov(&c, &r, msk_not(was_square));
    fe_sub(&n, &r, &one);
    fe_mul(&n, &n, &c);
    fe_const(&k, K_D_MINUS_ONE_SQ);
    fe_mul(&n, &n, &k);
    fe_sub(&n, &n, &v);
    fe_add(&w0, &s, &s);
    fe_mul(&w0, &w0, &v);
    fe_const(&k, K_SQRT_AD_MINUS_ONE);
    fe_mul(&w1, &n, &k);
    fe_sq(&tmp, &s);
    fe_sub(&w2, &one, &tmp);
    fe_add(&w3, &one, &tmp);
    fe_mul(&p->X, &w0, &w3);
    fe_mul(&p->Y, &w2, &w1);
    fe_mul(&p->Z, &w1, &w3);
    fe_mul(&p->T, &w0, &w2);
}

/* RFC 9496 section 4.3.4 element derivation from LANES x 64 uniform bytes (stride 64). */
static void r255_from_uniform(ge *p, const uint8_t *uniform) {
    uint8_t half[32 * LANES];
    fe t;
    ge p2;
    ge_cached c;
    for (int h = 0; h < 2; h++) {
        for (int l = 0; l < LANES; l++) {
            for (int i = 0; i < 32; i++) half[32 * l + i] = uniform[64 * l + 32 * h + i];
            half[32 * l + 31] &= 0x7f;
        }
        fe_load(&t, half); /* limbs_from_bytes ignores bit 255; value < 2^255 < 2p */
        r255_map(h == 0 ? p : &p2, &t);
    }
    ge_to_cached(&c, &p2);
    ge_add(p, p, &c);
}

#endif
