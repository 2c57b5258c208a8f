/* wasmtime/component/{instance,func}.h: instances of components and their functions. */

typedef struct wasmtime_component_instance {
    uint64_t store_id;
    uint32_t __private;
} wasmtime_component_instance_t;

/* 32 bytes in wasmtime 50 (24 in 49). */
typedef struct wasmtime_component_func {
    struct {
        uint64_t store_id;
        uint32_t __private1;
    };
    uint32_t __private2;
    void *__private3;
} wasmtime_component_func_t;

/* Owned by the caller (wasmtime_component_export_index_delete); NULL if there is no such export. */
wasmtime_component_export_index_t *wasmtime_component_instance_get_export_index(
    const wasmtime_component_instance_t *instance, wasmtime_context_t *context,
    const wasmtime_component_export_index_t *instance_export_index, const char *name, size_t name_len);
bool wasmtime_component_instance_get_func(const wasmtime_component_instance_t *instance,
                                          wasmtime_context_t *context,
                                          const wasmtime_component_export_index_t *export_index,
                                          wasmtime_component_func_t *func_out);

wasmtime_component_func_type_t *wasmtime_component_func_type(const wasmtime_component_func_t *func,
                                                             wasmtime_context_t *context);
/* The arguments are borrowed; every result is the caller's to free (wasmtime_component_val_delete). */
wasmtime_error_t *wasmtime_component_func_call(const wasmtime_component_func_t *func, wasmtime_context_t *context,
                                               const wasmtime_component_val_t *args, size_t args_size,
                                               wasmtime_component_val_t *results, size_t results_size);
