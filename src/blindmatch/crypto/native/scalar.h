/* Arithmetic modulo the group order L = 2^252 + 27742317777372353535851937790883648493:
 * Montgomery multiplication on four 64-bit limbs and batched inversion (Montgomery's
 * trick), constant time in the scalars' values. */
#ifndef R255_SCALAR_H
#define R255_SCALAR_H
#include <stddef.h>
#include <stdint.h>

/* out_i = s_i^-1 mod L for n canonical scalars (each < L). Returns 0, or -1 if the
 * product of all scalars is zero (some scalar is zero), in which case out is zeroed. */
int scalar_invert_batch(uint8_t *out, const uint8_t *scalars, size_t n);

#endif
