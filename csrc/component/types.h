/* wasmtime/component/types/{resource,val,func,instance,component}.h: the types of a component's
 * values, functions, instances and items, for reflection (wasmtime 50.0.1's layouts). */

/* The kinds of wasmtime_component_valtype_t. They are numbered unlike the kinds of values
 * (wasmtime_component_valkind_t in val.h): type kind 2 is s16, value kind 2 is u8. */
typedef uint8_t wasmtime_component_valtype_kind_t;
#define WASMTIME_COMPONENT_VALTYPE_BOOL 0
#define WASMTIME_COMPONENT_VALTYPE_S8 1
#define WASMTIME_COMPONENT_VALTYPE_S16 2
#define WASMTIME_COMPONENT_VALTYPE_S32 3
#define WASMTIME_COMPONENT_VALTYPE_S64 4
#define WASMTIME_COMPONENT_VALTYPE_U8 5
#define WASMTIME_COMPONENT_VALTYPE_U16 6
#define WASMTIME_COMPONENT_VALTYPE_U32 7
#define WASMTIME_COMPONENT_VALTYPE_U64 8
#define WASMTIME_COMPONENT_VALTYPE_F32 9
#define WASMTIME_COMPONENT_VALTYPE_F64 10
#define WASMTIME_COMPONENT_VALTYPE_CHAR 11
#define WASMTIME_COMPONENT_VALTYPE_STRING 12
#define WASMTIME_COMPONENT_VALTYPE_LIST 13
#define WASMTIME_COMPONENT_VALTYPE_RECORD 14
#define WASMTIME_COMPONENT_VALTYPE_TUPLE 15
#define WASMTIME_COMPONENT_VALTYPE_VARIANT 16
#define WASMTIME_COMPONENT_VALTYPE_ENUM 17
#define WASMTIME_COMPONENT_VALTYPE_OPTION 18
#define WASMTIME_COMPONENT_VALTYPE_RESULT 19
#define WASMTIME_COMPONENT_VALTYPE_FLAGS 20
#define WASMTIME_COMPONENT_VALTYPE_OWN 21
#define WASMTIME_COMPONENT_VALTYPE_BORROW 22
#define WASMTIME_COMPONENT_VALTYPE_FUTURE 23
#define WASMTIME_COMPONENT_VALTYPE_STREAM 24
#define WASMTIME_COMPONENT_VALTYPE_ERROR_CONTEXT 25
/* Only from engines with wasmtime_config_wasm_component_model_map_set on (component.h). */
#define WASMTIME_COMPONENT_VALTYPE_MAP 26

typedef struct wasmtime_component_resource_type wasmtime_component_resource_type_t;
wasmtime_component_resource_type_t *wasmtime_component_resource_type_new_host(uint32_t ty);
wasmtime_component_resource_type_t *wasmtime_component_resource_type_clone(
    const wasmtime_component_resource_type_t *ty);
bool wasmtime_component_resource_type_equal(const wasmtime_component_resource_type_t *a,
                                            const wasmtime_component_resource_type_t *b);
void wasmtime_component_resource_type_delete(wasmtime_component_resource_type_t *resource);

typedef struct wasmtime_component_list_type wasmtime_component_list_type_t;
typedef struct wasmtime_component_record_type wasmtime_component_record_type_t;
typedef struct wasmtime_component_tuple_type wasmtime_component_tuple_type_t;
typedef struct wasmtime_component_variant_type wasmtime_component_variant_type_t;
typedef struct wasmtime_component_enum_type wasmtime_component_enum_type_t;
typedef struct wasmtime_component_option_type wasmtime_component_option_type_t;
typedef struct wasmtime_component_result_type wasmtime_component_result_type_t;
typedef struct wasmtime_component_flags_type wasmtime_component_flags_type_t;
typedef struct wasmtime_component_future_type wasmtime_component_future_type_t;
typedef struct wasmtime_component_stream_type wasmtime_component_stream_type_t;
typedef struct wasmtime_component_map_type wasmtime_component_map_type_t;

/* A value type: `kind`, and for the composite kinds an owned pointer to its description.
 * Every one wasmtime fills in is freed with wasmtime_component_valtype_delete. */
