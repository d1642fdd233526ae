/* The weights d_i of RFC 9497 section 2.2.1 ComputeComposites (the multi-scalar
 * multiplication that sums d_i C_i is each backend's NS(msm), msm_lanes.h). */
#ifndef R255_MSM_H
#define R255_MSM_H
#include <stddef.h>
#include <stdint.h>

/* d_i = HashToScalar(I2OSP(len(seed), 2) || seed || I2OSP(start + i, 2) || I2OSP(32, 2) ||
 * C_i || I2OSP(32, 2) || D_i || "Composite") for i < n, with HashToScalar's DST (RFC 9497
 * section 2.2.1 ComputeComposites); seed_len and dst_len are at most 255. */
void r255_composite_weights(uint8_t *out, const uint8_t *seed, size_t seed_len, const uint8_t *c, const uint8_t *d,
                            size_t start, size_t n, const uint8_t *dst, size_t dst_len);

#endif
