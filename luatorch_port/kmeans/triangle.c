/* The bf16 encoder's two passes around its one GEMM (see fused.py and encoder.py).
 *
 * contrast_patches_bf16: every rf x rf patch of an image (stride s), contrast-normalised as
 *   Coates' extract_features.m does, (p - mean(p)) / sqrt(var(p) + reg) (var with n - 1),
 *   written as one bf16 row of the GEMM's left operand.
 * triangle_pool_bf16: from the GEMM's bf16 output row [x.B | x.P] (B = -2 P C^T folds the
 *   ZCA matrix P into the centroids C; x.P + bias is the whitened patch), computes
 *   xx = |x.P + bias|^2, z = sqrt(max(xx + cc + x.B, 0)), the triangle f = max(mean(z) - z, 0)
 *   and adds f into the patch's quadrant: the GEMM block is read once, instead of once per
 *   torch pass (add, sqrt, mean, subtract, clamp, sum).
 * Compiled with -O3 and reassociation allowed (fused.py's CFLAGS) so that the row sums
 * vectorise.
 */
#include <stdint.h>
#include <string.h>
#include <math.h>

static inline float bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t float_to_bf16(float f)   /* round to nearest even, as torch does */
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* img: (n, ch, h, w) fp32; x: (n * pr * pc, ch * rf * rf) bf16 bits, rows in (image, patch
 * row, patch column) order, values in (channel, row, column) order; p: ch * rf * rf floats
 * scratch. */
void contrast_patches_bf16(const float *img, int64_t n, int64_t ch, int64_t h, int64_t w,
                           int64_t rf, int64_t stride, float reg, uint16_t *x, float *p)
{
    const int64_t pr = (h - rf) / stride + 1, pc = (w - rf) / stride + 1, d = ch * rf * rf;
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < pr; i++)
            for (int64_t j = 0; j < pc; j++) {
                int64_t t = 0;
                for (int64_t c = 0; c < ch; c++)
                    for (int64_t u = 0; u < rf; u++) {
                        const float *src = img + ((b * ch + c) * h + i * stride + u) * w + j * stride;
                        for (int64_t v = 0; v < rf; v++)
                            p[t++] = src[v];
                    }
                float s = 0.0f;
                for (t = 0; t < d; t++)
                    s += p[t];
                const float mu = s / (float)d;
                float q = 0.0f;
                for (t = 0; t < d; t++) {
                    p[t] -= mu;
                    q += p[t] * p[t];
                }
                const float scale = 1.0f / sqrtf(q / (float)(d - 1) + reg);
                uint16_t *row = x + ((b * pr + i) * pc + j) * d;
                for (t = 0; t < d; t++)
                    row[t] = float_to_bf16(p[t] * scale);
            }
}

/* Rows r0 <= r < r1 of a chunk of whole images, each image's rows in (patch row, patch
 * column) order: y holds rows r0..r1-1, (r1 - r0, ld) bf16 bits, [x.B | x.P | padding] per
 * row (ld >= k + d); bias: (d); cc: (k), |c|^2 - 2 bias.c; out: the chunk's (n, 4, k)
 * features, added to (the caller zeroes them), quadrants [top-left, bottom-left, top-right,
 * bottom-right] split at hr, hc; z: k floats scratch. */
void triangle_pool_bf16(const uint16_t *y, int64_t ld, const float *bias, const float *cc,
                        int64_t r0, int64_t r1, int64_t pr, int64_t pc, int64_t hr, int64_t hc,
                        int64_t k, int64_t d, float *out, float *z)
{
    const float inv_k = 1.0f / (float)k;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t b = r / (pr * pc), i = (r / pc) % pr, j = r % pc;
        const uint16_t *row = y + (r - r0) * ld;
        float *acc = out + (b * 4 + (j >= hc) * 2 + (i >= hr)) * k;
        float x2 = 0.0f;
        for (int64_t t = 0; t < d; t++) {
            const float v = bf16_to_float(row[k + t]) + bias[t];
            x2 += v * v;
        }
        float s = 0.0f;
        for (int64_t t = 0; t < k; t++) {
            float v = x2 + cc[t] + bf16_to_float(row[t]);
            v = sqrtf(v > 0.0f ? v : 0.0f);
            z[t] = v;
            s += v;
        }
        const float mu = s * inv_k;
        for (int64_t t = 0; t < k; t++) {
            const float a = mu - z[t];
            acc[t] += a > 0.0f ? a : 0.0f;
        }
    }
}

/* The "hard" encoding (Coates et al. 2011): a one-hot of the nearest centroid, summed per
 * quadrant. The nearest minimises cc + x.B (|x|^2 is the same for the whole row); ties go to
 * the first, as torch's argmin. Arguments as triangle_pool_bf16's. */
void hard_pool_bf16(const uint16_t *y, int64_t ld, const float *cc,
                    int64_t r0, int64_t r1, int64_t pr, int64_t pc, int64_t hr, int64_t hc,
                    int64_t k, float *out)
{
    for (int64_t r = r0; r < r1; r++) {
        const int64_t b = r / (pr * pc), i = (r / pc) % pr, j = r % pc;
        const uint16_t *row = y + (r - r0) * ld;
        int64_t best = 0;
        float low = cc[0] + bf16_to_float(row[0]);
        for (int64_t t = 1; t < k; t++) {
            const float v = cc[t] + bf16_to_float(row[t]);
            if (v < low) {
                low = v;
                best = t;
            }
        }
        out[(b * 4 + (j >= hc) * 2 + (i >= hr)) * k + best] += 1.0f;
    }
}
