/* wasmtime/component/val.h: the values component functions take and return (wasmtime 50.0.1). */

/* The kinds of wasmtime_component_val_t (numbered unlike the type kinds of types.h). */
typedef uint8_t wasmtime_component_valkind_t;
#define WASMTIME_COMPONENT_BOOL 0
#define WASMTIME_COMPONENT_S8 1
#define WASMTIME_COMPONENT_U8 2
#define WASMTIME_COMPONENT_S16 3
#define WASMTIME_COMPONENT_U16 4
#define WASMTIME_COMPONENT_S32 5
#define WASMTIME_COMPONENT_U32 6
#define WASMTIME_COMPONENT_S64 7
#define WASMTIME_COMPONENT_U64 8
#define WASMTIME_COMPONENT_F32 9
#define WASMTIME_COMPONENT_F64 10
#define WASMTIME_COMPONENT_CHAR 11
#define WASMTIME_COMPONENT_STRING 12
#define WASMTIME_COMPONENT_LIST 13
#define WASMTIME_COMPONENT_RECORD 14
#define WASMTIME_COMPONENT_TUPLE 15
#define WASMTIME_COMPONENT_VARIANT 16
#define WASMTIME_COMPONENT_ENUM 17
#define WASMTIME_COMPONENT_OPTION 18
#define WASMTIME_COMPONENT_RESULT 19
#define WASMTIME_COMPONENT_FLAGS 20
#define WASMTIME_COMPONENT_RESOURCE 21
/* A map<K, V>: key/value entries, in the order wasm gave them (valmap below). */
#define WASMTIME_COMPONENT_MAP 22

/* A handle to a resource (own or borrow), as values hold it: deleting it frees the handle, not the
 * resource; wasmtime_component_resource_any_drop drops an owned resource (its destructor runs). */
typedef struct wasmtime_component_resource_any wasmtime_component_resource_any_t;
wasmtime_component_resource_any_t *wasmtime_component_resource_any_clone(
    const wasmtime_component_resource_any_t *resource);
bool wasmtime_component_resource_any_owned(const wasmtime_component_resource_any_t *resource);
wasmtime_error_t *wasmtime_component_resource_any_drop(wasmtime_context_t *ctx,
                                                       const wasmtime_component_resource_any_t *resource);
void wasmtime_component_resource_any_delete(wasmtime_component_resource_any_t *resource);
/* Owned by the caller: wasmtime_component_resource_type_delete. */
wasmtime_component_resource_type_t *wasmtime_component_resource_any_type(
    const wasmtime_component_resource_any_t *resource);

/* A resource the host defines, outside any store: its representation `rep` (wasmpy's index in
 * the store's table of Python objects) and its type `ty` (the tag given to
 * wasmtime_component_resource_type_new_host). */
typedef struct wasmtime_component_resource_host wasmtime_component_resource_host_t;
wasmtime_component_resource_host_t *wasmtime_component_resource_host_new(bool owned, uint32_t rep, uint32_t ty);
wasmtime_component_resource_host_t *wasmtime_component_resource_host_clone(
    const wasmtime_component_resource_host_t *resource);
uint32_t wasmtime_component_resource_host_rep(const wasmtime_component_resource_host_t *resource);
uint32_t wasmtime_component_resource_host_type(const wasmtime_component_resource_host_t *resource);
bool wasmtime_component_resource_host_owned(const wasmtime_component_resource_host_t *resource);
void wasmtime_component_resource_host_delete(wasmtime_component_resource_host_t *resource);
/* A handle to a host resource as the host resource it is: an owned handle is taken out of the
 * store's table (its destructor does not run); an error if it is not a host resource. */
wasmtime_error_t *wasmtime_component_resource_any_to_host(wasmtime_context_t *ctx,
                                                          const wasmtime_component_resource_any_t *resource,
                                                          wasmtime_component_resource_host_t **ret);
