/* wasmpy._native: the parts of wasmpy that must be C for speed or for the buffer protocol.
 *
 * - MemoryBase: base class of Memory, so memoryview(memory) works on every supported
 *   Python (a pure-Python class can export a buffer only from 3.12 on), with fast reads
 *   and writes.
 * - StoreHandle: a store's context pointer, its reentrant lock, and the slot for
 *   an exception raised by a host function, shared by Python and C.
 * - Caller: base class of Func; calls numeric signatures without leaving C.
 * - HostFunc + the host trampoline: wasm calling Python functions.
 *
 * Everything not handled here (reference types, v128, bad arguments, failures)
 * is delegated to Python callables given by wasmpy, so there is one place
 * where each conversion and each error message lives.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include <structmember.h>
#include <time.h>

#include "api.h"
#include "limited.h" /* built on the limited API of Python 3.11: see there */
#include "output.h"
#include "stack.h"
#include "signals.h"
#include "ticker.h"
#include "values.h"

/* Value kinds, as wasmpy passes them in signatures (wasmtime's wasmtime_valkind_t numbering). */
enum { KIND_I32 = 0, KIND_I64 = 1, KIND_F32 = 2, KIND_F64 = 3 };

/* Signatures with more values than this take the Python path. */
#define MAX_FAST_VALUES 16

/* ------------------------------------------------------------------------------------------ */
/* Objects that externrefs made by wasmpy hold.
 *
 * Each such externref's data is a KeptObject: one strong reference to a Python object, listed
 * by the store that made it, so that the store's handle can show them to Python's cyclic GC
 * (a store referenced from its own externrefs is then collected like any other cycle).
 * wasmtime drops them from its GC sweeps, on any thread; Python code must not run there (a
 * __del__ touching the store would run in the middle of the sweep), so the references are
 * released later, at a safe point: see drain_dropped(). The C memory here and below is malloc's
 * (PyMem_RawMalloc, the same allocator by default, is in the limited API only from 3.13). */

typedef struct KeptObject KeptObject;

typedef struct {
    KeptObject *first;
    Py_ssize_t users; /* the store's handle, and each KeptObject listed */
} KeptList;

struct KeptObject {
    PyObject *object;
    KeptList *list;
    KeptObject *previous, *next;
};

static void kept_list_release(KeptList *list)
{
    if (--list->users == 0)
        free(list);
}

/* Dropped objects whose references are still to be released, and whether a pending call
 * to release them is scheduled. Guarded by the GIL. */
static PyObject **dropped;
static Py_ssize_t dropped_count, dropped_capacity;
static int drain_scheduled;

static void drain_dropped(void)
{
    while (dropped_count > 0) {
        PyObject *object = dropped[--dropped_count];
        Py_DECREF(object); /* may run __del__, which may drop more */
    }
}

static int drain_pending_call(void *unused)
{
    (void)unused;
    drain_scheduled = 0;
    drain_dropped();
    return 0;
}

/* Takes the reference of `object` for later; with the GIL held, and no Python code run. */
static void release_later(PyObject *object)
{
    if (dropped_count == dropped_capacity) {
        Py_ssize_t capacity = dropped_capacity ? 2 * dropped_capacity : 64;
        PyObject **grown = realloc(dropped, capacity * sizeof(PyObject *));
        if (grown == NULL)
            return; /* out of memory: the object leaks rather than running code here */
        dropped = grown;
        dropped_capacity = capacity;
    }
    dropped[dropped_count++] = object;
    if (!drain_scheduled && Py_AddPendingCall(drain_pending_call, NULL) == 0)
        drain_scheduled = 1;
}

/* wasmtime's finalizer of an externref's data (a KeptObject). */
static void externref_drop(void *data)
{
    if (!Py_IsInitialized())
        return; /* the interpreter is gone, and its objects with it */
    PyGILState_STATE gil = PyGILState_Ensure();
    KeptObject *kept = (KeptObject *)data;
    if (kept->previous != NULL)
        kept->previous->next = kept->next;
    else
        kept->list->first = kept->next;
    if (kept->next != NULL)
        kept->next->previous = kept->previous;
    kept_list_release(kept->list);
    release_later(kept->object);
    free(kept);
    PyGILState_Release(gil);
}

/* ------------------------------------------------------------------------------------------ */
/* StoreHandle: owns the wasmtime store (one freeing rule: it is deleted when the handle is
 * closed or freed), its lock, and what wasmtime refers to by address. */

typedef struct StoreHandle {
    PyObject_HEAD
    wasmtime_store_t *store;     /* NULL once closed */
    wasmtime_context_t *context; /* NULL once closed */
    /* The store's lock is `owner` and `depth`, taken and released under the GIL without an OS
     * lock; threads that find it taken count themselves in `waiting` and sleep, and a release
     * with threads waiting hands the lock over to the one that waited longest (`handed_to`),
     * so that a thread calling in a loop cannot starve them. */
    unsigned long owner;         /* thread holding the lock, valid while depth > 0 */
    unsigned long depth;
    unsigned long waiting;
    unsigned long handed_to;     /* the waiting thread the lock is reserved for; 0: none */
    int poisoned;                /* held by a thread that did not survive fork(): unusable */
    char release_gil;            /* calls release the GIL at once (see call_wasm) */
    PyObject *pending;           /* exception raised by a host function, for the caller to re-raise */
    PyObject *keepalive;         /* list of objects wasmtime refers to by address (host functions, streams) */
    OutputQueue *output;         /* WASI output not yet delivered; NULL until a stream is made */
    PyObject *writers;           /* list of the Python streams, in the order of OutputChunk.stream */
    KeptList *kept;              /* objects held by this store's externrefs */
    long long deadline_ns;       /* CLOCK_MONOTONIC time when running wasm is interrupted; 0: none */
    Py_ssize_t stack_needed;     /* native stack bytes a call into wasm may use (csrc/stack.h) */
    /* What wasmtime_store_limiter gets (see handle_apply_limits): the StoreLimits given from
     * Python (memory_size, table_elements, instances, tables, memories; -1: none), and while
     * buffer views of memories that may move are alive (pinning_views > 0), the size no memory
     * of the store may grow past (pinned_size). limits_stale: the last pinning view went while
     * another thread held the lock, and its wasm may be running: applied when that thread lets go. */
    int64_t limits[5];
    Py_ssize_t pinning_views;
    int64_t pinned_size;
    char limits_stale;
    struct StoreHandle *previous_handle, *next_handle; /* every live handle, for fork() */
} StoreHandle;

static PyTypeObject *StoreHandleType;
static PyObject *WasmError;     /* wasmpy.WasmError, given by set_errors() */
static PyObject *WasmException; /* wasmpy.WasmException, given by set_errors() */
static StoreHandle *all_handles;
static unsigned long main_thread; /* the thread whose wasm runs Python's signal handlers */

static void set_wasm_error(const char *message)
{
    PyErr_SetString(WasmError != NULL ? WasmError : PyExc_RuntimeError, message);
}

/* PyThread_get_thread_ident() without its call: on POSIX it is the pthread_t itself. */
static inline unsigned long current_thread(void)
{
    return (unsigned long)pthread_self();
}

/* Threads waiting for a store's lock (nodes live on the waiting threads' stacks; GIL-guarded). */
typedef struct Waiter {
    unsigned long thread;
    StoreHandle *handle;
    PyThread_type_lock wakeup; /* taken; released to wake the thread */
    struct Waiter *next;       /* newer waiters come first */
} Waiter;

static Waiter *waiters;

static StoreHandle *awaited_by(unsigned long thread)
{
    for (Waiter *waiter = waiters; waiter != NULL; waiter = waiter->next)
        if (waiter->thread == thread)
            return waiter->handle;
    return NULL;
}

/* Whether waiting for `handle` would never end: its owner waits, directly or through other
 * threads, for a store lock that `me` holds. */
static int wait_is_deadlock(StoreHandle *handle, unsigned long me)
{
    for (int step = 0; handle != NULL && step < 10000; step++) {
        if (handle->depth == 0)
            return 0;
        if (handle->owner == me)
            return 1;
        handle = awaited_by(handle->owner);
    }
    return 0;
}

#ifdef Py_GIL_DISABLED
#error "wasmpy's store lock relies on the GIL: free-threaded builds are not supported"
#endif

#define LOCK_WAIT_SLICE_US 20000 /* how often a waiting thread checks signals and deadlocks */

static int lock_is_free_for(StoreHandle *handle, unsigned long thread)
{
    return handle->depth == 0 && (handle->handed_to == 0 || handle->handed_to == thread);
}

/* Reserves the free lock of `handle` for the thread that has waited for it longest, and wakes it;
 * 0 if none waits. */
static int hand_over(StoreHandle *handle)
{
    Waiter *oldest = NULL;
    for (Waiter *waiter = waiters; waiter != NULL; waiter = waiter->next)
        if (waiter->handle == handle)
            oldest = waiter;
    handle->handed_to = oldest != NULL ? oldest->thread : 0;
    if (oldest != NULL)
        PyThread_release_lock(oldest->wakeup);
    return oldest != NULL;
}

/* Waits until the lock of `handle`, held by another thread, is handed over; Ctrl-C and signal
 * handlers interrupt the wait. */
