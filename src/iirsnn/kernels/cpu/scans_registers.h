/* The fused forward pass (filter + bias + neuron) for float32 with AVX-512, its state held in registers.
 * Included by scans.c; FN(filter_neuron_forward) calls it for synapse filters of feedback order P <= 2 and
 * feed-forward order Q <= 1 (none, first order, dual exponential, alpha: the presets); X and V in float32, or in
 * bfloat16 (bf16-mixed) where the CPU has AVX-512 BW and VL for their 16-bit masked loads and stores.
 *
 * The generic pass walks a block of 256 lanes through time with each step split into several loops over the
 * block (filter taps, bias, neuron), every one loading and storing its rows in L1: about 26 vector loads and
 * stores per 16 lanes and step. Here a group of 64 lanes (four vectors) keeps its filter and neuron state in
 * registers through all T steps, so that a step costs one load of X and the two stores of O and V per vector.
 * Same equations, same order of operations and the same flushing of subnormals as the generic pass. Sequences
 * whose rows stay in the cache gain most ([25, 64, 500]: 0.35 -> 0.22 ms); long ones are bound by memory
 * bandwidth ([300, 16, 500]: 29 MB in about 0.7 ms either way). V goes out with streaming stores (read only by the backward); O with plain ones, as the
 * next layer reads it at once. The spikes also go out as bits (see FN(filter_neuron_forward)). */

#if defined(__AVX512F__)
#define GROUP_VECTORS 4
#define GROUP_LANES (16 * GROUP_VECTORS)
#define PREFETCH_STEPS 8 /* rows ahead: one step of a group is too short to hide a miss */

/* Lanes [g0, g0 + GROUP_LANES) of a per-lane parameter with the given period, as vectors (0 past L). */
static inline void group_params(const float *p, int64_t period, int64_t g0, int64_t L, __m512 *out) {
    float tmp[GROUP_LANES];
    for (int64_t i = 0; i < GROUP_LANES; i++) tmp[i] = g0 + i < L ? p[(g0 + i) % period] : 0.0f;
    for (int j = 0; j < GROUP_VECTORS; j++) out[j] = _mm512_loadu_ps(tmp + 16 * j);
}

/* x with every lane of magnitude below CUTOFF_F32 as exactly 0 (NaN kept: "not less than" is true for it). */
static inline __m512 flush_vector(__m512 x) {
    const __mmask16 keep = _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(CUTOFF_F32), _CMP_NLT_UQ);
    return _mm512_maskz_mov_ps(keep, x);
}

/* Store a vector of a large output row read again only much later: streaming when the whole vector is there
 * and aligned (see FN(store_row)), masked otherwise. */
static inline void store_vector_streaming(float *dst, __mmask16 mask, __m512 value) {
    if (mask == (__mmask16)0xFFFF && ((uintptr_t)dst & 63) == 0)
        _mm512_stream_ps(dst, value);
    else
        _mm512_mask_storeu_ps(dst, mask, value);
}

/* The state a pass starts from and the one it returns (see FN(filter_neuron_forward); NULL: zeros, not wanted). */
struct register_state {
    const float *x_hist, *f_hist, *v0, *s0;
    float *x_last, *f_last, *v_last, *s_last;
};

/* Lanes of vector j of the group at g0 from row p of [*, L] (zeros when p is NULL or past L). */
static inline __m512 load_state(const float *p, int64_t g0, int j, __mmask16 mask) {
    return p ? _mm512_maskz_loadu_ps(mask, p + g0 + 16 * j) : _mm512_setzero_ps();
}

static inline void store_state(float *p, int64_t g0, int j, __mmask16 mask, __m512 value) {
    if (p) _mm512_mask_storeu_ps(p + g0 + 16 * j, mask, value);
}

#if defined(__AVX512BW__) && defined(__AVX512VL__)
#define REGISTERS_BF16 1 /* 16-bit masked loads and stores: bfloat16 X and V in registers too */

/* 16 bfloat16 values at p (masked) as float32: exact, each is the upper half of its float32. */
static inline __m512 load_bf16(const uint16_t *p, __mmask16 mask) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p)), 16));
}

