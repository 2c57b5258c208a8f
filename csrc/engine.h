/* wasm.h / wasmtime/config.h / wasmtime/engine.h: configuration and engines. */

typedef struct wasm_config_t wasm_config_t;

wasm_config_t *wasm_config_new(void);
void wasm_config_delete(wasm_config_t *config);
wasm_engine_t *wasm_engine_new_with_config(wasm_config_t *config);
void wasm_engine_delete(wasm_engine_t *engine);
void wasmtime_engine_increment_epoch(wasm_engine_t *engine);

typedef uint8_t wasmtime_strategy_t;
typedef uint8_t wasmtime_opt_level_t;
#define WASMTIME_OPT_LEVEL_NONE 0
#define WASMTIME_OPT_LEVEL_SPEED 1
#define WASMTIME_OPT_LEVEL_SPEED_AND_SIZE 2

void wasmtime_config_debug_info_set(wasm_config_t *config, bool enable);
void wasmtime_config_consume_fuel_set(wasm_config_t *config, bool enable);
void wasmtime_config_epoch_interruption_set(wasm_config_t *config, bool enable);
void wasmtime_config_max_wasm_stack_set(wasm_config_t *config, size_t size);
void wasmtime_config_wasm_threads_set(wasm_config_t *config, bool enable);
void wasmtime_config_shared_memory_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_tail_call_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_reference_types_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_function_references_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_gc_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_simd_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_relaxed_simd_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_relaxed_simd_deterministic_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_bulk_memory_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_multi_value_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_multi_memory_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_memory64_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_wide_arithmetic_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_exceptions_set(wasm_config_t *config, bool enable);
void wasmtime_config_wasm_custom_page_sizes_set(wasm_config_t *config, bool enable);
void wasmtime_config_parallel_compilation_set(wasm_config_t *config, bool enable);
void wasmtime_config_cranelift_nan_canonicalization_set(wasm_config_t *config, bool enable);
void wasmtime_config_cranelift_opt_level_set(wasm_config_t *config, wasmtime_opt_level_t level);
void wasmtime_config_memory_may_move_set(wasm_config_t *config, bool enable);
void wasmtime_config_memory_reservation_set(wasm_config_t *config, uint64_t size);
void wasmtime_config_memory_guard_size_set(wasm_config_t *config, uint64_t size);
void wasmtime_config_native_unwind_info_set(wasm_config_t *config, bool enable);
void wasmtime_config_async_stack_size_set(wasm_config_t *config, size_t size);
void wasmtime_config_memory_reservation_for_growth_set(wasm_config_t *config, uint64_t size);
void wasmtime_config_memory_init_cow_set(wasm_config_t *config, bool enable);
void wasmtime_config_cranelift_flag_enable(wasm_config_t *config, const char *flag);
void wasmtime_config_cranelift_flag_set(wasm_config_t *config, const char *key, const char *value);

typedef uint8_t wasmtime_profiling_strategy_t;
#define WASMTIME_PROFILING_STRATEGY_NONE 0
#define WASMTIME_PROFILING_STRATEGY_JITDUMP 1
#define WASMTIME_PROFILING_STRATEGY_VTUNE 2
#define WASMTIME_PROFILING_STRATEGY_PERFMAP 3
void wasmtime_config_profiler_set(wasm_config_t *config, wasmtime_profiling_strategy_t strategy);

/* wasmtime/config.h: the pooling instance allocator. */
typedef struct wasmtime_pooling_allocation_config_t wasmtime_pooling_allocation_config_t;

wasmtime_pooling_allocation_config_t *wasmtime_pooling_allocation_config_new(void);
void wasmtime_pooling_allocation_config_delete(wasmtime_pooling_allocation_config_t *config);
void wasmtime_pooling_allocation_config_total_core_instances_set(wasmtime_pooling_allocation_config_t *config,
                                                                 uint32_t count);
void wasmtime_pooling_allocation_config_total_memories_set(wasmtime_pooling_allocation_config_t *config,
                                                           uint32_t count);
void wasmtime_pooling_allocation_config_total_tables_set(wasmtime_pooling_allocation_config_t *config,
                                                         uint32_t count);
void wasmtime_pooling_allocation_config_total_stacks_set(wasmtime_pooling_allocation_config_t *config,
                                                         uint32_t count);
void wasmtime_pooling_allocation_config_max_memory_size_set(wasmtime_pooling_allocation_config_t *config,
                                                          size_t bytes);
void wasmtime_pooling_allocation_config_total_gc_heaps_set(wasmtime_pooling_allocation_config_t *config,
                                                           uint32_t count);
void wasmtime_pooling_allocation_config_max_memories_per_module_set(wasmtime_pooling_allocation_config_t *config,
                                                                    uint32_t count);
void wasmtime_pooling_allocation_config_max_tables_per_module_set(wasmtime_pooling_allocation_config_t *config,
                                                                  uint32_t count);
void wasmtime_pooling_allocation_strategy_set(wasm_config_t *config,
                                              const wasmtime_pooling_allocation_config_t *pooling);