static int wait_for_lock(StoreHandle *handle, unsigned long me)
{
    Waiter waiter = {me, handle, PyThread_allocate_lock(), waiters};
    if (waiter.wakeup == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyThread_acquire_lock(waiter.wakeup, NOWAIT_LOCK);
    waiters = &waiter;
    handle->waiting++;
    int status = 0;
    while (!lock_is_free_for(handle, me)) {
        if (wait_is_deadlock(handle, me)) {
            set_wasm_error("deadlock: this thread waits for a store's lock, held by a thread that waits for "
                           "a store this thread holds (host functions of two stores calling into each "
                           "other from two threads); call each store from one thread, or do not hold one "
                           "store while calling into another");
            status = -1;
            break;
        }
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock_timed(waiter.wakeup, LOCK_WAIT_SLICE_US, 0);
        Py_END_ALLOW_THREADS
        if (!lock_is_free_for(handle, me) && PyErr_CheckSignals() < 0) {
            status = -1;
            break;
        }
    }
    handle->waiting--;
    for (Waiter **link = &waiters; *link != NULL; link = &(*link)->next) {
        if (*link == &waiter) {
            *link = waiter.next;
            break;
        }
    }
    PyThread_free_lock(waiter.wakeup);
    if (status < 0 && handle->handed_to == me)
        hand_over(handle); /* to the next in line, if any */
    return status;
}

/* handle_acquire() when the lock is held by another thread or handed over to one, or the store
 * is unusable after fork(). */
static int handle_acquire_contended(StoreHandle *handle, unsigned long me)
{
    if (handle->poisoned) {
        set_wasm_error("this store was in use by another thread when the process forked, and that thread "
                       "does not exist in this process: the store cannot be used here; make a new Store");
        return -1;
    }
    if (!lock_is_free_for(handle, me) && wait_for_lock(handle, me) < 0)
        return -1;
    handle->handed_to = 0;
    handle->owner = me;
    handle->depth = 1;
    ticker_store_taken();
    return 0;
}

/* Takes the store's lock (reentrant); raises and returns -1 if the wait is interrupted, would
 * deadlock, or the store is unusable after fork(). */
static inline __attribute__((always_inline)) int handle_acquire(StoreHandle *handle)
{
    unsigned long me = current_thread();
    if (handle->depth > 0) {
        if (handle->owner != me)
            return handle_acquire_contended(handle, me);
        handle->depth++;
        return 0;
    }
    if (handle->poisoned || handle->handed_to != 0)
        return handle_acquire_contended(handle, me);
    handle->owner = me;
    handle->depth = 1;
    ticker_store_taken();
    return 0;
}

static void handle_apply_limits(StoreHandle *handle);

static inline __attribute__((always_inline)) int handle_release(StoreHandle *handle)
{
    if (handle->depth == 0 || handle->owner != current_thread()) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release a store lock held by another thread");
        return -1;
    }
    if (--handle->depth > 0)
        return 0;
    if (handle->limits_stale) /* nothing of the store runs now: lift the limit of released views */
        handle_apply_limits(handle);
    ticker_store_released();
    if (handle->waiting > 0)
        hand_over(handle);
    return 0;
}

static int deliver_queued_output(StoreHandle *handle);

/* Delivers WASI output written while wasm ran, on the thread that runs the store's wasm (where
 * the store is usable); -1 with the exception of a stream that raised. */
static inline int deliver_output(StoreHandle *handle)
{
    return output_pending(handle->output) ? deliver_queued_output(handle) : 0;
}

static int deliver_queued_output(StoreHandle *handle)
{
    while (output_pending(handle->output)) {
        OutputChunk *chunk = output_take(handle->output);
        while (chunk != NULL) {
            OutputChunk *next = chunk->next;
            PyObject *write = handle->writers != NULL && chunk->stream < PyList_Size(handle->writers)
                                  ? Py_NewRef(PyList_GetItem(handle->writers, chunk->stream)) : NULL;
            PyObject *data = write != NULL ? PyBytes_FromStringAndSize((const char *)chunk->bytes,
                                                                       (Py_ssize_t)chunk->length) : NULL;
            free(chunk);
            chunk = next;
            PyObject *done = data != NULL ? call_one_arg(write, data) : NULL;
            Py_XDECREF(data);
            Py_XDECREF(write);
            if (done == NULL && PyErr_Occurred()) {
                while (chunk != NULL) { /* what a failed stream did not take is dropped, as a file's would be */
                    next = chunk->next;
                    free(chunk);
                    chunk = next;
                }
                return -1;
            }
            Py_XDECREF(done);
        }
    }
    return 0;
}

/* Deletes the store (running wasmtime's finalizers, which only queue work) and releases what
 * wasmtime referred to by address. */
static void handle_delete_store(StoreHandle *self)
{
    if (self->store == NULL)
        return;
    wasmtime_store_t *store = self->store;
    self->store = NULL;
    self->context = NULL;
    wasmtime_store_delete(store);
    Py_CLEAR(self->keepalive);
}

static PyObject *handle_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    unsigned long long store;
    static char *keywords[] = {"store", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "K:StoreHandle", keywords, &store))
        return NULL;
    if (store == 0) {
        PyErr_SetString(PyExc_ValueError, "StoreHandle needs a wasmtime store");
        return NULL;
    }
    StoreHandle *self = (StoreHandle *)alloc_instance(type);
    if (self == NULL)
        return NULL;
    self->kept = calloc(1, sizeof(KeptList));
    self->keepalive = PyList_New(0);
    if (self->kept == NULL || self->keepalive == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->kept->users = 1;
    for (int i = 0; i < 5; i++)
        self->limits[i] = -1;
    self->store = (wasmtime_store_t *)(uintptr_t)store; /* owned from here on */
    self->context = wasmtime_store_context(self->store);
    self->next_handle = all_handles;
    if (all_handles != NULL)
        all_handles->previous_handle = self;
    all_handles = self;
    return (PyObject *)self;
}

static int handle_traverse(StoreHandle *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self)); /* the instances of heap types hold their type */
    Py_VISIT(self->pending);
    Py_VISIT(self->keepalive);
    Py_VISIT(self->writers);
    if (self->kept != NULL)
        for (KeptObject *kept = self->kept->first; kept != NULL; kept = kept->next)
            Py_VISIT(kept->object);
    return 0;
}

/* Breaking a reference cycle through the store deletes it: its externrefs' objects are then
 * released (at the next safe point), and the cycle with them. */
static int handle_clear(StoreHandle *self)
{
    Py_CLEAR(self->pending);
    if (self->depth == 0)
        handle_delete_store(self);
    Py_CLEAR(self->writers); /* output still queued for them is dropped */
    return 0;
}

static void handle_dealloc(StoreHandle *self)
{
    PyObject_GC_UnTrack(self);
    handle_delete_store(self);
    handle_clear(self);
    Py_CLEAR(self->keepalive);
    if (self->output != NULL)
        output_queue_close(self->output);
    if (self->kept != NULL)
        kept_list_release(self->kept);
    if (self->previous_handle != NULL)
        self->previous_handle->next_handle = self->next_handle;
    else if (all_handles == self)
        all_handles = self->next_handle;
    if (self->next_handle != NULL)
        self->next_handle->previous_handle = self->previous_handle;
    free_instance((PyObject *)self);
}

