/* Eight SHA-512 computations at once (FIPS 180-4 section 6.4), one per 64-bit lane of
 * AVX-512F: the batches' hashes (HashToGroup's and the composite weights'
 * expand_message_xmd, Finalize) are independent messages of similar length, and one
 * lane-parallel compression does eight blocks for little more than the cost of one
 * scalar block, whose rounds are a chain of dependent additions. */
#ifndef R255_SHA512X8_H
#define R255_SHA512X8_H
#include <stddef.h>
#include <stdint.h>
#include "sha512.h"

#define SHA512X8_MAX_BLOCKS 4

/* Whether this CPU runs sha512x8 (AVX-512F; always 0 where the build has no such path). */
int sha512x8_available(void);

/* out + 64 l = SHA-512(what `start` absorbed || msgs[l][0 .. lens[l])) for the eight lanes l.
 * start must be at a block boundary (fill 0). Returns 0, or -1 without writing when the
 * lanes' padded messages differ in block count or exceed SHA512X8_MAX_BLOCKS blocks (the
 * caller then hashes them one by one). */
int sha512x8(uint8_t out[8 * 64], const sha512_ctx *start, const uint8_t *const msgs[8], const size_t lens[8]);

#endif
