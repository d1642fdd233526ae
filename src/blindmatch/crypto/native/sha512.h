/* SHA-512 (FIPS 180-4) and RFC 9380 expand_message_xmd with SHA-512, for hash-to-group
 * in C so that a batch hashes without the GIL. */
#ifndef R255_SHA512_H
#define R255_SHA512_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t h[8];
    uint8_t buf[128];
    size_t fill;
    uint64_t bytes;
} sha512_ctx;

/* FIPS 180-4 section 4.2.3, shared with the eight-lane compression (sha512x8.c). */
extern const uint64_t sha512_round_constants[80];

void sha512_init(sha512_ctx *c);
void sha512_update(sha512_ctx *c, const uint8_t *data, size_t len);
void sha512_final(sha512_ctx *c, uint8_t out[64]);

/* The state after absorbing RFC 9380's Z_pad (one block of 128 zero bytes), with which
 * every b_0 of expand_message_xmd starts: computed once per batch, it saves one of the
 * three or four compressions of each message. */
void sha512_after_zpad(sha512_ctx *c);

/* expand_message_xmd(msg, dst, 64) (RFC 9380 section 5.3.1): the 64 uniform bytes of RFC 9497
 * HashToGroup and HashToScalar, from zpad as sha512_after_zpad leaves it. dst_len must be at
 * most 255 (checked by the caller). */
void expand_xmd_sha512_64(uint8_t out[64], const sha512_ctx *zpad, const uint8_t *msg, size_t msg_len,
                          const uint8_t *dst, size_t dst_len);

/* expand_xmd_sha512_64 of eight messages at once, by sha512x8 where they fit (same padded
 * block count) and one by one otherwise; call only where sha512x8_available(). */
void expand_xmd_sha512_64_x8(uint8_t out[8 * 64], const sha512_ctx *zpad, const uint8_t *const msgs[8],
                             const size_t lens[8], const uint8_t *dst, size_t dst_len);

#endif
