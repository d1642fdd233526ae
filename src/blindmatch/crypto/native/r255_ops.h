/* Batch operations over LANES elements at a time, exported as NS(name) by the including
 * backend: constant-time fixed-window scalar multiplication and the batch entry points.
 * Requires r255_group.h. A batch whose length is not a multiple of LANES is padded
 * with copies of its first element; the padding lanes' results are discarded. */
#ifndef R255_OPS_H
#define R255_OPS_H
#include <string.h>

/* Clear secret-derived stack data (scalar copies, digits) so it does not outlive a call. */
static void wipe(void *p, size_t len) {
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (len--) *v++ = 0;
}

/* Signed radix-16 digits e[0..63] in [-8, 8] of a scalar whose bit 255 is cleared
 * (as libsodium's crypto_scalarmult_ristretto255 does). Arithmetic only. */
static void recode_scalar(int64_t e[64], const uint8_t s[32]) {
    uint8_t a[32];
    memcpy(a, s, 32);
    a[31] &= 0x7f;
    for (int i = 0; i < 32; i++) {
        e[2 * i] = a[i] & 15;
        e[2 * i + 1] = (a[i] >> 4) & 15;
    }
    int64_t carry = 0;
    for (int i = 0; i < 63; i++) {
        e[i] += carry;
        carry = (e[i] + 8) >> 4;
        e[i] -= carry * 16;
    }
    e[63] += carry;
    wipe(a, sizeof a);
}

/* table[j] = (j + 1) P for j = 0..7, in cached form. */
static void build_table(ge_cached table[8], const ge *p) {
    ge acc, twice;
    ge_to_cached(&table[0], p);
    ge_dbl(&twice, p, 1);
    ge_to_cached(&table[1], &twice);
    acc = twice;
    for (int j = 2; j < 8; j++) {
        ge_add(&acc, &acc, &table[0]);
        ge_to_cached(&table[j], &acc);
    }
}

/* Constant-time selection of digit * P per lane: scan the whole table under masks. */
static void table_select(ge_cached *r, const ge_cached table[8], const int64_t digits[LANES]) {
    int64_t absd[LANES];
    uint64_t neg[LANES];
    for (int l = 0; l < LANES; l++) {
        int64_t d = digits[l], sign = d >> 63;
        absd[l] = (d ^ sign) - sign;
        neg[l] = (uint64_t)sign & 1;
    }
    dig a = dig_load(absd);
    fe_const(&r->YpX, K_ONE);
    fe_const(&r->YmX, K_ONE);
    fe_const(&r->Z, K_ONE);
    fe_sub(&r->T2d, &r->Z, &r->Z);
    for (int j = 0; j < 8; j++) {
        msk m = dig_eq(a, j + 1);
        fe_cmov(&r->YpX, &table[j].YpX, m);
        fe_cmov(&r->YmX, &table[j].YmX, m);
        fe_cmov(&r->Z, &table[j].Z, m);
        fe_cmov(&r->T2d, &table[j].T2d, m);
    }
    msk n = msk_from_flags(neg);
    fe swapped = r->YpX, negt;
    fe_cmov(&r->YpX, &r->YmX, n);
    fe_cmov(&r->YmX, &swapped, n);
    fe_neg(&negt, &r->T2d);
    fe_cmov(&r->T2d, &negt, n);
}

/* q = s_l * p_l per lane; scalars at stride 32 bytes (lane l's scalar at scalars + 32 l). */
static void scalar_mult(ge *q, const uint8_t *scalars, const ge *p) {
    int64_t e[LANES][64], col[LANES];
    ge_cached table[8], sel;
    for (int l = 0; l < LANES; l++) recode_scalar(e[l], scalars + 32 * l);
    build_table(table, p);
    ge_identity(q);
    for (int i = 63; i >= 0; i--) {
        if (i != 63) {
            ge_dbl(q, q, 0);
            ge_dbl(q, q, 0);
            ge_dbl(q, q, 0);
            ge_dbl(q, q, 1);
        }
        for (int l = 0; l < LANES; l++) col[l] = e[l][i];
        table_select(&sel, table, col);
        ge_add(q, q, &sel);
    }
    wipe(e, sizeof e);
    wipe(col, sizeof col);
}

/* Copy n (<= LANES) items of size bytes from src (stride `stride`, 0 = same item for all)
 * into LANES slots of dst, padding with the first item. */
static void gather_lanes(uint8_t *dst, const uint8_t *src, size_t stride, size_t n, size_t size) {
    for (size_t l = 0; l < LANES; l++) memcpy(dst + size * l, src + stride * (l < n ? l : 0), size);
}

/* Encode q into out (n <= LANES lanes kept); bad[l] |= 1 where the result is the identity. */
static void emit_lanes(uint8_t *out, uint8_t *bad, const ge *q, size_t n) {
    uint8_t enc[32 * LANES];
    r255_encode(enc, q);
    for (size_t l = 0; l < n; l++) {
        uint8_t any = 0;
        for (int i = 0; i < 32; i++) any |= enc[32 * l + i];
        bad[l] |= (uint8_t)(1 & ((unsigned)(any - 1) >> 8));
        memcpy(out + 32 * l, enc + 32 * l, 32);
    }
}

