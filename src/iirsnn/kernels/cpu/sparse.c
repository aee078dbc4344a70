/* Compiled spike-sparse products of iirsnn (CSR/CSC of spike matrices) for float32 and float64. */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

#include "bfloat16.h"

#define BW 512  /* output columns per band (the accumulator row); narrower bands measured slower */
#define ROWS 32 /* rows per task */
#define CACHE_BYTES (1 << 20) /* rows of G visited together in the weight gradient */
#define PREFETCH_AHEAD 4 /* spikes: the source rows of the spike this many ahead are prefetched (rows from L3: 1.2x) */

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
    int64_t k = k0;
    for (; k + PREFETCH_AHEAD < k1; k++) {
        const float *s = src + (int64_t)idx[k] * M, *ahead = src + (int64_t)idx[k + PREFETCH_AHEAD] * M;
        #pragma GCC unroll 16
        for (int j = 0; j < NV; j++) _mm_prefetch((const char *)(ahead + 16 * j), _MM_HINT_T0);
        #pragma GCC unroll 16
        for (int j = 0; j < NV - 1; j++) acc[j] = _mm512_add_ps(acc[j], _mm512_loadu_ps(s + 16 * j));
        acc[NV - 1] = _mm512_add_ps(acc[NV - 1], _mm512_maskz_loadu_ps(last, s + 16 * (NV - 1)));
    }
    for (; k < k1; k++) {
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

#if defined(__AVX512BW__) && defined(__AVX512VL__)
/* add_chunk_f32 for bfloat16 source rows: one 64-byte load per 32 columns, half the bytes of float32 rows, which
 * bound the float32 sums (rows gathered from L2 at about 25 bytes a cycle on the AMD EPYC), summed in float32.
 * Interleaving each load's words with zero words makes the float32 values in two in-lane shuffles: `lo` holds
 * columns 8k..8k+3 of the group in its 128-bit lane k, `hi` columns 8k+4..8k+7; the output row is permuted into
 * that order once before the sums and back after them. NG groups of 32 columns (2 NG registers), the last one
 * masked to the chunk's cw columns. */
static inline __attribute__((always_inline)) void add_chunk_bf16(const int32_t *idx, const uint16_t *src, float *o,
                                                                 int64_t k0, int64_t k1, int64_t M, int64_t cw,
                                                                 const int NG) {
    const int64_t tail = cw - 32 * (NG - 1);
    const __mmask32 last = tail >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << tail) - 1);
    const __mmask16 last0 = (__mmask16)last, last1 = (__mmask16)(last >> 16);
    const __m512i to_lo = _mm512_set_epi32(27, 26, 25, 24, 19, 18, 17, 16, 11, 10, 9, 8, 3, 2, 1, 0);
    const __m512i to_hi = _mm512_set_epi32(31, 30, 29, 28, 23, 22, 21, 20, 15, 14, 13, 12, 7, 6, 5, 4);
    const __m512i back0 = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
    const __m512i back1 = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
    const __m512i zero = _mm512_setzero_si512();
    __m512 lo[8], hi[8];
    #pragma GCC unroll 8
    for (int g = 0; g < NG; g++) {
        const __mmask16 m0 = g < NG - 1 ? (__mmask16)0xFFFF : last0, m1 = g < NG - 1 ? (__mmask16)0xFFFF : last1;
        const __m512 o0 = _mm512_maskz_loadu_ps(m0, o + 32 * g), o1 = _mm512_maskz_loadu_ps(m1, o + 32 * g + 16);
        lo[g] = _mm512_permutex2var_ps(o0, to_lo, o1);
        hi[g] = _mm512_permutex2var_ps(o0, to_hi, o1);
    }
    int64_t k = k0;
    for (; k < k1; k++) {
        const uint16_t *s = src + (int64_t)idx[k] * M;
        if (k + PREFETCH_AHEAD < k1) {
            const uint16_t *ahead = src + (int64_t)idx[k + PREFETCH_AHEAD] * M;
            #pragma GCC unroll 8
            for (int g = 0; g < NG; g++) _mm_prefetch((const char *)(ahead + 32 * g), _MM_HINT_T0);
        }
        #pragma GCC unroll 8
        for (int g = 0; g < NG; g++) {
            const __m512i h = g < NG - 1 ? _mm512_loadu_si512(s + 32 * g) : _mm512_maskz_loadu_epi16(last, s + 32 * g);
            lo[g] = _mm512_add_ps(lo[g], _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, h)));
            hi[g] = _mm512_add_ps(hi[g], _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, h)));
        }
    }
    #pragma GCC unroll 8
    for (int g = 0; g < NG; g++) {
        const __mmask16 m0 = g < NG - 1 ? (__mmask16)0xFFFF : last0, m1 = g < NG - 1 ? (__mmask16)0xFFFF : last1;
        _mm512_mask_storeu_ps(o + 32 * g, m0, _mm512_permutex2var_ps(lo[g], back0, hi[g]));
        _mm512_mask_storeu_ps(o + 32 * g + 16, m1, _mm512_permutex2var_ps(lo[g], back1, hi[g]));
    }
}

/* add_rows_registers_f32 for bfloat16 source rows. */
static void add_rows_registers_bf16(const int32_t *idx, const uint16_t *src, float *o, int64_t k0, int64_t k1,
                                    int64_t M, int64_t w) {
    for (int64_t c = 0; c < w; c += 256) {
        const int64_t cw = w - c < 256 ? w - c : 256;
        const uint16_t *s = src + c;
        float *oc = o + c;
        switch ((cw + 31) / 32) {
#define NG_CASE(n) case n: add_chunk_bf16(idx, s, oc, k0, k1, M, cw, n); break;
            NG_CASE(1) NG_CASE(2) NG_CASE(3) NG_CASE(4) NG_CASE(5) NG_CASE(6) NG_CASE(7) NG_CASE(8)
#undef NG_CASE
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
