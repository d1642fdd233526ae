/* Multi-scalar multiplication for public inputs (the DLEQ composites of RFC 9497 section
 * 2.2.1), LANES bucket additions at a time, exported as NS(msm) by the including backend.
 *
 * Pippenger's bucket method with signed window digits: for each window w and digit
 * +-j the point (negated for -j) is added into bucket (w, j). The additions are grouped
 * LANES at a time into distinct buckets (a group closes early when a bucket repeats), the
 * per-window sums sum_j j * bucket(w, j) run LANES windows at once, and the windows are
 * combined by doubling. Buckets live in memory as each backend's own limbs (fe_gather /
 * fe_scatter). Variable time: branches and addresses depend on the scalars, so callers
 * pass public data only. Requires r255_group.h and r255_ops.h. */
#ifndef R255_MSM_LANES_H
#define R255_MSM_LANES_H
#include <stdlib.h>

typedef struct { uint64_t c[4][FE_WORDS]; } ge_words;     /* X, Y, Z, T */
typedef struct { uint64_t c[3][FE_WORDS]; } cached_words; /* Y+X, Y-X, 2dT of a point with Z = 1 */

/* Bits [pos, pos + width) of a 255-bit little-endian scalar held as four words. */
static unsigned msm_window_digit(const uint64_t w[4], unsigned pos, unsigned width) {
    unsigned word = pos / 64, shift = pos % 64;
    uint64_t bits = w[word] >> shift; /* pos < 256 */
    if (shift + width > 64 && word < 3) bits |= w[word + 1] << (64 - shift);
    return (unsigned)(bits & ((1u << width) - 1));
}

/* The width c minimising the additions, ceil(256 / c) windows of (n + 2^c) each. */
static unsigned msm_window_width(size_t n) {
    unsigned best = 1;
    double best_cost = 1e300;
    for (unsigned c = 1; c <= 14; c++) {
        double cost = (double)((256 + c - 1) / c) * ((double)n + (double)(1u << c));
        if (cost < best_cost) { best_cost = cost; best = c; }
    }
    return best;
}

/* Signed digits in [-2^(c-1), 2^(c-1)] of a scalar read as a 255-bit integer (bit 255
 * ignored, as crypto_scalarmult_ristretto255 does): sum digit_w 2^(c w) = s. */
static void msm_recode(int32_t *digits, const uint8_t s[32], unsigned c, unsigned windows) {
    uint64_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = 0;
        for (int j = 7; j >= 0; j--) w[i] = (w[i] << 8) | s[8 * i + j];
    }
    w[3] &= 0x7fffffffffffffffULL;
    int32_t carry = 0, half = 1 << (c - 1);
    for (unsigned k = 0; k < windows; k++) {
        int32_t d = (k * c < 256 ? (int32_t)msm_window_digit(w, k * c, c) : 0) + carry;
        carry = d > half;
        digits[k] = d - (carry << c);
    }
}

static void ge_words_identity(ge_words *g) {
    memset(g, 0, sizeof *g);
    g->c[1][0] = 1; /* Y = 1 */
    g->c[2][0] = 1; /* Z = 1 */
}

#ifdef FE_HAS_ROWS /* the field moves whole rows (fe51x8_ifma.h) */
static void ge_gather(ge *r, ge_words *const src[LANES]) {
    const uint64_t *rows[LANES];
    fe c[4];
    for (int l = 0; l < LANES; l++) rows[l] = src[l]->c[0];
    fe_gather_rows(c, 4, rows);
    r->X = c[0]; r->Y = c[1]; r->Z = c[2]; r->T = c[3];
}

static void ge_scatter(ge_words *const dst[LANES], const ge *g) {
    uint64_t *rows[LANES];
    const fe c[4] = {g->X, g->Y, g->Z, g->T};
    for (int l = 0; l < LANES; l++) rows[l] = dst[l]->c[0];
    fe_scatter_rows(rows, c, 4);
}

