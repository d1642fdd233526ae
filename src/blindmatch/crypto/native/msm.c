/* Pippenger's bucket method over the portable radix-2^51 arithmetic (see msm.h).
 * Branches and table indices depend on the scalars, so callers pass public data only. */
#include "msm.h"
#include <stdlib.h>
#include <string.h>
#include "fe51.h"
#include "scalar.h"
#include "sha512.h"
#pragma GCC diagnostic ignored "-Wunused-function" /* the one-way map is not needed here */
#include "r255_group.h"

/* Bits [pos, pos + width) of a 255-bit little-endian scalar held as four words. */
static unsigned window_digit(const uint64_t w[4], unsigned pos, unsigned width) {
    unsigned word = pos / 64, shift = pos % 64;
    uint64_t bits = w[word] >> shift;  /* pos < 256 */
    if (shift + width > 64 && word < 3) bits |= w[word + 1] << (64 - shift);
    return (unsigned)(bits & ((1u << width) - 1));
}

/* The width c minimising the additions, ceil(256 / c) windows of (n + 2^c) each. */
static unsigned window_width(size_t n) {
    unsigned best = 1;
    double best_cost = 1e300;
    for (unsigned c = 1; c <= 16; c++) {
        double cost = (double)((256 + c - 1) / c) * ((double)n + (double)(1u << c));
        if (cost < best_cost) { best_cost = cost; best = c; }
    }
    return best;
}

/* Signed digits in [-2^(c-1), 2^(c-1)], ceil(256 / c) of them: sum digit_w 2^(c w) = s. */
static void recode_signed(int32_t *digits, const uint64_t w[4], unsigned c, unsigned windows) {
    int32_t carry = 0, half = 1 << (c - 1);
    for (unsigned k = 0; k < windows; k++) {
        int32_t d = (k * c < 256 ? (int32_t)window_digit(w, k * c, c) : 0) + carry;
        carry = d > half;
        digits[k] = d - (carry << c);
    }
}

static void scalar_words(uint64_t w[4], const uint8_t s[32]) {
    for (int i = 0; i < 4; i++) {
        w[i] = 0;
        for (int j = 7; j >= 0; j--) w[i] = (w[i] << 8) | s[8 * i + j];
    }
    w[3] &= 0x7fffffffffffffffULL; /* bit 255 ignored, as crypto_scalarmult_ristretto255 does */
}

static int is_zero32(const uint8_t *p) {
    uint8_t any = 0;
    for (int i = 0; i < 32; i++) any |= p[i];
    return any == 0;
}

/* r = p + q for q in cached form with Z = 1 (a decoded point): ge_add minus one multiplication. */
static void ge_add_z1(ge *r, const ge *p, const ge_cached *q) {
    fe zz2;
    fe_add(&zz2, &p->Z, &p->Z);
    ge_add_given_zz2(r, p, q, &zz2);
}

/* Decode every point into cached form (Z = 1, as decoding leaves it); the index of the first invalid one, or -1. */
static long decode_all(ge_cached *cached, const uint8_t *points, size_t n) {
    ge p;
    for (size_t i = 0; i < n; i++) {
        uint64_t valid[1];
        msk_to_flags(valid, r255_decode(&p, points + 32 * i));
        if (!valid[0] || is_zero32(points + 32 * i)) return (long)i;
        ge_to_cached(&cached[i], &p);
    }
    return -1;
}

/* acc = sum over buckets j of j * bucket[j] (running sums from the top). */
static void sum_buckets(ge *acc, ge *buckets, const uint8_t *used, size_t count) {
    ge running, total;
    ge_cached tmp;
    int have_running = 0, have_total = 0;
    for (size_t j = count; j-- > 1;) {
        if (used[j]) {
            if (have_running) { ge_to_cached(&tmp, &buckets[j]); ge_add(&running, &running, &tmp); }
            else { running = buckets[j]; have_running = 1; }
        }
        if (!have_running) continue;
        if (have_total) { ge_to_cached(&tmp, &running); ge_add(&total, &total, &tmp); }
        else { total = running; have_total = 1; }
    }
    if (have_total) *acc = total;
    else ge_identity(acc);
}

