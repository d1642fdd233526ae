#include "r255_backends.h"
/* The portable backend: radix 2^51 with unsigned __int128, one element at a time. */
#include "fe51.h"
#include "r255_group.h"
#define NS(name) r255_portable_##name
#include "r255_ops.h"
#include "msm_lanes.h"