typedef union wasmtime_component_valtype_union {
    wasmtime_component_list_type_t *list;
    wasmtime_component_record_type_t *record;
    wasmtime_component_tuple_type_t *tuple;
    wasmtime_component_variant_type_t *variant;
    wasmtime_component_enum_type_t *enum_;
    wasmtime_component_option_type_t *option;
    wasmtime_component_result_type_t *result;
    wasmtime_component_flags_type_t *flags;
    wasmtime_component_resource_type_t *own;
    wasmtime_component_resource_type_t *borrow;
    wasmtime_component_future_type_t *future;
    wasmtime_component_stream_type_t *stream;
    wasmtime_component_map_type_t *map;
} wasmtime_component_valtype_union_t;

typedef struct wasmtime_component_valtype_t {
    wasmtime_component_valtype_kind_t kind;
    wasmtime_component_valtype_union_t of;
} wasmtime_component_valtype_t;

void wasmtime_component_valtype_clone(const wasmtime_component_valtype_t *ty, wasmtime_component_valtype_t *out);
bool wasmtime_component_valtype_equal(const wasmtime_component_valtype_t *a, const wasmtime_component_valtype_t *b);
void wasmtime_component_valtype_delete(wasmtime_component_valtype_t *ptr);

/* The composite types' parts. Names are borrowed from the type; types are owned by the caller. */
void wasmtime_component_list_type_element(const wasmtime_component_list_type_t *ty,
                                          wasmtime_component_valtype_t *type_ret);
size_t wasmtime_component_record_type_field_count(const wasmtime_component_record_type_t *ty);
bool wasmtime_component_record_type_field_nth(const wasmtime_component_record_type_t *ty, size_t nth,
                                              const char **name_ret, size_t *name_len_ret,
                                              wasmtime_component_valtype_t *type_ret);
size_t wasmtime_component_tuple_type_types_count(const wasmtime_component_tuple_type_t *ty);
bool wasmtime_component_tuple_type_types_nth(const wasmtime_component_tuple_type_t *ty, size_t nth,
                                             wasmtime_component_valtype_t *type_ret);
size_t wasmtime_component_variant_type_case_count(const wasmtime_component_variant_type_t *ty);
bool wasmtime_component_variant_type_case_nth(const wasmtime_component_variant_type_t *ty, size_t nth,
                                              const char **name_ret, size_t *name_len_ret, bool *has_payload_ret,
                                              wasmtime_component_valtype_t *payload_ret);
size_t wasmtime_component_enum_type_names_count(const wasmtime_component_enum_type_t *ty);
bool wasmtime_component_enum_type_names_nth(const wasmtime_component_enum_type_t *ty, size_t nth,
                                            const char **name_ret, size_t *name_len_ret);
void wasmtime_component_option_type_ty(const wasmtime_component_option_type_t *ty,
                                       wasmtime_component_valtype_t *type_ret);
/* false: the result has no `ok` (or `err`) type. */
bool wasmtime_component_result_type_ok(const wasmtime_component_result_type_t *ty,
                                       wasmtime_component_valtype_t *type_ret);
bool wasmtime_component_result_type_err(const wasmtime_component_result_type_t *ty,
                                        wasmtime_component_valtype_t *type_ret);
size_t wasmtime_component_flags_type_names_count(const wasmtime_component_flags_type_t *ty);
bool wasmtime_component_flags_type_names_nth(const wasmtime_component_flags_type_t *ty, size_t nth,
                                             const char **name_ret, size_t *name_len_ret);
bool wasmtime_component_future_type_ty(const wasmtime_component_future_type_t *ty,
                                       wasmtime_component_valtype_t *type_ret);
bool wasmtime_component_stream_type_ty(const wasmtime_component_stream_type_t *ty,
                                       wasmtime_component_valtype_t *type_ret);
void wasmtime_component_map_type_key(const wasmtime_component_map_type_t *ty, wasmtime_component_valtype_t *type_ret);
void wasmtime_component_map_type_value(const wasmtime_component_map_type_t *ty,
                                       wasmtime_component_valtype_t *type_ret);
