/* wasmtime/memory.h: linear memories. */

typedef struct wasmtime_memory {
    struct {
        uint64_t store_id;
        uint32_t __private1;
    };
    uint32_t __private2;
} wasmtime_memory_t;

wasmtime_error_t *wasmtime_memorytype_new(uint64_t min, bool max_present, uint64_t max, bool is_64,
                                          bool shared, uint8_t page_size_log2, wasm_memorytype_t **ret);
uint64_t wasmtime_memorytype_minimum(const wasm_memorytype_t *ty);
bool wasmtime_memorytype_maximum(const wasm_memorytype_t *ty, uint64_t *max);
bool wasmtime_memorytype_is64(const wasm_memorytype_t *ty);
bool wasmtime_memorytype_isshared(const wasm_memorytype_t *ty);
uint64_t wasmtime_memorytype_page_size(const wasm_memorytype_t *ty);

wasmtime_error_t *wasmtime_memory_new(wasmtime_context_t *store, const wasm_memorytype_t *ty,
                                      wasmtime_memory_t *ret);
wasm_memorytype_t *wasmtime_memory_type(const wasmtime_context_t *store, const wasmtime_memory_t *memory);
uint8_t *wasmtime_memory_data(const wasmtime_context_t *store, const wasmtime_memory_t *memory);
size_t wasmtime_memory_data_size(const wasmtime_context_t *store, const wasmtime_memory_t *memory);
uint64_t wasmtime_memory_size(const wasmtime_context_t *store, const wasmtime_memory_t *memory);
wasmtime_error_t *wasmtime_memory_grow(wasmtime_context_t *store, const wasmtime_memory_t *memory,
                                       uint64_t delta, uint64_t *prev_size);