/* vv rounded to bfloat16 as f32_to_bf16_keeping_spike does, 16 lanes at once: to nearest even, then one step
 * back towards vv's side of the threshold wherever rounding crossed it (fired: the lanes with vv > th). */
static inline void store_bf16_keeping_spike(uint16_t *p, __mmask16 mask, __m512 vv, __mmask16 fired, __m512 vth) {
    const __m512i u = _mm512_castps_si512(vv), one = _mm512_set1_epi32(1);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), odd), 16);
    const __mmask16 stored = _mm512_cmp_ps_mask(_mm512_castsi512_ps(_mm512_slli_epi32(r, 16)), vth, _CMP_GT_OQ);
    r = _mm512_mask_add_epi32(r, fired & (__mmask16)~stored, r, one);
    r = _mm512_mask_sub_epi32(r, (__mmask16)~fired & stored, r, one);
    _mm256_mask_storeu_epi16(p, mask, _mm512_cvtepi32_epi16(r));
}
#endif

/* The pass for one pair of storage flags: inlined into filter_neuron_forward_registers once per pair, each with
 * x_bf16 and v_bf16 constant, so that no branch on them is left in the loop over time (they cost the float32
 * pass a third of its time as run-time branches). */
static inline __attribute__((always_inline)) void registers_pass(
        const void *X, const int x_bf16, const double *alpha, int64_t P, const double *beta, int64_t Q,
        const float *bias, int64_t bias_period, void *V, const int v_bf16, float *O, const float *leak,
        int64_t leak_period, const float *theta, int64_t theta_period, float th, int hard, int64_t T, int64_t L,
        uint64_t *bits, const struct register_state *state, int nthreads) {
    const __m512 a1 = _mm512_set1_ps(P >= 1 ? (float)alpha[0] : 0.0f), a2 = _mm512_set1_ps(P >= 2 ? (float)alpha[1] : 0.0f);
    const __m512 b0 = _mm512_set1_ps((float)beta[0]), b1 = _mm512_set1_ps(Q >= 1 ? (float)beta[1] : 0.0f);
    const __m512 vth = _mm512_set1_ps(th), one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    const int64_t n_groups = (L + GROUP_LANES - 1) / GROUP_LANES;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t g = 0; g < n_groups; g++) {
        const int64_t g0 = g * GROUP_LANES;
        __m512 lam[GROUP_VECTORS], dec[GROUP_VECTORS], b[GROUP_VECTORS];
        __m512 v[GROUP_VECTORS], s[GROUP_VECTORS], f1[GROUP_VECTORS], f2[GROUP_VECTORS], xp[GROUP_VECTORS];
        __mmask16 mask[GROUP_VECTORS];
        group_params(leak, leak_period, g0, L, lam);
        group_params(theta, theta_period, g0, L, dec);
        if (bias) group_params(bias, bias_period, g0, L, b);
        for (int j = 0; j < GROUP_VECTORS; j++) {
            const int64_t rem = L - g0 - 16 * j;
            mask[j] = rem >= 16 ? (__mmask16)0xFFFF : rem <= 0 ? (__mmask16)0 : (__mmask16)((1u << rem) - 1);
            if (!bias) b[j] = zero;
            /* F[-1], F[-2] (f_hist is [P, L], oldest first), X[-1], V[-1] and the reset trace */
            f1[j] = P >= 1 ? load_state(state->f_hist ? state->f_hist + (P - 1) * L : NULL, g0, j, mask[j]) : zero;
            f2[j] = P >= 2 ? load_state(state->f_hist, g0, j, mask[j]) : zero;
            xp[j] = Q >= 1 ? load_state(state->x_hist, g0, j, mask[j]) : zero;
            v[j] = load_state(state->v0, g0, j, mask[j]);
            s[j] = load_state(state->s0, g0, j, mask[j]);
        }
        for (int64_t t = 0; t < T; t++) {
            const int64_t off = t * L + g0;
            if (t + PREFETCH_STEPS < T) /* a vector of bfloat16 X is half a line: every other one starts one */
                for (int j = 0; j < GROUP_VECTORS; j += 1 + x_bf16)
                    _mm_prefetch((const char *)X + (off + PREFETCH_STEPS * L + 16 * j) * (x_bf16 ? 2 : 4), _MM_HINT_T0);
            uint64_t word = 0; /* this step's spikes of the group, lane i in bit i */
            #pragma GCC unroll 4
            for (int j = 0; j < GROUP_VECTORS; j++) {
#if REGISTERS_BF16
                const __m512 x = x_bf16 ? load_bf16((const uint16_t *)X + off + 16 * j, mask[j])
                                        : _mm512_maskz_loadu_ps(mask[j], (const float *)X + off + 16 * j);
#else
                const __m512 x = _mm512_maskz_loadu_ps(mask[j], (const float *)X + off + 16 * j);
#endif
                /* F[t] = b0 X[t] + b1 X[t-1] + a1 F[t-1] + a2 F[t-2], in the generic pass's order */
                __m512 f = _mm512_mul_ps(b0, x);
                if (Q >= 1) f = _mm512_fmadd_ps(b1, xp[j], f);
                if (P >= 1) f = _mm512_fmadd_ps(a1, f1[j], f);
                if (P >= 2) f = _mm512_fmadd_ps(a2, f2[j], f);
                f = flush_vector(f);
                xp[j] = x;
                f2[j] = f1[j];
                f1[j] = f;
                const __m512 cur = _mm512_add_ps(f, b[j]);
                __m512 vv;
                if (!hard) /* V = lam V + I - th S; S = dec S + O */
                    vv = _mm512_fnmadd_ps(vth, s[j], _mm512_fmadd_ps(lam[j], v[j], cur));
                else /* V = lam V (1 - O[t-1]) + I; S = O */
                    vv = _mm512_fmadd_ps(_mm512_mul_ps(lam[j], v[j]), _mm512_sub_ps(one, s[j]), cur);
                vv = flush_vector(vv);
                const __mmask16 fired = _mm512_cmp_ps_mask(vv, vth, _CMP_GT_OQ) & mask[j];
                const __m512 o = _mm512_maskz_mov_ps(fired, one);
                word |= (uint64_t)fired << (16 * j);
                s[j] = hard ? o : flush_vector(_mm512_fmadd_ps(dec[j], s[j], o));
                v[j] = vv;
                _mm512_mask_storeu_ps(O + off + 16 * j, mask[j], o);
#if REGISTERS_BF16
                if (V && v_bf16) store_bf16_keeping_spike((uint16_t *)V + off + 16 * j, mask[j], vv, fired, vth);
#endif
                if (V && !v_bf16) store_vector_streaming((float *)V + off + 16 * j, mask[j], vv);
            }
            bits[t * n_groups + g] = word;
        }
        _mm_sfence();
        for (int j = 0; j < GROUP_VECTORS; j++) { /* F[T-1] and F[T-2] are f1 and f2, held from the history if T < P */
            if (P >= 1) store_state(state->f_last ? state->f_last + (P - 1) * L : NULL, g0, j, mask[j], f1[j]);
            if (P >= 2) store_state(state->f_last, g0, j, mask[j], f2[j]);
            if (Q >= 1) store_state(state->x_last, g0, j, mask[j], xp[j]);
            store_state(state->v_last, g0, j, mask[j], v[j]);
            store_state(state->s_last, g0, j, mask[j], s[j]);
        }
    }
}

static void filter_neuron_forward_registers(const void *X, int x_bf16, const double *alpha, int64_t P,
                                            const double *beta, int64_t Q, const float *bias, int64_t bias_period,
                                            void *V, int v_bf16, float *O, const float *leak, int64_t leak_period,
                                            const float *theta, int64_t theta_period, float th, int hard, int64_t T,
                                            int64_t L, uint64_t *bits, const struct register_state *state,
                                            int nthreads) {
#define REGISTERS_PASS(xb, vb) registers_pass(X, xb, alpha, P, beta, Q, bias, bias_period, V, vb, O, leak, leak_period, \
                                              theta, theta_period, th, hard, T, L, bits, state, nthreads)
    if (!x_bf16 && !v_bf16) REGISTERS_PASS(0, 0);
#if REGISTERS_BF16
    else if (!x_bf16) REGISTERS_PASS(0, 1);
    else if (!v_bf16) REGISTERS_PASS(1, 0);
    else REGISTERS_PASS(1, 1);
#endif
#undef REGISTERS_PASS
}
#endif
