/* The AVX2 backend: four elements at a time, one per 64-bit lane, radix 2^25.5.
 * For x86_64 CPUs without AVX-512 IFMA. Compiled for avx2 by target pragma so the
 * build works with any x86_64 compiler flags; called only after the run-time CPU
 * check in module.c. On other architectures or compilers this unit is empty. */
#include "r255_backends.h"

#if R255_HAVE_AVX2
#pragma GCC target("avx2")
#include "fe25x4_avx2.h"
#include "r255_group.h"
#define NS(name) r255_avx2_##name
#include "r255_ops.h"
#include "msm_lanes.h"
#endif
