/* bfloat16 words (the upper 16 bits of a float32) read as float32, shared by the scans and the sparse products. */
#pragma once
#include <stdint.h>

static inline float bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    __builtin_memcpy(&f, &u, sizeof f);
    return f;
}
