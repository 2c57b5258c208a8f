/* wasm.h: vectors, limits and the type representations (valtype, functype,
 * globaltype, tabletype, memorytype, externtype, importtype, exporttype).
 * Every header in csrc/ is both valid C and readable by cffi's cdef. */

typedef unsigned char wasm_byte_t;
typedef struct wasm_engine_t wasm_engine_t;

typedef struct wasm_byte_vec_t {
    size_t size;
    wasm_byte_t *data;
} wasm_byte_vec_t;
typedef wasm_byte_vec_t wasm_name_t;
typedef wasm_name_t wasm_message_t;

void wasm_byte_vec_new(wasm_byte_vec_t *out, size_t size, const wasm_byte_t *data);
void wasm_byte_vec_new_uninitialized(wasm_byte_vec_t *out, size_t size);
void wasm_byte_vec_delete(wasm_byte_vec_t *vec);

typedef uint8_t wasm_mutability_t;
#define WASM_CONST 0
#define WASM_VAR 1

typedef struct wasm_limits_t {
    uint32_t min;
    uint32_t max;
} wasm_limits_t;

typedef uint8_t wasm_valkind_t;
#define WASM_I32 0
#define WASM_I64 1
#define WASM_F32 2
#define WASM_F64 3
#define WASM_EXTERNREF 128
#define WASM_FUNCREF 129

typedef struct wasm_valtype_t wasm_valtype_t;
typedef struct wasm_valtype_vec_t {
    size_t size;
    wasm_valtype_t **data;
} wasm_valtype_vec_t;
wasm_valtype_t *wasm_valtype_new(wasm_valkind_t kind);
wasm_valkind_t wasm_valtype_kind(const wasm_valtype_t *type);
void wasm_valtype_delete(wasm_valtype_t *type);
void wasm_valtype_vec_new(wasm_valtype_vec_t *out, size_t size, wasm_valtype_t *const *data);
void wasm_valtype_vec_new_empty(wasm_valtype_vec_t *out);

/* wasmtime/types/val.h: the full breadth of value types (v128, typed references). */
wasm_valtype_t *wasmtime_wasm_valtype_v128(void);

typedef uint8_t wasmtime_heaptype_kind_t;
#define WASMTIME_HEAPTYPE_KIND_EXTERN 0
#define WASMTIME_HEAPTYPE_KIND_NOEXTERN 1
#define WASMTIME_HEAPTYPE_KIND_FUNC 2
#define WASMTIME_HEAPTYPE_KIND_CONCRETE_FUNC 3
#define WASMTIME_HEAPTYPE_KIND_NOFUNC 4
#define WASMTIME_HEAPTYPE_KIND_ANY 5
#define WASMTIME_HEAPTYPE_KIND_NONE 6
#define WASMTIME_HEAPTYPE_KIND_EQ 7
#define WASMTIME_HEAPTYPE_KIND_I31 8
#define WASMTIME_HEAPTYPE_KIND_ARRAY 9
#define WASMTIME_HEAPTYPE_KIND_CONCRETE_ARRAY 10
#define WASMTIME_HEAPTYPE_KIND_STRUCT 11
#define WASMTIME_HEAPTYPE_KIND_CONCRETE_STRUCT 12
#define WASMTIME_HEAPTYPE_KIND_EXN 13
#define WASMTIME_HEAPTYPE_KIND_CONCRETE_EXN 14
#define WASMTIME_HEAPTYPE_KIND_NOEXN 15

typedef struct wasmtime_array_type wasmtime_array_type_t;
typedef struct wasmtime_struct_type wasmtime_struct_type_t;
typedef struct wasmtime_exn_type wasmtime_exn_type_t;
typedef struct wasm_functype_t wasm_functype_t;

typedef union wasmtime_heaptype_union {
    wasm_functype_t *concrete_func;
    wasmtime_array_type_t *concrete_array;
    wasmtime_struct_type_t *concrete_struct;
    wasmtime_exn_type_t *concrete_exn;
} wasmtime_heaptype_union_t;

typedef struct wasmtime_heaptype {
    wasmtime_heaptype_kind_t kind;
    wasmtime_heaptype_union_t of;
} wasmtime_heaptype_t;

typedef struct wasmtime_reftype {
    bool nullable;
    wasmtime_heaptype_t heaptype;
} wasmtime_reftype_t;

