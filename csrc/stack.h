/* A guard against running out of native stack: wasmtime bounds the stack wasm itself uses
 * (max_wasm_stack), but not what the thread has left, so a small thread stack or deep
 * Python -> wasm -> Python recursion could overflow it. Entries into wasm check first. */

#include <pthread.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* This thread's stack as last read, in initial-exec TLS (read with one instruction rather than
 * a call to __tls_get_addr on every call into wasm): its lowest address (NULL: not known yet)
 * and, on the process's main thread only, its top and the RLIMIT_STACK its size followed. */
static __thread __attribute__((tls_model("initial-exec"))) char *wasmpy_stack_low;
static __thread __attribute__((tls_model("initial-exec"))) char *wasmpy_stack_top;
static __thread __attribute__((tls_model("initial-exec"))) rlim_t wasmpy_stack_rlimit;

/* How deep (from the main thread's top, the call's own need included) a call can go before the
 * guard checks that RLIMIT_STACK was not lowered since the bounds were read: getrlimit costs
 * about 0.3 us, so the ordinary call (wasmtime's default max_wasm_stack is 512 KiB) never pays
 * it; a main thread whose limit is lowered below this while it runs is not covered. */
#define WASMPY_STACK_RECHECK_DEPTH ((size_t)1 << 20)

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

/* Reads this thread's bounds into the variables above: 0, or -1 if they are unknown. */
static inline int wasmpy_stack_read(void)
{
    size_t size;
    struct rlimit limit;
    if (wasmpy_stack_bounds(&wasmpy_stack_low, &size) != 0) {
        wasmpy_stack_low = NULL;
        return -1;
    }
    wasmpy_stack_top = NULL;
    if (getpid() == (pid_t)syscall(SYS_gettid) && getrlimit(RLIMIT_STACK, &limit) == 0) {
        wasmpy_stack_top = wasmpy_stack_low + size;
        wasmpy_stack_rlimit = limit.rlim_cur;
    }
    return 0;
}

/* Whether RLIMIT_STACK is what it was when the main thread's bounds were read. */
static inline int wasmpy_stack_rlimit_unchanged(void)
{
    struct rlimit limit;
    return getrlimit(RLIMIT_STACK, &limit) == 0 && limit.rlim_cur == wasmpy_stack_rlimit;
}

/* Whether more than `needed` bytes of this thread's stack are left. */
static inline int wasmpy_stack_allows(size_t needed)
{
    char here;
    if (wasmpy_stack_low != NULL && wasmpy_stack_left_exceeds(&here, needed)) {
        /* Other threads' stacks never change size; the main thread's follows RLIMIT_STACK, which
         * resource.setrlimit may have lowered since: a deep call looks. */
        if (wasmpy_stack_top == NULL || (size_t)(wasmpy_stack_top - &here) + needed <= WASMPY_STACK_RECHECK_DEPTH ||
            wasmpy_stack_rlimit_unchanged())
            return 1;
    }
    /* Not known yet, not enough, or the limit changed: look again (a raised RLIMIT_STACK lets the
     * main thread's stack grow further). Rare: a refusal, or a deep call after setrlimit. */
    if (wasmpy_stack_read() != 0)
        return 1; /* unknown: let wasmtime's own guard decide */
    return wasmpy_stack_left_exceeds(&here, needed);
}
