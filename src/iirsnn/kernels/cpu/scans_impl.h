/* Fused scans of iirsnn for one scalar type. Included by scans.c with SCALAR and FN defined.
 *
 * Layout: every sequence is [T, L] (time-major, L = B * prod(features) lanes, contiguous).
 * Lanes are independent: threads take blocks of CHUNK lanes and run the whole time loop on them,
 * with the recurrent state in a small local array (registers / L1) and the inner loop over lanes
 * vectorised. Per-lane parameters (decays, coefficients) are arrays of `period` values indexed by
 * lane % period (period 1: shared; period N: per feature, repeated over the batch).
 */

/* x, or exactly 0 when |x| < CUTOFF (NaN and Inf are kept): no subnormal is ever stored or carried. */
static inline SCALAR FN(flush)(SCALAR x) {
    return (sizeof(SCALAR) == 4 ? __builtin_fabsf((float)x) : __builtin_fabs((double)x)) < CUTOFF ? (SCALAR)0 : x;
}

/* Ask for the n values at p ahead of use: the rows of one lane block at successive time steps lie L
 * values apart, on different pages, where the hardware prefetchers do not follow. */
static inline void FN(prefetch_row)(const SCALAR *p, int64_t n) {
    for (int64_t i = 0; i < n; i += 64 / (int64_t)sizeof(SCALAR)) __builtin_prefetch(p + i, 0, 3);
}

/* dst[0:n] = src[0:n] for a row of a large output that is read again only after much else (by the next layer
 * or the backward): float32 rows go out with streaming stores, which skip reading the destination into the
 * cache first (fused passes on the temporal benchmark's [300, 16, 500]: forward 1.8 -> 1.1 ms, backward
 * 2.8 -> 1.8 ms). Callers end their lane block with FN(store_fence). */
static inline void FN(store_row)(SCALAR *restrict dst, const SCALAR *restrict src, int64_t n) {
    int64_t i = 0;
#if defined(__AVX512F__)
    if (sizeof(SCALAR) == 4 && ((uintptr_t)dst & 63) == 0)
        for (; i + 16 <= n; i += 16) _mm512_stream_ps((float *)dst + i, _mm512_loadu_ps((const float *)src + i));
#endif
    for (; i < n; i++) dst[i] = src[i];
}

/* Order the streaming stores of this thread before whatever reads the rows next. */
static inline void FN(store_fence)(void) {
#if defined(__AVX512F__)
    if (sizeof(SCALAR) == 4) _mm_sfence();
#endif
}

/* eps[i] = surrogate derivative at V[i] - th, for n lanes (vectorised; libmvec provides exp), flushed. */
static inline void FN(surrogate_row)(int kind, SCALAR p, SCALAR th, const SCALAR *restrict V,
                                     SCALAR *restrict eps, int64_t n) {
    switch (kind) {
    case SURR_GAUSSIAN: {
        const SCALAR k = (SCALAR)-0.5 / (p * p), c = (SCALAR)(1.0 / (2.5066282746310002 * (double)p));
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) { SCALAR x = V[i] - th; eps[i] = c * EXP(k * x * x); }
        break;
    }
    case SURR_FAST_SIGMOID:
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            SCALAR x = V[i] - th, d = p * (x < 0 ? -x : x) + (SCALAR)1;
            eps[i] = (SCALAR)1 / (d * d);
        }
        break;
    case SURR_SIGMOID:
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            SCALAR s = (SCALAR)1 / ((SCALAR)1 + EXP(-p * (V[i] - th)));
            eps[i] = p * s * ((SCALAR)1 - s);
        }
        break;
    case SURR_ARCTAN: {
        const SCALAR k = (SCALAR)(M_PI / 2.0) * p;
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) { SCALAR z = k * (V[i] - th); eps[i] = (p / (SCALAR)2) / ((SCALAR)1 + z * z); }
        break;
    }
    default:
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            SCALAR x = V[i] - th, a = (SCALAR)1 - (x < 0 ? -x : x) / p;
            eps[i] = a > 0 ? a / p : (SCALAR)0;
        }
    }
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) eps[i] = FN(flush)(eps[i]);
}

/* One time step of the neuron for n lanes, from the input current row `cur`: updates the state v, s in place and
 * writes the potential and the spikes (the equations of neuron_forward; v and s flushed). */
static inline void FN(neuron_step)(int64_t n, int hard, SCALAR th, const SCALAR *restrict lam,
                                   const SCALAR *restrict dec, const SCALAR *restrict cur, SCALAR *restrict v,
                                   SCALAR *restrict s, SCALAR *restrict Vt, SCALAR *restrict Ot) {
    if (!hard) {
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            SCALAR vv = FN(flush)(lam[i] * v[i] + cur[i] - th * s[i]);
            SCALAR o = vv > th ? (SCALAR)1 : (SCALAR)0;
            s[i] = FN(flush)(dec[i] * s[i] + o);
            v[i] = vv;
            Vt[i] = vv;
            Ot[i] = o;
        }
    } else {
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            SCALAR vv = FN(flush)(lam[i] * v[i] * ((SCALAR)1 - s[i]) + cur[i]);
            SCALAR o = vv > th ? (SCALAR)1 : (SCALAR)0;
            s[i] = o;
            v[i] = vv;
            Vt[i] = vv;
            Ot[i] = o;
        }
    }
}

