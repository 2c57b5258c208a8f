/* wasmtime/val.h / wasmtime/func.h: values, references and functions. */

typedef struct wasmtime_func {
    uint64_t store_id;
    void *__private;
} wasmtime_func_t;

typedef struct wasmtime_externref {
    uint64_t store_id;
    uint32_t __private1;
    uint32_t __private2;
    void *__private3;
} wasmtime_externref_t;

typedef struct wasmtime_anyref {
    uint64_t store_id;
    uint32_t __private1;
    uint32_t __private2;
    void *__private3;
} wasmtime_anyref_t;

typedef struct wasmtime_exnref {
    uint64_t store_id;
    uint32_t __private1;
    uint32_t __private2;
    void *__private3;
} wasmtime_exnref_t;

typedef uint8_t wasmtime_valkind_t;
#define WASMTIME_I32 0
#define WASMTIME_I64 1
#define WASMTIME_F32 2
#define WASMTIME_F64 3
#define WASMTIME_V128 4
#define WASMTIME_FUNCREF 5
#define WASMTIME_EXTERNREF 6
#define WASMTIME_ANYREF 7
#define WASMTIME_EXNREF 8

typedef uint8_t wasmtime_v128[16];

typedef union wasmtime_valunion {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    wasmtime_anyref_t anyref;
    wasmtime_externref_t externref;
    wasmtime_exnref_t exnref;
    wasmtime_func_t funcref;
    wasmtime_v128 v128;
} wasmtime_valunion_t;

typedef union wasmtime_val_raw {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    wasmtime_v128 v128;
    uint32_t anyref;
    uint32_t externref;
    uint32_t exnref;
    void *funcref;
} wasmtime_val_raw_t;

typedef struct wasmtime_val {
    wasmtime_valkind_t kind;
    wasmtime_valunion_t of;
} wasmtime_val_t;

void wasmtime_val_unroot(wasmtime_val_t *val);
void wasmtime_val_clone(const wasmtime_val_t *src, wasmtime_val_t *dst);

bool wasmtime_externref_new(wasmtime_context_t *context, void *data, void (*finalizer)(void *),
                            wasmtime_externref_t *out);
void *wasmtime_externref_data(wasmtime_context_t *context, const wasmtime_externref_t *data);
void wasmtime_externref_unroot(wasmtime_externref_t *ref);
void wasmtime_externref_clone(const wasmtime_externref_t *ref, wasmtime_externref_t *out);

void wasmtime_anyref_clone(const wasmtime_anyref_t *anyref, wasmtime_anyref_t *out);
void wasmtime_anyref_unroot(wasmtime_anyref_t *ref);
void wasmtime_anyref_from_raw(wasmtime_context_t *context, uint32_t raw, wasmtime_anyref_t *out);
uint32_t wasmtime_anyref_to_raw(wasmtime_context_t *context, const wasmtime_anyref_t *ref);
void wasmtime_anyref_from_i31(wasmtime_context_t *context, uint32_t i31val, wasmtime_anyref_t *out);
bool wasmtime_anyref_i31_get_s(wasmtime_context_t *context, const wasmtime_anyref_t *anyref, int32_t *dst);
bool wasmtime_anyref_is_struct(wasmtime_context_t *context, const wasmtime_anyref_t *anyref);
bool wasmtime_anyref_is_array(wasmtime_context_t *context, const wasmtime_anyref_t *anyref);
void wasmtime_externref_from_raw(wasmtime_context_t *context, uint32_t raw, wasmtime_externref_t *out);
uint32_t wasmtime_externref_to_raw(wasmtime_context_t *context, const wasmtime_externref_t *ref);

typedef struct wasmtime_caller wasmtime_caller_t;
wasmtime_context_t *wasmtime_caller_context(wasmtime_caller_t *caller);

typedef wasm_trap_t *(*wasmtime_func_unchecked_callback_t)(void *env, wasmtime_caller_t *caller,
                                                           wasmtime_val_raw_t *args_and_results,
                                                           size_t num_args_and_results);

typedef wasm_trap_t *(*wasmtime_func_callback_t)(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args,
                                                 size_t nargs, wasmtime_val_t *results, size_t nresults);

void wasmtime_func_new(wasmtime_context_t *store, const wasm_functype_t *type, wasmtime_func_callback_t callback,
                       void *env, void (*finalizer)(void *), wasmtime_func_t *ret);
void wasmtime_func_new_unchecked(wasmtime_context_t *store, const wasm_functype_t *type,
                                 wasmtime_func_unchecked_callback_t callback, void *env,
                                 void (*finalizer)(void *), wasmtime_func_t *ret);
wasm_functype_t *wasmtime_func_type(const wasmtime_context_t *store, const wasmtime_func_t *func);
wasmtime_error_t *wasmtime_func_call(wasmtime_context_t *store, const wasmtime_func_t *func,
                                     const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results,
                                     size_t nresults, wasm_trap_t **trap);
wasmtime_error_t *wasmtime_func_call_unchecked(wasmtime_context_t *store, const wasmtime_func_t *func,
                                               wasmtime_val_raw_t *args_and_results,
                                               size_t args_and_results_len, wasm_trap_t **trap);
void wasmtime_func_from_raw(wasmtime_context_t *context, void *raw, wasmtime_func_t *ret);
void *wasmtime_func_to_raw(wasmtime_context_t *context, const wasmtime_func_t *func);
