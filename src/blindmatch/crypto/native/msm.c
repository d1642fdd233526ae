/* RFC 9497 ComputeComposites' weights d_i (see msm.h). */
#include "msm.h"
#include <string.h>
#include "scalar.h"
#include "sha512.h"

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
    sha512_ctx zpad;
    sha512_after_zpad(&zpad);
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
        expand_xmd_sha512_64(uniform, &zpad, transcript, k, dst, dst_len);
        scalar_reduce64(out + 32 * i, uniform);
    }
}