/* One step of the adjoint, backwards in time, for n lanes (docs/derivation.md sec. 4.1-4.2): from dL/dO[t] (gO), an optional direct
 * dL/dV[t] (gVdirect), eps[t], V[t] and the decayed previous potential vp = V'[t-1], updates gvn (dL/dV[t+1] in,
 * dL/dV[t] out), gs (the reset-trace adjoint) and al (sum gV V'), and writes dL/dV[t] to out. At the last step
 * (`last`), g_vlast and g_slast (may be NULL) are the gradients of the returned state. gV and gs are flushed. */
static inline void FN(neuron_adjoint_step)(int64_t n, int hard, int detach, int last, SCALAR th,
                                           const SCALAR *restrict lam, const SCALAR *restrict dec,
                                           const SCALAR *restrict eps, const SCALAR *restrict gO,
                                           const SCALAR *restrict gVdirect, const SCALAR *restrict g_vlast,
                                           const SCALAR *restrict g_slast, const SCALAR *restrict Vt,
                                           const SCALAR *restrict vp, SCALAR *restrict gvn, SCALAR *restrict gs,
                                           SCALAR *restrict al, SCALAR *restrict out) {
    if (!hard) {
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            SCALAR gv = eps[i] * gO[i] + (gVdirect ? gVdirect[i] : (SCALAR)0);
            if (!last) gs[i] = FN(flush)(dec[i] * gs[i] - th * gvn[i]);
            else if (g_vlast) gv += g_vlast[i];
            if (!detach) gv += eps[i] * gs[i];
            gv = FN(flush)(gv + lam[i] * gvn[i]);
            al[i] += gv * vp[i];
            out[i] = gv;
            gvn[i] = gv;
        }
    } else {
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            SCALAR gv = eps[i] * gO[i] + (gVdirect ? gVdirect[i] : (SCALAR)0);
            if (last) {
                if (g_vlast) gv += g_vlast[i] + eps[i] * g_slast[i];
            } else {
                const SCALAR nxt = lam[i] * gvn[i];
                if (!detach) gv -= eps[i] * nxt * Vt[i];
                gv += Vt[i] > th ? (SCALAR)0 : nxt;
            }
            gv = FN(flush)(gv);
            al[i] += gv * vp[i];
            out[i] = gv;
            gvn[i] = gv;
        }
    }
}

/* A row of n stored values (potentials, or the fused layer's input current) in SCALAR: the storage itself
 * (v_bf16 = 0) or converted from bfloat16 into buf. */
static inline const SCALAR *FN(potential_row)(const void *V, int v_bf16, int64_t offset, int64_t n, SCALAR *buf) {
    if (!v_bf16) return (const SCALAR *)V + offset;
    const uint16_t *h = (const uint16_t *)V + offset;
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) buf[i] = (SCALAR)bf16_to_f32(h[i]);
    return buf;
}

/* vp[i] = V'[t-1], the decayed previous potential that multiplies leak at step t (hard reset: zero after a spike). */
static inline void FN(previous_potential)(int64_t n, int hard, SCALAR th, const SCALAR *restrict Vp,
                                          SCALAR *restrict vp) {
    if (!hard) for (int64_t i = 0; i < n; i++) vp[i] = Vp[i];
    else for (int64_t i = 0; i < n; i++) vp[i] = Vp[i] > th ? (SCALAR)0 : Vp[i];
}

/* V[t] = leak V[t-1] + I[t] - th S[t-1], O[t] = V[t] > th, S[t] = theta S[t-1] + O[t]   (reset filter)
 * V[t] = leak V[t-1] (1 - O[t-1]) + I[t], O[t] = V[t] > th, S[t] = O[t]                  (hard reset) */
void FN(neuron_forward)(const SCALAR *I, SCALAR *V, SCALAR *O, const SCALAR *v0, const SCALAR *s0,
                        SCALAR *v_last, SCALAR *s_last, const SCALAR *leak, int64_t leak_period,
                        const SCALAR *theta, int64_t theta_period, double threshold, int hard,
                        int64_t T, int64_t L, int nthreads) {
    const SCALAR th = (SCALAR)threshold;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t c0 = 0; c0 < L; c0 += CHUNK) {
        const int64_t n = L - c0 < CHUNK ? L - c0 : CHUNK;
        SCALAR v[CHUNK], s[CHUNK], lam[CHUNK], dec[CHUNK], vrow[CHUNK], orow[CHUNK];
        for (int64_t i = 0; i < n; i++) {
            v[i] = v0[c0 + i];
            s[i] = s0[c0 + i];
            lam[i] = leak[(c0 + i) % leak_period];
            dec[i] = theta[(c0 + i) % theta_period];
        }
        for (int64_t t = 0; t < T; t++) {
            FN(neuron_step)(n, hard, th, lam, dec, I + t * L + c0, v, s, vrow, orow);
            FN(store_row)(V + t * L + c0, vrow, n);
            FN(store_row)(O + t * L + c0, orow, n);
        }
        FN(store_fence)();
        for (int64_t i = 0; i < n; i++) {
            v_last[c0 + i] = v[i];
            s_last[c0 + i] = s[i];
        }
    }
}