static void cached_gather(fe c[3], const cached_words *const q[LANES]) {
    const uint64_t *rows[LANES];
    for (int l = 0; l < LANES; l++) rows[l] = q[l]->c[0];
    fe_gather_rows(c, 3, rows);
}
#else
static void ge_gather(ge *r, ge_words *const src[LANES]) {
    const uint64_t *p[LANES];
    fe *coords[4] = {&r->X, &r->Y, &r->Z, &r->T};
    for (int k = 0; k < 4; k++) {
        for (int l = 0; l < LANES; l++) p[l] = src[l]->c[k];
        fe_gather(coords[k], p);
    }
}

static void ge_scatter(ge_words *const dst[LANES], const ge *g) {
    uint64_t *p[LANES];
    const fe *coords[4] = {&g->X, &g->Y, &g->Z, &g->T};
    for (int k = 0; k < 4; k++) {
        for (int l = 0; l < LANES; l++) p[l] = dst[l]->c[k];
        fe_scatter(p, coords[k]);
    }
}

static void cached_gather(fe c[3], const cached_words *const q[LANES]) {
    const uint64_t *src[LANES];
    for (int k = 0; k < 3; k++) {
        for (int l = 0; l < LANES; l++) src[l] = q[l]->c[k];
        fe_gather(&c[k], src);
    }
}
#endif

/* r = p + q for q with Z = 1 (a decoded point, negated in the lanes of `neg`). */
static void ge_add_z1(ge *r, const ge *p, const cached_words *const q[LANES], msk neg) {
    fe c[3], ypx, ymx, t2d, swapped, negt, zz2;
    cached_gather(c, q);
    ypx = c[0]; ymx = c[1]; t2d = c[2];
    swapped = ypx;
    fe_cmov(&ypx, &ymx, neg);
    fe_cmov(&ymx, &swapped, neg);
    fe_neg(&negt, &t2d);
    fe_cmov(&t2d, &negt, neg);
    fe_add(&zz2, &p->Z, &p->Z);
    ge_add_cached_parts(r, p, &ypx, &ymx, &t2d, &zz2);
}

/* Decode every point into cached form (Z = 1); the index of the first that fails RFC 9496
 * Decode or is the identity, or -1. */
static long msm_decode_all(cached_words *cached, const uint8_t *points, size_t n) {
    uint64_t valid[LANES];
    uint8_t identity[LANES];
    uint64_t *dst[LANES];
    cached_words spare[LANES];
    ge p;
    ge_cached q;
    for (size_t i = 0; i < n; i += LANES) {
        size_t k = decode_lanes(&p, valid, identity, points, i, n);
        for (size_t l = 0; l < k; l++)
            if (!valid[l] || identity[l]) return (long)(i + l);
        ge_to_cached(&q, &p);
        const fe *coords[3] = {&q.YpX, &q.YmX, &q.T2d};
        for (int c = 0; c < 3; c++) {
            for (size_t l = 0; l < LANES; l++) dst[l] = l < k ? cached[i + l].c[c] : spare[l].c[c];
            fe_scatter(dst, coords[c]);
        }
    }
    return -1;
}

/* Every (window, digit) term added into its bucket, LANES distinct buckets at a time. */
static void msm_fill_buckets(ge_words *buckets, size_t per_window, const int32_t *digits, const cached_words *cached,
                             size_t n, unsigned windows) {
    ge_words spare[LANES], *dst[LANES];
    const cached_words *src[LANES];
    uint64_t neg[LANES];
    size_t used = 0;
    ge acc;
    for (size_t i = 0; i <= n; i++) {
        for (unsigned w = 0; w < (i < n ? windows : 1); w++) {
            int32_t digit = i < n ? digits[i * windows + w] : 0;
            ge_words *bucket = i < n ? &buckets[w * per_window + (size_t)(digit < 0 ? -digit : digit)] : NULL;
            int repeat = 0;
            for (size_t l = 0; l < used; l++) repeat |= dst[l] == bucket;
            if (used > 0 && (used == LANES || repeat || i == n)) {
                for (size_t l = used; l < LANES; l++) {
                    ge_words_identity(&spare[l]);
                    dst[l] = &spare[l];
                    src[l] = src[0];
                    neg[l] = 0;
                }
                ge_gather(&acc, dst);
                ge_add_z1(&acc, &acc, src, msk_from_flags(neg));
                ge_scatter(dst, &acc);
                used = 0;
            }
            if (i == n || digit == 0) continue;
            dst[used] = bucket;
            src[used] = &cached[i];
            neg[used] = digit < 0;
            used++;
        }
    }
}

