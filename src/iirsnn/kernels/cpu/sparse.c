/* Compiled spike-sparse products of iirsnn (CSR/CSC of spike matrices) for float32 and float64. */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

#define BW 512  /* output columns per band (the accumulator row); narrower bands measured slower */
#define ROWS 32 /* rows per task */
#define CACHE_BYTES (4 << 20) /* rows of G visited together in the weight gradient */

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
