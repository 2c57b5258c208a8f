/* wasmpy's own C helpers for components, implemented in component.c. Each returns 0 on success,
 * 2 with `*error` set, or 3 without calling wasmtime when less than `stack_needed` bytes of
 * native stack are left (csrc/stack.h): the convention of wasmpy.h. */

/* Compiles `wasm` for `engine`; through `compiler` and serialize/deserialize when it is another
 * engine of the same settings (see wasmpy_module_new in wasmpy.h). */
int wasmpy_component_new(wasm_engine_t *engine, wasm_engine_t *compiler, const uint8_t *wasm, size_t wasm_len,
                         size_t stack_needed, wasmtime_component_t **component, wasmtime_error_t **error);
int wasmpy_component_deserialize(wasm_engine_t *engine, const uint8_t *bytes, size_t bytes_len,
                                 size_t stack_needed, wasmtime_component_t **component, wasmtime_error_t **error);
int wasmpy_component_deserialize_file(wasm_engine_t *engine, const char *path, size_t stack_needed,
                                      wasmtime_component_t **component, wasmtime_error_t **error);
int wasmpy_component_instantiate(const wasmtime_component_linker_t *linker, wasmtime_context_t *context,
                                 const wasmtime_component_t *component, wasmtime_component_instance_t *instance,
                                 size_t stack_needed, wasmtime_error_t **error);
int wasmpy_component_call(const wasmtime_component_func_t *func, wasmtime_context_t *context,
                          const wasmtime_component_val_t *args, size_t nargs, wasmtime_component_val_t *results,
                          size_t nresults, size_t stack_needed, wasmtime_error_t **error);
/* Frees what each of `count` values owns, and leaves each a bool (which owns nothing), so that the
 * buffer can hold the results of another call. */
void wasmpy_component_vals_delete(wasmtime_component_val_t *values, size_t count);
/* Drops the owned resource `resource` (its destructor runs): wasmtime_component_resource_any_drop. */
int wasmpy_component_resource_drop(wasmtime_context_t *context, const wasmtime_component_resource_any_t *resource,
                                   size_t stack_needed, wasmtime_error_t **error);
