/* RFC 9496 section 4.1 constants in radix 2^51 (five limbs, least significant first).
 * Derived from the decimal values printed in the RFC; tests/test_crypto_native.py
 * recomputes them from the decimal values in tests/oracle_ristretto255.py. */
#ifndef R255_CONSTS_H
#define R255_CONSTS_H
#include <stdint.h>

#define MASK51 0x7ffffffffffffULL

static const uint64_t K_ONE[5] = {1, 0, 0, 0, 0};
static const uint64_t K_D[5] = {0x34dca135978a3ULL, 0x1a8283b156ebdULL, 0x5e7a26001c029ULL, 0x739c663a03cbbULL, 0x52036cee2b6ffULL};
static const uint64_t K_D2[5] = {0x69b9426b2f159ULL, 0x35050762add7aULL, 0x3cf44c0038052ULL, 0x6738cc7407977ULL, 0x2406d9dc56dffULL};
static const uint64_t K_SQRT_M1[5] = {0x61b274a0ea0b0ULL, 0x0d5a5fc8f189dULL, 0x7ef5e9cbd0c60ULL, 0x78595a6804c9eULL, 0x2b8324804fc1dULL};
static const uint64_t K_SQRT_AD_MINUS_ONE[5] = {0x7f6a0497b2e1bULL, 0x1836f0a97afd2ULL, 0x7d747f6be7638ULL, 0x456079e7e6498ULL, 0x376931bf2b834ULL};
static const uint64_t K_INVSQRT_A_MINUS_D[5] = {0x0fdaa805d40eaULL, 0x2eb482e57d339ULL, 0x007610274bc58ULL, 0x6510b613dc8ffULL, 0x786c8905cfaffULL};
static const uint64_t K_ONE_MINUS_D_SQ[5] = {0x409c1945fc176ULL, 0x719abc6a1fc4fULL, 0x1c37f90b20684ULL, 0x06bccca55eedfULL, 0x029072a8b2b3eULL};
static const uint64_t K_D_MINUS_ONE_SQ[5] = {0x55aaa44ed4d20ULL, 0x59603c3332635ULL, 0x26d3baf4a7928ULL, 0x120a66e6997a9ULL, 0x5968b37af66c2ULL};

/* 32 little-endian bytes -> five 51-bit limbs; bit 255 is ignored (callers check it). */
static inline void limbs_from_bytes(uint64_t h[5], const uint8_t s[32]) {
    uint64_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = 0;
        for (int j = 7; j >= 0; j--) w[i] = (w[i] << 8) | s[8 * i + j];
    }
    h[0] = w[0] & MASK51;
    h[1] = ((w[0] >> 51) | (w[1] << 13)) & MASK51;
    h[2] = ((w[1] >> 38) | (w[2] << 26)) & MASK51;
    h[3] = ((w[2] >> 25) | (w[3] << 39)) & MASK51;
    h[4] = (w[3] >> 12) & MASK51;
}

/* Five canonical 51-bit limbs (value < p) -> 32 little-endian bytes. */
static inline void limbs_to_bytes(uint8_t s[32], const uint64_t h[5]) {
    uint64_t w[4];
    w[0] = h[0] | (h[1] << 51);
    w[1] = (h[1] >> 13) | (h[2] << 38);
    w[2] = (h[2] >> 26) | (h[3] << 25);
    w[3] = (h[3] >> 39) | (h[4] << 12);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) s[8 * i + j] = (uint8_t)(w[i] >> (8 * j));
}

#endif
