/* SHA-512 as specified in FIPS 180-4 section 6.4; expand_message_xmd per RFC 9380 5.3.1. */
#include "sha512.h"
#include "sha512x8.h"
#include <string.h>

const uint64_t sha512_round_constants[80] = {
    0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL, 0x3956c25bf348b538ULL,
    0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL, 0xd807aa98a3030242ULL, 0x12835b0145706fbeULL,
    0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL, 0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL,
    0xc19bf174cf692694ULL, 0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
    0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL, 0x983e5152ee66dfabULL,
    0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL, 0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL,
    0x06ca6351e003826fULL, 0x142929670a0e6e70ULL, 0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL,
    0x53380d139d95b3dfULL, 0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
    0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL, 0xd192e819d6ef5218ULL,
    0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL, 0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL,
    0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL, 0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL,
    0x682e6ff3d6b2b8a3ULL, 0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
    0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL, 0xca273eceea26619cULL,
    0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL, 0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL,
    0x113f9804bef90daeULL, 0x1b710b35131c471bULL, 0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL,
    0x431d67c49c100d4cULL, 0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL};

static inline uint64_t ror(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static void compress(uint64_t h[8], const uint8_t block[128]) {
    uint64_t w[80], a, b, c, d, e, f, g, hh;
    for (int t = 0; t < 16; t++) {
        w[t] = 0;
        for (int j = 0; j < 8; j++) w[t] = (w[t] << 8) | block[8 * t + j];
    }
    for (int t = 16; t < 80; t++) {
        uint64_t s0 = ror(w[t - 15], 1) ^ ror(w[t - 15], 8) ^ (w[t - 15] >> 7);
        uint64_t s1 = ror(w[t - 2], 19) ^ ror(w[t - 2], 61) ^ (w[t - 2] >> 6);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (int t = 0; t < 80; t++) {
        uint64_t t1 = hh + (ror(e, 14) ^ ror(e, 18) ^ ror(e, 41)) + ((e & f) ^ (~e & g)) + sha512_round_constants[t] + w[t];
        uint64_t t2 = (ror(a, 28) ^ ror(a, 34) ^ ror(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void sha512_init(sha512_ctx *c) {
    static const uint64_t iv[8] = {0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
                                   0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
                                   0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};
    memcpy(c->h, iv, sizeof iv);
    c->fill = 0;
    c->bytes = 0;
}

void sha512_update(sha512_ctx *c, const uint8_t *data, size_t len) {
    c->bytes += len;
    while (len > 0) {
        size_t take = 128 - c->fill < len ? 128 - c->fill : len;
        memcpy(c->buf + c->fill, data, take);
        c->fill += take;
        data += take;
        len -= take;
        if (c->fill == 128) {
            compress(c->h, c->buf);
            c->fill = 0;
        }
    }
}

void sha512_final(sha512_ctx *c, uint8_t out[64]) {
    uint64_t bits = c->bytes * 8;
    c->buf[c->fill++] = 0x80;
    if (c->fill > 112) {
        memset(c->buf + c->fill, 0, 128 - c->fill);
        compress(c->h, c->buf);
        c->fill = 0;
    }
    memset(c->buf + c->fill, 0, 120 - c->fill); /* the top 64 bits of the 128-bit length are zero */
    for (int j = 0; j < 8; j++) c->buf[127 - j] = (uint8_t)(bits >> (8 * j));
    compress(c->h, c->buf);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) out[8 * i + j] = (uint8_t)(c->h[i] >> (56 - 8 * j));
}

void sha512_after_zpad(sha512_ctx *c) {
    static const uint8_t z_pad[128] = {0};
    sha512_init(c);
    sha512_update(c, z_pad, sizeof z_pad);
}

void expand_xmd_sha512_64(uint8_t out[64], const sha512_ctx *zpad, const uint8_t *msg, size_t msg_len,
                          const uint8_t *dst, size_t dst_len) {
    const uint8_t l_i_b[3] = {0, 64, 0}; /* I2OSP(64, 2) || I2OSP(0, 1) */
    const uint8_t dst_len_byte = (uint8_t)dst_len, one = 1;
    uint8_t b0[64];
    sha512_ctx c = *zpad; /* b_0 = H(Z_pad || msg || l_i_b_str || I2OSP(0, 1) || DST_prime) */
    sha512_update(&c, msg, msg_len);
    sha512_update(&c, l_i_b, 3);
    sha512_update(&c, dst, dst_len);
    sha512_update(&c, &dst_len_byte, 1);
    sha512_final(&c, b0);
    /* ell = 1: the output is b_1 = H(b_0 || I2OSP(1, 1) || DST_prime). */
    sha512_init(&c);
    sha512_update(&c, b0, 64);
    sha512_update(&c, &one, 1);
    sha512_update(&c, dst, dst_len);
    sha512_update(&c, &dst_len_byte, 1);
    sha512_final(&c, out);
}

void expand_xmd_sha512_64_x8(uint8_t out[8 * 64], const sha512_ctx *zpad, const uint8_t *const msgs[8],
                             const size_t lens[8], const uint8_t *dst, size_t dst_len) {
    uint8_t m0[8][128 * SHA512X8_MAX_BLOCKS], m1[8][64 + 1 + 255 + 1], b0[8 * 64];
    const uint8_t *p0[8], *p1[8];
    size_t l0[8], l1[8];
    int fits = 1;
    for (int l = 0; l < 8; l++) fits &= lens[l] + 3 + dst_len + 1 <= sizeof m0[l];
    if (fits) {
        for (int l = 0; l < 8; l++) { /* msg || I2OSP(64, 2) || I2OSP(0, 1) || DST_prime, after Z_pad */
            uint8_t *m = m0[l];
            memcpy(m, msgs[l], lens[l]);
            m[lens[l]] = 0; m[lens[l] + 1] = 64; m[lens[l] + 2] = 0;
            memcpy(m + lens[l] + 3, dst, dst_len);
            m[lens[l] + 3 + dst_len] = (uint8_t)dst_len;
            p0[l] = m;
            l0[l] = lens[l] + 3 + dst_len + 1;
        }
        if (sha512x8(b0, zpad, p0, l0) == 0) {
            sha512_ctx iv;
            sha512_init(&iv);
            for (int l = 0; l < 8; l++) { /* b_0 || I2OSP(1, 1) || DST_prime */
                memcpy(m1[l], b0 + 64 * l, 64);
                m1[l][64] = 1;
                memcpy(m1[l] + 65, dst, dst_len);
                m1[l][65 + dst_len] = (uint8_t)dst_len;
                p1[l] = m1[l];
                l1[l] = 66 + dst_len;
            }
            if (sha512x8(out, &iv, p1, l1) == 0) return;
        }
    }
    for (int l = 0; l < 8; l++) expand_xmd_sha512_64(out + 64 * l, zpad, msgs[l], lens[l], dst, dst_len);
}
