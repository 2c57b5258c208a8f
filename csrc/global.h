/* wasmtime/global.h: globals. */

typedef struct wasmtime_global {
    uint64_t store_id;
    uint32_t __private1;
    uint32_t __private2;
    uint32_t __private3;
} wasmtime_global_t;

wasmtime_error_t *wasmtime_global_new(wasmtime_context_t *store, const wasm_globaltype_t *type,
                                      const wasmtime_val_t *val, wasmtime_global_t *ret);
wasm_globaltype_t *wasmtime_global_type(const wasmtime_context_t *store, const wasmtime_global_t *global);
void wasmtime_global_get(wasmtime_context_t *store, const wasmtime_global_t *global, wasmtime_val_t *out);
wasmtime_error_t *wasmtime_global_set(wasmtime_context_t *store, const wasmtime_global_t *global,
                                      const wasmtime_val_t *val);
