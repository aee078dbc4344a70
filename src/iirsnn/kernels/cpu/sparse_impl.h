/* Spike-sparse products of iirsnn for one scalar type. Included by sparse.c with SCALAR and FN defined.
 *
 * A spike matrix X [R, N] (R = T*B rows, N presynaptic neurons) is mostly zeros and its non-zeros are
 * mostly ones. As CSR (rowptr int64 [R+1], col int32 [nnz], optional val [nnz]) it gives the forward
 * product X W^T as sums of rows of W^T; as CSC (colptr [N+1], row int32 [nnz], optional val) the weight
 * gradient G^T X as sums of rows of G. val == NULL means every non-zero is exactly 1. */

/* counts[r] = non-zeros of row r; returns 1 if some non-zero differs from 1 (values must then be kept). */
int FN(csr_count)(const SCALAR *X, int64_t R, int64_t N, int64_t *counts, int nthreads) {
    int nonbinary = 0;
    #pragma omp parallel for num_threads(nthreads) schedule(static) reduction(| : nonbinary)
    for (int64_t r = 0; r < R; r++) {
        const SCALAR *x = X + r * N;
        int64_t c = 0, j = 0;
        int nb = 0;
#if defined(__AVX512F__)
        if (sizeof(SCALAR) == 4) {
            for (; j + 16 <= N; j += 16) {
                const __m512 v = _mm512_loadu_ps((const float *)x + j);
                const __mmask16 nz = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
                c += __builtin_popcount((unsigned)nz);
                nb |= (_mm512_mask_cmp_ps_mask(nz, v, _mm512_set1_ps(1.0f), _CMP_NEQ_UQ) != 0);
            }
        }
#endif
        for (; j < N; j++) {
            c += x[j] != 0;
            nb |= (x[j] != 0) & (x[j] != 1);
        }
        counts[r] = c;
        nonbinary |= nb;
    }
    return nonbinary;
}

/* Fill col (and val unless NULL) of the CSR whose rowptr is given. */
void FN(csr_fill)(const SCALAR *X, int64_t R, int64_t N, const int64_t *rowptr, int32_t *col, SCALAR *val,
                  int nthreads) {
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const SCALAR *x = X + r * N;
        int64_t k = rowptr[r];
        int64_t j = 0;
#if defined(__AVX512F__)
        if (sizeof(SCALAR) == 4 && !val) { /* float spikes: 16 at a time, indices of the non-zeros compressed out */
            const __m512i step = _mm512_set1_epi32(16);
            __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            for (; j + 16 <= N; j += 16) {
                const __mmask16 nz = _mm512_cmp_ps_mask(_mm512_loadu_ps((const float *)x + j), _mm512_setzero_ps(),
                                                        _CMP_NEQ_UQ);
                /* compress in a register and store all 16 (a compressing store to memory is microcoded and slow on
                 * some CPUs): lanes past the non-zeros are overwritten by the next store. Near the end of the row's
                 * range they would spill into the next row's, so the last ones go through a small buffer. */
                const __m512i packed = _mm512_maskz_compress_epi32(nz, index);
                const int cnt = __builtin_popcount((unsigned)nz);
                if (k + 16 <= rowptr[r + 1]) {
                    _mm512_storeu_si512((void *)(col + k), packed);
                } else {
                    int32_t buf[16];
                    _mm512_storeu_si512((void *)buf, packed);
                    for (int q = 0; q < cnt; q++) col[k + q] = buf[q];
                }
                k += cnt;
                index = _mm512_add_epi32(index, step);
            }
        }
#endif
        for (; j < N; j++) {
            if (x[j] != 0) {
                col[k] = (int32_t)j;
                if (val) val[k] = x[j];
                k++;
            }
        }
    }
}