wasmtime_component_map_type_t *wasmtime_component_map_type_clone(const wasmtime_component_map_type_t *ty);
bool wasmtime_component_map_type_equal(const wasmtime_component_map_type_t *a, const wasmtime_component_map_type_t *b);
void wasmtime_component_map_type_delete(wasmtime_component_map_type_t *ptr);

/* Function types. */
typedef struct wasmtime_component_func_type_t wasmtime_component_func_type_t;
wasmtime_component_func_type_t *wasmtime_component_func_type_clone(const wasmtime_component_func_type_t *ty);
void wasmtime_component_func_type_delete(wasmtime_component_func_type_t *ty);
bool wasmtime_component_func_type_async(const wasmtime_component_func_type_t *ty);
size_t wasmtime_component_func_type_param_count(const wasmtime_component_func_type_t *ty);
bool wasmtime_component_func_type_param_nth(const wasmtime_component_func_type_t *ty, size_t nth,
                                            const char **name_ret, size_t *name_len_ret,
                                            wasmtime_component_valtype_t *type_ret);
/* false: the function has no result. */
bool wasmtime_component_func_type_result(const wasmtime_component_func_type_t *ty,
                                         wasmtime_component_valtype_t *type_ret);

/* Items (what a component imports or exports) and their types. */
typedef struct wasmtime_component_extern_t wasmtime_component_extern_t;
typedef struct wasmtime_component_instance_type wasmtime_component_instance_type_t;
typedef struct wasmtime_module_type wasmtime_module_type_t;
typedef struct wasmtime_component_type_t wasmtime_component_type_t;

typedef uint8_t wasmtime_component_item_kind_t;
#define WASMTIME_COMPONENT_ITEM_COMPONENT 0
#define WASMTIME_COMPONENT_ITEM_COMPONENT_INSTANCE 1
#define WASMTIME_COMPONENT_ITEM_MODULE 2
#define WASMTIME_COMPONENT_ITEM_COMPONENT_FUNC 3
#define WASMTIME_COMPONENT_ITEM_RESOURCE 4
#define WASMTIME_COMPONENT_ITEM_CORE_FUNC 5
#define WASMTIME_COMPONENT_ITEM_TYPE 6

typedef union wasmtime_component_item_union {
    wasmtime_component_type_t *component;
    wasmtime_component_instance_type_t *component_instance;
    wasmtime_module_type_t *module;
    wasmtime_component_func_type_t *component_func;
    wasmtime_component_resource_type_t *resource;
    wasm_functype_t *core_func;
    wasmtime_component_valtype_t type;
} wasmtime_component_item_union_t;

typedef struct wasmtime_component_item_t {
    wasmtime_component_item_kind_t kind;
    wasmtime_component_item_union_t of;
} wasmtime_component_item_t;

void wasmtime_component_item_delete(wasmtime_component_item_t *ptr);
void wasmtime_component_extern_type(const wasmtime_component_extern_t *e, wasmtime_component_item_t *ret);
void wasmtime_component_extern_delete(wasmtime_component_extern_t *ptr);

void wasmtime_component_instance_type_delete(wasmtime_component_instance_type_t *ty);
size_t wasmtime_component_instance_type_export_count(const wasmtime_component_instance_type_t *ty,
                                                     const wasm_engine_t *engine);
bool wasmtime_component_instance_type_export_nth(const wasmtime_component_instance_type_t *ty,
                                                 const wasm_engine_t *engine, size_t nth, const char **name_ret,
                                                 size_t *name_len_ret, wasmtime_component_extern_t **ret);

void wasmtime_component_type_delete(wasmtime_component_type_t *ty);
size_t wasmtime_component_type_import_count(const wasmtime_component_type_t *ty, const wasm_engine_t *engine);
bool wasmtime_component_type_import_nth(const wasmtime_component_type_t *ty, const wasm_engine_t *engine, size_t nth,
                                        const char **name_ret, size_t *name_len_ret,
                                        wasmtime_component_extern_t **ret);
size_t wasmtime_component_type_export_count(const wasmtime_component_type_t *ty, const wasm_engine_t *engine);
bool wasmtime_component_type_export_nth(const wasmtime_component_type_t *ty, const wasm_engine_t *engine, size_t nth,
                                        const char **name_ret, size_t *name_len_ret,
                                        wasmtime_component_extern_t **ret);