/* sums[w] = sum_j j * bucket(w, j), LANES windows at a time (running sums from the top). */
static void msm_window_sums(ge_words *sums, ge_words *buckets, size_t per_window, unsigned windows) {
    ge_words *row[LANES], *out[LANES], spare[LANES];
    ge running, total, b;
    ge_cached tmp;
    for (unsigned w0 = 0; w0 < windows; w0 += LANES) {
        for (unsigned l = 0; l < LANES; l++) {
            unsigned w = w0 + l < windows ? w0 + l : w0;
            row[l] = &buckets[w * per_window];
            out[l] = w0 + l < windows ? &sums[w] : &spare[l];
        }
        ge_identity(&running);
        ge_identity(&total);
        for (size_t j = per_window - 1; j >= 1; j--) {
            ge_words *cell[LANES];
            for (unsigned l = 0; l < LANES; l++) cell[l] = row[l] + j;
            ge_gather(&b, cell);
            ge_to_cached(&tmp, &b);
            ge_add(&running, &running, &tmp);
            ge_to_cached(&tmp, &running);
            ge_add(&total, &total, &tmp);
        }
        ge_scatter(out, &total);
    }
}

/* out = Encode(sum scalar_i * point_i). Returns -1, the index of the first point that
 * fails RFC 9496 Decode or is the identity, or -2 when memory ran out. */
long NS(msm)(uint8_t out[32], const uint8_t *scalars, const uint8_t *points, size_t n) {
    unsigned c = msm_window_width(n), windows = (256 + c - 1) / c;
    size_t per_window = ((size_t)1 << (c - 1)) + 1, items = n ? n : 1;
    cached_words *cached = malloc(items * sizeof *cached);
    int32_t *digits = malloc(items * windows * sizeof *digits);
    ge_words *buckets = malloc(windows * per_window * sizeof *buckets), *sums = malloc(windows * sizeof *sums);
    long bad = -2;
    if (cached != NULL && digits != NULL && buckets != NULL && sums != NULL) {
        bad = msm_decode_all(cached, points, n);
        if (bad == -1) {
            ge acc, term;
            ge_cached tmp;
            ge_words *all[LANES];
            uint8_t enc[32 * LANES];
            for (size_t i = 0; i < n; i++) msm_recode(digits + i * windows, scalars + 32 * i, c, windows);
            for (size_t b = 0; b < windows * per_window; b++) ge_words_identity(&buckets[b]);
            msm_fill_buckets(buckets, per_window, digits, cached, n, windows);
            msm_window_sums(sums, buckets, per_window, windows);
            ge_identity(&acc); /* every lane computes the same sum; lane 0 is kept */
            for (unsigned w = windows; w-- > 0;) {
                for (unsigned k = 0; k < c; k++) ge_dbl(&acc, &acc, k + 1 == c);
                for (unsigned l = 0; l < LANES; l++) all[l] = &sums[w];
                ge_gather(&term, all);
                ge_to_cached(&tmp, &term);
                ge_add(&acc, &acc, &tmp);
            }
            r255_encode(enc, &acc);
            memcpy(out, enc, 32);
        }
    }
    free(cached);
    free(digits);
    free(buckets);
    free(sums);
    return bad;
}

#endif
