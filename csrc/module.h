/* wasmtime/module.h: compiled modules. */

typedef struct wasmtime_module wasmtime_module_t;

wasmtime_error_t *wasmtime_module_new(wasm_engine_t *engine, const uint8_t *wasm, size_t wasm_len,
                                      wasmtime_module_t **ret);
void wasmtime_module_delete(wasmtime_module_t *m);
void wasmtime_module_imports(const wasmtime_module_t *module, wasm_importtype_vec_t *out);
void wasmtime_module_exports(const wasmtime_module_t *module, wasm_exporttype_vec_t *out);
wasmtime_error_t *wasmtime_module_validate(wasm_engine_t *engine, const uint8_t *wasm, size_t wasm_len);
wasmtime_error_t *wasmtime_module_serialize(wasmtime_module_t *module, wasm_byte_vec_t *ret);
wasmtime_error_t *wasmtime_module_deserialize(wasm_engine_t *engine, const uint8_t *bytes, size_t bytes_len,
                                              wasmtime_module_t **ret);
/* Maps the file at `path` (wasmtime's own serialized format) rather than reading it. */
wasmtime_error_t *wasmtime_module_deserialize_file(wasm_engine_t *engine, const char *path, wasmtime_module_t **ret);
