/* A real program for the benchmarks: LZ4 1.9.4 (lz4.c, lz4hc.c: Yann Collet's
 * library, BSD 2-Clause, unmodified copies beside this file) compressing and
 * decompressing a buffer of generated text, built for wasm32-wasi (wasi-libc's
 * malloc, memcpy and memset; no WASI function is imported) as a reactor.
 *
 * Exports (beside _initialize, which a host calls first):
 *   lz4bench_setup(size, seed): allocates the buffers and fills `size` bytes
 *       (at most 16 MiB) with text-like data; returns 0, or -1 if out of memory.
 *   lz4bench_run(hc_level): compresses the data with LZ4_compress_default, and
 *       with LZ4_compress_HC at `hc_level` (0: skipped), decompresses each
 *       with LZ4_decompress_safe and checks the bytes came back; returns a
 *       checksum of both compressed streams and their sizes, or a negative
 *       error code.
 *   lz4bench_fast_size(), lz4bench_hc_size(): the last run's compressed sizes.
 *
 * The data is words from a fixed vocabulary, picked with a skewed
 * distribution by a xorshift generator, with numbers and punctuation: the
 * fast compressor makes about 60% of its size of it, HC level 9 about 38%. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lz4.h"
#include "lz4hc.h"

#define MAX_SIZE (16u << 20)

static char *input, *compressed, *restored;
static int input_size, capacity, fast_size, hc_size;

static const char *const words[] = {
    "the", "of", "and", "a", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had",
    "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if",
    "more", "when", "will", "would", "who", "so", "no", "module", "function", "memory", "instance",
    "store", "engine", "compile", "value", "table", "global", "export", "import", "return", "error",
    "request", "response", "status", "connection", "timeout", "handler", "buffer", "stream", "client",
    "server", "thread", "process", "signal", "deadline", "interrupt", "epoch", "counter", "pointer",
};
#define WORD_COUNT (sizeof(words) / sizeof(words[0]))

static uint32_t next(uint32_t *state) {
    uint32_t s = *state;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return *state = s;
}

static void fill_text(char *out, int size, uint32_t seed) {
    uint32_t state = seed ? seed : 1;
    int at = 0;
    while (at < size) {
        uint32_t r = next(&state);
        char piece[24];
        int length;
        if ((r & 31) == 0) {            /* a number now and then */
            uint32_t n = next(&state) % 100000;
            length = 0;
            do {
                piece[length++] = (char)('0' + n % 10);
                n /= 10;
            } while (n);
        } else {                        /* a word, the first ones far more often */
            uint32_t pick = (r >> 8) % WORD_COUNT;
            pick = pick * ((r >> 20) & 7) / 7;
            length = (int)strlen(words[pick]);
            memcpy(piece, words[pick], (size_t)length);
        }
        piece[length++] = (r & 0x700) == 0x700 ? '\n' : ((r & 0xF0) == 0xF0 ? ',' : ' ');
        for (int i = 0; i < length && at < size; i++)
            out[at++] = piece[i];
    }
}

int lz4bench_setup(int size, uint32_t seed) {
    if (size <= 0 || (unsigned)size > MAX_SIZE)
        return -1;
    free(input);
    free(compressed);
    free(restored);
    capacity = LZ4_compressBound(size);
    input = malloc((size_t)size);
    compressed = malloc((size_t)capacity);
    restored = malloc((size_t)size);
    if (!input || !compressed || !restored)
        return -1;
    input_size = size;
    fill_text(input, size, seed);
    return 0;
}

static uint32_t checksum(const char *data, int size, uint32_t h) {
    for (int i = 0; i < size; i++)
        h = (h ^ (unsigned char)data[i]) * 16777619u;
    return h;
}

/* Decompresses `compressed` (`size` bytes) and checks it against the input. */
static int round_trip(int size) {
    memset(restored, 0, (size_t)input_size);
    int back = LZ4_decompress_safe(compressed, restored, size, input_size);
    if (back != input_size)
        return -3;
    return memcmp(restored, input, (size_t)input_size) == 0 ? 0 : -4;
}

int64_t lz4bench_run(int hc_level) {
    if (!input)
        return -1;
    uint32_t h = 2166136261u;
    fast_size = LZ4_compress_default(input, compressed, input_size, capacity);
    if (fast_size <= 0)
        return -2;
    h = checksum(compressed, fast_size, h);
    int status = round_trip(fast_size);
    if (status)
        return status;
    hc_size = 0;
    if (hc_level > 0) {
        hc_size = LZ4_compress_HC(input, compressed, input_size, capacity, hc_level);
        if (hc_size <= 0)
            return -5;
        h = checksum(compressed, hc_size, h);
        status = round_trip(hc_size);
        if (status)
            return status;
    }
    return (int64_t)h << 31 ^ (int64_t)fast_size << 16 ^ hc_size;
}

int lz4bench_fast_size(void) { return fast_size; }

int lz4bench_hc_size(void) { return hc_size; }