/* out[r, m0:m0+w] += sum over the non-zeros k of row r in [k0, k1) of val[k] * src[idx[k], m0:m0+w]. */
static inline void FN(add_rows)(const int32_t *idx, const SCALAR *val, const SCALAR *src, SCALAR *restrict o,
                                int64_t k, int64_t k1, int64_t M, int64_t m0, int64_t w) {
#if defined(__AVX512F__)
    if (sizeof(SCALAR) == 4 && !val) {
        add_rows_registers_f32(idx, (const float *)src + m0, (float *)o, k, k1, M, w);
        return;
    }
#endif
    if (!val) { /* spikes: four source rows per pass over the output row */
        for (; k + 4 <= k1; k += 4) {
            const SCALAR *restrict s0 = src + (int64_t)idx[k] * M + m0;
            const SCALAR *restrict s1 = src + (int64_t)idx[k + 1] * M + m0;
            const SCALAR *restrict s2 = src + (int64_t)idx[k + 2] * M + m0;
            const SCALAR *restrict s3 = src + (int64_t)idx[k + 3] * M + m0;
            #pragma omp simd
            for (int64_t m = 0; m < w; m++) o[m] += (s0[m] + s1[m]) + (s2[m] + s3[m]);
        }
    }
    for (; k < k1; k++) {
        const SCALAR *restrict s = src + (int64_t)idx[k] * M + m0;
        const SCALAR v = val ? val[k] : (SCALAR)1;
        #pragma omp simd
        for (int64_t m = 0; m < w; m++) o[m] += v * s[m];
    }
}

/* Sum of rows: out[r, m0:m0+BW] = sum over the non-zeros k of row r of val[k] * src[idx[k], m0:m0+BW]. Rows and
 * bands of up to BW columns are spread over the threads. (Visiting src in blocks of rows that fit L2 did not help.) */
static void FN(gather_rows)(const int64_t *ptr, const int32_t *idx, const SCALAR *val, const SCALAR *src,
                            SCALAR *out, int64_t R, int64_t M, int nthreads) {
    const int64_t n_bands = (M + BW - 1) / BW, n_chunks = (R + ROWS - 1) / ROWS;
    #pragma omp parallel for num_threads(nthreads) schedule(dynamic) collapse(2)
    for (int64_t band = 0; band < n_bands; band++) {
        for (int64_t chunk = 0; chunk < n_chunks; chunk++) {
            const int64_t m0 = band * BW, w = M - m0 < BW ? M - m0 : BW;
            const int64_t r1 = (chunk + 1) * ROWS < R ? (chunk + 1) * ROWS : R;
            for (int64_t r = chunk * ROWS; r < r1; r++) {
                SCALAR *restrict o = out + r * M + m0;
                #pragma omp simd
                for (int64_t m = 0; m < w; m++) o[m] = 0;
                FN(add_rows)(idx, val, src, o, ptr[r], ptr[r + 1], M, m0, w);
            }
        }
    }
}

/* out [R, M] = X W^T with X as CSR and WT = W^T [N, M] (row-major). */
void FN(spmm_csr)(const int64_t *rowptr, const int32_t *col, const SCALAR *val, const SCALAR *WT, SCALAR *out,
                  int64_t R, int64_t M, int nthreads) {
    FN(gather_rows)(rowptr, col, val, WT, out, R, M, nthreads);
}

/* gWT [N, M] = X^T G with X as CSC (rows sorted within each column) and G [R, M] (row-major): row j of gWT sums
 * the rows of G where column j spikes. G is visited in blocks of rows small enough to stay in the last-level cache
 * (a long sequence makes G larger than the cache, and rows gathered at random from memory were 10x slower). */
void FN(spmm_csc)(const int64_t *colptr, const int32_t *row, const SCALAR *val, const SCALAR *G, SCALAR *gWT,
                  int64_t N, int64_t M, int64_t R, int nthreads) {
    const int64_t block = (CACHE_BYTES / (int64_t)sizeof(SCALAR)) / (M > 0 ? M : 1);
    const int64_t rows_per_block = block > 64 ? block : 64;
    int64_t *cursor = malloc(sizeof(int64_t) * (size_t)(N > 0 ? N : 1));
    for (int64_t j = 0; j < N; j++) cursor[j] = colptr[j];
    for (int64_t i = 0; i < N * M; i++) gWT[i] = 0;
    for (int64_t r1 = rows_per_block; r1 < R + rows_per_block; r1 += rows_per_block) {
        #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 8)
        for (int64_t j = 0; j < N; j++) {
            SCALAR *restrict o = gWT + j * M;
            int64_t k = cursor[j], end = k;
            while (end < colptr[j + 1] && row[end] < r1) end++;
            FN(add_rows)(row, val, G, o, k, end, M, 0, M);
            cursor[j] = end;
        }
    }
    free(cursor);
}

