/* wasmpy's own C helpers, implemented in wasmpy.c. */

/* Calls `func` with its arguments in `values`, which receives the results. Returns 0 on
 * success, 1 with `*trap` set, 2 with `*error` set, or 3 without calling when less than
 * `stack_needed` bytes of native stack are left (csrc/stack.h). */
int wasmpy_call(wasmtime_context_t *context, const wasmtime_func_t *func, wasmtime_val_raw_t *values,
                size_t nvalues, size_t stack_needed, wasm_trap_t **trap, wasmtime_error_t **error);

/* Like wasmpy_call, through wasmtime's checked call, which verifies the arguments' types. */
int wasmpy_call_checked(wasmtime_context_t *context, const wasmtime_func_t *func, const wasmtime_val_t *args,
                        size_t nargs, wasmtime_val_t *results, size_t nresults, size_t stack_needed,
                        wasm_trap_t **trap, wasmtime_error_t **error);

/* Instantiates `module`, with the same result convention as wasmpy_call. */
int wasmpy_instantiate(wasmtime_context_t *context, const wasmtime_module_t *module,
                       const wasmtime_extern_t *imports, size_t nimports, wasmtime_instance_t *instance,
                       size_t stack_needed, wasm_trap_t **trap, wasmtime_error_t **error);

/* Compiles `wasm` for `engine` into `*module`. When `compiler` is not `engine` (an engine of the
 * same settings that compiles on the calling thread only: see Engine._compiler in _engine.py), it
 * compiles there and the code moves to `engine` through serialize and deserialize. Returns 0, 2
 * with `*error` set, or 3 without compiling when less than `stack_needed` bytes of native stack
 * are left. */
int wasmpy_module_new(wasm_engine_t *engine, wasm_engine_t *compiler, const uint8_t *wasm, size_t wasm_len,
                      size_t stack_needed, wasmtime_module_t **module, wasmtime_error_t **error);

/* Validates `wasm` for `engine`, with the result convention of wasmpy_module_new. */
int wasmpy_module_validate(wasm_engine_t *engine, const uint8_t *wasm, size_t wasm_len, size_t stack_needed,
                           wasmtime_error_t **error);

/* Loads serialized code for `engine`, with the result convention of wasmpy_module_new. */
int wasmpy_module_deserialize(wasm_engine_t *engine, const uint8_t *bytes, size_t bytes_len, size_t stack_needed,
                              wasmtime_module_t **module, wasmtime_error_t **error);

/* Maps the serialized code in the file at `path` for `engine`, with the result convention of
 * wasmpy_module_new. */
int wasmpy_module_deserialize_file(wasm_engine_t *engine, const char *path, size_t stack_needed,
                                   wasmtime_module_t **module, wasmtime_error_t **error);

/* Whether the address space for an instance pool is free now: maps `inaccessible` bytes the way
 * wasmtime reserves linear memory slots (PROT_NONE) and `accessible` bytes the way it maps tables
 * (read-write), both MAP_NORESERVE, then unmaps them. Returns 0, or the errno of the failed mmap. */
int wasmpy_try_reserve(size_t inaccessible, size_t accessible);

/* This thread's native stack: its size and how much of it is left below the caller's frame, in
 * bytes, as csrc/stack.h's guard sees them. Returns 0, or -1 when they are unknown. */
int wasmpy_stack_room(size_t *size, size_t *left);
