/* WASI output streams: see output.h. Plain C, callable from any thread, with or without the GIL. */
#include "output.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    OutputQueue *queue;
    int stream;
} OutputStream;

OutputQueue *output_queue_new(void)
{
    OutputQueue *queue = calloc(1, sizeof(OutputQueue));
    if (queue == NULL)
        return NULL;
    if (pthread_mutex_init(&queue->lock, NULL) != 0) {
        free(queue);
        return NULL;
    }
    queue->references = 1;
    return queue;
}

static void free_chunks(OutputChunk *chunk)
{
    while (chunk != NULL) {
        OutputChunk *next = chunk->next;
        free(chunk);
        chunk = next;
    }
}

/* Drops one reference; the lock is held and released here. */
static void release_locked(OutputQueue *queue)
{
    int last = --queue->references == 0;
    pthread_mutex_unlock(&queue->lock);
    if (!last)
        return;
    free_chunks(queue->first);
    pthread_mutex_destroy(&queue->lock);
    free(queue);
}

void output_queue_close(OutputQueue *queue)
{
    pthread_mutex_lock(&queue->lock);
    queue->closed = 1;
    OutputChunk *unread = queue->first;
    queue->first = queue->last = NULL;
    __atomic_store_n(&queue->queued, 0, __ATOMIC_RELAXED);
    release_locked(queue);
    free_chunks(unread);
}

void output_queue_after_fork(OutputQueue *queue)
{
    pthread_mutex_init(&queue->lock, NULL);
}

OutputChunk *output_take(OutputQueue *queue)
{
    pthread_mutex_lock(&queue->lock);
    OutputChunk *first = queue->first;
    queue->first = queue->last = NULL;
    __atomic_store_n(&queue->queued, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&queue->lock);
    return first;
}

void *output_stream_new(OutputQueue *queue, int stream)
{
    OutputStream *self = malloc(sizeof(OutputStream));
    if (self == NULL)
        return NULL;
    self->queue = queue;
    self->stream = stream;
    pthread_mutex_lock(&queue->lock);
    queue->references++;
    pthread_mutex_unlock(&queue->lock);
    return self;
}

ssize_t output_stream_write(void *data, const unsigned char *buffer, size_t length)
{
    OutputStream *self = (OutputStream *)data;
    if (length > (size_t)SSIZE_MAX || length > SIZE_MAX - sizeof(OutputChunk))
        return -1;
    OutputChunk *chunk = malloc(sizeof(OutputChunk) + length);
    if (chunk == NULL)
        return -1; /* an I/O error for the guest */
    chunk->next = NULL;
    chunk->stream = self->stream;
    chunk->length = length;
    memcpy(chunk->bytes, buffer, length);
    OutputQueue *queue = self->queue;
    pthread_mutex_lock(&queue->lock);
    if (queue->closed) {
        pthread_mutex_unlock(&queue->lock);
        free(chunk);
        return -1; /* the store is gone: nobody would read it */
    }
    if (queue->last != NULL)
        queue->last->next = chunk;
    else
        queue->first = chunk;
    queue->last = chunk;
    __atomic_store_n(&queue->queued, queue->queued + 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&queue->lock);
    return (ssize_t)length;
}

void output_stream_free(void *data)
{
    OutputStream *self = (OutputStream *)data;
    pthread_mutex_lock(&self->queue->lock);
    release_locked(self->queue);
    free(self);
}