/* Adjoint of neuron_forward (docs/derivation.md sec. 4.1-4.2). gVout, S_prev, acc_theta may be NULL.
 * Writes gI [T, L], g_v0 and g_s0 [L], and per-lane partial sums acc_leak [L] = sum_t gV[t] V'[t-1]
 * and acc_theta [L] = sum_t gS[t] S[t-1] (S_prev [T, L] must then hold S[t-1]). */
void FN(neuron_backward)(const SCALAR *gO, const SCALAR *gVout, const SCALAR *g_vlast, const SCALAR *g_slast,
                         const SCALAR *V, const SCALAR *v0, const SCALAR *s0, const SCALAR *leak,
                         int64_t leak_period, const SCALAR *theta, int64_t theta_period, double threshold,
                         int hard, int detach, int surr_kind, double surr_param, const SCALAR *S_prev,
                         SCALAR *gI, SCALAR *g_v0, SCALAR *g_s0, SCALAR *acc_leak, SCALAR *acc_theta,
                         int64_t T, int64_t L, int nthreads) {
    const SCALAR th = (SCALAR)threshold, sp = (SCALAR)surr_param;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t c0 = 0; c0 < L; c0 += CHUNK) {
        const int64_t n = L - c0 < CHUNK ? L - c0 : CHUNK;
        SCALAR gvn[CHUNK], gs[CHUNK], al[CHUNK], at[CHUNK], lam[CHUNK], dec[CHUNK], eps[CHUNK], vp[CHUNK], girow[CHUNK];
        for (int64_t i = 0; i < n; i++) {
            gvn[i] = 0;
            gs[i] = g_slast[c0 + i];
            al[i] = 0;
            at[i] = 0;
            lam[i] = leak[(c0 + i) % leak_period];
            dec[i] = theta[(c0 + i) % theta_period];
        }
        for (int64_t t = T - 1; t >= 0; t--) {
            const int64_t off = t * L + c0;
            const SCALAR *Vt = V + off, *gOt = gO + off;
            FN(surrogate_row)(surr_kind, sp, th, Vt, eps, n);
            if (t > 0) {
                FN(previous_potential)(n, hard, th, Vt - L, vp);
            } else {
                for (int64_t i = 0; i < n; i++) vp[i] = hard ? v0[c0 + i] * ((SCALAR)1 - s0[c0 + i]) : v0[c0 + i];
            }
            FN(neuron_adjoint_step)(n, hard, detach, t == T - 1, th, lam, dec, eps, gOt, gVout ? gVout + off : NULL,
                                    g_vlast + c0, g_slast + c0, Vt, vp, gvn, gs, al, girow);
            FN(store_row)(gI + off, girow, n);
            if (acc_theta && !hard)
                for (int64_t i = 0; i < n; i++) at[i] += gs[i] * S_prev[off + i];
        }
        FN(store_fence)();
        for (int64_t i = 0; i < n; i++) {
            const int64_t l = c0 + i;
            if (!hard) {
                g_v0[l] = FN(flush)(lam[i] * gvn[i]);
                g_s0[l] = FN(flush)(dec[i] * gs[i] - th * gvn[i]);
            } else {
                g_v0[l] = FN(flush)(lam[i] * ((SCALAR)1 - s0[l]) * gvn[i]);
                g_s0[l] = detach ? (SCALAR)0 : FN(flush)(-lam[i] * v0[l] * gvn[i]);
            }
            acc_leak[l] = FN(flush)(al[i]);
            if (acc_theta) acc_theta[l] = FN(flush)(at[i]);
        }
    }
}

/* S_prev[t] = S[t-1] of the reset filter, recomputed from the spikes O = V > th (for d loss / d theta). */
void FN(reset_trace)(const void *V, int v_bf16, const SCALAR *s0, const SCALAR *theta, int64_t theta_period,
                     double threshold, SCALAR *S_prev, int64_t T, int64_t L, int nthreads) {
    const SCALAR th = (SCALAR)threshold;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t c0 = 0; c0 < L; c0 += CHUNK) {
        const int64_t n = L - c0 < CHUNK ? L - c0 : CHUNK;
        SCALAR s[CHUNK], vbuf[CHUNK];
        for (int64_t i = 0; i < n; i++) s[i] = s0[c0 + i];
        for (int64_t t = 0; t < T; t++) {
            const int64_t off = t * L + c0;
            const SCALAR *Vt = FN(potential_row)(V, v_bf16, off, n, vbuf);
            for (int64_t i = 0; i < n; i++) {
                S_prev[off + i] = s[i];
                s[i] = FN(flush)(theta[(c0 + i) % theta_period] * s[i] + (Vt[i] > th ? (SCALAR)1 : (SCALAR)0));
            }
        }
    }
}

