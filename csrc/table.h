/* wasmtime/table.h: tables. */

typedef struct wasmtime_table {
    struct {
        uint64_t store_id;
        uint32_t __private1;
    };
    uint32_t __private2;
} wasmtime_table_t;

wasmtime_error_t *wasmtime_table_new(wasmtime_context_t *store, const wasm_tabletype_t *ty,
                                     const wasmtime_val_t *init, wasmtime_table_t *table);
wasm_tabletype_t *wasmtime_table_type(const wasmtime_context_t *store, const wasmtime_table_t *table);
bool wasmtime_table_get(wasmtime_context_t *store, const wasmtime_table_t *table, uint64_t index,
                        wasmtime_val_t *val);
wasmtime_error_t *wasmtime_table_set(wasmtime_context_t *store, const wasmtime_table_t *table,
                                     uint64_t index, const wasmtime_val_t *value);
uint64_t wasmtime_table_size(const wasmtime_context_t *store, const wasmtime_table_t *table);
wasmtime_error_t *wasmtime_table_grow(wasmtime_context_t *store, const wasmtime_table_t *table,
                                      uint64_t delta, const wasmtime_val_t *init, uint64_t *prev_size);
