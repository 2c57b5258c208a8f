/* Read by cffi's cdef only (not valid C): Python functions C calls, defined with
 * @ffi.def_extern() in wasmpy/component/_instance.py and _resources.py. */

/* The callback of every Python host function of a component (linker.h's
 * wasmtime_component_func_callback_t): `data` names the function. */
extern "Python" wasmtime_error_t *wasmpy_component_host_call(void *data, wasmtime_context_t *context,
                                                             const wasmtime_component_func_type_t *type,
                                                             wasmtime_component_val_t *args, size_t nargs,
                                                             wasmtime_component_val_t *results, size_t nresults);
/* The destructor of every host resource Python defines (linker.h's
 * wasmtime_component_resource_destructor_t): `data` names the resource type. */
extern "Python" wasmtime_error_t *wasmpy_component_resource_destructor(void *data, wasmtime_context_t *context,
                                                                       uint32_t rep);