/* Per-chunk copies of per-lane coefficients: dst[k][i] = src[k * period + (c0 + i) % period]. */
static inline void FN(lane_coefficients)(const SCALAR *src, int64_t K, int64_t period, int64_t c0, int64_t n,
                                         SCALAR *dst) {
    for (int64_t k = 0; k < K; k++)
        for (int64_t i = 0; i < n; i++) dst[k * CHUNK + i] = src[k * period + (c0 + i) % period];
}

/* IIR filter: F[t] = sum_p alpha[p-1] F[t-p] + sum_q beta[q] x[t-q] (flushed), with histories f_hist [P, L] and
 * x_hist [Q, L] (oldest first) standing in for negative times. alpha [P, period], beta [Q+1, period]. */
void FN(filter_forward)(const SCALAR *x, const SCALAR *x_hist, const SCALAR *f_hist, const SCALAR *alpha,
                        const SCALAR *beta, int64_t period, SCALAR *F, int64_t P, int64_t Q, int64_t T,
                        int64_t L, int nthreads) {
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t c0 = 0; c0 < L; c0 += CHUNK) {
        const int64_t n = L - c0 < CHUNK ? L - c0 : CHUNK;
        /* per-lane coefficients of this block on the heap: P and Q are unbounded (long axonal delays) */
        SCALAR *al = malloc(sizeof(SCALAR) * (size_t)((P > 0 ? P : 1) + Q + 1) * CHUNK), *be = al + (P > 0 ? P : 1) * CHUNK;
        FN(lane_coefficients)(alpha, P, period, c0, n, al);
        FN(lane_coefficients)(beta, Q + 1, period, c0, n, be);
        for (int64_t t = 0; t < T; t++) {
            SCALAR *restrict Ft = F + t * L + c0;
            const SCALAR *xt = x + t * L + c0;
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) Ft[i] = be[i] * xt[i];
            for (int64_t q = 1; q <= Q; q++) {
                const SCALAR *src = (t - q >= 0 ? x + (t - q) * L : x_hist + (Q + t - q) * L) + c0;
                const SCALAR *b = be + q * CHUNK;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) Ft[i] += b[i] * src[i];
            }
            for (int64_t p = 1; p <= P; p++) {
                const SCALAR *src = (t - p >= 0 ? F + (t - p) * L : f_hist + (P + t - p) * L) + c0;
                const SCALAR *a = al + (p - 1) * CHUNK;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) Ft[i] += a[i] * src[i];
            }
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) Ft[i] = FN(flush)(Ft[i]);
        }
        free(al);
    }
}

/* Adjoint of filter_forward (every output flushed). G [T, L] receives the backward-filtered gradient
 * G[t] = gF[t] + sum_p alpha_p G[t+p];
 * gx [T, L], g_xh [Q, L], g_fh [P, L] the input and history gradients (NULL: not wanted); acc_alpha [P, L] and
 * acc_beta [Q+1, L] (when not NULL) the per-lane sums sum_t G[t] F[t-p] and sum_t G[t] x[t-q]. */
