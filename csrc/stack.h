/* A guard against running out of native stack: wasmtime bounds the stack wasm itself uses
 * (max_wasm_stack), but not what the thread has left, so a small thread stack or deep
 * Python -> wasm -> Python recursion could overflow it. Entries into wasm check first. */

#include <pthread.h>
#include <stddef.h>

static __thread char *wasmpy_stack_low; /* the lowest address of this thread's stack, once known */

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
