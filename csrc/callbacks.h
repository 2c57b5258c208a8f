/* Python functions that wasmtime calls back (cffi `extern "Python"`); cdef only. */

extern "Python" wasm_trap_t *_wasmpy_host_call(void *env, wasmtime_caller_t *caller,
                                               wasmtime_val_raw_t *args_and_results,
                                               size_t num_args_and_results);
extern "Python" void _wasmpy_externref_drop(void *data);
extern "Python" ssize_t _wasmpy_wasi_write(void *data, const unsigned char *buf, size_t len);