/* CSC of the CSR (a stable counting sort by column, parallel over row blocks). counts: [nthreads * N] scratch. */
void FN(csr_to_csc)(const int64_t *rowptr, const int32_t *col, const SCALAR *val, int64_t R, int64_t N,
                    int64_t *colptr, int32_t *row, SCALAR *cval, int64_t *counts, int nthreads) {
    for (int64_t i = 0; i < (int64_t)nthreads * N; i++) counts[i] = 0;
    #pragma omp parallel num_threads(nthreads)
    {
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t r0 = R * tid / nt, r1 = R * (tid + 1) / nt;
        int64_t *mine = counts + (int64_t)tid * N;
        for (int64_t k = rowptr[r0]; k < rowptr[r1]; k++) mine[col[k]]++;
        #pragma omp barrier
        #pragma omp single
        {
            int64_t total = 0;
            for (int64_t j = 0; j < N; j++) {
                colptr[j] = total;
                for (int t = 0; t < nt; t++) {
                    const int64_t c = counts[(int64_t)t * N + j];
                    counts[(int64_t)t * N + j] = total;
                    total += c;
                }
            }
            colptr[N] = total;
        }
        for (int64_t r = r0; r < r1; r++)
            for (int64_t k = rowptr[r]; k < rowptr[r + 1]; k++) {
                const int64_t dst = mine[col[k]]++;
                row[dst] = (int32_t)r;
                if (val) cval[dst] = val[k];
            }
    }
}

/* Word w of a row of spike bits with the bits outside lanes [lo, hi) cleared. */
static inline uint64_t FN(range_word)(const uint64_t *row, int64_t w, int64_t lo, int64_t hi) {
    uint64_t word = row[w];
    const int64_t base = w * 64;
    if (lo > base) word &= ~(uint64_t)0 << (lo - base);
    if (hi < base + 64) word &= ((uint64_t)1 << (hi - base)) - 1;
    return word;
}

/* From the spike bits of a [T, B, N] layer output (as written by filter_neuron_forward: [T, ceil(B N / 64)] words),
 * counts[r] = spikes of row r = t B + b of the [T B, N] spike matrix; the float output is not read. */
void FN(bits_count)(const uint64_t *bits, int64_t T, int64_t B, int64_t N, int64_t *counts, int nthreads) {
    const int64_t W = (B * N + 63) / 64;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < T * B; r++) {
        const int64_t lo = (r % B) * N, hi = lo + N;
        const uint64_t *row = bits + (r / B) * W;
        int64_t c = 0;
        for (int64_t w = lo / 64; w * 64 < hi; w++) c += __builtin_popcountll(FN(range_word)(row, w, lo, hi));
        counts[r] = c;
    }
}

/* Fill col of the CSR whose rowptr is given from the spike bits (see bits_count): columns in increasing order. */
void FN(bits_fill)(const uint64_t *bits, int64_t T, int64_t B, int64_t N, const int64_t *rowptr, int32_t *col,
                   int nthreads) {
    const int64_t W = (B * N + 63) / 64;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < T * B; r++) {
        const int64_t lo = (r % B) * N, hi = lo + N;
        const uint64_t *row = bits + (r / B) * W;
        int64_t k = rowptr[r];
        for (int64_t w = lo / 64; w * 64 < hi; w++) {
            uint64_t word = FN(range_word)(row, w, lo, hi);
            while (word) {
                col[k++] = (int32_t)(w * 64 + __builtin_ctzll(word) - lo);
                word &= word - 1;
            }
        }
    }
}
