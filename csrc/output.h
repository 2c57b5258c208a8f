/* WASI output streams given to wasmtime (wasi_config_set_stdout_custom and _stderr_custom).
 *
 * wasmtime writes to them from its own threads (tokio's workers) while wasm waits in fd_write,
 * and frees them there too, at any time after the store is deleted. Nothing here touches
 * Python: a thread that is not Python's must never wait for the GIL, because while the
 * interpreter finalizes, CPython 3.11-3.13 ends such a thread with pthread_exit(), whose
 * unwinding through wasmtime's Rust frames aborts the process ("panic in a function that
 * cannot unwind"). The bytes wait in a queue that the store's handle empties under the GIL,
 * where the store is usable (calling a Python stream from inside fd_write would deadlock as
 * soon as it touched the store). */
#ifndef WASMPY_OUTPUT_H
#define WASMPY_OUTPUT_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct OutputChunk {
    struct OutputChunk *next;
    int stream; /* which of the store's streams it was written to */
    size_t length;
    unsigned char bytes[];
} OutputChunk;

/* Shared by a store's handle and its streams; freed by whichever lets go last. */
typedef struct {
    pthread_mutex_t lock;
    int references; /* under the lock */
    int closed;     /* the handle let go: writes fail */
    OutputChunk *first, *last;
    size_t queued;  /* chunks in the list; read without the lock (a hint: see output_take) */
} OutputQueue;

/* A new queue with the caller's reference, or NULL without memory. */
OutputQueue *output_queue_new(void);
/* The handle's last use of the queue: later writes fail, and the queue is freed with the last
 * stream. */
void output_queue_close(OutputQueue *queue);
/* After fork() in the child: a wasmtime thread of the parent may have held the lock. */
void output_queue_after_fork(OutputQueue *queue);

static inline int output_pending(const OutputQueue *queue)
{
    return queue != NULL && __atomic_load_n(&queue->queued, __ATOMIC_RELAXED) > 0;
}

/* Takes every chunk queued so far, oldest first; the caller frees them with free(). */
OutputChunk *output_take(OutputQueue *queue);

/* A stream for wasmtime: its data (NULL without memory; it holds a reference to the queue)
 * and the callback and finalizer to give with it. */
void *output_stream_new(OutputQueue *queue, int stream);
ssize_t output_stream_write(void *data, const unsigned char *buffer, size_t length);
void output_stream_free(void *data);

#endif
