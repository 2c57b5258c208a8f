/* wasmtime/component/linker.h: resolving a component's imports, and instantiating it. */

typedef struct wasmtime_component_linker_t wasmtime_component_linker_t;
typedef struct wasmtime_component_linker_instance_t wasmtime_component_linker_instance_t;

wasmtime_component_linker_t *wasmtime_component_linker_new(const wasm_engine_t *engine);
void wasmtime_component_linker_delete(wasmtime_component_linker_t *linker);
/* The linker is borrowed exclusively until the returned instance is deleted. */
wasmtime_component_linker_instance_t *wasmtime_component_linker_root(wasmtime_component_linker_t *linker);
void wasmtime_component_linker_instance_delete(wasmtime_component_linker_instance_t *linker_instance);
/* `linker_instance` is borrowed exclusively until `*linker_instance_out` is deleted. */
wasmtime_error_t *wasmtime_component_linker_instance_add_instance(
    wasmtime_component_linker_instance_t *linker_instance, const char *name, size_t name_len,
    wasmtime_component_linker_instance_t **linker_instance_out);

/* A host function: the arguments are wasmtime's; the results must be made with wasmtime's
 * allocators (val.h), since wasmtime frees them. Returns NULL, or an error that traps. */
typedef wasmtime_error_t *(*wasmtime_component_func_callback_t)(void *data, wasmtime_context_t *context,
                                                                const wasmtime_component_func_type_t *type,
                                                                wasmtime_component_val_t *args, size_t nargs,
                                                                wasmtime_component_val_t *results, size_t nresults);
wasmtime_error_t *wasmtime_component_linker_instance_add_func(wasmtime_component_linker_instance_t *linker_instance,
                                                              const char *name, size_t name_len,
                                                              wasmtime_component_func_callback_t callback,
                                                              void *data, void (*finalizer)(void *));
/* Runs when wasm drops an owned handle of a host resource: `rep` is its representation. */
typedef wasmtime_error_t *(*wasmtime_component_resource_destructor_t)(void *data, wasmtime_context_t *context,
                                                                      uint32_t rep);
/* Defines the host resource type `resource` (borrowed: the caller deletes it) under `name`. */
wasmtime_error_t *wasmtime_component_linker_instance_add_resource(
    wasmtime_component_linker_instance_t *linker_instance, const char *name, size_t name_len,
    const wasmtime_component_resource_type_t *resource, wasmtime_component_resource_destructor_t destructor,
    void *data, void (*finalizer)(void *));
/* WASI 0.2 from the store's WASI context (wasmtime_context_set_wasi). */
wasmtime_error_t *wasmtime_component_linker_add_wasip2(wasmtime_component_linker_t *linker);
wasmtime_error_t *wasmtime_component_linker_instantiate(const wasmtime_component_linker_t *linker,
                                                        wasmtime_context_t *context,
                                                        const wasmtime_component_t *component,
                                                        wasmtime_component_instance_t *instance_out);
