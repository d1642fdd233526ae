/* Multi-scalar multiplication for public inputs (the DLEQ composites of RFC 9497
 * section 2.2.1) and the composites' weights d_i. Variable time: only for scalars and
 * points that are public (the d_i are hashes of public elements). */
#ifndef R255_MSM_H
#define R255_MSM_H
#include <stddef.h>
#include <stdint.h>

/* out = Encode(sum scalar_i * point_i) (Pippenger's bucket method, scalars read as
 * 255-bit integers like libsodium's). Returns -1, the index of the first point that
 * fails RFC 9496 Decode or is the identity, or -2 when memory ran out. decode_xy (one of the
 * backends' NS(decode_xy), so decoding runs on the CPU's widest path) decodes the points. */
typedef void (*r255_decode_xy_fn)(uint8_t *xy, uint8_t *bad, const uint8_t *points, size_t n);
long r255_msm_vartime(uint8_t out[32], const uint8_t *scalars, const uint8_t *points, size_t n,
                      r255_decode_xy_fn decode_xy);

/* d_i = HashToScalar(I2OSP(len(seed), 2) || seed || I2OSP(start + i, 2) || I2OSP(32, 2) ||
 * C_i || I2OSP(32, 2) || D_i || "Composite") for i < n, with HashToScalar's DST (RFC 9497
 * section 2.2.1 ComputeComposites); seed_len and dst_len are at most 255. */
void r255_composite_weights(uint8_t *out, const uint8_t *seed, size_t seed_len, const uint8_t *c, const uint8_t *d,
                            size_t start, size_t n, const uint8_t *dst, size_t dst_len);

#endif