void FN(filter_backward)(const SCALAR *gF, const SCALAR *x, const SCALAR *x_hist, const SCALAR *F,
                         const SCALAR *f_hist, const SCALAR *alpha, const SCALAR *beta, int64_t period,
                         SCALAR *G, SCALAR *gx, SCALAR *g_xh, SCALAR *g_fh, SCALAR *acc_alpha, SCALAR *acc_beta,
                         int64_t P, int64_t Q, int64_t T, int64_t L, int nthreads) {
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t c0 = 0; c0 < L; c0 += CHUNK) {
        const int64_t n = L - c0 < CHUNK ? L - c0 : CHUNK;
        /* per-lane coefficients of this block on the heap: P and Q are unbounded (long axonal delays) */
        SCALAR *al = malloc(sizeof(SCALAR) * (size_t)((P > 0 ? P : 1) + Q + 1) * CHUNK), *be = al + (P > 0 ? P : 1) * CHUNK;
        FN(lane_coefficients)(alpha, P, period, c0, n, al);
        FN(lane_coefficients)(beta, Q + 1, period, c0, n, be);
        for (int64_t t = T - 1; t >= 0; t--) {
            SCALAR *restrict Gt = G + t * L + c0;
            const SCALAR *gFt = gF + t * L + c0;
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) Gt[i] = gFt[i];
            for (int64_t p = 1; p <= P && t + p < T; p++) {
                const SCALAR *a = al + (p - 1) * CHUNK, *src = G + (t + p) * L + c0;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) Gt[i] += a[i] * src[i];
            }
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) Gt[i] = FN(flush)(Gt[i]);
        }
        /* input and history gradients: gxbuf[j] = sum_q beta_q G[j - Q + q], j over history and inputs */
        for (int64_t j = 0; j < Q + T; j++) {
            SCALAR *dst = j < Q ? (g_xh ? g_xh + j * L + c0 : NULL) : (gx ? gx + (j - Q) * L + c0 : NULL);
            if (!dst) continue;
            for (int64_t i = 0; i < n; i++) dst[i] = 0;
            for (int64_t q = 0; q <= Q; q++) {
                const int64_t t = j - Q + q;
                if (t < 0 || t >= T) continue;
                const SCALAR *b = be + q * CHUNK, *src = G + t * L + c0;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) dst[i] += b[i] * src[i];
            }
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) dst[i] = FN(flush)(dst[i]);
        }
        for (int64_t j = 0; g_fh && j < P; j++) {
            SCALAR *dst = g_fh + j * L + c0;
            for (int64_t i = 0; i < n; i++) dst[i] = 0;
            for (int64_t p = P - j; p <= P; p++) {
                const int64_t t = j - P + p;
                if (t >= T) continue;
                const SCALAR *a = al + (p - 1) * CHUNK, *src = G + t * L + c0;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) dst[i] += a[i] * src[i];
            }
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) dst[i] = FN(flush)(dst[i]);
        }
        for (int64_t p = 1; acc_alpha && p <= P; p++) {
            SCALAR *acc = acc_alpha + (p - 1) * L + c0;
            for (int64_t i = 0; i < n; i++) acc[i] = 0;
            for (int64_t t = 0; t < T; t++) {
                const SCALAR *src = (t - p >= 0 ? F + (t - p) * L : f_hist + (P + t - p) * L) + c0;
                const SCALAR *Gt = G + t * L + c0;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) acc[i] += Gt[i] * src[i];
            }
            for (int64_t i = 0; i < n; i++) acc[i] = FN(flush)(acc[i]);
        }
        for (int64_t q = 0; acc_beta && q <= Q; q++) {
            SCALAR *acc = acc_beta + q * L + c0;
            for (int64_t i = 0; i < n; i++) acc[i] = 0;
            for (int64_t t = 0; t < T; t++) {
                const SCALAR *src = (t - q >= 0 ? x + (t - q) * L : x_hist + (Q + t - q) * L) + c0;
                const SCALAR *Gt = G + t * L + c0;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) acc[i] += Gt[i] * src[i];
            }
            for (int64_t i = 0; i < n; i++) acc[i] = FN(flush)(acc[i]);
        }
        free(al);
    }
}

/* The spikes of a row of n lanes as bits (lane i in bit i % 64 of word i / 64): the next layer builds its spike
 * index from them without reading O (CHUNK is a multiple of 64, so a block's words are its own). */
static inline void FN(spike_bits)(const SCALAR *orow, int64_t n, uint64_t *words) {
    for (int64_t w = 0; w * 64 < n; w++) {
        uint64_t word = 0;
        for (int64_t i = w * 64; i < n && i < w * 64 + 64; i++) word |= (uint64_t)(orow[i] != 0) << (i - w * 64);
        words[w] = word;
    }
}

/* Fused synapse filter + bias + neuron on the current side of a layer (shared coefficients):
 *   F[t] = sum_p alpha[p-1] F[t-p] + sum_q beta[q] X[t-q],  I[t] = F[t] + bias,  then the neuron of
 *   neuron_forward. F and I are never stored: only V (unless NULL), O and the spikes as bits
 *   [T, ceil(L / 64)] words (lane l of step t in bit l % 64 of word t * ceil(L / 64) + l / 64) are written.
 * The state before step 0 is x_hist [Q, L] and f_hist [P, L] (the last inputs X and filter outputs F, oldest
 * first), v0 and s0 [L] (V[-1] and the reset trace), each zero when NULL; the state after the last step goes to
 * x_last [Q, L], f_last [P, L], v_last and s_last [L] unless NULL, in the same layout: so that a sequence cut
 * into chunks gives the spikes of the whole one. */