static PyObject *handle_acquire_method(StoreHandle *self, PyObject *unused)
{
    if (handle_acquire(self) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

static PyObject *handle_release_method(StoreHandle *self, PyObject *unused)
{
    if (handle_release(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *handle_exit(StoreHandle *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    if (handle_release(self) < 0)
        return NULL;
    Py_RETURN_FALSE;
}

static PyObject *handle_close(StoreHandle *self, PyObject *unused)
{
    if (self->depth > 1 || (self->depth == 1 && self->owner != PyThread_get_thread_ident())) {
        set_wasm_error("cannot close the store while its wasm code is running (from a host function)");
        return NULL;
    }
    handle_delete_store(self);
    drain_dropped();
    Py_RETURN_NONE;
}

static PyObject *handle_set_pending(StoreHandle *self, PyObject *exception)
{
    Py_INCREF(exception);
    REPLACE_REF(self->pending, exception);
    Py_RETURN_NONE;
}

static PyObject *handle_take_pending(StoreHandle *self, PyObject *unused)
{
    PyObject *pending = self->pending;
    self->pending = NULL;
    if (pending == NULL)
        Py_RETURN_NONE;
    return pending;
}

static PyObject *handle_keep(StoreHandle *self, PyObject *object)
{
    if (self->keepalive == NULL) {
        set_wasm_error("the store is closed");
        return NULL;
    }
    if (PyList_Append(self->keepalive, object) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* A KeptObject for a new externref of this store; its address is the externref's data. */
static PyObject *handle_keep_for_externref(StoreHandle *self, PyObject *object)
{
    KeptObject *kept = malloc(sizeof(KeptObject));
    if (kept == NULL)
        return PyErr_NoMemory();
    PyObject *address = PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)kept);
    if (address == NULL) {
        free(kept);
        return NULL;
    }
    kept->object = Py_NewRef(object);
    kept->list = self->kept;
    kept->list->users++;
    kept->previous = NULL;
    kept->next = self->kept->first;
    if (kept->next != NULL)
        kept->next->previous = kept;
    self->kept->first = kept;
    return address;
}

/* Memories of an engine with memory_may_move=True may move when they grow: wasmtime maps a
 * larger region, copies the bytes and unmaps the old one, where a buffer view would still point.
 * So a view of such a memory pins its store (see memory_getbuffer): until the store's last such
 * view is released, no memory of the store may grow past the size the viewed memory had. The
 * C API's only hook into every growth (Memory.grow from Python, and memory.grow in wasm, which
 * then returns -1) is the store's StoreLimits: their memory_size, which applies to each memory
 * of the store, is lowered to that size. Pins are taken with the store's lock held, so never
 * while the store's wasm runs on another thread. */
static void handle_apply_limits(StoreHandle *handle)
{
    handle->limits_stale = 0;
    if (handle->store == NULL)
        return;
    int64_t memory_size = handle->limits[0];
    if (handle->pinning_views > 0 && (memory_size < 0 || handle->pinned_size < memory_size))
        memory_size = handle->pinned_size;
    wasmtime_store_limiter(handle->store, memory_size, handle->limits[1], handle->limits[2], handle->limits[3],
                           handle->limits[4]);
}

/* A new view of a memory that may move, of `size` bytes; with the store's lock held. */
static void handle_pin(StoreHandle *handle, int64_t size)
{
    if (handle->pinning_views++ == 0 || size < handle->pinned_size) {
        handle->pinned_size = size;
        handle_apply_limits(handle);
    }
}

/* A view handle_pin() counted is released: from any thread, with or without the store's lock. */
static void handle_unpin(StoreHandle *handle)
{
    if (--handle->pinning_views > 0)
        return;
    /* wasmtime's limiter may be replaced only where no wasm of the store runs on another thread:
     * with the lock free (held by no thread; this one has the GIL that taking it needs), or held
     * by this thread (wasm waiting for this thread's host function to return). */
    if (!handle->poisoned && (handle->depth == 0 || handle->owner == current_thread()))
        handle_apply_limits(handle);
    else
        handle->limits_stale = 1;
}

static PyObject *handle_set_limits(StoreHandle *self, PyObject *args)
{
    long long limits[5];
    if (!PyArg_ParseTuple(args, "LLLLL:set_limits", &limits[0], &limits[1], &limits[2], &limits[3], &limits[4]))
        return NULL;
    for (int i = 0; i < 5; i++) {
        if (limits[i] < -1) {
            PyErr_SetString(PyExc_ValueError, "a store limit is a number >= 0, or -1 for none");
            return NULL;
        }
    }
    if (self->store == NULL) {
        set_wasm_error("the store is closed");
        return NULL;
    }
    if (handle_acquire(self) < 0)
        return NULL;
    for (int i = 0; i < 5; i++)
        self->limits[i] = limits[i];
    handle_apply_limits(self);
    if (handle_release(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *handle_get_pinned_size(StoreHandle *self, void *closure)
{
    if (self->pinning_views == 0)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(self->pinned_size);
}

static PyObject *handle_flush_output(StoreHandle *self, PyObject *unused)
{
    if (deliver_output(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *handle_gc(StoreHandle *self, PyObject *unused)
{
    if (handle_acquire(self) < 0)
        return NULL;
    if (self->context == NULL) {
        handle_release(self);
        set_wasm_error("the store is closed");
        return NULL;
    }
    wasmtime_error_t *error;
    Py_BEGIN_ALLOW_THREADS
    error = wasmtime_context_gc(self->context);
    Py_END_ALLOW_THREADS
    handle_release(self);
    drain_dropped();
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)error);
}

static PyObject *handle_get_closed(StoreHandle *self, void *closure)
{
    return PyBool_FromLong(self->context == NULL);
}

static PyObject *handle_get_store(StoreHandle *self, void *closure)
{
    if (self->store == NULL) {
        set_wasm_error("the store is closed");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)self->store);
}

static PyObject *handle_get_context(StoreHandle *self, void *closure)
{
    if (self->context == NULL) {
        set_wasm_error("the store is closed");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)self->context);
}

static PyMethodDef handle_methods[] = {
    {"acquire", (PyCFunction)handle_acquire_method, METH_NOARGS,
     "Takes the store's lock (reentrant; the wait can be interrupted, and refuses to deadlock)."},
    {"release", (PyCFunction)handle_release_method, METH_NOARGS, "Releases the store's lock."},
    {"__enter__", (PyCFunction)handle_acquire_method, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))handle_exit, METH_FASTCALL, NULL},
    {"close", (PyCFunction)handle_close, METH_NOARGS, "Deletes the store now."},
    {"set_pending", (PyCFunction)handle_set_pending, METH_O, "Keeps a host function's exception."},
    {"take_pending", (PyCFunction)handle_take_pending, METH_NOARGS, "Returns and forgets it (or None)."},
    {"keep", (PyCFunction)handle_keep, METH_O, "Keeps an object wasmtime refers to by address, with the store."},
    {"keep_for_externref", (PyCFunction)handle_keep_for_externref, METH_O,
     "The data address for a new externref of the store holding the object (released by its finalizer)."},
    {"set_limits", (PyCFunction)handle_set_limits, METH_VARARGS,
     "set_limits(memory_size, table_elements, instances, tables, memories): the store's StoreLimits, "
     "-1 for none (memory_size is lowered further while views of memories that may move are alive)."},
    {"flush_output", (PyCFunction)handle_flush_output, METH_NOARGS,
     "Delivers WASI output written by the store's wasm to its streams."},
    {"gc", (PyCFunction)handle_gc, METH_NOARGS,
     "Runs wasmtime's GC; returns the address of a wasmtime_error_t, or 0. Then releases dropped objects."},
    {NULL},
};

static PyMemberDef handle_members[] = {
    {"stack_needed", T_PYSSIZET, offsetof(StoreHandle, stack_needed), 0,
     "Native stack bytes that must be left to call into wasm."},
    {"deadline_ns", T_LONGLONG, offsetof(StoreHandle, deadline_ns), 0,
     "time.monotonic_ns() value after which running wasm is interrupted; 0 for no deadline."},
    {"release_gil", T_BOOL, offsetof(StoreHandle, release_gil), 0,
     "Whether calls into the store's wasm release the GIL at once, rather than after one tick."},
    {"depth", T_ULONG, offsetof(StoreHandle, depth), READONLY,
     "How many times the lock is held (by its owner): more than one while wasm of the store runs."},
    {NULL},
};

static PyGetSetDef handle_getset[] = {
    {"closed", (getter)handle_get_closed, NULL, "Whether the store is closed.", NULL},
    {"store", (getter)handle_get_store, NULL, "The address of the wasmtime_store_t (WasmError once closed).", NULL},
    {"context", (getter)handle_get_context, NULL, "The address of the store's context (WasmError once closed).",
     NULL},
    {"pinned_size", (getter)handle_get_pinned_size, NULL,
     "While buffer views of memories that may move are alive: the size in bytes no memory of the store "
     "may grow past; otherwise None.", NULL},
    {NULL},
};

static PyType_Slot handle_slots[] = {
    {Py_tp_doc, "A wasmtime store (owned), its reentrant lock, and what wasmtime refers to by address."},
    {Py_tp_new, handle_new},
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_traverse, handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_methods, handle_methods},
    {Py_tp_members, handle_members},
    {Py_tp_getset, handle_getset},
    {0, NULL},
};

static PyType_Spec handle_spec = {
    .name = "wasmpy._native.StoreHandle",
    .basicsize = sizeof(StoreHandle),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = handle_slots,
};

/* After fork() in the child: only the forking thread exists. Stores that another thread held
 * can never be released; they refuse to be used rather than hang. */
static PyObject *after_fork_in_child(PyObject *module, PyObject *unused)
{
    unsigned long me = PyThread_get_thread_ident();
    unsigned long in_use = 0;
    for (StoreHandle *handle = all_handles; handle != NULL; handle = handle->next_handle) {
        if (handle->depth > 0 && handle->owner != me)
            handle->poisoned = 1; /* never released: it does not count as in use */
        else if (handle->depth > 0)
            in_use++;
        handle->waiting = 0;
        handle->handed_to = 0;
        if (handle->output != NULL)
            output_queue_after_fork(handle->output);
    }
    ticker_stores_in_use = in_use;
    waiters = NULL; /* the waiting threads are gone */
    drain_scheduled = 0;
    main_thread = me; /* Python's signal handlers now run in this thread */
    Py_RETURN_NONE;
}

/* output_stream(handle, write) -> (callback, data, finalizer) addresses for
 * wasi_config_set_*_custom: what wasmtime writes there reaches `write` (see output.h). */
static PyObject *output_stream(PyObject *module, PyObject *args)
{
    PyObject *object, *write;
    if (!PyArg_ParseTuple(args, "O!O:output_stream", StoreHandleType, &object, &write))
        return NULL;
    if (!PyCallable_Check(write)) {
        PyErr_SetString(PyExc_TypeError, "a WASI output stream needs a callable");
        return NULL;
    }
    StoreHandle *handle = (StoreHandle *)object;
    if (handle->writers == NULL && (handle->writers = PyList_New(0)) == NULL)
        return NULL;
    if (handle->output == NULL && (handle->output = output_queue_new()) == NULL)
        return PyErr_NoMemory();
    Py_ssize_t stream = PyList_Size(handle->writers);
    if (stream >= INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many WASI output streams for one store");
        return NULL;
    }
    void *data = output_stream_new(handle->output, (int)stream);
    if (data == NULL)
        return PyErr_NoMemory();
    if (PyList_Append(handle->writers, write) < 0) {
        output_stream_free(data);
        return NULL;
    }
    return Py_BuildValue("KKK", (unsigned long long)(uintptr_t)&output_stream_write,
                         (unsigned long long)(uintptr_t)data, (unsigned long long)(uintptr_t)&output_stream_free);
}

/* Moves the raised exception, with its traceback, to the store's pending slot, where the
 * Python caller of the outer call picks it up; `trap_message` (may be NULL) gets a trap's text. */
static void keep_raised(StoreHandle *handle, char *trap_message, size_t size)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL)
        PyException_SetTraceback(value, traceback);
    if (trap_message != NULL) {
        PyObject *name = type != NULL && PyType_Check(type) ? PyType_GetName((PyTypeObject *)type) : NULL;
        const char *text = name != NULL ? PyUnicode_AsUTF8AndSize(name, NULL) : NULL;
        if (text == NULL)
            PyErr_Clear(); /* the exception to keep is the one fetched */
        PyOS_snprintf(trap_message, size, "host function raised %s", text != NULL ? text : "an exception");
        Py_XDECREF(name);
    }
    if (value != NULL)
        REPLACE_REF(handle->pending, value);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
}

/* ------------------------------------------------------------------------------------------ */
/* MemoryBase: base class of Memory, with the buffer protocol and fast reads and writes */

typedef struct {
    PyObject_HEAD
    StoreHandle *handle;
    wasmtime_memory_t memory;
    uint8_t *base;      /* its bytes, once it has some and if it never moves */
    Py_ssize_t exports; /* live buffer views */
    char may_move;      /* its engine has memory_may_move=True, and wasmtime may move it when it grows */
    Py_ssize_t pins;    /* live views that pin the store (handle_pin), until memory_clear lets them go */
} MemoryBase;

/* Py_buffer.internal of a view that pinned its store. */
static char pinning_view;

static int memory_traverse(MemoryBase *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self)); /* for subclasses too: their traverse calls this one */
    Py_VISIT(self->handle);
    return 0;
}

