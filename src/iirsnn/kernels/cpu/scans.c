/* Compiled CPU kernels of iirsnn: the neuron and synapse-filter scans, forward and backward,
 * for float32 and float64. Built at first use by iirsnn/kernels/cpu/build.py and called through ctypes. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define CHUNK 256
#define PREFETCH 2 /* time steps ahead */
enum { SURR_GAUSSIAN = 0, SURR_FAST_SIGMOID = 1, SURR_SIGMOID = 2, SURR_ARCTAN = 3, SURR_TRIANGLE = 4 };

/* vector variants from glibc's libmvec, so that loops calling exp vectorise without -ffast-math */
__attribute__((simd("notinbranch"))) extern float expf(float);
__attribute__((simd("notinbranch"))) extern double exp(double);

#define SCALAR float
#define FN(name) name##_f32
#define EXP expf
#include "scans_impl.h"
#undef SCALAR
#undef FN
#undef EXP

#define SCALAR double
#define FN(name) name##_f64
#define EXP exp
#include "scans_impl.h"
#undef SCALAR
#undef FN
#undef EXP
