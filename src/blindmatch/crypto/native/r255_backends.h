/* Declarations of every backend's batch entry points (see r255_ops.h). */
#ifndef R255_BACKENDS_H
#define R255_BACKENDS_H
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define R255_HAVE_IFMA 1
#define R255_HAVE_AVX2 1
#else
#define R255_HAVE_IFMA 0
#define R255_HAVE_AVX2 0
#endif

#define R255_DECLARE(prefix)                                                                          \
    void prefix##_mult(uint8_t *out, uint8_t *bad, const uint8_t *scalars, size_t scalar_stride,       \
                       const uint8_t *points, size_t n);                                               \
    void prefix##_from_uniform(uint8_t *out, uint8_t *bad, const uint8_t *uniform, size_t n,          \
                               const uint8_t *scalars, size_t scalar_stride);                          \
    void prefix##_validate(uint8_t *bad, const uint8_t *points, size_t n, int reject_identity);                   \
    void prefix##_add(uint8_t *out, uint8_t *bad, const uint8_t *p, const uint8_t *q, size_t n, int subtract);   \
    long prefix##_msm(uint8_t out[32], const uint8_t *scalars, const uint8_t *points, size_t n);

R255_DECLARE(r255_portable)
#if R255_HAVE_AVX2
R255_DECLARE(r255_avx2)
#endif
#if R255_HAVE_IFMA
R255_DECLARE(r255_ifma)
#endif

#endif
