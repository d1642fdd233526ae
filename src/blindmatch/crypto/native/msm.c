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
    uint64_t bits = w[word] >> shift;
    if (shift + width > 64 && word < 3) bits |= w[word + 1] << (64 - shift);
    return (unsigned)(bits & ((1u << width) - 1));
}

static unsigned window_width(size_t n) {
    unsigned c = 2;
    while (c < 16 && ((size_t)1 << (c + 3)) <= n) c++;
    return c;
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

/* Decode every point into cached form; the index of the first invalid one, or -1. */
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

static void pippenger(ge *acc, const uint64_t (*words)[4], const ge_cached *cached, size_t n, unsigned c,
                      ge *buckets, uint8_t *used) {
    size_t count = (size_t)1 << c;
    ge_cached tmp;
    ge_identity(acc);
    unsigned windows = (255 + c - 1) / c;
    for (unsigned win = windows; win-- > 0;) {
        for (unsigned k = 0; k < c; k++) ge_dbl(acc, acc, k + 1 == c);
        memset(used, 0, count);
        for (size_t i = 0; i < n; i++) {
            unsigned digit = window_digit(words[i], win * c, c);
            if (digit == 0) continue;
            if (used[digit]) ge_add(&buckets[digit], &buckets[digit], &cached[i]);
            else {
                ge_identity(&buckets[digit]);
                ge_add(&buckets[digit], &buckets[digit], &cached[i]);
                used[digit] = 1;
            }
        }
        ge window_sum;
        sum_buckets(&window_sum, buckets, used, count);
        ge_to_cached(&tmp, &window_sum);
        ge_add(acc, acc, &tmp);
    }
}

long r255_msm_vartime(uint8_t out[32], const uint8_t *scalars, const uint8_t *points, size_t n) {
    unsigned c = window_width(n);
    size_t count = (size_t)1 << c;
    ge_cached *cached = malloc((n ? n : 1) * sizeof *cached);
    uint64_t (*words)[4] = malloc((n ? n : 1) * sizeof *words);
    ge *buckets = malloc(count * sizeof *buckets);
    uint8_t *used = malloc(count);
    long bad = -2;
    if (cached != NULL && words != NULL && buckets != NULL && used != NULL) {
        bad = decode_all(cached, points, n);
        if (bad == -1) {
            ge acc;
            for (size_t i = 0; i < n; i++) scalar_words(words[i], scalars + 32 * i);
            pippenger(&acc, (const uint64_t (*)[4])words, cached, n, c, buckets, used);
            r255_encode(out, &acc);
        }
    }
    free(cached);
    free(words);
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