static int memory_clear(MemoryBase *self)
{
    /* Python's GC breaking a cycle: the views are garbage too, but their store may live on. */
    for (; self->pins > 0; self->pins--)
        handle_unpin(self->handle);
    Py_CLEAR(self->handle);
    return 0;
}

static void memory_dealloc(MemoryBase *self)
{
    PyObject_GC_UnTrack(self);
    memory_clear(self);
    free_instance((PyObject *)self);
}

static PyObject *memory_bind(MemoryBase *self, PyObject *args)
{
    PyObject *handle;
    unsigned long long address;
    int may_move;
    if (!PyArg_ParseTuple(args, "O!Kp:_bind_memory", StoreHandleType, &handle, &address, &may_move))
        return NULL;
    if (self->handle != NULL) {
        PyErr_SetString(PyExc_TypeError, "this Memory is already bound to a memory of a store");
        return NULL;
    }
    self->memory = *(const wasmtime_memory_t *)(uintptr_t)address;
    self->may_move = (char)may_move;
    Py_INCREF(handle);
    REPLACE_REF(self->handle, (StoreHandle *)handle);
    Py_RETURN_NONE;
}

/* Locks the store and finds the memory's bytes; on failure raises, with the lock released. */
static int memory_locate(MemoryBase *self, uint8_t **data, size_t *size)
{
    if (self->handle == NULL) {
        PyErr_SetString(PyExc_TypeError, "this memory is not bound to a store");
        return -1;
    }
    if (handle_acquire(self->handle) < 0)
        return -1;
    wasmtime_context_t *context = self->handle->context;
    if (context == NULL) {
        handle_release(self->handle);
        set_wasm_error("the store is closed");
        return -1;
    }
    *size = wasmtime_memory_data_size(context, &self->memory);
    if (self->may_move) { /* where it is now: wasm may have grown it since */
        *data = wasmtime_memory_data(context, &self->memory);
        return 0;
    }
    if (self->base == NULL && *size > 0) /* an empty memory's address may be a placeholder */
        self->base = wasmtime_memory_data(context, &self->memory);
    *data = *size > 0 ? self->base : wasmtime_memory_data(context, &self->memory);
    return 0;
}

static int index_argument(PyObject *value, const char *name, Py_ssize_t *out)
{
    if (!is_int(value) || PyBool_Check(value)) {
        raise_wrong_type(name, "an int", value);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    /* Beyond the range of the platform, a value is out of bounds either way. */
    *out = overflow > 0 || v > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : overflow < 0 || v < 0 ? -1 : (Py_ssize_t)v;
    return 0;
}

/* Locks the store and checks [offset, offset + length); on failure raises, with the lock released. */
static int memory_span(MemoryBase *self, Py_ssize_t offset, Py_ssize_t length, uint8_t **address)
{
    uint8_t *data;
    size_t size;
    if (memory_locate(self, &data, &size) < 0)
        return -1;
    if (offset < 0 || length < 0 || (size_t)offset > size || (size_t)length > size - (size_t)offset) {
        handle_release(self->handle);
        PyErr_Format(PyExc_IndexError, "bytes %zd..%zd are out of bounds of a memory of %zu bytes", offset,
                     length < 0 || offset < 0 ? length : offset + (length > PY_SSIZE_T_MAX - offset ? 0 : length),
                     size);
        return -1;
    }
    *address = data + offset;
    return 0;
}

static PyObject *memory_read(MemoryBase *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t offset, length;
    uint8_t *address;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "read() takes 2 arguments (offset, length), %zd given", nargs);
        return NULL;
    }
    if (index_argument(args[0], "offset", &offset) < 0 || index_argument(args[1], "length", &length) < 0)
        return NULL;
    if (memory_span(self, offset, length, &address) < 0)
        return NULL;
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)address, length);
    handle_release(self->handle);
    return bytes;
}

