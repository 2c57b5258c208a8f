/* Python functions that wasmtime calls back (cffi `extern "Python"`); cdef only. */

extern "Python" ssize_t _wasmpy_wasi_write(void *data, const unsigned char *buf, size_t len);
