/* Compiled spike-sparse products of iirsnn (CSR/CSC of spike matrices) for float32 and float64. */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

#define BW 512  /* output columns per band (the accumulator row); narrower bands measured slower */
#define ROWS 32 /* rows per task */
#define CACHE_BYTES (1 << 20) /* rows of G visited together in the weight gradient */

#if defined(__AVX512F__)
/* o[0:cw] += sum over k in [k0, k1) of src[idx[k] * M : ... + cw] for a chunk of cw <= 16 * NV columns, with the
 * output in NV registers of 16 floats: each spike then costs one load per 16 columns (a read-modify-write of the
 * output row on every pass cost about a quarter more). The last vector is masked, so no load reaches past a source
 * row's end. NV is a constant at each call (see add_rows_registers_f32), so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void add_chunk_f32(const int32_t *idx, const float *src, float *o,
                                                                int64_t k0, int64_t k1, int64_t M, int64_t cw,
                                                                const int NV) {
    const int64_t tail = cw - 16 * (NV - 1);
    const __mmask16 last = tail >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << tail) - 1);
    __m512 acc[16];
    #pragma GCC unroll 16
    for (int j = 0; j < NV - 1; j++) acc[j] = _mm512_loadu_ps(o + 16 * j);
    acc[NV - 1] = _mm512_maskz_loadu_ps(last, o + 16 * (NV - 1));
    for (int64_t k = k0; k < k1; k++) {
        const float *s = src + (int64_t)idx[k] * M;
        #pragma GCC unroll 16
        for (int j = 0; j < NV - 1; j++) acc[j] = _mm512_add_ps(acc[j], _mm512_loadu_ps(s + 16 * j));
        acc[NV - 1] = _mm512_add_ps(acc[NV - 1], _mm512_maskz_loadu_ps(last, s + 16 * (NV - 1)));
    }
    #pragma GCC unroll 16
    for (int j = 0; j < NV - 1; j++) _mm512_storeu_ps(o + 16 * j, acc[j]);
    _mm512_mask_storeu_ps(o + 16 * (NV - 1), last, acc[NV - 1]);
}

/* o[0:w] += the rows src[idx[k] * M : ... + w] for k in [k0, k1) (float32 spikes, values all 1), in chunks of
 * 256 columns (16 registers) and one narrower chunk. */
static void add_rows_registers_f32(const int32_t *idx, const float *src, float *o, int64_t k0, int64_t k1,
                                   int64_t M, int64_t w) {
    for (int64_t c = 0; c < w; c += 256) {
        const int64_t cw = w - c < 256 ? w - c : 256;
        const float *s = src + c;
        float *oc = o + c;
        switch ((cw + 15) / 16) {
#define NV_CASE(n) case n: add_chunk_f32(idx, s, oc, k0, k1, M, cw, n); break;
            NV_CASE(1) NV_CASE(2) NV_CASE(3) NV_CASE(4) NV_CASE(5) NV_CASE(6) NV_CASE(7) NV_CASE(8)
            NV_CASE(9) NV_CASE(10) NV_CASE(11) NV_CASE(12) NV_CASE(13) NV_CASE(14) NV_CASE(15) NV_CASE(16)
#undef NV_CASE
        }
    }
}
#endif

#define SCALAR float
#define FN(name) name##_f32
#include "sparse_impl.h"
#undef SCALAR
#undef FN

#define SCALAR double
#define FN(name) name##_f64
#include "sparse_impl.h"
#undef SCALAR
#undef FN
