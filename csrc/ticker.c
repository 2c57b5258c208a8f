/* The epoch ticker (see ticker.h). */
#include "ticker.h"

#include "api.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The versions every x86-64 glibc has, as in stack.h: the defaults of a newer build machine
 * (GLIBC_2.32, GLIBC_2.34) would make the wheel need its glibc. */
#if defined(__GLIBC__) && defined(__x86_64__)
__asm__(".symver pthread_create,pthread_create@GLIBC_2.2.5");
__asm__(".symver pthread_attr_setstacksize,pthread_attr_setstacksize@GLIBC_2.2.5");
__asm__(".symver pthread_sigmask,pthread_sigmask@GLIBC_2.2.5");
#endif

unsigned long ticker_stores_in_use;
int ticker_asleep;
int ticker_barrier_is_global;

/* Guarded by ticker_mutex: the engines to tick, whether the thread exists, and its wake-up. */
static pthread_mutex_t ticker_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ticker_wakeup = PTHREAD_COND_INITIALIZER;
static wasm_engine_t **ticked_engines;
static size_t ticked_count, ticked_capacity;
static int ticker_running;
static int ticker_woken;

static long long ticker_interval_ns = 10000000; /* the precision of deadlines; atomic */
static unsigned long long ticks;                /* how many times the epochs advanced; atomic */

static int membarrier(int command)
{
    return (int)syscall(SYS_membarrier, command, 0, 0);
}

/* With membarrier, the ticker's barrier runs on every thread of the process, and the callers'
 * fast path needs no fence instruction. */
static void barrier_setup(void)
{
    int commands = membarrier(MEMBARRIER_CMD_QUERY);
    ticker_barrier_is_global = commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                               membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

/* The ticker's half of the handshake in ticker_store_taken(): 0 if its barrier failed, in which
 * case it must not sleep (callers switch to full fences from now on). */
static int global_barrier(void)
{
    if (!ticker_barrier_is_global) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return 1;
    }
    if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
        return 1;
    __atomic_store_n(&ticker_barrier_is_global, 0, __ATOMIC_SEQ_CST);
    return 0;
}

static int ticker_idle(void)
{
    return ticked_count == 0 || __atomic_load_n(&ticker_stores_in_use, __ATOMIC_RELAXED) == 0;
}

/* With ticker_mutex held: sleeps until a store is taken into use or an engine added. */
static void sleep_while_idle(void)
{
    __atomic_store_n(&ticker_asleep, 1, __ATOMIC_RELAXED);
    if (global_barrier())
        while (!ticker_woken && ticker_idle())
            pthread_cond_wait(&ticker_wakeup, &ticker_mutex);
    ticker_woken = 0;
    __atomic_store_n(&ticker_asleep, 0, __ATOMIC_RELAXED);
}

static void *ticker_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&ticker_mutex);
    for (;;) {
        long long interval = __atomic_load_n(&ticker_interval_ns, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&ticker_mutex);
        struct timespec pause = {(time_t)(interval / 1000000000LL), (long)(interval % 1000000000LL)};
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
            continue;
        pthread_mutex_lock(&ticker_mutex);
        /* Under the mutex: an engine is deleted only after ticker_remove() took it out. */
        for (size_t i = 0; i < ticked_count; i++)
            wasmtime_engine_increment_epoch(ticked_engines[i]);
        __atomic_add_fetch(&ticks, 1, __ATOMIC_RELAXED);
        if (ticker_idle())
            sleep_while_idle();
    }
    return NULL;
}

/* With ticker_mutex held. Signals go to Python's threads, not to this one. */
static int ticker_start(void)
{
    pthread_attr_t attributes;
    sigset_t all, previous;
    pthread_t thread;
    if (pthread_attr_init(&attributes) != 0)
        return -1;
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 256 * 1024);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int failed = pthread_create(&thread, &attributes, ticker_main, NULL);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attributes);
    if (failed)
        return -1;
    ticker_running = 1;
    return 0;
}

void ticker_wake(void)
{
    pthread_mutex_lock(&ticker_mutex);
    ticker_woken = 1;
    pthread_cond_signal(&ticker_wakeup);
    pthread_mutex_unlock(&ticker_mutex);
}

static void ticker_remove(wasm_engine_t *engine)
{
    pthread_mutex_lock(&ticker_mutex);
    for (size_t i = 0; i < ticked_count; i++) {
        if (ticked_engines[i] == engine) {
            ticked_engines[i] = ticked_engines[--ticked_count];
            break;
        }
    }
    pthread_mutex_unlock(&ticker_mutex);
}

/* The finalizer of a ticked engine: the ticker lets go of it before it is deleted. */
static void ticked_engine_delete(wasm_engine_t *engine)
{
    ticker_remove(engine);
    wasm_engine_delete(engine);
}