/* A host resource as a handle in the store's table, to pass to wasm. */
wasmtime_error_t *wasmtime_component_resource_host_to_any(wasmtime_context_t *ctx,
                                                          const wasmtime_component_resource_host_t *resource,
                                                          wasmtime_component_resource_any_t **ret);

struct wasmtime_component_val;
struct wasmtime_component_valrecord_entry;
struct wasmtime_component_valmap_entry;

typedef struct wasmtime_component_vallist {
    size_t size;
    struct wasmtime_component_val *data;
} wasmtime_component_vallist_t;
typedef struct wasmtime_component_valrecord {
    size_t size;
    struct wasmtime_component_valrecord_entry *data;
} wasmtime_component_valrecord_t;
typedef struct wasmtime_component_valtuple {
    size_t size;
    struct wasmtime_component_val *data;
} wasmtime_component_valtuple_t;
typedef struct wasmtime_component_valflags {
    size_t size;
    wasm_name_t *data;
} wasmtime_component_valflags_t;
typedef struct wasmtime_component_valmap {
    size_t size;
    struct wasmtime_component_valmap_entry *data;
} wasmtime_component_valmap_t;

/* `val` NULL: a case without payload. */
typedef struct wasmtime_component_valvariant {
    wasm_name_t discriminant;
    struct wasmtime_component_val *val;
} wasmtime_component_valvariant_t;
/* `val` NULL: an ok or err without payload. */
typedef struct wasmtime_component_valresult {
    bool is_ok;
    struct wasmtime_component_val *val;
} wasmtime_component_valresult_t;

typedef union wasmtime_component_valunion {
    bool boolean;
    int8_t s8;
    uint8_t u8;
    int16_t s16;
    uint16_t u16;
    int32_t s32;
    uint32_t u32;
    int64_t s64;
    uint64_t u64;
    float f32;
    double f64;
    uint32_t character;
    wasm_name_t string;
    wasmtime_component_vallist_t list;
    wasmtime_component_valrecord_t record;
    wasmtime_component_valtuple_t tuple;
    wasmtime_component_valvariant_t variant;
    wasm_name_t enumeration;
    struct wasmtime_component_val *option; /* NULL: none */
    wasmtime_component_valresult_t result;
    wasmtime_component_valflags_t flags;
    wasmtime_component_valmap_t map;
    wasmtime_component_resource_any_t *resource;
} wasmtime_component_valunion_t;

typedef struct wasmtime_component_val {
    wasmtime_component_valkind_t kind;
    wasmtime_component_valunion_t of;
} wasmtime_component_val_t;

typedef struct wasmtime_component_valrecord_entry {
    wasm_name_t name;
    wasmtime_component_val_t val;
} wasmtime_component_valrecord_entry_t;

typedef struct wasmtime_component_valmap_entry {
    wasmtime_component_val_t key;
    wasmtime_component_val_t value;
} wasmtime_component_valmap_entry_t;

/* Vectors made by wasmtime's allocator: what a host function's results must be built from,
 * since wasmtime frees them. `_new` takes over the elements of `ptr` (moved, not copied). */
void wasmtime_component_vallist_new(wasmtime_component_vallist_t *out, size_t size, wasmtime_component_val_t *ptr);
void wasmtime_component_vallist_new_uninit(wasmtime_component_vallist_t *out, size_t size);
void wasmtime_component_valrecord_new_uninit(wasmtime_component_valrecord_t *out, size_t size);
void wasmtime_component_valtuple_new_uninit(wasmtime_component_valtuple_t *out, size_t size);
void wasmtime_component_valflags_new_uninit(wasmtime_component_valflags_t *out, size_t size);
void wasmtime_component_valmap_new_uninit(wasmtime_component_valmap_t *out, size_t size);
/* A heap copy of `val` (moved) for option, variant and result payloads: freed with the value. */
wasmtime_component_val_t *wasmtime_component_val_new(wasmtime_component_val_t *val);
/* Frees what `value` owns (not `value` itself). */
void wasmtime_component_val_delete(wasmtime_component_val_t *value);