static PyObject *memory_write(MemoryBase *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t offset;
    uint8_t *address;
    Py_buffer view;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "write() takes 2 arguments (offset, data), %zd given", nargs);
        return NULL;
    }
    if (index_argument(args[0], "offset", &offset) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_C_CONTIGUOUS) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_BufferError))
            return NULL;
        PyErr_Clear();
        if (!PyObject_CheckBuffer(args[1])) {
            raise_wrong_type("data", "bytes-like", args[1]);
            return NULL;
        }
        PyObject *copy = PyBytes_FromObject(args[1]); /* a non-contiguous view: copy it first */
        if (copy == NULL)
            return NULL;
        PyObject *call_args[2] = {args[0], copy};
        PyObject *done = memory_write(self, call_args, 2);
        Py_DECREF(copy);
        return done;
    }
    if (memory_span(self, offset, view.len, &address) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    memmove(address, view.buf, view.len);
    handle_release(self->handle);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *memory_get_data_size(MemoryBase *self, void *closure)
{
    uint8_t *data;
    size_t size;
    if (memory_locate(self, &data, &size) < 0)
        return NULL;
    handle_release(self->handle);
    return PyLong_FromSize_t(size);
}

static int memory_getbuffer(MemoryBase *self, Py_buffer *view, int flags)
{
    uint8_t *data;
    size_t size;
    if (memory_locate(self, &data, &size) < 0)
        return -1;
    if (PyBuffer_FillInfo(view, (PyObject *)self, data, (Py_ssize_t)size, 0, flags) < 0) {
        handle_release(self->handle);
        return -1;
    }
    /* Pinned before the lock goes, so that no wasm of the store runs between finding the bytes
     * and keeping them where they are. An empty view has no bytes to point at. */
    if (self->may_move && size > 0) {
        handle_pin(self->handle, (int64_t)size);
        self->pins++;
        view->internal = &pinning_view;
    }
    handle_release(self->handle);
    self->exports++;
    return 0;
}

static void memory_releasebuffer(MemoryBase *self, Py_buffer *view)
{
    self->exports--;
    if (view->internal == &pinning_view && self->pins > 0) {
        self->pins--;
        handle_unpin(self->handle);
    }
}

static PyMethodDef memory_methods[] = {
    {"_bind_memory", (PyCFunction)memory_bind, METH_VARARGS,
     "_bind_memory(handle, memory_address, may_move): may_move if wasmtime may move it when it grows."},
    {"read", (PyCFunction)(void (*)(void))memory_read, METH_FASTCALL,
     "read(offset, length) -> bytes: a copy of length bytes at offset."},
    {"write", (PyCFunction)(void (*)(void))memory_write, METH_FASTCALL,
     "write(offset, data): copies data (any bytes-like object) to offset."},
    {NULL},
};

static PyMemberDef memory_members[] = {
    {"_buffer_exports", T_PYSSIZET, offsetof(MemoryBase, exports), READONLY,
     "Number of live buffer views of this memory."},
    {NULL},
};

static PyGetSetDef memory_getset[] = {
    {"data_size", (getter)memory_get_data_size, NULL, "The current size, in bytes.", NULL},
    {NULL},
};

static PyType_Slot memory_slots[] = {
    {Py_tp_doc, "Base class of Memory: the buffer protocol (memoryview works on every Python), read, write."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, memory_dealloc},
    {Py_tp_traverse, memory_traverse},
    {Py_tp_clear, memory_clear},
    {Py_bf_getbuffer, memory_getbuffer},
    {Py_bf_releasebuffer, memory_releasebuffer},
    {Py_tp_methods, memory_methods},
    {Py_tp_members, memory_members},
    {Py_tp_getset, memory_getset},
    {0, NULL},
};

static PyType_Spec memory_spec = {
    .name = "wasmpy._native.MemoryBase",
    .basicsize = sizeof(MemoryBase),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = memory_slots,
};

static PyObject *set_errors(PyObject *module, PyObject *args)
{
    PyObject *wasm_error, *wasm_exception;
    if (!PyArg_ParseTuple(args, "OO:set_errors", &wasm_error, &wasm_exception))
        return NULL;
    REPLACE_REF(WasmError, Py_NewRef(wasm_error));
    REPLACE_REF(WasmException, Py_NewRef(wasm_exception));
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ */
/* Conversions of numeric values */

/* Reads a Python int or float into `raw` as `kind`; returns 0, or -1 when the value is
 * not a plain in-range number (no exception set: the caller takes the Python path). */
static int number_to_raw(PyObject *value, uint8_t kind, wasmtime_val_raw_t *raw)
{
    if (kind == KIND_I32 || kind == KIND_I64) {
        if (!is_int(value))
            return -1;
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        if (overflow != 0) {
            if (kind == KIND_I32 || overflow < 0)
                return -1;
            unsigned long long u = PyLong_AsUnsignedLongLong(value);
            if (u == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                return -1;
            }
            raw->i64 = (int64_t)u;
            return 0;
        }
        if (kind == KIND_I32 && (v < INT32_MIN || v > (long long)UINT32_MAX))
            return -1;
        raw->i64 = v; /* an i32 is read from the low 32 bits */
        return 0;
    }
    double d;
    if (is_float(value)) {
        d = PyFloat_AsDouble(value);
    } else if (is_int(value)) {
        d = PyLong_AsDouble(value);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
    } else {
        return -1;
    }
    if (kind == KIND_F32)
        raw->f32 = (float)d;
    else
        raw->f64 = d;
    return 0;
}

static PyObject *raw_to_number(const wasmtime_val_raw_t *raw, uint8_t kind)
{
    switch (kind) {
    case KIND_I32: return PyLong_FromLong(raw->i32);
    case KIND_I64: return PyLong_FromLongLong(raw->i64);
    case KIND_F32: return PyFloat_FromDouble(raw->f32);
    default: return PyFloat_FromDouble(raw->f64);
    }
}

/* None, the one result, or a tuple of the results. */
static PyObject *results_to_python(const wasmtime_val_raw_t *raw, const uint8_t *kinds, Py_ssize_t count)
{
    if (count == 0)
        Py_RETURN_NONE;
    if (count == 1)
        return raw_to_number(raw, kinds[0]);
    PyObject *tuple = PyTuple_New(count);
    if (tuple == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = raw_to_number(&raw[i], kinds[i]);
        if (item == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SetItem(tuple, i, item); /* cannot fail: a new tuple, an index in range */
    }
    return tuple;
}

/* A function's signature as the C paths use it. */
typedef struct {
    Py_ssize_t nparams, nresults;
    uint8_t kinds[2 * MAX_FAST_VALUES]; /* params, then results */
    int fast;                           /* numbers only, and few enough to fit `kinds` */
} Signature;

static int kinds_are_numeric(const char *kinds, Py_ssize_t count)
{
    if (count > MAX_FAST_VALUES)
        return 0;
    for (Py_ssize_t i = 0; i < count; i++)
        if ((uint8_t)kinds[i] > KIND_F64)
            return 0;
    return 1;
}

static void signature_set(Signature *signature, const char *params, Py_ssize_t nparams, const char *results,
                          Py_ssize_t nresults)
{
    signature->nparams = nparams;
    signature->nresults = nresults;
    signature->fast = kinds_are_numeric(params, nparams) && kinds_are_numeric(results, nresults);
    if (signature->fast) {
        memcpy(signature->kinds, params, nparams);
        memcpy(signature->kinds + nparams, results, nresults);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The GIL while wasm runs.
 *
 * Releasing and taking back the GIL costs more than a short call into wasm does, so a call
 * into most stores keeps it: the epoch callback releases it at the call's first tick (the call
 * runs long: other Python threads wait at most one tick), and a host function called after that
 * takes it back and keeps it until the next tick. Stores whose wasm may block inside wasmtime
 * without reaching a tick (WASI calls, waits on shared memories) and stores of engines without
 * epoch ticks release it around every call (`release_gil`).
 *
 * `wasm_gil` says who has the GIL for the innermost call into wasm on this thread:
 * GIL_RELEASED_BY_CALLER (also when no wasm runs), GIL_KEPT (the call holds it), or else the
 * thread state the epoch callback saved when it released the GIL. Python code always runs with
 * GIL_RELEASED_BY_CALLER, so each call it makes starts from a known state. */
static __thread PyThreadState *wasm_gil __attribute__((tls_model("initial-exec")));
#define GIL_RELEASED_BY_CALLER NULL
#define GIL_KEPT ((PyThreadState *)1)

/* Around every call into wasm (core and component functions): what `wasm_gil` was outside it,
 * and the thread state saved if the call released the GIL from the start. */
typedef struct {
    PyThreadState *outer;
    PyThreadState *released;
} WasmEntry;

/* Before a call into wasm: releases the GIL if the store wants that (`release_gil`). */
static inline WasmEntry enter_wasm(const StoreHandle *handle)
{
    WasmEntry entry = {wasm_gil, NULL};
    if (handle->release_gil) {
        wasm_gil = GIL_RELEASED_BY_CALLER;
        entry.released = PyEval_SaveThread();
    } else {
        wasm_gil = GIL_KEPT;
    }
    return entry;
}

/* After it: the GIL is held again, whoever released it during the call. */
static inline void leave_wasm(WasmEntry entry)
{
    if (entry.released != NULL)
        PyEval_RestoreThread(entry.released);
    else if (wasm_gil != GIL_KEPT)
        PyEval_RestoreThread(wasm_gil); /* the epoch callback released it at a tick */
    wasm_gil = entry.outer;
}

/* Calls into wasm, releasing the GIL as the store wants; returns with the GIL held. */
static wasmtime_error_t *call_wasm(StoreHandle *handle, const wasmtime_func_t *func, wasmtime_val_raw_t *values,
                                   size_t count, wasm_trap_t **trap)
{
    WasmEntry entry = enter_wasm(handle);
    wasmtime_error_t *error = wasmtime_func_call_unchecked(handle->context, func, values, count, trap);
    leave_wasm(entry);
    return error;
}

/* How to give back the GIL when Python code called from inside wasm returns. */
typedef struct {
    PyThreadState *wasm_gil;
    PyGILState_STATE gilstate;
} PythonEntry;

/* Before Python code runs on a thread inside wasm (host functions, the epoch callback). */
static PythonEntry enter_python(void)
{
    PythonEntry entry = {wasm_gil, PyGILState_UNLOCKED};
    if (entry.wasm_gil == GIL_RELEASED_BY_CALLER)
        entry.gilstate = PyGILState_Ensure();
    else if (entry.wasm_gil != GIL_KEPT)
        PyEval_RestoreThread(entry.wasm_gil);
    wasm_gil = GIL_RELEASED_BY_CALLER;
    return entry;
}

/* Back to wasm: a call that kept the GIL releases it if `release` (at a tick), else keeps it. */
static void leave_python(PythonEntry entry, int release)
{
    if (entry.wasm_gil == GIL_RELEASED_BY_CALLER)
        PyGILState_Release(entry.gilstate);
    else if (release)
        wasm_gil = PyEval_SaveThread();
    else
        wasm_gil = GIL_KEPT;
}

/* ------------------------------------------------------------------------------------------ */
/* Caller: Python -> wasm */

static PyTypeObject *CallerType;

/* What Caller and ComponentCaller (component/call.c) begin with, so that one traverse, clear,
 * dealloc, binding and way to the Python path serve both. */
#define CALLER_HEAD                                                                             \
    PyObject_HEAD                                                                               \
    vectorcallfunc vectorcall; /* PEP 590: no arguments tuple per call */                       \
    StoreHandle *handle;       /* NULL until bound */                                           \
    PyObject *slow_call;       /* callable(self, *args, **keywords): the Python path */         \
    PyObject *failure;         /* callable(...) -> the exception for a failed call */

typedef struct {
    CALLER_HEAD
} CallerHead;

typedef struct {
    CALLER_HEAD
    wasmtime_func_t func;
    Signature signature;
} Caller;

static int caller_traverse(CallerHead *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self)); /* for subclasses too: their traverse calls this one */
    Py_VISIT(self->handle);
    Py_VISIT(self->slow_call);
    Py_VISIT(self->failure);
    return 0;
}

static int caller_clear(CallerHead *self)
{
    Py_CLEAR(self->handle);
    Py_CLEAR(self->slow_call);
    Py_CLEAR(self->failure);
    return 0;
}

static void caller_dealloc(CallerHead *self)
{
    PyObject_GC_UnTrack(self);
    caller_clear(self);
    free_instance((PyObject *)self);
}

/* The part of binding common to both callers; -1 with TypeError if this one is already bound. */
static int caller_bind_head(CallerHead *self, PyObject *handle, PyObject *slow_call, PyObject *failure)
{
    if (self->handle != NULL) {
        PyErr_SetString(PyExc_TypeError, "this function is already bound to a function of a store");
        return -1;
    }
    Py_INCREF(handle);
    REPLACE_REF(self->handle, (StoreHandle *)handle);
    Py_INCREF(slow_call);
    REPLACE_REF(self->slow_call, slow_call);
    Py_INCREF(failure);
    REPLACE_REF(self->failure, failure);
    return 0;
}

static PyObject *caller_bind(Caller *self, PyObject *args)
{
    PyObject *handle, *slow_call, *failure;
    unsigned long long func_address;
    const char *params, *results;
    Py_ssize_t nparams, nresults;
    if (!PyArg_ParseTuple(args, "O!Ky#y#OO:_bind_native", StoreHandleType, &handle, &func_address, &params,
                          &nparams, &results, &nresults, &slow_call, &failure))
        return NULL;
    if (caller_bind_head((CallerHead *)self, handle, slow_call, failure) < 0)
        return NULL;
    self->func = *(const wasmtime_func_t *)(uintptr_t)func_address;
    signature_set(&self->signature, params, nparams, results, nresults);
    Py_RETURN_NONE;
}

/* Raises the exception for a failed call; takes the pending host exception, if any. */
static PyObject *raise_failure(PyObject *failure, PyObject *pending, int status, wasm_trap_t *trap,
                               wasmtime_error_t *error)
{
    PyObject *exception = PyObject_CallFunction(failure, "NiKK", pending ? pending : Py_NewRef(Py_None),
                                                status, (unsigned long long)(uintptr_t)trap,
                                                (unsigned long long)(uintptr_t)error);
    if (exception == NULL)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exception), exception);
    Py_DECREF(exception);
    return NULL;
}

