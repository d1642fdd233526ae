/* Eight-lane SHA-512 on AVX-512F (see sha512x8.h); compiled by target pragma like
 * r255_ifma.c and called only after the run-time CPU check. Same rounds as sha512.c:
 * rotations are vprorq, Ch, Maj and the three-way xors one vpternlogq each. */
#include "sha512x8.h"
#include <string.h>
#include "r255_backends.h"

#if R255_HAVE_IFMA
#pragma GCC target("avx512f")
#include <immintrin.h>

/* No __builtin_cpu_init here: libgcc fills the CPU model in a constructor when the module
 * loads, and this runs without the GIL, where a second initialisation would race. */
int sha512x8_available(void) { return __builtin_cpu_supports("avx512f"); }

#define XOR3(a, b, c) _mm512_ternarylogic_epi64(a, b, c, 0x96)
#define CHV(e, f, g) _mm512_ternarylogic_epi64(e, f, g, 0xca)
#define MAJV(a, b, c) _mm512_ternarylogic_epi64(a, b, c, 0xe8)
#define ADD(a, b) _mm512_add_epi64(a, b)
#define BSIG0V(x) XOR3(_mm512_ror_epi64(x, 28), _mm512_ror_epi64(x, 34), _mm512_ror_epi64(x, 39))
#define BSIG1V(x) XOR3(_mm512_ror_epi64(x, 14), _mm512_ror_epi64(x, 18), _mm512_ror_epi64(x, 41))
#define SSIG0V(x) XOR3(_mm512_ror_epi64(x, 1), _mm512_ror_epi64(x, 8), _mm512_srli_epi64(x, 7))
#define SSIG1V(x) XOR3(_mm512_ror_epi64(x, 19), _mm512_ror_epi64(x, 61), _mm512_srli_epi64(x, 6))

/* Block `block` of every lane's padded message: word t of lane l at pad[l] + 128 block + 8 t. */
static void compress8(__m512i h[8], const uint8_t *const pad[8], size_t block) {
    __m512i w[16], s[8];
    for (int t = 0; t < 16; t++) {
        uint64_t v[8];
        for (int l = 0; l < 8; l++) {
            memcpy(&v[l], pad[l] + 128 * block + 8 * t, 8);
            v[l] = __builtin_bswap64(v[l]);
        }
        w[t] = _mm512_loadu_si512((const void *)v);
    }
    for (int i = 0; i < 8; i++) s[i] = h[i];
    for (int t = 0; t < 80; t++) {
        __m512i wt;
        if (t < 16) wt = w[t];
        else {
            wt = ADD(ADD(w[t & 15], SSIG0V(w[(t + 1) & 15])), ADD(w[(t + 9) & 15], SSIG1V(w[(t + 14) & 15])));
            w[t & 15] = wt;
        }
        __m512i t1 = ADD(ADD(ADD(s[7], BSIG1V(s[4])), CHV(s[4], s[5], s[6])),
                         ADD(_mm512_set1_epi64((long long)sha512_round_constants[t]), wt));
        __m512i t2 = ADD(BSIG0V(s[0]), MAJV(s[0], s[1], s[2]));
        s[7] = s[6]; s[6] = s[5]; s[5] = s[4]; s[4] = ADD(s[3], t1);
        s[3] = s[2]; s[2] = s[1]; s[1] = s[0]; s[0] = ADD(t1, t2);
    }
    for (int i = 0; i < 8; i++) h[i] = ADD(h[i], s[i]);
}

int sha512x8(uint8_t out[8 * 64], const sha512_ctx *start, const uint8_t *const msgs[8], const size_t lens[8]) {
    uint8_t pad[8][128 * SHA512X8_MAX_BLOCKS];
    const uint8_t *lanes[8];
    size_t blocks = (lens[0] + 17 + 127) / 128; /* the message, 0x80 and the 128-bit length */
    if (start->fill != 0 || blocks > SHA512X8_MAX_BLOCKS) return -1;
    for (int l = 1; l < 8; l++)
        if ((lens[l] + 17 + 127) / 128 != blocks) return -1;
    for (int l = 0; l < 8; l++) { /* section 5.1.2 padding, as sha512_final writes it */
        size_t len = lens[l], size = 128 * blocks;
        uint64_t bits = (start->bytes + len) * 8;
        memcpy(pad[l], msgs[l], len);
        pad[l][len] = 0x80;
        memset(pad[l] + len + 1, 0, size - len - 1);
        for (int j = 0; j < 8; j++) pad[l][size - 1 - j] = (uint8_t)(bits >> (8 * j));
        lanes[l] = pad[l];
    }
    __m512i h[8];
    for (int i = 0; i < 8; i++) h[i] = _mm512_set1_epi64((long long)start->h[i]);
    for (size_t b = 0; b < blocks; b++) compress8(h, lanes, b);
    for (int i = 0; i < 8; i++) {
        uint64_t v[8];
        _mm512_storeu_si512((void *)v, h[i]);
        for (int l = 0; l < 8; l++) {
            uint64_t be = __builtin_bswap64(v[l]);
            memcpy(out + 64 * l + 8 * i, &be, 8);
        }
    }
    return 0;
}
#else
int sha512x8_available(void) { return 0; }

int sha512x8(uint8_t out[8 * 64], const sha512_ctx *start, const uint8_t *const msgs[8], const size_t lens[8]) {
    (void)out; (void)start; (void)msgs; (void)lens;
    return -1;
}
#endif
