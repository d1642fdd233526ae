/* RFC 9497 ComputeComposites' weights d_i (see msm.h). */
#include "msm.h"
#include <string.h>
#include "scalar.h"
#include "sha512.h"
#include "sha512x8.h"

/* transcript_i without its seed prefix: I2OSP(index, 2) || I2OSP(32, 2) || C_i || I2OSP(32, 2) ||
 * D_i || "Composite", written at `at`; returns the transcript's whole length. */
static size_t transcript_tail(uint8_t *t, size_t at, size_t index, const uint8_t *ci, const uint8_t *di) {
    static const uint8_t label[9] = {'C', 'o', 'm', 'p', 'o', 's', 'i', 't', 'e'};
    t[at++] = (uint8_t)(index >> 8);
    t[at++] = (uint8_t)index;
    t[at++] = 0;
    t[at++] = 32;
    memcpy(t + at, ci, 32);
    at += 32;
    t[at++] = 0;
    t[at++] = 32;
    memcpy(t + at, di, 32);
    at += 32;
    memcpy(t + at, label, sizeof label);
    return at + sizeof label;
}

/* Eight weights at a time through the eight-lane SHA-512 where the CPU has it (the
 * transcripts are all of one length), the rest one by one. */
void r255_composite_weights(uint8_t *out, const uint8_t *seed, size_t seed_len, const uint8_t *c, const uint8_t *d,
                            size_t start, size_t n, const uint8_t *dst, size_t dst_len) {
    uint8_t transcript[8][2 + 255 + 2 + 34 + 34 + 9], uniform[8 * 64];
    const uint8_t *msgs[8];
    size_t lens[8], i = 0;
    for (int l = 0; l < 8; l++) {
        transcript[l][0] = (uint8_t)(seed_len >> 8);
        transcript[l][1] = (uint8_t)seed_len;
        memcpy(transcript[l] + 2, seed, seed_len);
        msgs[l] = transcript[l];
    }
    sha512_ctx zpad;
    sha512_after_zpad(&zpad);
    if (sha512x8_available())
        for (; i + 8 <= n; i += 8) {
            for (size_t l = 0; l < 8; l++)
                lens[l] = transcript_tail(transcript[l], 2 + seed_len, start + i + l, c + 32 * (i + l), d + 32 * (i + l));
            expand_xmd_sha512_64_x8(uniform, &zpad, msgs, lens, dst, dst_len);
            for (size_t l = 0; l < 8; l++) scalar_reduce64(out + 32 * (i + l), uniform + 64 * l);
        }
    for (; i < n; i++) {
        size_t k = transcript_tail(transcript[0], 2 + seed_len, start + i, c + 32 * i, d + 32 * i);
        expand_xmd_sha512_64(uniform, &zpad, transcript[0], k, dst, dst_len);
        scalar_reduce64(out + 32 * i, uniform);
    }
}