void FN(filter_neuron_forward)(const void *X, int x_bf16, const double *alpha, int64_t P, const double *beta,
                               int64_t Q, const SCALAR *bias, int64_t bias_period, const SCALAR *x_hist,
                               const SCALAR *f_hist, const SCALAR *v0, const SCALAR *s0, void *V, int v_bf16,
                               SCALAR *O, const SCALAR *leak, int64_t leak_period, const SCALAR *theta,
                               int64_t theta_period, double threshold, int hard, int64_t T, int64_t L, uint64_t *bits,
                               SCALAR *x_last, SCALAR *f_last, SCALAR *v_last, SCALAR *s_last, int nthreads) {
    const SCALAR th = (SCALAR)threshold;
#if defined(__AVX512F__)
#if defined(REGISTERS_BF16)
    const int registers_read_bf16 = 1;
#else
    const int registers_read_bf16 = 0;
#endif
    if (sizeof(SCALAR) == 4 && P <= 2 && Q <= 1 && (registers_read_bf16 || (!v_bf16 && !x_bf16))) { /* registers */
        const struct register_state state = {(const float *)x_hist, (const float *)f_hist, (const float *)v0,
                                             (const float *)s0, (float *)x_last, (float *)f_last, (float *)v_last,
                                             (float *)s_last};
        filter_neuron_forward_registers(X, x_bf16, alpha, P, beta, Q, (const float *)bias, bias_period, V, v_bf16,
                                        (float *)O, (const float *)leak, leak_period, (const float *)theta,
                                        theta_period, (float)th, hard, T, L, bits, &state, nthreads);
        return;
    }
#endif
    const int64_t K = P > 0 ? P : 1;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t c0 = 0; c0 < L; c0 += CHUNK) {
        const int64_t n = L - c0 < CHUNK ? L - c0 : CHUNK;
        SCALAR v[CHUNK], s[CHUNK], lam[CHUNK], dec[CHUNK], b[CHUNK], f[CHUNK], vrow[CHUNK], orow[CHUNK];
        SCALAR xbuf[CHUNK]; /* a row of X converted from bfloat16 (x_bf16) */
        SCALAR *ring = malloc(sizeof(SCALAR) * (size_t)K * CHUNK); /* the last P outputs of the filter */
        for (int64_t i = 0; i < n; i++) {
            v[i] = v0 ? v0[c0 + i] : (SCALAR)0;
            s[i] = s0 ? s0[c0 + i] : (SCALAR)0;
            lam[i] = leak[(c0 + i) % leak_period];
            dec[i] = theta[(c0 + i) % theta_period];
            b[i] = bias ? bias[(c0 + i) % bias_period] : (SCALAR)0;
        }
        for (int64_t k = 0; k < K * CHUNK; k++) ring[k] = 0;
        for (int64_t t = 0; t < T; t++) {
            const SCALAR b0 = (SCALAR)beta[0];
            const SCALAR *Xt = FN(potential_row)(X, x_bf16, t * L + c0, n, xbuf);
            if (!x_bf16 && t + PREFETCH < T) FN(prefetch_row)(Xt + PREFETCH * L, n);
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) f[i] = b0 * Xt[i];
            for (int64_t q = 1; q <= Q; q++) { /* X[t - q]: a row of X, or of the history before step 0 */
                if (q > t && !x_hist) break;
                const SCALAR bq = (SCALAR)beta[q];
                const SCALAR *src = q <= t ? FN(potential_row)(X, x_bf16, (t - q) * L + c0, n, xbuf)
                                           : x_hist + (Q + t - q) * L + c0;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) f[i] += bq * src[i];
            }
            for (int64_t p = 1; p <= P; p++) {
                if (p > t && !f_hist) break;
                const SCALAR ap = (SCALAR)alpha[p - 1];
                const SCALAR *src = p <= t ? ring + ((t - p) % K) * CHUNK : f_hist + (P + t - p) * L + c0;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) f[i] += ap * src[i];
            }
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) f[i] = FN(flush)(f[i]);
            if (P > 0) {
                SCALAR *dst = ring + (t % K) * CHUNK;
                for (int64_t i = 0; i < n; i++) dst[i] = f[i];
            }
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) f[i] += b[i]; /* the current I = F + bias */
            /* the step goes to local rows, then out; V is NULL without a backward, or stored as bfloat16 */
            FN(neuron_step)(n, hard, th, lam, dec, f, v, s, vrow, orow);
            FN(store_row)(O + t * L + c0, orow, n);
            FN(spike_bits)(orow, n, bits + t * ((L + 63) / 64) + c0 / 64);
            if (V && !v_bf16) FN(store_row)((SCALAR *)V + t * L + c0, vrow, n);
            if (V && v_bf16) {
                uint16_t *h = (uint16_t *)V + t * L + c0;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) h[i] = f32_to_bf16_keeping_spike((float)vrow[i], (float)th);
            }
        }
        FN(store_fence)();
        for (int64_t i = 0; i < n; i++) {
            if (v_last) v_last[c0 + i] = v[i];
            if (s_last) s_last[c0 + i] = s[i];
        }
        for (int64_t k = 1; f_last && k <= P; k++) { /* F[T - k]: the ring, or the history when T < k */
            SCALAR *dst = f_last + (P - k) * L + c0;
            const SCALAR *src = T - k >= 0 ? ring + ((T - k) % K) * CHUNK : f_hist ? f_hist + (P + T - k) * L + c0 : NULL;
            for (int64_t i = 0; i < n; i++) dst[i] = src ? src[i] : (SCALAR)0;
        }
        for (int64_t k = 1; x_last && k <= Q; k++) { /* X[T - k] in SCALAR (a bfloat16 X converts exactly) */
            SCALAR *dst = x_last + (Q - k) * L + c0;
            const SCALAR *src = T - k >= 0 ? FN(potential_row)(X, x_bf16, (T - k) * L + c0, n, xbuf)
                                           : x_hist ? x_hist + (Q + T - k) * L + c0 : NULL;
            for (int64_t i = 0; i < n; i++) dst[i] = src ? src[i] : (SCALAR)0;
        }
        free(ring);
    }
}