/* The call the Python way: slow_call(self, *args, **keywords). */
static PyObject *call_slow(CallerHead *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (self->slow_call == NULL) {
        PyErr_SetString(PyExc_TypeError, "this function is not bound to a store");
        return NULL;
    }
    Py_ssize_t count = nargs + (kwnames != NULL ? PyTuple_Size(kwnames) : 0);
    PyObject *small[MAX_FAST_VALUES + 1];
    PyObject **with_self = count < MAX_FAST_VALUES ? small : PyMem_Malloc((count + 1) * sizeof(PyObject *));
    if (with_self == NULL)
        return PyErr_NoMemory();
    with_self[0] = (PyObject *)self;
    memcpy(with_self + 1, args, count * sizeof(PyObject *));
    PyObject *result = PyObject_Vectorcall(self->slow_call, with_self, nargs + 1, kwnames);
    if (with_self != small)
        PyMem_Free(with_self);
    return result;
}

static PyObject *caller_vectorcall(Caller *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = positional_count(nargsf);
    if (self->handle == NULL) {
        PyErr_SetString(PyExc_TypeError, "this function is not bound to a store");
        return NULL;
    }
    const Signature *signature = &self->signature;
    if (!signature->fast || nargs != signature->nparams || (kwnames != NULL && PyTuple_Size(kwnames) != 0))
        return call_slow((CallerHead *)self, args, nargs, kwnames);

    wasmtime_val_raw_t values[MAX_FAST_VALUES];
    for (Py_ssize_t i = 0; i < nargs; i++)
        if (number_to_raw(args[i], signature->kinds[i], &values[i]) < 0)
            return call_slow((CallerHead *)self, args, nargs, NULL); /* explains, or handles Val */

    StoreHandle *handle = self->handle;
    if (!wasmpy_stack_allows((size_t)handle->stack_needed))
        return call_slow((CallerHead *)self, args, nargs, NULL); /* raises RecursionError */
    if (handle_acquire(handle) < 0)
        return NULL;
    wasmtime_context_t *context = handle->context;
    if (context == NULL) {
        handle_release(handle);
        return call_slow((CallerHead *)self, args, nargs, NULL); /* raises: the store is closed */
    }
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error;
    size_t count = signature->nparams > signature->nresults ? signature->nparams : signature->nresults;
    error = call_wasm(handle, &self->func, values, count ? count : 1, &trap);
    int delivered = deliver_output(handle);
    if (error != NULL || trap != NULL) {
        PyObject *pending = handle->pending;
        handle->pending = NULL;
        handle_release(handle);
        if (delivered < 0) /* the failure of the call itself comes first */
            PyErr_Clear();
        return raise_failure(self->failure, pending, error != NULL ? 2 : 1, trap, error);
    }
    handle_release(handle);
    if (delivered < 0)
        return NULL;
    return results_to_python(values, signature->kinds + signature->nparams, signature->nresults);
}

static PyObject *caller_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Caller *self = (Caller *)alloc_instance(type);
    if (self != NULL)
        self->vectorcall = (vectorcallfunc)caller_vectorcall;
    return (PyObject *)self;
}

static PyMethodDef caller_methods[] = {
    {"_bind_native", (PyCFunction)caller_bind, METH_VARARGS,
     "_bind_native(handle, func_address, param_kinds, result_kinds, slow_call, failure)"},
    {NULL},
};

/* How a PyType_Spec sets tp_vectorcall_offset (with Py_TPFLAGS_HAVE_VECTORCALL in its flags). */
static PyMemberDef caller_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Caller, vectorcall), READONLY},
    {NULL},
};

static PyType_Slot caller_slots[] = {
    {Py_tp_doc, "Base class of Func: calls wasm functions with numeric signatures in C."},
    {Py_tp_new, caller_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_dealloc, caller_dealloc},
    {Py_tp_traverse, caller_traverse},
    {Py_tp_clear, caller_clear},
    {Py_tp_methods, caller_methods},
    {Py_tp_members, caller_members},
    {0, NULL},
};

static PyType_Spec caller_spec = {
    .name = "wasmpy._native.Caller",
    .basicsize = sizeof(Caller),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = caller_slots,
};

#include "component/call.c" /* ComponentCaller: the same, for component functions */
#include "component/lists.c" /* lists of simple WIT types, both ways */
#include "component/records.c" /* records and tuples of simple WIT types, both ways */

/* The class vectorcall_subclass() makes: `spec_name` is "module.name", `doc` the docstring or None. */
static PyObject *subclass_from_spec(PyObject *cls, PyObject *spec_name, PyObject *doc)
{
    const char *name_text = PyUnicode_AsUTF8AndSize(spec_name, NULL);
    const char *doc_text = PyUnicode_Check(doc) ? PyUnicode_AsUTF8AndSize(doc, NULL) : NULL;
    if (name_text == NULL || (doc_text == NULL && PyErr_Occurred()))
        return NULL;
    PyType_Slot slots[] = {
        {Py_tp_call, PyVectorcall_Call},
        {Py_tp_members, caller_members},
        {doc_text != NULL ? Py_tp_doc : 0, (void *)doc_text}, /* without a docstring the slots end here */
        {0, NULL},
    };
    /* basicsize 0: the instances are laid out as those of `cls`; no Py_TPFLAGS_HAVE_GC: that flag comes
     * with the traverse and clear functions of `cls`. The spec is read only while the class is made. */
    PyType_Spec spec = {name_text, 0, 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_VECTORCALL, slots};
    PyObject *bases = PyTuple_Pack(1, cls);
    PyObject *qualname = bases != NULL ? PyType_GetQualName((PyTypeObject *)cls) : NULL;
    PyObject *subclass = qualname != NULL ? PyType_FromSpecWithBases(&spec, bases) : NULL;
    if (subclass != NULL && PyObject_SetAttrString(subclass, "__qualname__", qualname) < 0)
        Py_CLEAR(subclass);
    Py_XDECREF(bases);
    Py_XDECREF(qualname);
    return subclass;
}

/* A Python subclass of Caller (Func) made by a class statement has Py_TPFLAGS_HAVE_VECTORCALL only
 * from Python 3.12 on (3.11 passes it on to static types alone): on 3.11 each call of a Func would
 * go through tp_call with a tuple of its arguments. The limited API cannot set a type's flags once
 * it is made, but a type made from a PyType_Spec has the flags its spec gives; so this makes, from
 * a spec, a subclass of `cls` of the same name that adds nothing but the flag (with the offset and
 * tp_call PEP 590 asks for along with it): no fields, no methods. Used as the class decorator of
 * Func on every version, so that what runs on 3.11 is what is tested everywhere. */
