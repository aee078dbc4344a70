/* Compiled CPU kernels of iirsnn: the neuron and synapse-filter scans, forward and backward,
 * for float32 and float64. Built at first use by iirsnn/kernels/cpu/build.py and called through ctypes. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Magnitudes below the cut-off are written as exactly 0: no subnormal float is ever stored or carried (their
 * arithmetic runs in slow microcode on Intel cores). The values and why: iirsnn/subnormals.py, whose table they
 * must equal (tests/test_subnormals.py checks every backend at the cut-off). */
#define CUTOFF_F32 0x1p-100f
#define CUTOFF_F64 0x1p-900

#define CHUNK 256
#define PREFETCH 2 /* time steps ahead */
enum { SURR_GAUSSIAN = 0, SURR_FAST_SIGMOID = 1, SURR_SIGMOID = 2, SURR_ARCTAN = 3, SURR_TRIANGLE = 4 };

/* the vector variant from glibc's libmvec, so that float64 loops calling exp vectorise without -ffast-math */
__attribute__((simd("notinbranch"))) extern double exp(double);

/* exp for float32, inline so that it vectorises without a call per vector (a call spills every vector register):
 * exp(x) = 2^n exp(r), n = rint(x / ln 2), r = x - n ln 2 (Cody-Waite), and Cephes' degree-6 polynomial for
 * exp(r): about 1 ulp over the clamped range [-87, 88]. */
static inline float iirsnn_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float n = __builtin_rintf(x * 1.44269504088896341f);
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return e * scale;
}

/* Potentials stored as bfloat16 (an option of the fused layer): the upper 16 bits of the float32, rounded to
 * nearest even, then moved one bfloat16 step towards the float32 value's side of the threshold wherever
 * rounding crossed it, so that `stored > th` is exactly the spike the forward emitted (th > 0). */
static inline float bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    __builtin_memcpy(&f, &u, sizeof f);
    return f;
}

/* v rounded to the nearest bfloat16 (ties to even; NaN stays NaN): a gradient written for a bfloat16 product. */
static inline uint16_t f32_to_bf16(float v) {
    uint32_t u;
    __builtin_memcpy(&u, &v, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static inline uint16_t f32_to_bf16_keeping_spike(float v, float th) {
    uint32_t u;
    __builtin_memcpy(&u, &v, sizeof u);
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const int spike = v > th, stored_spike = bf16_to_f32((uint16_t)r) > th;
    r += (uint32_t)(spike & !stored_spike) - (uint32_t)(!spike & stored_spike); /* positive: +1 is one step up */
    return (uint16_t)r;
}

#include "scans_registers.h"

#define SCALAR float
#define FN(name) name##_f32
#define EXP iirsnn_expf
#define CUTOFF CUTOFF_F32
#include "scans_impl.h"
#undef SCALAR
#undef FN
#undef EXP
#undef CUTOFF

#define SCALAR double
#define FN(name) name##_f64
#define EXP exp
#define CUTOFF CUTOFF_F64
#include "scans_impl.h"
#undef SCALAR
#undef FN
#undef EXP
#undef CUTOFF
