/* wasmtime/extern.h / wasmtime/instance.h / wasmtime/linker.h: externs, instances and linking. */

typedef struct wasmtime_sharedmemory wasmtime_sharedmemory_t;

typedef uint8_t wasmtime_extern_kind_t;
#define WASMTIME_EXTERN_FUNC 0
#define WASMTIME_EXTERN_GLOBAL 1
#define WASMTIME_EXTERN_TABLE 2
#define WASMTIME_EXTERN_MEMORY 3
#define WASMTIME_EXTERN_SHAREDMEMORY 4
#define WASMTIME_EXTERN_TAG 5

/* wasmtime/tag.h: exception tags. */
typedef struct wasmtime_tag {
    struct {
        uint64_t store_id;
        uint32_t __private1;
    };
    uint32_t __private2;
} wasmtime_tag_t;

wasmtime_error_t *wasmtime_tag_new(wasmtime_context_t *store, const wasm_tagtype_t *type, wasmtime_tag_t *ret);
wasm_tagtype_t *wasmtime_tag_type(const wasmtime_context_t *store, const wasmtime_tag_t *tag);
bool wasmtime_tag_eq(const wasmtime_context_t *store, const wasmtime_tag_t *a, const wasmtime_tag_t *b);

/* wasmtime/exnref.h: exception objects (exnref values), the exception a call left pending when no wasm
 * code caught it... */
bool wasmtime_context_has_exception(wasmtime_context_t *store);
bool wasmtime_context_take_exception(wasmtime_context_t *store, wasmtime_exnref_t *exn_ret);
wasmtime_error_t *wasmtime_exnref_tag(wasmtime_context_t *store, const wasmtime_exnref_t *exn,
                                      wasmtime_tag_t *tag_ret);
size_t wasmtime_exnref_field_count(wasmtime_context_t *store, const wasmtime_exnref_t *exn);
wasmtime_error_t *wasmtime_exnref_field(wasmtime_context_t *store, const wasmtime_exnref_t *exn, size_t index,
                                        wasmtime_val_t *val_ret);
void wasmtime_exnref_unroot(wasmtime_exnref_t *ref);
void wasmtime_exnref_from_raw(wasmtime_context_t *context, uint32_t raw, wasmtime_exnref_t *out);
uint32_t wasmtime_exnref_to_raw(wasmtime_context_t *context, const wasmtime_exnref_t *ref);
/* ... and one a host function throws into wasm. */
wasmtime_error_t *wasmtime_exnref_new(wasmtime_context_t *store, const wasmtime_tag_t *tag,
                                      const wasmtime_val_t *fields, size_t nfields, wasmtime_exnref_t *exn_ret);
wasm_trap_t *wasmtime_context_set_exception(wasmtime_context_t *store, wasmtime_exnref_t *exn);

typedef union wasmtime_extern_union {
    wasmtime_func_t func;
    wasmtime_global_t global;
    wasmtime_table_t table;
    wasmtime_memory_t memory;
    wasmtime_sharedmemory_t *sharedmemory;
    wasmtime_tag_t tag;
} wasmtime_extern_union_t;

typedef struct wasmtime_extern {
    wasmtime_extern_kind_t kind;
    wasmtime_extern_union_t of;
} wasmtime_extern_t;

void wasmtime_extern_delete(wasmtime_extern_t *val);

typedef struct wasmtime_instance {
    uint64_t store_id;
    size_t __private;
} wasmtime_instance_t;

wasmtime_error_t *wasmtime_instance_new(wasmtime_context_t *store, const wasmtime_module_t *module,
                                        const wasmtime_extern_t *imports, size_t nimports,
                                        wasmtime_instance_t *instance, wasm_trap_t **trap);
bool wasmtime_instance_export_get(wasmtime_context_t *store, const wasmtime_instance_t *instance,
                                  const char *name, size_t name_len, wasmtime_extern_t *item);
bool wasmtime_instance_export_nth(wasmtime_context_t *store, const wasmtime_instance_t *instance,
                                  size_t index, char **name, size_t *name_len, wasmtime_extern_t *item);

typedef struct wasmtime_linker wasmtime_linker_t;
wasmtime_linker_t *wasmtime_linker_new(wasm_engine_t *engine);
void wasmtime_linker_delete(wasmtime_linker_t *linker);
wasmtime_error_t *wasmtime_linker_define_wasi(wasmtime_linker_t *linker);
bool wasmtime_linker_get(const wasmtime_linker_t *linker, wasmtime_context_t *store, const char *module,
                         size_t module_len, const char *name, size_t name_len, wasmtime_extern_t *item);