static PyObject *vectorcall_subclass(PyObject *module, PyObject *cls)
{
    if (!PyType_Check(cls) || !(PyType_IsSubtype((PyTypeObject *)cls, CallerType) ||
                                PyType_IsSubtype((PyTypeObject *)cls, ComponentCallerType))) {
        PyErr_SetString(PyExc_TypeError, "vectorcall_subclass() needs a subclass of Caller or ComponentCaller");
        return NULL;
    }
    if (PyType_GetSlot((PyTypeObject *)cls, Py_tp_call) != (void *)PyVectorcall_Call) {
        PyErr_SetString(PyExc_TypeError, "this class defines __call__: calls must go through it");
        return NULL;
    }
    PyObject *module_name = PyObject_GetAttrString(cls, "__module__");
    PyObject *name = module_name != NULL ? PyType_GetName((PyTypeObject *)cls) : NULL;
    PyObject *spec_name = name != NULL ? PyUnicode_FromFormat("%S.%S", module_name, name) : NULL;
    PyObject *doc = spec_name != NULL ? PyObject_GetAttrString(cls, "__doc__") : NULL;
    PyObject *subclass = doc != NULL ? subclass_from_spec(cls, spec_name, doc) : NULL;
    Py_XDECREF(module_name);
    Py_XDECREF(name);
    Py_XDECREF(spec_name);
    Py_XDECREF(doc);
    return subclass;
}

/* ------------------------------------------------------------------------------------------ */
/* HostFunc and the trampoline: wasm -> Python */

typedef struct {
    PyObject_HEAD
    StoreHandle *handle;     /* borrowed: the handle keeps this object while its store lives, and
                              * wasmtime calls it only then (a reference would be a cycle) */
    PyObject *fn;            /* the Python function */
    PyObject *slow_invoke;   /* the Python path: callable(values_address), or with references
                              * callable(args_address, results_address) */
    PyObject *write_results; /* callable(result, values_address): checks and stores results */
    PyObject *rethrow;       /* callable(WasmException): the trap that throws it into wasm (address), or None */
    Signature signature;
} HostFunc;

static int host_traverse(HostFunc *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self));
    Py_VISIT(self->fn);
    Py_VISIT(self->slow_invoke);
    Py_VISIT(self->write_results);
    Py_VISIT(self->rethrow);
    return 0;
}

static int host_clear(HostFunc *self)
{
    Py_CLEAR(self->fn);
    Py_CLEAR(self->slow_invoke);
    Py_CLEAR(self->write_results);
    Py_CLEAR(self->rethrow);
    return 0;
}

static void host_dealloc(HostFunc *self)
{
    PyObject_GC_UnTrack(self);
    host_clear(self);
    free_instance((PyObject *)self);
}

static PyObject *host_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *handle, *fn, *slow_invoke, *write_results, *rethrow;
    const char *params, *results;
    Py_ssize_t nparams, nresults;
    if (!PyArg_ParseTuple(args, "O!Oy#y#OOO:HostFunc", StoreHandleType, &handle, &fn, &params, &nparams,
                          &results, &nresults, &slow_invoke, &write_results, &rethrow))
        return NULL;
    HostFunc *self = (HostFunc *)alloc_instance(type);
    if (self == NULL)
        return NULL;
    self->handle = (StoreHandle *)handle;
    self->fn = Py_NewRef(fn);
    self->slow_invoke = Py_NewRef(slow_invoke);
    self->write_results = Py_NewRef(write_results);
    self->rethrow = Py_NewRef(rethrow);
    signature_set(&self->signature, params, nparams, results, nresults);
    return (PyObject *)self;
}

static PyType_Slot host_slots[] = {
    {Py_tp_doc, "What the host trampoline needs to call a Python function from wasm."},
    {Py_tp_new, host_new},
    {Py_tp_dealloc, host_dealloc},
    {Py_tp_traverse, host_traverse},
    {Py_tp_clear, host_clear},
    {0, NULL},
};

static PyType_Spec host_spec = {
    .name = "wasmpy._native.HostFunc",
    .basicsize = sizeof(HostFunc),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = host_slots,
};

/* Stores numeric results in C when they are plain in-range numbers; returns -1 otherwise
 * (no exception set), so that Python checks them and explains what is wrong. */
static int fast_results(HostFunc *host, PyObject *result, wasmtime_val_raw_t *values)
{
    const Signature *signature = &host->signature;
    const uint8_t *kinds = signature->kinds + signature->nparams;
    if (signature->nresults == 0)
        return result == Py_None ? 0 : -1;
    if (signature->nresults == 1)
        return number_to_raw(result, kinds[0], &values[0]);
    if (!is_tuple(result) || PyTuple_Size(result) != signature->nresults)
        return -1;
    wasmtime_val_raw_t converted[MAX_FAST_VALUES];
    for (Py_ssize_t i = 0; i < signature->nresults; i++)
        if (number_to_raw(PyTuple_GetItem(result, i), kinds[i], &converted[i]) < 0)
            return -1;
    memcpy(values, converted, signature->nresults * sizeof(wasmtime_val_raw_t));
    return 0;
}

static PyObject *values_address(wasmtime_val_raw_t *values)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)values);
}

static int host_invoke(HostFunc *host, wasmtime_val_raw_t *values)
{
    const Signature *signature = &host->signature;
    if (!signature->fast) {
        PyObject *address = values_address(values);
        PyObject *done = address != NULL ? call_one_arg(host->slow_invoke, address) : NULL;
        Py_XDECREF(address);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    PyObject *args[MAX_FAST_VALUES] = {NULL};
    Py_ssize_t made = 0;
    for (; made < signature->nparams; made++) {
        args[made] = raw_to_number(&values[made], signature->kinds[made]);
        if (args[made] == NULL)
            break;
    }
    PyObject *result = made == signature->nparams ? PyObject_Vectorcall(host->fn, args, made, NULL) : NULL;
    for (Py_ssize_t i = 0; i < made; i++)
        Py_DECREF(args[i]);
    if (result == NULL)
        return -1;
    int status = 0;
    if (fast_results(host, result, values) < 0) { /* Python checks them, and explains what is wrong */
        PyObject *address = values_address(values);
        PyObject *done = address != NULL ? PyObject_CallFunctionObjArgs(host->write_results, result, address, NULL)
                                         : NULL;
        status = done == NULL ? -1 : 0;
        Py_XDECREF(done);
        Py_XDECREF(address);
    }
    Py_DECREF(result);
    return status;
}

/* A WasmException of the store's own tags is thrown into wasm, where wasm code can catch it. */
static wasm_trap_t *rethrown_trap(HostFunc *host)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *address = value != NULL ? call_one_arg(host->rethrow, value) : NULL;
    wasm_trap_t *trap = NULL;
    if (address != NULL && address != Py_None) {
        unsigned long long raw = PyLong_AsUnsignedLongLong(address);
        if (!PyErr_Occurred())
            trap = (wasm_trap_t *)(uintptr_t)raw;
    }
    if (address == Py_None) {
        PyErr_Restore(type, value, traceback); /* not for wasm: it stays a Python exception */
        type = value = traceback = NULL;
    }
    Py_XDECREF(address);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return trap; /* NULL: with the exception to pass on set */
}

static wasm_trap_t *host_exception_trap(HostFunc *host)
{
    if (host->fn == NULL) {
        PyErr_Clear();
        static const char message[] = "host function of a store being freed";
        return wasmtime_trap_new(message, sizeof(message) - 1);
    }
    if (WasmException != NULL && PyErr_ExceptionMatches(WasmException)) {
        wasm_trap_t *trap = rethrown_trap(host);
        if (trap != NULL)
            return trap;
    }
    char message[256];
    keep_raised(host->handle, message, sizeof(message));
    return wasmtime_trap_new(message, strlen(message));
}

/* What both trampolines do before calling Python: the store is usable here, so WASI output
 * written so far is delivered first. */
static int host_begin(HostFunc *host)
{
    if (host->fn == NULL) { /* cleared by Python's GC with its store: nothing can call it any more */
        set_wasm_error("this host function's store is being freed");
        return -1;
    }
    return deliver_output(host->handle);
}

/* For signatures without references: wasm's raw values, converted in C or by slow_invoke(address). */
static wasm_trap_t *host_trampoline(void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *values,
                                    size_t nvalues)
{
    (void)caller;
    (void)nvalues;
    PythonEntry entry = enter_python();
    HostFunc *host = (HostFunc *)env;
    wasm_trap_t *trap = host_begin(host) < 0 || host_invoke(host, values) < 0 ? host_exception_trap(host) : NULL;
    leave_python(entry, 0);
    return trap;
}

/* For signatures with references: wasmtime roots the arguments before any Python code runs and
 * checks the results' types (a host function cannot hand wasm a reference of the wrong type);
 * slow_invoke(args_address, results_address) converts them. */