static PyObject *ticker_add_engine(PyObject *module, PyObject *address)
{
    unsigned long long value = PyLong_AsUnsignedLongLong(address);
    if (value == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (value == 0) {
        PyErr_SetString(PyExc_ValueError, "ticker_add_engine() needs an engine");
        return NULL;
    }
    pthread_mutex_lock(&ticker_mutex);
    int failed = 0;
    if (ticked_count == ticked_capacity) {
        size_t capacity = ticked_capacity ? 2 * ticked_capacity : 8;
        /* realloc: PyMem_RawRealloc (the same allocator by default) is limited API only from 3.13 */
        wasm_engine_t **grown = realloc(ticked_engines, capacity * sizeof(wasm_engine_t *));
        if (grown == NULL)
            failed = 1;
        else {
            ticked_engines = grown;
            ticked_capacity = capacity;
        }
    }
    if (!failed)
        ticked_engines[ticked_count++] = (wasm_engine_t *)(uintptr_t)value;
    if (!failed && !ticker_running && ticker_start() < 0) {
        ticked_count--;
        failed = 2;
    } else if (!failed) {
        ticker_woken = 1; /* a store of this engine may already be in use */
        pthread_cond_signal(&ticker_wakeup);
    }
    pthread_mutex_unlock(&ticker_mutex);
    if (failed == 1)
        return PyErr_NoMemory();
    if (failed == 2) {
        PyErr_SetString(PyExc_RuntimeError, "cannot start wasmpy's epoch ticker thread");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *ticked_engine_delete_address(PyObject *module, PyObject *unused)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)&ticked_engine_delete);
}

static PyObject *ticker_ticks(PyObject *module, PyObject *unused)
{
    return PyLong_FromUnsignedLongLong(__atomic_load_n(&ticks, __ATOMIC_RELAXED));
}

static PyObject *ticker_get_interval(PyObject *module, PyObject *unused)
{
    return PyFloat_FromDouble((double)__atomic_load_n(&ticker_interval_ns, __ATOMIC_RELAXED) / 1e9);
}

static PyObject *ticker_set_interval(PyObject *module, PyObject *seconds)
{
    double value = PyFloat_AsDouble(seconds);
    if (value == -1.0 && PyErr_Occurred())
        return NULL;
    if (!(value >= 0.001 && value <= 86400.0)) {
        PyErr_SetString(PyExc_ValueError, "the ticker's interval must be from 0.001 to 86400 seconds");
        return NULL;
    }
    __atomic_store_n(&ticker_interval_ns, (long long)(value * 1e9), __ATOMIC_RELAXED);
    Py_RETURN_NONE;
}

/* In a forked child, from fork() itself: the ticker thread is gone, maybe holding the mutex. */
static void ticker_reset_after_fork(void)
{
    pthread_mutex_init(&ticker_mutex, NULL);
    pthread_cond_init(&ticker_wakeup, NULL);
    ticker_running = ticker_woken = ticker_asleep = 0;
    barrier_setup(); /* the child's address space is new to membarrier */
}

/* From Python's at-fork handler in the child: starts the ticker again if it has engines. */
static PyObject *ticker_after_fork_in_child(PyObject *module, PyObject *unused)
{
    pthread_mutex_lock(&ticker_mutex);
    int failed = ticked_count > 0 && !ticker_running && ticker_start() < 0;
    pthread_mutex_unlock(&ticker_mutex);
    if (failed) {
        PyErr_SetString(PyExc_RuntimeError, "cannot start wasmpy's epoch ticker thread");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef ticker_methods[] = {
    {"ticker_add_engine", ticker_add_engine, METH_O,
     "Ticks the engine at this address from now on (delete it with ticked_engine_delete_address())."},
    {"ticked_engine_delete_address", ticked_engine_delete_address, METH_NOARGS,
     "The address of the finalizer of ticked engines: void (*)(wasm_engine_t *)."},
    {"ticker_ticks", ticker_ticks, METH_NOARGS, "How many times the ticker has advanced the epochs."},
    {"ticker_interval", ticker_get_interval, METH_NOARGS, "Seconds between ticks."},
    {"ticker_set_interval", ticker_set_interval, METH_O,
     "Sets the seconds between ticks (from the next one on): the precision of deadlines and Ctrl-C."},
    {"ticker_after_fork_in_child", ticker_after_fork_in_child, METH_NOARGS,
     "For os.register_at_fork: starts the ticker again in the child if it has engines to tick."},
    {NULL},
};

int ticker_add_to_module(PyObject *module)
{
    if (pthread_atfork(NULL, NULL, ticker_reset_after_fork) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    barrier_setup();
    return PyModule_AddFunctions(module, ticker_methods);
}