/* out_i = scalar_i * point_i (scalar_stride 0: one scalar for all). bad_i = 1 where the
 * point does not decode or the product is the identity (libsodium's failure cases). */
void NS(mult)(uint8_t *out, uint8_t *bad, const uint8_t *scalars, size_t scalar_stride,
              const uint8_t *points, size_t n) {
    uint8_t s[32 * LANES], pts[32 * LANES];
    uint64_t valid[LANES];
    ge p, q;
    for (size_t i = 0; i < n; i += LANES) {
        size_t k = n - i < LANES ? n - i : LANES;
        gather_lanes(s, scalars + scalar_stride * i, scalar_stride, k, 32);
        gather_lanes(pts, points + 32 * i, 32, k, 32);
        msk_to_flags(valid, r255_decode(&p, pts));
        scalar_mult(&q, s, &p);
        for (size_t l = 0; l < k; l++) bad[i + l] = (uint8_t)(1 ^ valid[l]);
        emit_lanes(out + 32 * i, bad + i, &q, k);
    }
    wipe(s, sizeof s);
}

/* out_i = Encode(scalar_i * FromUniform(uniform_i)) (scalar_stride 0: one scalar for all)
 * or, with scalars NULL, Encode(FromUniform(uniform_i)). bad_i = 1 where the result is
 * the identity. */
void NS(from_uniform)(uint8_t *out, uint8_t *bad, const uint8_t *uniform, size_t n, const uint8_t *scalars,
                      size_t scalar_stride) {
    uint8_t u[64 * LANES], s[32 * LANES];
    ge p, q;
    for (size_t i = 0; i < n; i += LANES) {
        size_t k = n - i < LANES ? n - i : LANES;
        gather_lanes(u, uniform + 64 * i, 64, k, 64);
        r255_from_uniform(&p, u);
        if (scalars != NULL) {
            gather_lanes(s, scalars + scalar_stride * i, scalar_stride, k, 32);
            scalar_mult(&q, s, &p);
        }
        else q = p;
        memset(bad + i, 0, k);
        emit_lanes(out + 32 * i, bad + i, &q, k);
    }
    wipe(s, sizeof s);
    wipe(u, sizeof u);
}

/* out_i = p_i + q_i, or p_i - q_i with subtract (unified, complete addition); bad_i = 1
 * where p_i or q_i fails RFC 9496 Decode. The identity (32 zero bytes) is a valid input
 * and result. Branch-free, so secret points (a prover's re-encryptions) may be added. */
void NS(add)(uint8_t *out, uint8_t *bad, const uint8_t *p, const uint8_t *q, size_t n, int subtract) {
    uint8_t pts[32 * LANES], enc[32 * LANES];
    uint64_t valid_p[LANES], valid_q[LANES];
    ge a, b, r;
    ge_cached c;
    for (size_t i = 0; i < n; i += LANES) {
        size_t k = n - i < LANES ? n - i : LANES;
        gather_lanes(pts, p + 32 * i, 32, k, 32);
        msk_to_flags(valid_p, r255_decode(&a, pts));
        gather_lanes(pts, q + 32 * i, 32, k, 32);
        msk_to_flags(valid_q, r255_decode(&b, pts));
        if (subtract) {
            fe_neg(&b.X, &b.X);
            fe_neg(&b.T, &b.T);
        }
        ge_to_cached(&c, &b);
        ge_add(&r, &a, &c);
        r255_encode(enc, &r);
        for (size_t l = 0; l < k; l++) bad[i + l] = (uint8_t)(1 ^ (valid_p[l] & valid_q[l]));
        memcpy(out + 32 * i, enc, 32 * k);
    }
    wipe(enc, sizeof enc);
    wipe(pts, sizeof pts);
}

/* Decode points i .. i+k-1 (k = min(LANES, n - i), returned) into the lanes of p, RFC 9496:
 * valid[l] says lane l decoded, identity[l] (constant time) that its encoding is all zero. */
static size_t decode_lanes(ge *p, uint64_t valid[LANES], uint8_t identity[LANES], const uint8_t *points,
                           size_t i, size_t n) {
    uint8_t pts[32 * LANES];
    size_t k = n - i < LANES ? n - i : LANES;
    gather_lanes(pts, points + 32 * i, 32, k, 32);
    msk_to_flags(valid, r255_decode(p, pts));
    for (size_t l = 0; l < k; l++) {
        uint8_t any = 0;
        for (int b = 0; b < 32; b++) any |= pts[32 * l + b];
        identity[l] = (uint8_t)(1 & ((unsigned)(any - 1) >> 8));
    }
    return k;
}

/* bad_i = 1 where points_i does not decode (RFC 9496), or is the identity and
 * reject_identity is set. */
void NS(validate)(uint8_t *bad, const uint8_t *points, size_t n, int reject_identity) {
    uint64_t valid[LANES];
    uint8_t identity[LANES];
    ge p;
    for (size_t i = 0; i < n; i += LANES) {
        size_t k = decode_lanes(&p, valid, identity, points, i, n);
        for (size_t l = 0; l < k; l++)
            bad[i + l] = (uint8_t)((1 ^ valid[l]) | (reject_identity ? identity[l] : 0));
    }
}

#endif
