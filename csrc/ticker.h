/* The epoch ticker: one C thread for the whole process that advances the epoch of every
 * interruptible engine once per interval, which makes running wasm call its store's epoch
 * callback (deadlines, Ctrl-C, and the release of the GIL by calls that run long). It needs no
 * GIL, so that it also interrupts wasm that runs with the GIL held, and it sleeps while no
 * store is in use, so that an idle process never wakes up. */
#ifndef WASMPY_TICKER_H
#define WASMPY_TICKER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Stores whose lock is held: written only under the GIL, read by the ticker thread. */
extern unsigned long ticker_stores_in_use;
extern int ticker_asleep;
/* Whether the ticker's barrier (membarrier) orders the callers' accesses, so that they need only
 * a compiler barrier; otherwise they need a full fence. */
extern int ticker_barrier_is_global;

void ticker_wake(void);

/* Under the GIL, when a store's lock is taken from free. The ticker may be deciding to sleep
 * at this very moment: it publishes `ticker_asleep` and then reads the count, this publishes
 * the count and then reads `ticker_asleep` (with a barrier between on both sides), so at
 * least one of them sees the other and the ticker cannot sleep through a store in use. */
static inline void ticker_store_taken(void)
{
    unsigned long in_use = ticker_stores_in_use; /* exact: only this side writes it, under the GIL */
    __atomic_store_n(&ticker_stores_in_use, in_use + 1, __ATOMIC_RELAXED);
    if (in_use > 0)
        return;
    if (ticker_barrier_is_global)
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    else
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&ticker_asleep, __ATOMIC_RELAXED))
        ticker_wake();
}

static inline void ticker_store_released(void)
{
    __atomic_store_n(&ticker_stores_in_use, ticker_stores_in_use - 1, __ATOMIC_RELAXED);
}

/* The module's ticker functions (engine registration, interval, tick count, fork). */
int ticker_add_to_module(PyObject *module);

#endif
