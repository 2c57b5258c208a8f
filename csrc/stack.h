/* A guard against running out of native stack: wasmtime bounds the stack wasm itself uses
 * (max_wasm_stack), but not what the thread has left, so a small thread stack or deep
 * Python -> wasm -> Python recursion could overflow it. Entries into wasm check first. */

#include <pthread.h>
#include <stddef.h>

/* The lowest address of this thread's stack, once known; initial-exec: read with one instruction
 * rather than a call to __tls_get_addr on every call into wasm. */
static __thread __attribute__((tls_model("initial-exec"))) char *wasmpy_stack_low;

/* Whether more than `needed` bytes of this thread's stack are left. */
static inline int wasmpy_stack_allows(size_t needed)
{
    char here;
    if (wasmpy_stack_low == NULL) {
        pthread_attr_t attributes;
        void *address;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &attributes) != 0)
            return 1; /* unknown: let wasmtime's own guard decide */
        pthread_attr_getstack(&attributes, &address, &size);
        pthread_attr_destroy(&attributes);
        wasmpy_stack_low = (char *)address;
    }
    return &here > wasmpy_stack_low && (size_t)(&here - wasmpy_stack_low) > needed;
}