static wasm_trap_t *checked_host_trampoline(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args,
                                            size_t nargs, wasmtime_val_t *results, size_t nresults)
{
    (void)caller;
    (void)nargs;
    (void)nresults;
    PythonEntry entry = enter_python();
    HostFunc *host = (HostFunc *)env;
    PyObject *done = NULL;
    if (host_begin(host) == 0)
        done = PyObject_CallFunction(host->slow_invoke, "KK", (unsigned long long)(uintptr_t)args,
                                     (unsigned long long)(uintptr_t)results);
    wasm_trap_t *trap = done == NULL ? host_exception_trap(host) : NULL;
    Py_XDECREF(done);
    leave_python(entry, 0);
    return trap;
}

#include "component/host.c" /* ComponentHost: the same, for Python imports of components */

static PyObject *trampoline_address(PyObject *module, PyObject *unused)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)&host_trampoline);
}

static PyObject *checked_trampoline_address(PyObject *module, PyObject *unused)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)&checked_host_trampoline);
}

/* ------------------------------------------------------------------------------------------ */
/* Interruption: called by wasmtime whenever the engine's epoch (advanced by wasmpy's ticker
 * thread) passes the store's epoch deadline, which is always the next tick. */

/* Messages wasmpy maps back to exceptions (_store.call_failure). */
#define DEADLINE_MESSAGE "wasmpy: deadline exceeded"
#define SIGNAL_MESSAGE "wasmpy: interrupted by a signal handler"

static long long monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static wasmtime_error_t *epoch_check(wasmtime_context_t *context, void *data, uint64_t *delta,
                                     wasmtime_update_deadline_kind_t *kind)
{
    StoreHandle *handle = (StoreHandle *)data;
    *delta = 1;
    *kind = WASMTIME_UPDATE_DEADLINE_CONTINUE;
    if (handle->deadline_ns != 0 && monotonic_ns() >= handle->deadline_ns)
        return wasmtime_error_new(DEADLINE_MESSAGE);
    int in_main_thread = current_thread() == main_thread; /* where Python runs signal handlers */
    /* Read without the GIL: output appended meanwhile is seen at the next tick. */
    int has_output = output_pending(handle->output);
    if (!in_main_thread && !has_output) {
        if (wasm_gil == GIL_KEPT)
            wasm_gil = PyEval_SaveThread(); /* the call runs long: let other threads run */
        return NULL;
    }
    PythonEntry entry = enter_python();
    /* The Python code below may call into this store; wasmtime runs no deadline callback while
     * this one runs, so a deadline reached meanwhile would be a spurious interrupt. */
    wasmtime_context_set_epoch_deadline(context, UINT64_MAX / 2);
    int raised = deliver_output(handle) < 0 || (in_main_thread && PyErr_CheckSignals() < 0); /* Ctrl-C */
    if (raised) {
        keep_raised(handle, NULL, 0);
        wasmtime_context_set_epoch_deadline(context, 1); /* the delta is not applied when this fails */
    }
    leave_python(entry, !raised);
    return raised ? wasmtime_error_new(SIGNAL_MESSAGE) : NULL;
}

static PyObject *epoch_check_address(PyObject *module, PyObject *unused)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)&epoch_check);
}

static PyObject *set_main_thread(PyObject *module, PyObject *ident)
{
    unsigned long value = PyLong_AsUnsignedLong(ident);
    if (value == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    main_thread = value;
    Py_RETURN_NONE;
}

static PyObject *externref_drop_address(PyObject *module, PyObject *unused)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)&externref_drop);
}

/* The object a KeptObject holds: the data of a live externref made by wasmpy. */
static PyObject *kept_object(PyObject *module, PyObject *address)
{
    unsigned long long value = PyLong_AsUnsignedLongLong(address);
    if (value == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    return Py_NewRef(((KeptObject *)(uintptr_t)value)->object);
}

static PyObject *release_dropped(PyObject *module, PyObject *unused)
{
    drain_dropped();
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ */

static PyMethodDef module_methods[] = {
    {"set_errors", set_errors, METH_VARARGS,
     "set_errors(WasmError, WasmException): for a closed store, and exceptions host functions throw into wasm."},
    {"epoch_check_address", epoch_check_address, METH_NOARGS,
     "The address of the epoch deadline callback (data: the StoreHandle)."},
    {"set_main_thread", set_main_thread, METH_O, "Names the thread whose wasm runs Python's signal handlers."},
    {"externref_drop_address", externref_drop_address, METH_NOARGS,
     "The address of the finalizer of the data StoreHandle.keep_for_externref() returns."},
    {"kept_object", kept_object, METH_O, "The object of an address StoreHandle.keep_for_externref() returned."},
    {"release_dropped", release_dropped, METH_NOARGS,
     "Releases the objects of externrefs wasmtime has collected (call where Python code may run)."},
    {"host_trampoline_address", trampoline_address, METH_NOARGS,
     "The address of the C callback that calls a HostFunc on raw values (env: the HostFunc object)."},
    {"checked_host_trampoline_address", checked_trampoline_address, METH_NOARGS,
     "The address of the C callback that calls a HostFunc on wasmtime_val_t values (env: the HostFunc)."},
    {"after_fork_in_child", after_fork_in_child, METH_NOARGS,
     "For os.register_at_fork: stores held by threads that did not survive fork() become unusable."},
    {"vectorcall_subclass", vectorcall_subclass, METH_O,
     "vectorcall_subclass(cls): a subclass of cls (a Python subclass of Caller), of the same name, that is "
     "called through vectorcall also on Python 3.11 (the class decorator of Func)."},
    {"component_set_pending", component_set_pending, METH_O,
     "component_set_pending(exception): what a Python import of a component raised, for the call it ends."},
    {"component_take_pending", component_take_pending, METH_NOARGS,
     "The exception a Python import of a component raised on this thread (None if none), taken."},
    {"component_host_callback_address", component_host_callback_address, METH_NOARGS,
     "The address of the C callback (wasmtime_component_func_callback_t) of a ComponentHost (data: its "
     "data_address())."},
    {"component_pack_list", (PyCFunction)(void (*)(void))component_pack_list, METH_FASTCALL,
     "component_pack_list(kind, items): the wasmtime_component_val_t array of a list of a simple kind, as "
     "bytes; None if the Python way must convert it."},
    {"component_unpack_list", (PyCFunction)(void (*)(void))component_unpack_list, METH_FASTCALL,
     "component_unpack_list(val_address, kind): the Python list of a component list value of a simple kind."},
    {"component_prepare_record", (PyCFunction)(void (*)(void))component_prepare_record, METH_FASTCALL,
     "component_prepare_record(value, cls, attributes, kinds): the attributes of a record of simple field "
     "kinds, as a tuple for component_write_record; None if the Python way must convert it."},
    {"component_prepare_tuple", (PyCFunction)(void (*)(void))component_prepare_tuple, METH_FASTCALL,
     "component_prepare_tuple(value, kinds): a tuple of simple kinds, for component_write_tuple; None if the "
     "Python way must convert it."},
    {"component_write_record", (PyCFunction)(void (*)(void))component_write_record, METH_FASTCALL,
     "component_write_record(out_address, names, kinds, prepared): fills a component value with a record."},
    {"component_write_tuple", (PyCFunction)(void (*)(void))component_write_tuple, METH_FASTCALL,
     "component_write_tuple(out_address, kinds, prepared): fills a component value with a tuple."},
    {"component_read_record", (PyCFunction)(void (*)(void))component_read_record, METH_FASTCALL,
     "component_read_record(val_address, kinds, cls): cls(*fields) of a record value of simple field kinds."},
    {"component_read_tuple", (PyCFunction)(void (*)(void))component_read_tuple, METH_FASTCALL,
     "component_read_tuple(val_address, kinds): the Python tuple of a tuple value of simple kinds."},
    {"output_stream", output_stream, METH_VARARGS,
     "output_stream(handle, write): (callback, data, finalizer) addresses of a WASI output stream."},
    {NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wasmpy._native",
    .m_doc = "wasmpy's C fast paths and buffer support.",
    .m_size = -1,
    .m_methods = module_methods,
};

/* Makes the module's types (heap types: the limited API has no static ones) and adds them; the C
 * code keeps a reference to those it checks arguments against, for the life of the process
 * (single-phase init: this runs once). */
static int add_types(PyObject *module)
{
    struct {
        PyType_Spec *spec;
        const char *name;
        PyTypeObject **kept; /* NULL: only the module refers to it */
    } types[] = {
        {&memory_spec, "MemoryBase", NULL},
        {&handle_spec, "StoreHandle", &StoreHandleType},
        {&caller_spec, "Caller", &CallerType},
        {&component_caller_spec, "ComponentCaller", &ComponentCallerType},
        {&host_spec, "HostFunc", NULL},
        {&component_host_spec, "ComponentHost", NULL},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        PyObject *type = PyType_FromSpec(types[i].spec);
        if (type == NULL || PyModule_AddObjectRef(module, types[i].name, type) < 0) {
            Py_XDECREF(type);
            return -1;
        }
        if (types[i].kept != NULL)
            *types[i].kept = (PyTypeObject *)type;
        else
            Py_DECREF(type);
    }
    return 0;
}

PyMODINIT_FUNC PyInit__native(void)
{
    main_thread = PyThread_get_thread_ident();
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL)
        return NULL;
    if (add_types(module) < 0 || wasmpy_signals_init(module) < 0 || ticker_add_to_module(module) < 0 ||
        values_add_to_module(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