typedef uint8_t wasmtime_valtype_kind_t;
#define WASMTIME_VALTYPE_KIND_I32 0
#define WASMTIME_VALTYPE_KIND_I64 1
#define WASMTIME_VALTYPE_KIND_F32 2
#define WASMTIME_VALTYPE_KIND_F64 3
#define WASMTIME_VALTYPE_KIND_V128 4
#define WASMTIME_VALTYPE_KIND_REF 5

typedef struct wasmtime_valtype {
    wasmtime_valtype_kind_t kind;
    wasmtime_reftype_t reftype;
} wasmtime_valtype_t;

void wasmtime_valtype_new(const wasm_valtype_t *ty, wasmtime_valtype_t *out);
void wasmtime_valtype_delete(wasmtime_valtype_t *ty);
wasm_valtype_t *wasmtime_valtype_to_wasm(const wasm_engine_t *engine, const wasmtime_valtype_t *ty);

wasm_functype_t *wasm_functype_new(wasm_valtype_vec_t *params, wasm_valtype_vec_t *results);
const wasm_valtype_vec_t *wasm_functype_params(const wasm_functype_t *type);
const wasm_valtype_vec_t *wasm_functype_results(const wasm_functype_t *type);
void wasm_functype_delete(wasm_functype_t *type);

typedef struct wasm_globaltype_t wasm_globaltype_t;
wasm_globaltype_t *wasm_globaltype_new(wasm_valtype_t *content, wasm_mutability_t mutability);
const wasm_valtype_t *wasm_globaltype_content(const wasm_globaltype_t *type);
wasm_mutability_t wasm_globaltype_mutability(const wasm_globaltype_t *type);
void wasm_globaltype_delete(wasm_globaltype_t *type);

typedef struct wasm_tabletype_t wasm_tabletype_t;
wasm_tabletype_t *wasm_tabletype_new(wasm_valtype_t *element, const wasm_limits_t *limits);
const wasm_valtype_t *wasm_tabletype_element(const wasm_tabletype_t *type);
const wasm_limits_t *wasm_tabletype_limits(const wasm_tabletype_t *type);
void wasm_tabletype_delete(wasm_tabletype_t *type);

typedef struct wasm_memorytype_t wasm_memorytype_t;
void wasm_memorytype_delete(wasm_memorytype_t *type);

typedef struct wasm_tagtype_t wasm_tagtype_t;
wasm_tagtype_t *wasm_tagtype_new(wasm_functype_t *functype);
const wasm_functype_t *wasm_tagtype_functype(const wasm_tagtype_t *type);
void wasm_tagtype_delete(wasm_tagtype_t *type);

typedef uint8_t wasm_externkind_t;
#define WASM_EXTERN_FUNC 0
#define WASM_EXTERN_GLOBAL 1
#define WASM_EXTERN_TABLE 2
#define WASM_EXTERN_MEMORY 3
#define WASM_EXTERN_TAG 4

typedef struct wasm_externtype_t wasm_externtype_t;
wasm_externkind_t wasm_externtype_kind(const wasm_externtype_t *type);
const wasm_functype_t *wasm_externtype_as_functype_const(const wasm_externtype_t *type);
const wasm_globaltype_t *wasm_externtype_as_globaltype_const(const wasm_externtype_t *type);
const wasm_tabletype_t *wasm_externtype_as_tabletype_const(const wasm_externtype_t *type);
const wasm_memorytype_t *wasm_externtype_as_memorytype_const(const wasm_externtype_t *type);
const wasm_tagtype_t *wasm_externtype_as_tagtype_const(const wasm_externtype_t *type);
void wasm_externtype_delete(wasm_externtype_t *type);

typedef struct wasm_importtype_t wasm_importtype_t;
typedef struct wasm_importtype_vec_t {
    size_t size;
    wasm_importtype_t **data;
} wasm_importtype_vec_t;
const wasm_name_t *wasm_importtype_module(const wasm_importtype_t *type);
const wasm_name_t *wasm_importtype_name(const wasm_importtype_t *type);
const wasm_externtype_t *wasm_importtype_type(const wasm_importtype_t *type);
void wasm_importtype_vec_delete(wasm_importtype_vec_t *vec);

typedef struct wasm_exporttype_t wasm_exporttype_t;
typedef struct wasm_exporttype_vec_t {
    size_t size;
    wasm_exporttype_t **data;
} wasm_exporttype_vec_t;
const wasm_name_t *wasm_exporttype_name(const wasm_exporttype_t *type);
const wasm_externtype_t *wasm_exporttype_type(const wasm_exporttype_t *type);
void wasm_exporttype_vec_delete(wasm_exporttype_vec_t *vec);