/* Adjoint of filter_neuron_forward: from gO [T, L] and the saved V, writes gX [T, L] (the gradient of the
 * unfiltered current X) and per-lane sums acc_bias = sum_t gI[t], acc_leak = sum_t gV[t] V'[t-1] and
 * (when acc_theta is not NULL; S_prev [T, L] then holds S[t-1]) acc_theta = sum_t gS[t] S[t-1].
 * v0 and s0 [L]: the state the forward started from (NULL: zeros). The gradients of the state it returned,
 * g_xlast [Q, L], g_flast [P, L], g_vlast and g_slast [L] (NULL: zero; g_vlast and g_slast both or neither), enter
 * the adjoint; the gradients of the state it started from go to g_xh [Q, L], g_fh [P, L], g_v0 and g_s0 [L] unless
 * NULL. */
void FN(filter_neuron_backward)(const SCALAR *gO, const void *V, int v_bf16, const double *alpha, int64_t P,
                                const double *beta, int64_t Q, const SCALAR *leak, int64_t leak_period,
                                const SCALAR *theta, int64_t theta_period, double threshold, int hard, int detach,
                                int surr_kind, double surr_param, const SCALAR *S_prev, const SCALAR *v0,
                                const SCALAR *s0, const SCALAR *g_xlast, const SCALAR *g_flast, const SCALAR *g_vlast,
                                const SCALAR *g_slast, void *gX, int gx_bf16, SCALAR *g_xh, SCALAR *g_fh,
                                SCALAR *g_v0, SCALAR *g_s0, SCALAR *acc_bias, SCALAR *acc_leak, SCALAR *acc_theta,
                                int64_t T, int64_t L, int nthreads) {
    const SCALAR th = (SCALAR)threshold, sp = (SCALAR)surr_param;
    const int64_t K = (P > Q ? P : Q) + 1; /* the ring holds G[t .. t + max(P, Q)] */
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t c0 = 0; c0 < L; c0 += CHUNK) {
        const int64_t n = L - c0 < CHUNK ? L - c0 : CHUNK;
        SCALAR gvn[CHUNK], gs[CHUNK], al[CHUNK], at[CHUNK], ab[CHUNK], lam[CHUNK], dec[CHUNK], eps[CHUNK], vp[CHUNK];
        SCALAR vbuf[2][CHUNK], gxrow[CHUNK]; /* V[t] and V[t-1] when stored as bfloat16; a row of gX */
        SCALAR *ring = malloc(sizeof(SCALAR) * (size_t)K * CHUNK); /* G[t .. t + max(P, Q)] */
        for (int64_t i = 0; i < n; i++) {
            gvn[i] = 0;
            gs[i] = g_slast ? g_slast[c0 + i] : (SCALAR)0;
            al[i] = 0;
            at[i] = 0;
            ab[i] = 0;
            lam[i] = leak[(c0 + i) % leak_period];
            dec[i] = theta[(c0 + i) % theta_period];
        }
        for (int64_t k = 0; k < K * CHUNK; k++) ring[k] = 0;
        for (int64_t t = T - 1; t >= 0; t--) {
            const int64_t off = t * L + c0;
            const SCALAR *gOt = gO + off;
            /* bfloat16 V[t] was converted into vbuf[t & 1] as the previous row of step t + 1 */
            const SCALAR *Vt = v_bf16 && t < T - 1 ? vbuf[t & 1] : FN(potential_row)(V, v_bf16, off, n, vbuf[t & 1]);
            if (t - PREFETCH >= 0) {
                if (!v_bf16) FN(prefetch_row)(Vt - PREFETCH * L, n);
                FN(prefetch_row)(gOt - PREFETCH * L, n);
            }
            FN(surrogate_row)(surr_kind, sp, th, Vt, eps, n);
            if (t > 0)
                FN(previous_potential)(n, hard, th, FN(potential_row)(V, v_bf16, off - L, n, vbuf[(t - 1) & 1]), vp);
            else /* V'[-1] of the starting state */
                for (int64_t i = 0; i < n; i++)
                    vp[i] = !v0 ? (SCALAR)0 : hard ? v0[c0 + i] * ((SCALAR)1 - s0[c0 + i]) : v0[c0 + i];
            /* neuron adjoint: gV[t] (= dL/dI[t]) goes into this step's ring slot as G's seed */
            SCALAR *Gt = ring + (t % K) * CHUNK;
            if (t == T - 1) /* the returned state's gradients enter at the last step only: the other calls get
                             * constant NULLs, so that the inlined step is vectorised without their branches */
                FN(neuron_adjoint_step)(n, hard, detach, 1, th, lam, dec, eps, gOt, NULL, g_vlast ? g_vlast + c0 : NULL,
                                        g_slast ? g_slast + c0 : NULL, Vt, vp, gvn, gs, al, Gt);
            else
                FN(neuron_adjoint_step)(n, hard, detach, 0, th, lam, dec, eps, gOt, NULL, NULL, NULL, Vt, vp, gvn, gs,
                                        al, Gt);
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) ab[i] += Gt[i];
            if (acc_theta && !hard)
                for (int64_t i = 0; i < n; i++) at[i] += gs[i] * S_prev[off + i];
            /* filter adjoint: G[t] = gI[t] + g_flast of F[t] + sum_p alpha_p G[t+p]; gX[t] = sum_q beta_q G[t+q]
             * + g_xlast of X[t] */
            if (g_flast && t >= T - P) {
                const SCALAR *g = g_flast + (t - T + P) * L + c0;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) Gt[i] += g[i];
            }
            for (int64_t p = 1; p <= P && t + p < T; p++) {
                const SCALAR ap = (SCALAR)alpha[p - 1], *src = ring + ((t + p) % K) * CHUNK;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) Gt[i] += ap * src[i];
            }
            if (P > 0) {
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) Gt[i] = FN(flush)(Gt[i]);
            }
            const SCALAR b0 = (SCALAR)beta[0];
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) gxrow[i] = b0 * Gt[i];
            for (int64_t q = 1; q <= Q && t + q < T; q++) {
                const SCALAR bq = (SCALAR)beta[q], *src = ring + ((t + q) % K) * CHUNK;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) gxrow[i] += bq * src[i];
            }
            if (g_xlast && t >= T - Q) {
                const SCALAR *g = g_xlast + (t - T + Q) * L + c0;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) gxrow[i] += g[i];
            }
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) gxrow[i] = FN(flush)(gxrow[i]);
            if (gx_bf16) {
                uint16_t *h = (uint16_t *)gX + off;
                #pragma omp simd
                for (int64_t i = 0; i < n; i++) h[i] = f32_to_bf16((float)gxrow[i]);
            } else {
                FN(store_row)((SCALAR *)gX + off, gxrow, n);
            }
        }
        FN(store_fence)();
        /* the starting state: F[j - P] and X[j - Q] feed the steps j - P + p < P and j - Q + q < Q, whose G the ring
         * still holds (slot u = G[u]), and go straight into the returned state when the chunk is shorter */
        for (int64_t j = 0; g_fh && j < P; j++) {
            SCALAR *dst = g_fh + j * L + c0;
            for (int64_t i = 0; i < n; i++) dst[i] = 0;
            for (int64_t p = P - j; p <= P && j - P + p < T; p++) {
                const SCALAR ap = (SCALAR)alpha[p - 1], *src = ring + (j - P + p) * CHUNK;
                for (int64_t i = 0; i < n; i++) dst[i] += ap * src[i];
            }
            if (g_flast && j - P >= T - P)
                for (int64_t i = 0; i < n; i++) dst[i] += g_flast[(j - T) * L + c0 + i];
            for (int64_t i = 0; i < n; i++) dst[i] = FN(flush)(dst[i]);
        }
        for (int64_t j = 0; g_xh && j < Q; j++) {
            SCALAR *dst = g_xh + j * L + c0;
            for (int64_t i = 0; i < n; i++) dst[i] = 0;
            for (int64_t q = Q - j; q <= Q && j - Q + q < T; q++) {
                const SCALAR bq = (SCALAR)beta[q], *src = ring + (j - Q + q) * CHUNK;
                for (int64_t i = 0; i < n; i++) dst[i] += bq * src[i];
            }
            if (g_xlast && j - Q >= T - Q)
                for (int64_t i = 0; i < n; i++) dst[i] += g_xlast[(j - T) * L + c0 + i];
            for (int64_t i = 0; i < n; i++) dst[i] = FN(flush)(dst[i]);
        }
        for (int64_t i = 0; i < n; i++) {
            const int64_t l = c0 + i;
            if (g_v0) g_v0[l] = FN(flush)(hard ? lam[i] * ((SCALAR)1 - (s0 ? s0[l] : (SCALAR)0)) * gvn[i] : lam[i] * gvn[i]);
            if (g_s0) g_s0[l] = hard ? (detach ? (SCALAR)0 : FN(flush)(-lam[i] * (v0 ? v0[l] : (SCALAR)0) * gvn[i]))
                                     : FN(flush)(dec[i] * gs[i] - th * gvn[i]);
            acc_leak[l] = FN(flush)(al[i]);
            acc_bias[l] = FN(flush)(ab[i]);
            if (acc_theta) acc_theta[l] = FN(flush)(at[i]);
        }
        free(ring);
    }
}
