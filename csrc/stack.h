/* A guard against running out of native stack: wasmtime bounds the stack wasm itself uses
 * (max_wasm_stack), but not what the thread has left, so a small thread stack or deep
 * Python -> wasm -> Python recursion could overflow it. Entries into wasm check first. */

#include <pthread.h>
#include <stddef.h>

/* Bind these two to the versions every x86-64 glibc has (GLIBC_2.2.5), not to the ones a newer
 * build machine's glibc makes the default (pthread_getattr_np@GLIBC_2.32, and
 * pthread_attr_getstack@GLIBC_2.34 since libpthread moved into libc), which would make the
 * extensions need glibc 2.34 and the wheel manylinux_2_34 instead of the bundled wasmtime
 * library's manylinux_2_28. glibc 2.34 and later keep the old versions in libc.so.6 (the same
 * code); older ones have them in libpthread.so.0, which build_ffi.py links (-lpthread) and the wasmtime
 * library needs too. tools/build_wheel.sh and tests/test_packaging.py check the versions. */
#if defined(__GLIBC__) && defined(__x86_64__)
__asm__(".symver pthread_getattr_np,pthread_getattr_np@GLIBC_2.2.5");
__asm__(".symver pthread_attr_getstack,pthread_attr_getstack@GLIBC_2.2.5");
#endif

/* The lowest address of this thread's stack, once known; initial-exec: read with one instruction
 * rather than a call to __tls_get_addr on every call into wasm. */
static __thread __attribute__((tls_model("initial-exec"))) char *wasmpy_stack_low;

/* This thread's stack bounds (the lowest address and the size) as glibc reports them now: 0, or
 * -1 when they are unknown. The main thread's stack grows on demand up to RLIMIT_STACK, and glibc
 * reports that limit (or the room below the stack, if less) as its size. */
static inline int wasmpy_stack_bounds(char **low, size_t *size)
{
    pthread_attr_t attributes;
    void *address;
    if (pthread_getattr_np(pthread_self(), &attributes) != 0)
        return -1;
    pthread_attr_getstack(&attributes, &address, size);
    pthread_attr_destroy(&attributes);
    *low = (char *)address;
    return 0;
}

static inline int wasmpy_stack_left_exceeds(const char *here, size_t needed)
{
    return here > wasmpy_stack_low && (size_t)(here - wasmpy_stack_low) > needed;
}

/* Whether more than `needed` bytes of this thread's stack are left. */
static inline int wasmpy_stack_allows(size_t needed)
{
    char here;
    size_t size;
    if (wasmpy_stack_low != NULL && wasmpy_stack_left_exceeds(&here, needed))
        return 1;
    /* Not known yet, or not enough: look again, since the main thread's RLIMIT_STACK may have been
     * raised since (resource.setrlimit), which lets its stack grow further. Rare: a refusal. */
    if (wasmpy_stack_bounds(&wasmpy_stack_low, &size) != 0) {
        wasmpy_stack_low = NULL;
        return 1; /* unknown: let wasmtime's own guard decide */
    }
    return wasmpy_stack_left_exceeds(&here, needed);
}
