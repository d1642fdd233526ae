/* The AVX-512 IFMA backend: eight elements at a time, one per 64-bit lane.
 * Compiled for avx512f + avx512ifma by target pragma so the build works with any
 * x86_64 compiler flags; called only after the run-time CPU check in module.c.
 * On other architectures or compilers this translation unit is empty. */
#include "r255_backends.h"

#if R255_HAVE_IFMA
#pragma GCC target("avx512f,avx512ifma")
#include "fe51x8_ifma.h"
#include "r255_group.h"
#define NS(name) r255_ifma_##name
#include "r255_ops.h"
#include "msm_lanes.h"
#endif