static void negate_cached(ge_cached *r, const ge_cached *q) {
    r->YpX = q->YmX;
    r->YmX = q->YpX;
    r->Z = q->Z;
    fe_neg(&r->T2d, &q->T2d);
}

/* Windows from the top: acc = 2^c acc + sum_j j * bucket_j, bucket_j holding the points whose
 * digit in this window is +-j (negated for negative digits). */
static void pippenger(ge *acc, const int32_t *digits, const ge_cached *cached, size_t n, unsigned c,
                      unsigned windows, ge *buckets, uint8_t *used) {
    size_t count = ((size_t)1 << (c - 1)) + 1;
    ge_cached tmp;
    ge_identity(acc);
    for (unsigned win = windows; win-- > 0;) {
        for (unsigned k = 0; k < c; k++) ge_dbl(acc, acc, k + 1 == c);
        memset(used, 0, count);
        for (size_t i = 0; i < n; i++) {
            int32_t digit = digits[i * windows + win];
            if (digit == 0) continue;
            size_t j = (size_t)(digit < 0 ? -digit : digit);
            if (!used[j]) {
                ge_identity(&buckets[j]);
                used[j] = 1;
            }
            if (digit > 0) ge_add_z1(&buckets[j], &buckets[j], &cached[i]);
            else {
                negate_cached(&tmp, &cached[i]);
                ge_add_z1(&buckets[j], &buckets[j], &tmp);
            }
        }
        ge window_sum;
        sum_buckets(&window_sum, buckets, used, count);
        ge_to_cached(&tmp, &window_sum);
        ge_add(acc, acc, &tmp);
    }
}

long r255_msm_vartime(uint8_t out[32], const uint8_t *scalars, const uint8_t *points, size_t n) {
    unsigned c = window_width(n), windows = (256 + c - 1) / c;
    size_t count = ((size_t)1 << (c - 1)) + 1, items = n ? n : 1;
    ge_cached *cached = malloc(items * sizeof *cached);
    int32_t *digits = malloc(items * windows * sizeof *digits);
    ge *buckets = malloc(count * sizeof *buckets);
    uint8_t *used = malloc(count);
    long bad = -2;
    if (cached != NULL && digits != NULL && buckets != NULL && used != NULL) {
        bad = decode_all(cached, points, n);
        if (bad == -1) {
            ge acc;
            uint64_t w[4];
            for (size_t i = 0; i < n; i++) {
                scalar_words(w, scalars + 32 * i);
                recode_signed(digits + i * windows, w, c, windows);
            }
            pippenger(&acc, digits, cached, n, c, windows, buckets, used);
            r255_encode(out, &acc);
        }
    }
    free(cached);
    free(digits);
    free(buckets);
    free(used);
    return bad;
}

void r255_composite_weights(uint8_t *out, const uint8_t *seed, size_t seed_len, const uint8_t *c, const uint8_t *d,
                            size_t start, size_t n, const uint8_t *dst, size_t dst_len) {
    static const uint8_t label[9] = {'C', 'o', 'm', 'p', 'o', 's', 'i', 't', 'e'};
    uint8_t transcript[2 + 255 + 2 + 34 + 34 + sizeof label], uniform[64];
    size_t at = 0;
    transcript[at++] = (uint8_t)(seed_len >> 8);
    transcript[at++] = (uint8_t)seed_len;
    memcpy(transcript + at, seed, seed_len);
    at += seed_len;
    size_t index_at = at;
    for (size_t i = 0; i < n; i++) {
        size_t k = index_at, index = start + i;
        transcript[k++] = (uint8_t)(index >> 8);
        transcript[k++] = (uint8_t)index;
        transcript[k++] = 0;
        transcript[k++] = 32;
        memcpy(transcript + k, c + 32 * i, 32);
        k += 32;
        transcript[k++] = 0;
        transcript[k++] = 32;
        memcpy(transcript + k, d + 32 * i, 32);
        k += 32;
        memcpy(transcript + k, label, sizeof label);
        k += sizeof label;
        expand_xmd_sha512_64(uniform, transcript, k, dst, dst_len);
        scalar_reduce64(out + 32 * i, uniform);
    }
}
