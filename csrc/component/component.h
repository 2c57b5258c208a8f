/* wasmtime/component/component.h (and config.h's concurrency and map switches): compiled components. */

/* Off: the component model's async support (and its fixed cost per call) is left out. */
void wasmtime_config_concurrency_support_set(wasm_config_t *config, bool enable);
/* On: components may use map<K, V> types (wasmtime's component-model-map feature, off by default). */
void wasmtime_config_wasm_component_model_map_set(wasm_config_t *config, bool enable);

typedef struct wasmtime_component_t wasmtime_component_t;
typedef struct wasmtime_component_export_index_t wasmtime_component_export_index_t;

wasmtime_error_t *wasmtime_component_new(const wasm_engine_t *engine, const uint8_t *buf, size_t len,
                                         wasmtime_component_t **component_out);
wasmtime_error_t *wasmtime_component_serialize(const wasmtime_component_t *component, wasm_byte_vec_t *ret);
wasmtime_error_t *wasmtime_component_deserialize(const wasm_engine_t *engine, const uint8_t *buf, size_t len,
                                                 wasmtime_component_t **component_out);
wasmtime_error_t *wasmtime_component_deserialize_file(const wasm_engine_t *engine, const char *path,
                                                      wasmtime_component_t **component_out);
void wasmtime_component_delete(wasmtime_component_t *component);
/* Owned by the caller: wasmtime_component_type_delete. */
wasmtime_component_type_t *wasmtime_component_type(const wasmtime_component_t *component);

/* The index of export `name`, at the top of the component (instance_export_index NULL) or in
 * the exported instance `instance_export_index`; NULL if there is none. */
wasmtime_component_export_index_t *wasmtime_component_get_export_index(
    const wasmtime_component_t *component, const wasmtime_component_export_index_t *instance_export_index,
    const char *name, size_t name_len);
void wasmtime_component_export_index_delete(wasmtime_component_export_index_t *export_index);
