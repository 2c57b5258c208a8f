/* Hashing a buffer in linear memory, as a freestanding wasm32 kernel (no
 * libc, no imports): 64-bit FNV-1a, one byte at a time (a serial chain of
 * loads, xors and 64-bit multiplies).
 *
 * Exports: buffer() is the address of a 1 MiB buffer, fill(n, seed) fills
 * its first n bytes with xorshift32 output, fnv1a64(p, n, rounds) hashes
 * [p, p + n) `rounds` times over (each pass continues from the last hash). */

#include <stdint.h>

#define BUFFER_SIZE (1u << 20)

static unsigned char data[BUFFER_SIZE];

unsigned char *buffer(void) { return data; }

unsigned buffer_size(void) { return BUFFER_SIZE; }

void fill(unsigned n, uint32_t seed) {
    uint32_t s = seed ? seed : 1;
    if (n > BUFFER_SIZE) n = BUFFER_SIZE;
    for (unsigned i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 17; s ^= s << 5;
        data[i] = (unsigned char)(s >> 24);
    }
}

uint64_t fnv1a64(const unsigned char *p, unsigned n, unsigned rounds) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned r = 0; r < rounds; r++)
        for (unsigned i = 0; i < n; i++)
            h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
