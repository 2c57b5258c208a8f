/* wasmpy._native, continued: conversions between Python values and wasm values in C, for what the
 * numeric fast paths of native.c do not take.
 *
 * - FuncCall: a Func's call path for every signature (references, v128, Val arguments, call_vals,
 *   more values than native.c's fast path holds). Signatures with references take wasmtime's
 *   checked call (wasmtime_func_call), which roots every reference and checks its type.
 * - HostCall: a host function's conversions when native.c's raw trampoline cannot do them in C
 *   (v128), and for signatures with references, behind its checked trampoline.
 * - global_get/global_set, table_get/table_set: Global.value and Table elements.
 * - instantiate, make_host_func, export_func, bind_func: instantiation, host functions, exported
 *   functions and funcref results, each made in one call.
 *
 * C converts numbers, v128, None (null references), Python objects as externref and anyref, and
 * Funcs as funcref. Anything else (AnyRef GC references, WasmException, Val subclasses, ints
 * Python must check) goes, one value at a time, to wasmpy's Python conversions (_values.py),
 * and every error to the Python path of the operation, so that each message lives in one
 * place: C either completes an operation, or hands it to Python before doing anything the
 * Python path would not undo (references made so far are unrooted first).
 *
 * Buffers live on the C stack of each call: a call may reenter the same function from a host
 * function, and other threads may call it too.
 *
 * Built on the limited API of Python 3.11, as native.c is (see limited.h): wasmpy's classes are
 * reached through their descriptors' own functions, found once (values_configure), and this
 * file's types are heap types. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <structmember.h>

#include "api.h"
#include "limited.h"
#include "stack.h"
#include "values.h"

/* Conversion codes: wasmtime's value kind of a ValType's values, and whether C converts only
 * None (the null reference) for it, leaving other values to Python. */
enum {
    CODE_I32 = WASMTIME_I32,
    CODE_I64 = WASMTIME_I64,
    CODE_F32 = WASMTIME_F32,
    CODE_F64 = WASMTIME_F64,
    CODE_V128 = WASMTIME_V128,
    CODE_FUNCREF = WASMTIME_FUNCREF,
    CODE_EXTERNREF = WASMTIME_EXTERNREF,
    CODE_ANYREF = WASMTIME_ANYREF,
    CODE_EXNREF = WASMTIME_EXNREF,
    KIND_COUNT,
};
#define CODE_KIND 0x0F
#define CODE_NULL_ONLY 0x10

static const struct {
    const char *name;
    uint8_t code;
} VALTYPES[] = {
    {"i32", CODE_I32},
    {"i64", CODE_I64},
    {"f32", CODE_F32},
    {"f64", CODE_F64},
    {"v128", CODE_V128},
    {"funcref", CODE_FUNCREF},
    {"externref", CODE_EXTERNREF},
    {"anyref", CODE_ANYREF},
    {"exnref", CODE_EXNREF | CODE_NULL_ONLY},
    {"nullfuncref", CODE_FUNCREF | CODE_NULL_ONLY},
    {"nullexternref", CODE_EXTERNREF | CODE_NULL_ONLY},
    {"eqref", CODE_ANYREF | CODE_NULL_ONLY},
    {"i31ref", CODE_ANYREF | CODE_NULL_ONLY},
    {"structref", CODE_ANYREF | CODE_NULL_ONLY},
    {"arrayref", CODE_ANYREF | CODE_NULL_ONLY},
    {"nullref", CODE_ANYREF | CODE_NULL_ONLY},
    {"nullexnref", CODE_EXNREF | CODE_NULL_ONLY},
};
#define VALTYPE_COUNT (sizeof(VALTYPES) / sizeof(VALTYPES[0]))

/* Small signatures convert in buffers on the stack; bigger ones allocate. */
#define STACK_VALUES 8

/* ------------------------------------------------------------------------------------------ */
/* What values_configure() was given: wasmpy's classes and Python paths, kept for the process. */

/* An attribute of instances of one of wasmpy's classes (a slot of a Python class, a property of a C
 * type), read and written by its descriptor's own functions: the limited API has no tp_descr_get to
 * read off the descriptor's type at each use, so they are found once, as the descriptor is. */
typedef struct {
    PyObject *descriptor;
    descrgetfunc get;
    descrsetfunc set; /* NULL: read-only */
} Attribute;

static int configured;
static PyObject *valtype_members[VALTYPE_COUNT]; /* ValType.i32, ... in VALTYPES' order */
static PyObject *kind_valtypes[KIND_COUNT];      /* the ValType of each kind's values (funcref, ...) */
static PyTypeObject *val_class, *anyref_class, *func_class, *handle_class;
static Attribute val_type_slot, val_payload_slot;                           /* Val's slots */
static Attribute func_store_slot, func_type_slot, func_name_slot, func_calls_slot; /* Func's */
static PyObject *func_bind_native;             /* Caller._bind_native: the numeric fast path */
static PyObject *func_types;                   /* _func._FUNC_TYPES: {wasmtime_func_t bytes: FuncType} */
static PyObject *python_func_type;             /* _func._func_type(store, address): asked of wasmtime, kept */
static PyObject *handle_acquire, *handle_release, *handle_flush, *handle_keep_for_externref,
    *handle_take_pending;                                                        /* methods */
static Attribute handle_context, handle_stack_needed, handle_deadline;       /* attributes */
static PyObject *kept_object;                  /* kept_object(address): the object an externref holds */
static void (*externref_finalizer)(void *);    /* for data from keep_for_externref() */
static PyObject *python_write_val;             /* (store, valtype, value, address): Python's to_val */
static PyObject *python_read_val;              /* (store, address, exact, declared, owned): from_val */
static PyObject *python_call;                  /* Func._call_slow(func, *args): every call, every error */
static PyObject *python_call_vals;             /* Func._call_vals_slow(func, *args) */
static PyObject *python_call_failed;           /* Func._call_failed(func, status, trap, error, checked) */
static PyObject *python_value_refused;         /* (error address): raises wasmtime's refusal of a value */
static PyObject *python_write_extern;          /* _instance._write_extern(value, address) */
static PyObject *python_instantiation_failed;  /* Instance._finish(store, status, trap, error): raises */
static PyObject *handle_name;                  /* "_handle", interned */
static PyObject *params_name, *results_name, *call_failure_name, *wasm_function_name;
static PyObject *gc_bridge_name, *to_any_name, *to_extern_name, *zero;
static PyObject *empty_tuple;
static PyTypeObject *weakref_type;             /* weakref.ref, which holds the store of a host function */
static PyObject *v128_lowest, *v128_limit, *sixty_four; /* -2**127, 2**128, 64 */

static int require_configured(void)
{
    if (configured)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "wasmpy's value conversions are not configured (import wasmpy)");
    return -1;
}

static int check_arguments(const char *name, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs == expected)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments, %zd given", name, expected, nargs);
    return -1;
}

/* The index in VALTYPES of a ValType member, or -1 with a TypeError. */
static int valtype_index(PyObject *valtype)
{
    for (size_t i = 0; i < VALTYPE_COUNT; i++)
        if (valtype_members[i] == valtype)
            return (int)i;
    PyErr_Format(PyExc_TypeError, "not a wasmpy.ValType: %R", valtype);
    return -1;
}

/* The conversion code of a ValType member, or -1 with a TypeError. */
static int code_of(PyObject *valtype)
{
    int index = valtype_index(valtype);
    return index < 0 ? -1 : VALTYPES[index].code;
}

/* The ValTypes of a signature, each as its index in VALTYPES, which gives both its conversion code
 * and its member: calls read neither the tuples of the signature (the limited API reads a tuple's
 * items through a function call each) nor ValType. */
typedef uint8_t TypeIndex;

static inline uint8_t code_at(TypeIndex type)
{
    return VALTYPES[type].code;
}

static inline PyObject *valtype_at(TypeIndex type)
{
    return valtype_members[type];
}

/* The indexes of a tuple of `count` ValTypes, into `types`; 0 or -1 with an exception. */
static int types_of(PyObject *valtypes, Py_ssize_t count, TypeIndex *types)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        int index = valtype_index(PyTuple_GetItem(valtypes, i));
        if (index < 0)
            return -1;
        types[i] = (TypeIndex)index;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The store handle, through its Python-level methods (see values.h). */

static int handle_method(PyObject *method, PyObject *handle)
{
    PyObject *done = PyObject_Vectorcall(method, &handle, 1, NULL);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

static PyObject *attribute_of(const Attribute *attribute, PyObject *object)
{
    return attribute->get(attribute->descriptor, object, (PyObject *)Py_TYPE(object));
}

/* The context of the store; NULL with WasmError once it is closed. */
static wasmtime_context_t *handle_get_context(PyObject *handle)
{
    PyObject *address = attribute_of(&handle_context, handle);
    if (address == NULL)
        return NULL;
    void *context = PyLong_AsVoidPtr(address);
    Py_DECREF(address);
    return (wasmtime_context_t *)context;
}

/* Whether the native stack has room for a call into wasm of this store: 1, 0, or -1 with an exception. */
static int handle_stack_allows(PyObject *handle)
{
    PyObject *needed = attribute_of(&handle_stack_needed, handle);
    if (needed == NULL)
        return -1;
    Py_ssize_t bytes = PyLong_AsSsize_t(needed);
    Py_DECREF(needed);
    if (bytes == -1 && PyErr_Occurred())
        return -1;
    return wasmpy_stack_allows(bytes > 0 ? (size_t)bytes : 0);
}

/* Where a conversion happens: the store (for Python's conversions), its handle and context. */
typedef struct {
    PyObject *store;
    PyObject *handle;
    wasmtime_context_t *context;
} Where;

/* Takes the store's lock and its context. -1 with the exception of a failed wait (Python's path
 * would fail the same way); 1 when the store is closed (nothing raised, the lock released: Python's
 * path raises the WasmError it always has). */
static int where_enter(Where *where)
{
    if (handle_method(handle_acquire, where->handle) < 0)
        return -1;
    where->context = handle_get_context(where->handle);
    if (where->context == NULL) {
        PyErr_Clear();
        if (handle_method(handle_release, where->handle) < 0)
            return -1;
        return 1;
    }
    return 0;
}

/* Releases the lock; keeps an exception already set (a failed release is a bug, reported then). */
static void where_leave(Where *where)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (handle_method(handle_release, where->handle) < 0 && type == NULL)
        return;
    if (type != NULL) {
        PyErr_Clear();
        PyErr_Restore(type, value, traceback);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Val objects (wasmpy.Val: slots `type` and `_payload`), made and read without its Python code. */

static PyObject *get_slot(const Attribute *slot, PyObject *object)
{
    return attribute_of(slot, object);
}

static int set_slot(const Attribute *slot, PyObject *object, PyObject *value)
{
    return slot->set(slot->descriptor, object, value);
}

/* A new Val of `valtype` holding `payload` (stolen). */
static PyObject *new_val(PyObject *valtype, PyObject *payload)
{
    if (payload == NULL)
        return NULL;
    PyObject *val = alloc_instance(val_class);
    if (val == NULL || set_slot(&val_type_slot, val, valtype) < 0 || set_slot(&val_payload_slot, val, payload) < 0)
        Py_CLEAR(val);
    Py_DECREF(payload);
    return val;
}

/* The payload of `value` if it is a Val of exactly `valtype` (a new reference); NULL, with nothing
 * raised, for any other Val. */
static PyObject *val_payload(PyObject *value, PyObject *valtype)
{
    PyObject *type = get_slot(&val_type_slot, value);
    if (type == NULL) {
        PyErr_Clear();
        return NULL;
    }
    int same = type == valtype;
    Py_DECREF(type);
    PyObject *payload = same ? get_slot(&val_payload_slot, value) : NULL;
    if (payload == NULL)
        PyErr_Clear();
    return payload;
}

/* ------------------------------------------------------------------------------------------ */
/* Numbers and v128. Each conversion returns 0, or 1 when C does not take the value (nothing
 * raised): Python then checks it, and explains what is wrong. */

/* An int for a `width`-bit integer, in wasmpy's range (-2**(width-1) to 2**width-1): its bits. */
static int int_bits(PyObject *value, int width, uint64_t *bits)
{
    if (!is_int(value))
        return 1;
    int overflow;
    long long small = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (small == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    if (overflow != 0) {
        if (width == 32 || overflow < 0)
            return 1;
        unsigned long long big = PyLong_AsUnsignedLongLong(value);
        if (big == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 1;
        }
        *bits = big;
        return 0;
    }
    if (width == 32 && (small < INT32_MIN || small > (long long)UINT32_MAX))
        return 1;
    *bits = (uint64_t)small;
    return 0;
}

/* A float, or an int (exactly int or bool: a subclass may convert differently), for f32/f64. */
static int float_value(PyObject *value, double *out)
{
    if (is_float(value)) {
        *out = PyFloat_AsDouble(value);
        return 0;
    }
    if (!PyLong_CheckExact(value) && !PyBool_Check(value))
        return 1;
    double converted = PyLong_AsDouble(value);
    if (converted == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    *out = converted;
    return 0;
}

static void v128_store(uint8_t out[16], uint64_t low, uint64_t high)
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(low >> (8 * i));
        out[8 + i] = (uint8_t)(high >> (8 * i));
    }
}

/* An int (exactly int or bool) for v128: from -2**127 to 2**128-1, or with `unsigned_only` (a Val's
 * bits) from 0. */
static int v128_bits(PyObject *value, int unsigned_only, uint8_t out[16])
{
    if (!PyLong_CheckExact(value) && !PyBool_Check(value))
        return 1;
    int overflow;
    long long small = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (small == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    if (overflow == 0) {
        if (unsigned_only && small < 0)
            return 1;
        v128_store(out, (uint64_t)small, small < 0 ? UINT64_MAX : 0);
        return 0;
    }
    if (overflow < 0 && unsigned_only)
        return 1;
    /* beyond 64 bits on one side: in range if not beyond the bound on that side */
    int in_range = PyObject_RichCompareBool(value, overflow < 0 ? v128_lowest : v128_limit,
                                            overflow < 0 ? Py_GE : Py_LT);
    if (in_range != 1) {
        PyErr_Clear();
        return 1;
    }
    PyObject *shifted = PyNumber_Rshift(value, sixty_four);
    if (shifted == NULL) {
        PyErr_Clear();
        return 1;
    }
    uint64_t high = PyLong_AsUnsignedLongLongMask(shifted);
    Py_DECREF(shifted);
    uint64_t low = PyLong_AsUnsignedLongLongMask(value);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    v128_store(out, low, high);
    return 0;
}

/* The unsigned int of a v128's bytes. */
static PyObject *v128_to_int(const uint8_t bytes[16])
{
    uint64_t low = 0, high = 0;
    for (int i = 7; i >= 0; i--) {
        low = (low << 8) | bytes[i];
        high = (high << 8) | bytes[8 + i];
    }
    if (high == 0)
        return PyLong_FromUnsignedLongLong(low);
    PyObject *top = PyLong_FromUnsignedLongLong(high);
    PyObject *shifted = top != NULL ? PyNumber_Lshift(top, sixty_four) : NULL;
    PyObject *bottom = shifted != NULL ? PyLong_FromUnsignedLongLong(low) : NULL;
    PyObject *joined = bottom != NULL ? PyNumber_Or(shifted, bottom) : NULL;
    Py_XDECREF(top);
    Py_XDECREF(shifted);
    Py_XDECREF(bottom);
    return joined;
}

/* A Val's bits (an unsigned int of its type's width) into `raw`. */
static int raw_from_bits(uint8_t code, PyObject *bits, wasmtime_val_raw_t *raw)
{
    if (!PyLong_CheckExact(bits))
        return 1;
    if (code == CODE_V128)
        return v128_bits(bits, 1, raw->v128);
    unsigned long long value = PyLong_AsUnsignedLongLong(bits);
    if (value == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    if (code == CODE_I32 || code == CODE_F32) {
        if (value > UINT32_MAX)
            return 1;
        raw->i32 = (int32_t)(uint32_t)value;
    } else {
        raw->i64 = (int64_t)value;
    }
    return 0;
}

/* `value` (a number, or a Val of `valtype`) for a number or v128 of code `code` into `raw`. */
static int raw_from_python(uint8_t code, PyObject *valtype, PyObject *value, wasmtime_val_raw_t *raw)
{
    if (Py_TYPE(value) == val_class) {
        PyObject *bits = val_payload(value, valtype);
        if (bits == NULL)
            return 1;
        int done = raw_from_bits(code, bits, raw);
        Py_DECREF(bits);
        return done;
    }
    uint64_t bits;
    double real;
    switch (code) {
    case CODE_I32:
        if (int_bits(value, 32, &bits))
            return 1;
        raw->i32 = (int32_t)(uint32_t)bits;
        return 0;
    case CODE_I64:
        if (int_bits(value, 64, &bits))
            return 1;
        raw->i64 = (int64_t)bits;
        return 0;
    case CODE_F32:
        if (float_value(value, &real))
            return 1;
        raw->f32 = (float)real;
        return 0;
    case CODE_F64:
        if (float_value(value, &real))
            return 1;
        raw->f64 = real;
        return 0;
    case CODE_V128:
        return v128_bits(value, 0, raw->v128);
    default:
        return 1;
    }
}

/* The Python value of a number or v128 (code `code`): with `exact` a Val of `valtype` keeping its
 * bits, else an int (signed, unsigned for v128) or a float. A new reference, or NULL. */
static PyObject *raw_to_python(uint8_t code, PyObject *valtype, const wasmtime_val_raw_t *raw, int exact)
{
    if (exact) {
        PyObject *bits;
        switch (code) {
        case CODE_I32:
        case CODE_F32: bits = PyLong_FromUnsignedLong((uint32_t)raw->i32); break;
        case CODE_I64:
        case CODE_F64: bits = PyLong_FromUnsignedLongLong((uint64_t)raw->i64); break;
        default: bits = v128_to_int(raw->v128); break;
        }
        return new_val(valtype, bits);
    }
    switch (code) {
    case CODE_I32: return PyLong_FromLong(raw->i32);
    case CODE_I64: return PyLong_FromLongLong(raw->i64);
    case CODE_F32: return PyFloat_FromDouble(raw->f32);
    case CODE_F64: return PyFloat_FromDouble(raw->f64);
    default: return v128_to_int(raw->v128);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* wasmtime_val_t: numbers and references, with their roots. */

typedef struct FuncCall FuncCall;
static PyTypeObject *FuncCallType;
static const wasmtime_func_t *func_of(PyObject *func, PyObject *store);
static PyObject *new_func(const Where *where, const wasmtime_func_t *wasm_func);

/* A new externref of the store holding `object`: 0, 1 when wasmtime cannot allocate it (Python's
 * path raises the WasmError), or -1 with an exception. */
static int new_externref(const Where *where, PyObject *object, wasmtime_val_t *out)
{
    PyObject *args[2] = {where->handle, object};
    PyObject *address = PyObject_Vectorcall(handle_keep_for_externref, args, 2, NULL);
    if (address == NULL)
        return -1;
    void *data = PyLong_AsVoidPtr(address);
    Py_DECREF(address);
    if (data == NULL)
        return -1;
    /* On failure wasmtime has run the finalizer, which releases the object. */
    if (!wasmtime_externref_new(where->context, data, externref_finalizer, &out->of.externref))
        return 1;
    out->kind = WASMTIME_EXTERNREF;
    return 0;
}

/* --- externref <-> anyref: wasm converts between them (any.convert_extern, extern.convert_any) in
 * the store's helper instance (made by _values._bridge_call, the Python path, when first needed). */

/* The store's deadline and fuel, put out of reach while a helper runs: converting a value is not
 * the guest's computation, and must not run out of fuel or time (as _values._unmetered). */
typedef struct {
    PyObject *deadline;
    uint64_t fuel;
    int fueled;
} Unmetered;

static int unmetered_begin(const Where *where, Unmetered *saved)
{
    saved->deadline = attribute_of(&handle_deadline, where->handle);
    if (saved->deadline == NULL || set_slot(&handle_deadline, where->handle, zero) < 0) {
        Py_CLEAR(saved->deadline);
        return -1;
    }
    wasmtime_error_t *error = wasmtime_context_get_fuel(where->context, &saved->fuel);
    saved->fueled = error == NULL; /* an error: the engine does not consume fuel */
    if (error != NULL)
        wasmtime_error_delete(error);
    else if ((error = wasmtime_context_set_fuel(where->context, (uint64_t)1 << 63)) != NULL)
        wasmtime_error_delete(error);
    return 0;
}

/* Puts them back; keeps an exception already set. */
static void unmetered_end(const Where *where, Unmetered *saved)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (set_slot(&handle_deadline, where->handle, saved->deadline) < 0)
        PyErr_Clear(); /* an int the handle gave: it takes it back */
    Py_CLEAR(saved->deadline);
    if (saved->fueled) {
        wasmtime_error_t *error = wasmtime_context_set_fuel(where->context, saved->fuel);
        if (error != NULL)
            wasmtime_error_delete(error);
    }
    PyErr_Restore(type, value, traceback);
}

/* Calls the store's helper `name` (to_any, to_extern) on the rooted reference `argument`
 * (borrowed); `result` gets its rooted result. 0; 1 while the store has no helper instance (nothing
 * raised: Python's path makes it), or too little native stack is left (Python's path says so); -1
 * with an exception. */
static int bridge_call(const Where *where, PyObject *name, const wasmtime_val_t *argument, wasmtime_val_t *result)
{
    PyObject *bridge = PyObject_GetAttr(where->store, gc_bridge_name);
    if (bridge == NULL)
        return -1;
    PyObject *helper = bridge != Py_None ? PyObject_GetAttr(bridge, name) : NULL;
    Py_DECREF(bridge);
    if (helper == NULL)
        return PyErr_Occurred() ? -1 : 1;
    const wasmtime_func_t *found = func_of(helper, where->store);
    wasmtime_func_t func;
    if (found != NULL)
        func = *found;
    Py_DECREF(helper);
    if (found == NULL)
        return 1;
    int room = handle_stack_allows(where->handle);
    if (room <= 0)
        return room < 0 ? -1 : 1;
    Unmetered saved;
    if (unmetered_begin(where, &saved) < 0)
        return -1;
    /* With the GIL: the helper only converts, and calls no host function. */
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error = wasmtime_func_call(where->context, &func, argument, 1, result, 1, &trap);
    unmetered_end(where, &saved);
    if (error == NULL && trap == NULL)
        return 0;
    PyObject *pending = PyObject_Vectorcall(handle_take_pending, &where->handle, 1, NULL);
    PyObject *failure = pending != NULL ? PyObject_GetAttr(where->store, call_failure_name) : NULL;
    PyObject *args[4] = {pending, PyLong_FromLong(error != NULL ? 2 : 1), PyLong_FromVoidPtr(trap),
                         PyLong_FromVoidPtr(error)};
    PyObject *exception = failure != NULL && args[1] != NULL && args[2] != NULL && args[3] != NULL
                              ? PyObject_Vectorcall(failure, args, 4, NULL)
                              : NULL;
    if (exception != NULL)
        PyErr_SetObject((PyObject *)Py_TYPE(exception), exception);
    Py_XDECREF(exception);
    Py_XDECREF(failure);
    for (int i = 0; i < 4; i++)
        Py_XDECREF(args[i]);
    return -1;
}

/* A Python object as anyref: an externref of it, converted by wasm. 0, 1 (nothing made: Python's
 * path), or -1 with an exception. */
static int object_as_anyref(const Where *where, PyObject *object, wasmtime_val_t *out)
{
    wasmtime_val_t externref;
    int done = new_externref(where, object, &externref);
    if (done != 0)
        return done;
    done = bridge_call(where, to_any_name, &externref, out);
    wasmtime_val_unroot(&externref);
    return done;
}

/* The Python object an anyref that wasm converted from an externref holds. 0 with `*object` set; 1
 * for a GC object (struct, array, i31) or another reference (nothing raised: Python's path); -1
 * with an exception. The anyref stays borrowed. */
static int anyref_object(const Where *where, const wasmtime_anyref_t *anyref, PyObject **object)
{
    int32_t i31;
    /* Not wasmtime_anyref_is_i31: in wasmtime 50.0.1 it answers True for structs and arrays too. */
    if (wasmtime_anyref_is_struct(where->context, anyref) || wasmtime_anyref_is_array(where->context, anyref) ||
        wasmtime_anyref_i31_get_s(where->context, anyref, &i31))
        return 1;
    wasmtime_val_t argument, externref;
    argument.kind = WASMTIME_ANYREF;
    argument.of.anyref = *anyref; /* borrowed for the call: not unrooted here */
    int done = bridge_call(where, to_extern_name, &argument, &externref);
    if (done != 0)
        return done;
    void *data = externref.of.externref.store_id != 0
                     ? wasmtime_externref_data(where->context, &externref.of.externref)
                     : NULL;
    if (data == NULL) {
        done = 1;
    } else {
        PyObject *address = PyLong_FromVoidPtr(data);
        *object = address != NULL ? PyObject_Vectorcall(kept_object, &address, 1, NULL) : NULL;
        Py_XDECREF(address);
        done = *object != NULL ? 0 : -1;
    }
    wasmtime_val_unroot(&externref);
    return done;
}

/* `value` for a value of ValType `valtype` (code `code`) into `out`, which may then own a root:
 * 0; 1 when C does not convert it (nothing raised, nothing made); -1 with an exception. */
static int to_val_c(const Where *where, uint8_t code, PyObject *valtype, PyObject *value, wasmtime_val_t *out)
{
    uint8_t kind = code & CODE_KIND;
    if (kind <= CODE_V128) {
        wasmtime_val_raw_t raw;
        if (raw_from_python(kind, valtype, value, &raw))
            return 1;
        out->kind = kind;
        memcpy(&out->of, &raw, sizeof(raw));
        return 0;
    }
    PyObject *payload = NULL; /* of a Val, which stands for its payload */
    if (Py_TYPE(value) == val_class) {
        payload = val_payload(value, valtype);
        if (payload == NULL)
            return 1;
        value = payload;
    }
    int done = 1;
    if (value == Py_None) {
        memset(out, 0, sizeof(*out)); /* store_id 0: the null reference */
        out->kind = kind;
        done = 0;
    } else if (code & CODE_NULL_ONLY) {
        done = 1;
    } else if (kind == CODE_EXTERNREF) {
        /* a GC reference as externref: wasm converts it (Python's path) */
        done = PyObject_TypeCheck(value, anyref_class) ? 1 : new_externref(where, value, out);
    } else if (kind == CODE_FUNCREF) {
        const wasmtime_func_t *func = func_of(value, where->store);
        if (func != NULL) {
            out->kind = WASMTIME_FUNCREF;
            out->of.funcref = *func;
            done = 0;
        }
    } else if (kind == CODE_ANYREF) {
        /* a GC reference: Python's path checks its store */
        done = PyObject_TypeCheck(value, anyref_class) ? 1 : object_as_anyref(where, value, out);
    }
    Py_XDECREF(payload);
    return done;
}

/* to_val_c, or Python's conversion (to_val) for what C does not convert: 0 (`out` holds the value
 * and may own a root), or -1 with an exception (nothing made). */
static int to_val(const Where *where, uint8_t code, PyObject *valtype, PyObject *value, wasmtime_val_t *out)
{
    int done = to_val_c(where, code, valtype, value, out);
    if (done != 1)
        return done;
    PyObject *address = PyLong_FromVoidPtr(out);
    if (address == NULL)
        return -1;
    PyObject *args[4] = {where->store, valtype, value, address};
    PyObject *written = PyObject_Vectorcall(python_write_val, args, 4, NULL);
    Py_DECREF(address);
    Py_XDECREF(written);
    return written == NULL ? -1 : 0;
}

/* The Python value of `val` (with `exact`, a Val: of type `declared`, if not NULL, for references);
 * unrooted if `owned`. 0 with `*out` set; 1 when C does not convert it (nothing done); -1 with an
 * exception (unrooted if owned). */
static int from_val_c(const Where *where, wasmtime_val_t *val, int exact, PyObject *declared, int owned,
                      PyObject **out)
{
    wasmtime_valkind_t kind = val->kind;
    if (kind <= CODE_V128) {
        wasmtime_val_raw_t raw;
        memcpy(&raw, &val->of, sizeof(raw));
        *out = raw_to_python(kind, kind_valtypes[kind], &raw, exact);
        return *out == NULL ? -1 : 0;
    }
    PyObject *value;
    switch (kind) {
    case WASMTIME_EXTERNREF:
        if (val->of.externref.store_id == 0) {
            value = Py_NewRef(Py_None);
        } else {
            void *data = wasmtime_externref_data(where->context, &val->of.externref);
            if (data == NULL) /* made by extern.convert_any: a GC reference, Python's path */
                return 1;
            PyObject *address = PyLong_FromVoidPtr(data);
            value = address != NULL ? PyObject_Vectorcall(kept_object, &address, 1, NULL) : NULL;
            Py_XDECREF(address);
        }
        break;
    case WASMTIME_FUNCREF:
        value = val->of.funcref.store_id == 0 ? Py_NewRef(Py_None) : new_func(where, &val->of.funcref);
        break;
    case WASMTIME_ANYREF:
        if (val->of.anyref.store_id == 0) {
            value = Py_NewRef(Py_None);
        } else {
            int done = anyref_object(where, &val->of.anyref, &value);
            if (done != 0) {
                if (done < 0 && owned)
                    wasmtime_val_unroot(val);
                return done;
            }
        }
        break;
    case WASMTIME_EXNREF:
        if (val->of.exnref.store_id != 0)
            return 1;
        value = Py_NewRef(Py_None);
        break;
    default:
        return 1;
    }
    if (owned)
        wasmtime_val_unroot(val);
    if (value != NULL && exact)
        value = new_val(declared != NULL ? declared : kind_valtypes[kind], value);
    *out = value;
    return value == NULL ? -1 : 0;
}

/* from_val_c, or Python's conversion (from_val) for what C does not convert: a new reference, or
 * NULL with an exception. An owned value is unrooted either way. */
static PyObject *from_val(const Where *where, wasmtime_val_t *val, int exact, PyObject *declared, int owned)
{
    PyObject *value;
    int done = from_val_c(where, val, exact, declared, owned, &value);
    if (done != 1)
        return done == 0 ? value : NULL;
    PyObject *address = PyLong_FromVoidPtr(val);
    if (address == NULL) {
        if (owned)
            wasmtime_val_unroot(val);
        return NULL;
    }
    PyObject *args[5] = {where->store, address, exact ? Py_True : Py_False, declared != NULL ? declared : Py_None,
                         owned ? Py_True : Py_False};
    value = PyObject_Vectorcall(python_read_val, args, 5, NULL);
    Py_DECREF(address);
    return value;
}

static void unroot_all(wasmtime_val_t *vals, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++)
        wasmtime_val_unroot(&vals[i]);
}

/* Whether the exception set is one a conversion raises for a value it refuses. */
static int refused_value(void)
{
    return PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_OverflowError);
}

/* None, the one value, or a tuple of them (`exact`: always a tuple); steals the items. */
static PyObject *pack_results(PyObject **items, Py_ssize_t count, int exact)
{
    if (count == 0 && !exact)
        Py_RETURN_NONE;
    if (count == 1 && !exact)
        return items[0];
    PyObject *tuple = PyTuple_New(count);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (tuple != NULL)
            PyTuple_SetItem(tuple, i, items[i]); /* cannot fail: a new tuple, an index in range */
        else
            Py_DECREF(items[i]);
    }
    return tuple;
}

/* ------------------------------------------------------------------------------------------ */
/* FuncCall: Python -> wasm, for a Func's every signature. */

struct FuncCall {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *store;
    PyObject *handle;
    wasmtime_func_t func;
    Py_ssize_t nparams, nresults;
    int checked;                /* a reference among them: wasmtime's checked call */
    TypeIndex *types;           /* of the nparams parameters, then the nresults results */
};

/* The wasmtime function of `func` (a Func) if it belongs to `store`; NULL, nothing raised, if not. */
static const wasmtime_func_t *func_of(PyObject *func, PyObject *store)
{
    if (!PyObject_TypeCheck(func, func_class))
        return NULL;
    PyObject *calls = get_slot(&func_calls_slot, func);
    if (calls == NULL) {
        PyErr_Clear();
        return NULL;
    }
    /* The Func holds its FuncCall, which does not change once made: borrowed from here on. */
    Py_DECREF(calls);
    if (Py_TYPE(calls) != FuncCallType || ((FuncCall *)calls)->store != store)
        return NULL;
    return &((FuncCall *)calls)->func;
}

/* Python's path for the whole call: `args` is the Func, then its arguments. */
static PyObject *call_in_python(PyObject *const *args, Py_ssize_t nargs, int exact)
{
    return PyObject_Vectorcall(exact ? python_call_vals : python_call, args, nargs + 1, NULL);
}

/* Raises the exception of a failed call (with the lock held, as Python's path does). */
static PyObject *call_failed(FuncCall *self, PyObject *func, int status, wasm_trap_t *trap,
                             wasmtime_error_t *error)
{
    PyObject *args[5] = {func, PyLong_FromLong(status), PyLong_FromVoidPtr(trap), PyLong_FromVoidPtr(error),
                         self->checked ? Py_True : Py_False};
    PyObject *raised = args[1] != NULL && args[2] != NULL && args[3] != NULL
                           ? PyObject_Vectorcall(python_call_failed, args, 5, NULL)
                           : NULL;
    Py_XDECREF(raised);
    Py_XDECREF(args[1]);
    Py_XDECREF(args[2]);
    Py_XDECREF(args[3]);
    if (raised != NULL) /* it always raises */
        PyErr_SetString(PyExc_SystemError, "Func._call_failed() returned instead of raising");
    return NULL;
}

/* Numbers and v128 only: raw values, wasmtime_func_call_unchecked, as native.c's fast path. */
static PyObject *call_raw(FuncCall *self, PyObject *const *args, int exact)
{
    PyObject *func = args[0];
    Py_ssize_t count = self->nparams > self->nresults ? self->nparams : self->nresults;
    if (count == 0)
        count = 1;
    wasmtime_val_raw_t small[STACK_VALUES];
    wasmtime_val_raw_t *values = count <= STACK_VALUES ? small : PyMem_Malloc(count * sizeof(*values));
    PyObject *small_results[STACK_VALUES];
    PyObject **results = self->nresults <= STACK_VALUES ? small_results
                                                        : PyMem_Malloc(self->nresults * sizeof(PyObject *));
    PyObject *outcome = NULL;
    if (values == NULL || results == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < self->nparams; i++) {
        if (raw_from_python(code_at(self->types[i]), valtype_at(self->types[i]), args[1 + i], &values[i])) {
            outcome = call_in_python(args, self->nparams, exact); /* explains what is wrong */
            goto done;
        }
    }
    int room = handle_stack_allows(self->handle);
    if (room <= 0) {
        outcome = room < 0 ? NULL : call_in_python(args, self->nparams, exact); /* RecursionError */
        goto done;
    }
    Where where = {self->store, self->handle, NULL};
    int entered = where_enter(&where);
    if (entered != 0) {
        outcome = entered < 0 ? NULL : call_in_python(args, self->nparams, exact); /* the store is closed */
        goto done;
    }
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error;
    Py_BEGIN_ALLOW_THREADS
    error = wasmtime_func_call_unchecked(where.context, &self->func, values, (size_t)count, &trap);
    Py_END_ALLOW_THREADS
    if (error != NULL || trap != NULL) {
        call_failed(self, func, error != NULL ? 2 : 1, trap, error);
        where_leave(&where);
        goto done;
    }
    int flushed = handle_method(handle_flush, self->handle);
    where_leave(&where);
    if (flushed < 0)
        goto done;
    for (Py_ssize_t i = 0; i < self->nresults; i++) {
        TypeIndex type = self->types[self->nparams + i];
        results[i] = raw_to_python(code_at(type), valtype_at(type), &values[i], exact);
        if (results[i] == NULL) {
            for (Py_ssize_t j = 0; j < i; j++)
                Py_DECREF(results[j]);
            goto done;
        }
    }
    outcome = pack_results(results, self->nresults, exact);
done:
    if (values != small)
        PyMem_Free(values);
    if (results != small_results)
        PyMem_Free(results);
    return outcome;
}

/* With references: wasmtime_val_t, wasmtime_func_call, which roots them and checks their types. */
static PyObject *call_checked(FuncCall *self, PyObject *const *args, int exact)
{
    PyObject *func = args[0];
    Py_ssize_t nparams = self->nparams, nresults = self->nresults;
    wasmtime_val_t small_params[STACK_VALUES], small_outputs[STACK_VALUES];
    PyObject *small_results[STACK_VALUES];
    wasmtime_val_t *params = nparams <= STACK_VALUES ? small_params : PyMem_Malloc(nparams * sizeof(*params));
    wasmtime_val_t *outputs = nresults <= STACK_VALUES ? small_outputs : PyMem_Malloc(nresults * sizeof(*outputs));
    PyObject **results = nresults <= STACK_VALUES ? small_results : PyMem_Malloc(nresults * sizeof(PyObject *));
    PyObject *outcome = NULL;
    if (params == NULL || outputs == NULL || results == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Where where = {self->store, self->handle, NULL};
    int entered = where_enter(&where);
    if (entered != 0) {
        outcome = entered < 0 ? NULL : call_in_python(args, nparams, exact); /* the store is closed */
        goto done;
    }
    Py_ssize_t made = 0;
    for (; made < nparams; made++) {
        if (to_val(&where, code_at(self->types[made]), valtype_at(self->types[made]), args[1 + made],
                   &params[made]) < 0)
            break;
    }
    int room = made == nparams ? handle_stack_allows(self->handle) : -1;
    if (room <= 0) {
        unroot_all(params, made);
        int retry = room == 0 || refused_value(); /* Python's path explains the refusal, raises RecursionError */
        if (retry)
            PyErr_Clear();
        outcome = retry ? call_in_python(args, nparams, exact) : NULL;
        where_leave(&where);
        goto done;
    }
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error;
    Py_BEGIN_ALLOW_THREADS
    error = wasmtime_func_call(where.context, &self->func, params, (size_t)nparams, outputs, (size_t)nresults,
                               &trap);
    Py_END_ALLOW_THREADS
    unroot_all(params, nparams);
    if (error != NULL || trap != NULL) {
        call_failed(self, func, error != NULL ? 2 : 1, trap, error);
        where_leave(&where);
        goto done;
    }
    if (handle_method(handle_flush, self->handle) < 0) {
        unroot_all(outputs, nresults);
        where_leave(&where);
        goto done;
    }
    /* The results stay rooted until read, whatever Python code runs meanwhile. */
    for (Py_ssize_t i = 0; i < nresults; i++) {
        results[i] = from_val(&where, &outputs[i], exact, NULL, 1);
        if (results[i] == NULL) {
            unroot_all(outputs + i + 1, nresults - i - 1);
            for (Py_ssize_t j = 0; j < i; j++)
                Py_DECREF(results[j]);
            where_leave(&where);
            goto done;
        }
    }
    where_leave(&where);
    outcome = pack_results(results, nresults, exact);
done:
    if (params != small_params)
        PyMem_Free(params);
    if (outputs != small_outputs)
        PyMem_Free(outputs);
    if (results != small_results)
        PyMem_Free(results);
    return outcome;
}

/* `args`: the Func, then its arguments. */
static PyObject *func_call(FuncCall *self, PyObject *const *args, Py_ssize_t nargs, int exact)
{
    if (self->store == NULL) { /* cleared by Python's GC breaking a cycle through it */
        PyErr_SetString(PyExc_TypeError, "this function's store is being freed");
        return NULL;
    }
    if (nargs != self->nparams)
        return call_in_python(args, nargs, exact); /* raises the arity error */
    return self->checked ? call_checked(self, args, exact) : call_raw(self, args, exact);
}

/* As the Caller's slow_call: (func, *args). */
static PyObject *funccall_vectorcall(FuncCall *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = positional_count(nargsf);
    if (nargs < 1 || (kwnames != NULL && PyTuple_Size(kwnames) > 0))
        return PyObject_Vectorcall(python_call, args, nargs, kwnames);
    return func_call(self, args, nargs - 1, 0);
}

static PyObject *funccall_call_vals(FuncCall *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "call_vals(func, *args) needs the Func");
        return NULL;
    }
    return func_call(self, args, nargs - 1, 1);
}

/* The FuncCall of `*func`, of `store`, with parameters and results of the ValTypes in tuples. FuncCall
 * is final (no Py_TPFLAGS_BASETYPE) and made only here: PyObject_GC_New, and PyObject_GC_Del in
 * funccall_dealloc, are its tp_alloc's and tp_free's allocator, called without looking them up. */
static PyObject *funccall_create(PyObject *store, PyObject *handle, const wasmtime_func_t *func, PyObject *params,
                                 PyObject *results)
{
    FuncCall *self = PyObject_GC_New(FuncCall, FuncCallType);
    if (self == NULL)
        return NULL;
    self->vectorcall = (vectorcallfunc)funccall_vectorcall;
    self->store = Py_NewRef(store);
    self->handle = Py_NewRef(handle);
    self->func = *func;
    self->nparams = PyTuple_Size(params);
    self->nresults = PyTuple_Size(results);
    self->checked = 0;
    self->types = PyMem_Malloc(self->nparams + self->nresults + 1);
    PyObject_GC_Track(self);
    if (self->types == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    if (types_of(params, self->nparams, self->types) < 0 ||
        types_of(results, self->nresults, self->types + self->nparams) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->nparams + self->nresults; i++)
        self->checked |= (code_at(self->types[i]) & CODE_KIND) > CODE_V128;
    return (PyObject *)self;
}

static int funccall_traverse(FuncCall *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self)); /* the instances of heap types hold their type */
    Py_VISIT(self->store);
    Py_VISIT(self->handle);
    return 0;
}

static int funccall_clear(FuncCall *self)
{
    Py_CLEAR(self->store);
    Py_CLEAR(self->handle);
    return 0;
}

static void funccall_dealloc(FuncCall *self)
{
    PyTypeObject *type = Py_TYPE((PyObject *)self);
    PyObject_GC_UnTrack(self);
    funccall_clear(self);
    PyMem_Free(self->types);
    PyObject_GC_Del(self);
    Py_DECREF(type); /* each instance of a heap type holds its type */
}

static PyObject *funccall_get_address(FuncCall *self, void *closure)
{
    return PyLong_FromVoidPtr(&self->func);
}

static PyMethodDef funccall_methods[] = {
    {"call_vals", (PyCFunction)(void (*)(void))funccall_call_vals, METH_FASTCALL,
     "call_vals(func, *args): the call with every result a Val."},
    {NULL},
};

static PyGetSetDef funccall_getset[] = {
    {"address", (getter)funccall_get_address, NULL,
     "The address of the wasmtime_func_t (valid while this object lives).", NULL},
    {NULL},
};

/* The value kinds of native.c's numeric fast path for the `count` values of `calls` from `first` (its
 * parameters, or its results), as FuncType._value_kinds() gives them: bytes of wasmtime_valkind_t
 * numbers, 255 for what is not a number. (_value_kinds() also gives 255 for the numbers of a
 * signature whose references are not exactly known; a signature with a reference never takes the
 * fast path, so the difference never shows.) */
static PyObject *fast_path_kinds(const FuncCall *calls, Py_ssize_t first, Py_ssize_t count)
{
    PyObject *kinds = PyBytes_FromStringAndSize(NULL, count);
    if (kinds == NULL)
        return NULL;
    char *out = PyBytes_AsString(kinds); /* cannot fail: bytes */
    for (Py_ssize_t i = 0; i < count; i++) {
        uint8_t code = code_at(calls->types[first + i]);
        out[i] = (char)(code <= CODE_F64 ? code : 255);
    }
    return kinds;
}

/* Binds `func` (a new Func) to the function `*wasm_func` of `store`, of FuncType `functype`, named
 * `name`: its attributes, its FuncCall, and native.c's numeric fast path (Caller._bind_native,
 * which refuses to bind a Func twice). 0, or -1 with an exception. */
static int bind(PyObject *func, PyObject *store, const wasmtime_func_t *wasm_func, PyObject *functype,
                PyObject *name)
{
    PyObject *handle = PyObject_GetAttr(store, handle_name);
    PyObject *params = handle != NULL ? PyObject_GetAttr(functype, params_name) : NULL;
    PyObject *results = params != NULL ? PyObject_GetAttr(functype, results_name) : NULL;
    PyObject *calls = NULL, *param_kinds = NULL, *result_kinds = NULL, *failure = NULL, *address = NULL;
    int status = -1;
    if (results == NULL)
        goto done;
    if (!PyObject_TypeCheck(handle, handle_class) || !is_tuple(params) || !is_tuple(results)) {
        PyErr_SetString(PyExc_TypeError, "bind_func() needs a Store and a FuncType");
        goto done;
    }
    calls = funccall_create(store, handle, wasm_func, params, results);
    const FuncCall *made = (const FuncCall *)calls;
    param_kinds = calls != NULL ? fast_path_kinds(made, 0, made->nparams) : NULL;
    result_kinds = param_kinds != NULL ? fast_path_kinds(made, made->nparams, made->nresults) : NULL;
    failure = result_kinds != NULL ? PyObject_GetAttr(store, call_failure_name) : NULL;
    address = failure != NULL ? PyLong_FromVoidPtr(&((FuncCall *)calls)->func) : NULL;
    if (address == NULL)
        goto done;
    if (set_slot(&func_store_slot, func, store) < 0 || set_slot(&func_type_slot, func, functype) < 0 ||
        set_slot(&func_name_slot, func, name) < 0 || set_slot(&func_calls_slot, func, calls) < 0)
        goto done;
    PyObject *args[7] = {func, handle, address, param_kinds, result_kinds, calls, failure};
    PyObject *bound = PyObject_Vectorcall(func_bind_native, args, 7, NULL);
    Py_XDECREF(bound);
    status = bound != NULL ? 0 : -1;
done:
    Py_XDECREF(handle);
    Py_XDECREF(params);
    Py_XDECREF(results);
    Py_XDECREF(calls);
    Py_XDECREF(param_kinds);
    Py_XDECREF(result_kinds);
    Py_XDECREF(failure);
    Py_XDECREF(address);
    return status;
}

/* bind_func(func, store, func_address, functype, name): see bind(). */
static PyObject *bind_func(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (require_configured() < 0)
        return NULL;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "bind_func() takes 5 arguments, %zd given", nargs);
        return NULL;
    }
    const wasmtime_func_t *wasm_func = PyLong_AsVoidPtr(args[2]);
    if (wasm_func == NULL)
        return NULL;
    if (bind(args[0], args[1], wasm_func, args[3], args[4]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* A new Func bound to `*wasm_func` of `store`, of FuncType `functype`, named `name`. */
static PyObject *new_bound_func(PyObject *store, const wasmtime_func_t *wasm_func, PyObject *functype,
                                PyObject *name)
{
    newfunc new_slot = (newfunc)PyType_GetSlot(func_class, Py_tp_new);
    PyObject *func = new_slot(func_class, empty_tuple, NULL);
    if (func != NULL && bind(func, store, wasm_func, functype, name) < 0)
        Py_CLEAR(func);
    return func;
}

/* A new Func for a funcref of the store (its type asked of wasmtime once per function: FuncTypes
 * are kept by the function's identity, a store id that is never reused and a VMFuncRef that lives
 * as long as its store). */
static PyObject *new_func(const Where *where, const wasmtime_func_t *wasm_func)
{
    PyObject *key = PyBytes_FromStringAndSize((const char *)wasm_func, sizeof(*wasm_func));
    if (key == NULL)
        return NULL;
    PyObject *functype = PyDict_GetItemWithError(func_types, key);
    Py_DECREF(key);
    if (functype != NULL) {
        Py_INCREF(functype);
    } else if (!PyErr_Occurred()) {
        PyObject *address = PyLong_FromVoidPtr((void *)wasm_func);
        PyObject *args[2] = {where->store, address};
        functype = address != NULL ? PyObject_Vectorcall(python_func_type, args, 2, NULL) : NULL;
        Py_XDECREF(address);
    }
    if (functype == NULL)
        return NULL;
    PyObject *func = new_bound_func(where->store, wasm_func, functype, wasm_function_name);
    Py_DECREF(functype);
    return func;
}

/* export_func(store, handle, instance, name, functype): the function the instance (the bytes of its
 * wasmtime_instance_t) exports as `name`, a new Func of `functype` (the export's type) named `name`;
 * NotImplemented where Python's path must do it (no such export, another kind, a closed store). */
static PyObject *export_func(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (require_configured() < 0 || check_arguments("export_func", nargs, 5) < 0)
        return NULL;
    if (!PyObject_TypeCheck(args[1], handle_class) || !PyBytes_Check(args[2]) ||
        PyBytes_Size(args[2]) != sizeof(wasmtime_instance_t) || !PyUnicode_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "export_func() needs a StoreHandle, an instance and a name");
        return NULL;
    }
    PyObject *encoded = PyUnicode_AsEncodedString(args[3], "utf-8", "surrogateescape");
    if (encoded == NULL)
        return NULL;
    wasmtime_instance_t instance;
    memcpy(&instance, PyBytes_AsString(args[2]), sizeof(instance));
    Where where = {args[0], args[1], NULL};
    int entered = where_enter(&where);
    if (entered != 0) {
        Py_DECREF(encoded);
        return entered < 0 ? NULL : Py_NewRef(Py_NotImplemented);
    }
    wasmtime_extern_t item;
    int found = wasmtime_instance_export_get(where.context, &instance, PyBytes_AsString(encoded),
                                             (size_t)PyBytes_Size(encoded), &item);
    where_leave(&where);
    Py_DECREF(encoded);
    if (!found || item.kind != WASMTIME_EXTERN_FUNC)
        Py_RETURN_NOTIMPLEMENTED;
    return new_bound_func(where.store, &item.of.func, args[4], args[3]);
}

/* How a PyType_Spec sets tp_vectorcall_offset (with Py_TPFLAGS_HAVE_VECTORCALL in its flags). */
static PyMemberDef funccall_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(FuncCall, vectorcall), READONLY},
    {NULL},
};

static PyType_Slot funccall_slots[] = {
    {Py_tp_doc, "A Func's call path for every signature (made by bind_func), called as (func, *args); what C "
                "does not convert goes to Python's conversions and call path."},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_dealloc, funccall_dealloc},
    {Py_tp_traverse, funccall_traverse},
    {Py_tp_clear, funccall_clear},
    {Py_tp_methods, funccall_methods},
    {Py_tp_members, funccall_members},
    {Py_tp_getset, funccall_getset},
    {0, NULL},
};

/* No Py_tp_new: made by bind_func only. */
static PyType_Spec funccall_spec = {
    .name = "wasmpy._native.FuncCall",
    .basicsize = sizeof(FuncCall),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = funccall_slots,
};

/* ------------------------------------------------------------------------------------------ */
/* HostCall: wasm -> Python, the conversions of a host function behind native.c's trampolines. */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *host;             /* the _HostFunction: Python's path, for a store that is gone and
                                 * for results it must explain */
    PyObject *fn;               /* the Python function */
    PyObject *store_ref;        /* a weak reference to the Store, as the _HostFunction holds it */
    Py_ssize_t nparams, nresults;
    int checked;                /* called (args_address, results_address) with wasmtime_val_t, else
                                 * (values_address) with raw values */
    TypeIndex *types;           /* of the nparams parameters, then the nresults results */
} HostCall;

static PyTypeObject *HostCallType;
static PyObject *invoke_checked_name, *write_checked_results_name, *write_results_name;

/* Calls the method `name` of the _HostFunction, Python's path (where C hands over: not a fast path;
 * PyObject_VectorcallMethod() is outside 3.11's limited API, and 3.11 exports it, but _native keeps to
 * the two vectorcall functions limited.h declares). */
static PyObject *host_method(HostCall *self, PyObject *name, PyObject *first, PyObject *second)
{
    PyObject *method = PyObject_GetAttr(self->host, name);
    if (method == NULL)
        return NULL;
    PyObject *args[2] = {first, second};
    PyObject *outcome = PyObject_Vectorcall(method, args, 2, NULL);
    Py_DECREF(method);
    return outcome;
}

/* The items of a host function's result, as `_HostFunction._result_tuple` takes them: 0; 1 (and
 * nothing raised) if it does not fit, so that Python explains; -1 with an exception. `items` borrows
 * from `result` or, for a list, from `*snapshot`, a tuple of its items (a new reference; NULL
 * otherwise): converting an item may run Python code (its __index__) that changes the list. */
static int result_items(HostCall *self, PyObject *result, PyObject **items, PyObject **snapshot)
{
    *snapshot = NULL;
    if (self->nresults == 0)
        return result == Py_None ? 0 : 1;
    if (self->nresults == 1) {
        items[0] = result;
        return 0;
    }
    if (is_tuple(result) && PyTuple_Size(result) == self->nresults) {
        for (Py_ssize_t i = 0; i < self->nresults; i++)
            items[i] = PyTuple_GetItem(result, i);
    } else if (is_list(result) && PyList_Size(result) == self->nresults) {
        *snapshot = PyList_AsTuple(result);
        if (*snapshot == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < self->nresults; i++)
            items[i] = PyTuple_GetItem(*snapshot, i);
    } else {
        return 1;
    }
    return 0;
}

/* Calls the function with `nargs` arguments (stolen); the result, or NULL. */
static PyObject *host_call_function(HostCall *self, PyObject **args, Py_ssize_t nargs)
{
    PyObject *result = PyObject_Vectorcall(self->fn, args, nargs, NULL);
    for (Py_ssize_t i = 0; i < nargs; i++)
        Py_DECREF(args[i]);
    return result;
}

/* Raw values (numbers and v128): arguments, then results, at `values`. */
static PyObject *host_call_raw(HostCall *self, PyObject *address)
{
    wasmtime_val_raw_t *values = PyLong_AsVoidPtr(address);
    if (values == NULL && PyErr_Occurred())
        return NULL;
    PyObject *small_args[STACK_VALUES], *small_items[STACK_VALUES];
    wasmtime_val_raw_t small_raw[STACK_VALUES];
    PyObject **args = self->nparams <= STACK_VALUES ? small_args : PyMem_Malloc(self->nparams * sizeof(PyObject *));
    PyObject **items = self->nresults <= STACK_VALUES ? small_items
                                                      : PyMem_Malloc(self->nresults * sizeof(PyObject *));
    wasmtime_val_raw_t *raw = self->nresults <= STACK_VALUES ? small_raw : PyMem_Malloc(self->nresults * sizeof(*raw));
    PyObject *outcome = NULL, *result = NULL, *snapshot = NULL;
    if (args == NULL || items == NULL || raw == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < self->nparams; i++) {
        args[i] = raw_to_python(code_at(self->types[i]), valtype_at(self->types[i]), &values[i], 0);
        if (args[i] == NULL) {
            for (Py_ssize_t j = 0; j < i; j++)
                Py_DECREF(args[j]);
            goto done;
        }
    }
    result = host_call_function(self, args, self->nparams);
    if (result == NULL)
        goto done;
    int fits = result_items(self, result, items, &snapshot);
    if (fits < 0)
        goto done;
    int converted = fits == 0;
    for (Py_ssize_t i = 0; converted && i < self->nresults; i++) {
        TypeIndex type = self->types[self->nparams + i];
        converted = raw_from_python(code_at(type), valtype_at(type), items[i], &raw[i]) == 0;
    }
    if (converted) {
        if (self->nresults > 0)
            memcpy(values, raw, self->nresults * sizeof(*raw));
        outcome = Py_NewRef(Py_None);
    } else { /* Python checks them and explains what is wrong */
        outcome = host_method(self, write_results_name, result, address);
    }
done:
    Py_XDECREF(snapshot);
    Py_XDECREF(result);
    if (args != small_args)
        PyMem_Free(args);
    if (items != small_items)
        PyMem_Free(items);
    if (raw != small_raw)
        PyMem_Free(raw);
    return outcome;
}

/* The object the weak reference `ref` refers to: 1 with a new reference in `*object`, 0 (and NULL)
 * once it is gone, -1 with an exception. PyWeakref_GetRef() is in the limited API from 3.13 on;
 * before, PyWeakref_GetObject() is the stable ABI's (deprecated from 3.13 on): its borrowed reference
 * is made strong at once, with the GIL held. */
static int weak_referent(PyObject *ref, PyObject **object)
{
#if defined(Py_LIMITED_API) ? Py_LIMITED_API + 0 >= 0x030D0000 : PY_VERSION_HEX >= 0x030D0000
    return PyWeakref_GetRef(ref, object);
#else
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* built with 3.13's headers, for 3.11 */
    PyObject *found = PyWeakref_GetObject(ref);
#pragma GCC diagnostic pop
    *object = found != NULL && found != Py_None ? Py_NewRef(found) : NULL;
    return found == NULL ? -1 : *object != NULL;
#endif
}

/* The store of the host function, and its handle; 1 (nothing raised) when the store is gone or
 * closed, where Python's path raises what it always has. */
static int host_where(HostCall *self, Where *where)
{
    PyObject *store;
    int alive = weak_referent(self->store_ref, &store);
    if (alive <= 0)
        return alive < 0 ? -1 : 1;
    where->store = store;
    where->handle = PyObject_GetAttr(store, handle_name);
    if (where->handle == NULL || !PyObject_TypeCheck(where->handle, handle_class)) {
        PyErr_Clear();
        Py_CLEAR(where->handle);
        Py_CLEAR(where->store);
        return 1;
    }
    where->context = handle_get_context(where->handle);
    if (where->context == NULL) {
        PyErr_Clear();
        Py_CLEAR(where->handle);
        Py_CLEAR(where->store);
        return 1;
    }
    return 0;
}

/* wasmtime_val_t arguments (borrowed: wasmtime keeps them rooted) and results (owned by wasmtime once
 * stored; it checks their types). */
static PyObject *host_call_checked(HostCall *self, PyObject *args_address, PyObject *results_address)
{
    wasmtime_val_t *vals = PyLong_AsVoidPtr(args_address);
    wasmtime_val_t *results = vals != NULL || !PyErr_Occurred() ? PyLong_AsVoidPtr(results_address) : NULL;
    if (PyErr_Occurred())
        return NULL;
    Where where = {NULL, NULL, NULL};
    int found = host_where(self, &where);
    if (found != 0) /* the store is gone, or closed: Python's path says so */
        return found < 0 ? NULL : host_method(self, invoke_checked_name, args_address, results_address);
    PyObject *small_args[STACK_VALUES], *small_items[STACK_VALUES];
    wasmtime_val_t small_made[STACK_VALUES];
    PyObject **args = self->nparams <= STACK_VALUES ? small_args : PyMem_Malloc(self->nparams * sizeof(PyObject *));
    PyObject **items = self->nresults <= STACK_VALUES ? small_items
                                                      : PyMem_Malloc(self->nresults * sizeof(PyObject *));
    wasmtime_val_t *made = self->nresults <= STACK_VALUES ? small_made : PyMem_Malloc(self->nresults * sizeof(*made));
    PyObject *outcome = NULL, *result = NULL, *snapshot = NULL;
    if (args == NULL || items == NULL || made == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < self->nparams; i++) {
        args[i] = from_val(&where, &vals[i], 0, NULL, 0);
        if (args[i] == NULL) {
            for (Py_ssize_t j = 0; j < i; j++)
                Py_DECREF(args[j]);
            goto done;
        }
    }
    result = host_call_function(self, args, self->nparams);
    if (result == NULL)
        goto done;
    int fits = result_items(self, result, items, &snapshot);
    if (fits != 0) {
        outcome = fits < 0 ? NULL : host_method(self, write_checked_results_name, result, results_address);
        goto done;
    }
    Py_ssize_t count = 0;
    for (; count < self->nresults; count++) {
        TypeIndex type = self->types[self->nparams + count];
        if (to_val(&where, code_at(type), valtype_at(type), items[count], &made[count]) < 0)
            break;
    }
    if (count < self->nresults) {
        unroot_all(made, count);
        if (refused_value()) { /* Python's path names the result it refuses */
            PyErr_Clear();
            outcome = host_method(self, write_checked_results_name, result, results_address);
        }
        goto done;
    }
    if (self->nresults > 0)
        memcpy(results, made, self->nresults * sizeof(*made)); /* the roots move to wasmtime */
    outcome = Py_NewRef(Py_None);
done:
    Py_XDECREF(snapshot);
    Py_XDECREF(result);
    Py_XDECREF(where.handle);
    Py_XDECREF(where.store);
    if (args != small_args)
        PyMem_Free(args);
    if (items != small_items)
        PyMem_Free(items);
    if (made != small_made)
        PyMem_Free(made);
    return outcome;
}

static PyObject *hostcall_vectorcall(HostCall *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = positional_count(nargsf);
    if (self->fn == NULL) { /* cleared by Python's GC with its store: nothing can call it any more */
        PyErr_SetString(PyExc_TypeError, "this host function's store is being freed");
        return NULL;
    }
    if (kwnames != NULL && PyTuple_Size(kwnames) > 0) {
        PyErr_SetString(PyExc_TypeError, "HostCall takes no keyword arguments");
        return NULL;
    }
    if (self->checked ? nargs != 2 : nargs != 1) {
        PyErr_Format(PyExc_TypeError, "HostCall takes %s", self->checked ? "(args_address, results_address)"
                                                                           : "(values_address)");
        return NULL;
    }
    return self->checked ? host_call_checked(self, args[0], args[1]) : host_call_raw(self, args[0]);
}

/* The HostCall of `fn` with parameters and results of the ValTypes in tuples; `host` is its
 * _HostFunction, `store_ref` the weak reference to the store it holds. */
static PyObject *hostcall_create(PyTypeObject *type, PyObject *host, PyObject *fn, PyObject *store_ref,
                                 PyObject *params, PyObject *results)
{
    HostCall *self = (HostCall *)alloc_instance(type);
    if (self == NULL)
        return NULL;
    self->vectorcall = (vectorcallfunc)hostcall_vectorcall;
    self->host = Py_NewRef(host);
    self->fn = Py_NewRef(fn);
    self->store_ref = Py_NewRef(store_ref);
    self->nparams = PyTuple_Size(params);
    self->nresults = PyTuple_Size(results);
    self->types = PyMem_Malloc(self->nparams + self->nresults + 1);
    if (self->types == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    if (types_of(params, self->nparams, self->types) < 0 ||
        types_of(results, self->nresults, self->types + self->nparams) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->nparams + self->nresults; i++)
        self->checked |= (code_at(self->types[i]) & CODE_KIND) > CODE_V128;
    return (PyObject *)self;
}

static PyObject *hostcall_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *host, *fn, *store_ref, *params, *results;
    if (require_configured() < 0 || !PyArg_ParseTuple(args, "OOO!O!O!:HostCall", &host, &fn, weakref_type,
                                                      &store_ref, &PyTuple_Type, &params, &PyTuple_Type, &results))
        return NULL;
    return hostcall_create(type, host, fn, store_ref, params, results);
}

static int hostcall_traverse(HostCall *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self)); /* the instances of heap types hold their type */
    Py_VISIT(self->host);
    Py_VISIT(self->fn);
    Py_VISIT(self->store_ref);
    return 0;
}

static int hostcall_clear(HostCall *self)
{
    Py_CLEAR(self->host);
    Py_CLEAR(self->fn);
    Py_CLEAR(self->store_ref);
    return 0;
}

static void hostcall_dealloc(HostCall *self)
{
    PyObject_GC_UnTrack(self);
    hostcall_clear(self);
    PyMem_Free(self->types);
    free_instance((PyObject *)self);
}

static PyMemberDef hostcall_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(HostCall, vectorcall), READONLY},
    {NULL},
};

static PyType_Slot hostcall_slots[] = {
    {Py_tp_doc, "HostCall(host, fn, store_ref, params, results): a host function's conversions, as native.c's "
                "trampolines call them: (values_address) for raw values, (args_address, results_address) with "
                "references; what C does not convert goes to the _HostFunction `host`."},
    {Py_tp_new, hostcall_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_dealloc, hostcall_dealloc},
    {Py_tp_traverse, hostcall_traverse},
    {Py_tp_clear, hostcall_clear},
    {Py_tp_members, hostcall_members},
    {0, NULL},
};

static PyType_Spec hostcall_spec = {
    .name = "wasmpy._native.HostCall",
    .basicsize = sizeof(HostCall),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = hostcall_slots,
};

static PyTypeObject *host_func_class;          /* native.c's HostFunc: what its trampolines call */
static wasmtime_func_unchecked_callback_t host_trampoline;  /* native.c's, for raw values */
static wasmtime_func_callback_t checked_host_trampoline;    /* native.c's, for wasmtime_val_t */
static PyObject *handle_keep;
static PyObject *store_ref_name, *rethrow_name, *context_name;

/* make_host_func(func, store, fn, functype, c_type_address, param_kinds, result_kinds, host, name):
 * makes `fn` a host function of `store` (wasmtime_func_new, or _unchecked without references, on
 * native.c's trampolines; `c_type_address`: the engine's wasm_functype_t for `functype`, the kinds
 * as native.c's HostFunc reads them) and binds the new Func `func` to it. `host` is its
 * _HostFunction, Python's path. */
static PyObject *make_host_func(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (require_configured() < 0 || check_arguments("make_host_func", nargs, 9) < 0)
        return NULL;
    if (host_func_class == NULL || handle_keep == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "make_host_func() is not configured (import wasmpy)");
        return NULL;
    }
    PyObject *func = args[0], *store = args[1], *fn = args[2], *functype = args[3], *host = args[7];
    const wasm_functype_t *c_type = PyLong_AsVoidPtr(args[4]);
    if (c_type == NULL)
        return NULL;
    PyObject *handle = PyObject_GetAttr(store, handle_name);
    PyObject *params = handle != NULL ? PyObject_GetAttr(functype, params_name) : NULL;
    PyObject *results = params != NULL ? PyObject_GetAttr(functype, results_name) : NULL;
    PyObject *store_ref = results != NULL ? PyObject_GetAttr(host, store_ref_name) : NULL;
    PyObject *calls = NULL, *write_results = NULL, *rethrow = NULL, *native = NULL, *outcome = NULL;
    if (store_ref == NULL)
        goto done;
    if (!PyObject_TypeCheck(handle, handle_class) || !is_tuple(params) || !is_tuple(results) ||
        !PyObject_TypeCheck(store_ref, weakref_type)) {
        PyErr_SetString(PyExc_TypeError, "make_host_func() needs a Store, a FuncType and a _HostFunction");
        goto done;
    }
    calls = hostcall_create(HostCallType, host, fn, store_ref, params, results);
    write_results = calls != NULL ? PyObject_GetAttr(host, write_results_name) : NULL;
    rethrow = write_results != NULL ? PyObject_GetAttr(host, rethrow_name) : NULL;
    if (rethrow == NULL)
        goto done;
    PyObject *native_args[7] = {handle, fn, args[5], args[6], calls, write_results, rethrow};
    native = PyObject_Vectorcall((PyObject *)host_func_class, native_args, 7, NULL);
    if (native == NULL)
        goto done;
    Where where = {store, handle, NULL};
    int entered = where_enter(&where);
    if (entered != 0) {
        PyObject *context = entered > 0 ? PyObject_CallMethodObjArgs(store, context_name, NULL) : NULL;
        if (context != NULL) { /* closed stores stay closed: it raises */
            Py_DECREF(context);
            PyErr_SetString(PyExc_SystemError, "Store._context() of a closed store returned");
        }
        goto done;
    }
    wasmtime_func_t wasm_func;
    /* wasmtime refers to `native` by address: the store's handle keeps it */
    if (((HostCall *)calls)->checked)
        wasmtime_func_new(where.context, c_type, checked_host_trampoline, native, NULL, &wasm_func);
    else
        wasmtime_func_new_unchecked(where.context, c_type, host_trampoline, native, NULL, &wasm_func);
    PyObject *keep_args[2] = {handle, native};
    PyObject *kept = PyObject_Vectorcall(handle_keep, keep_args, 2, NULL);
    where_leave(&where);
    if (kept == NULL)
        goto done;
    Py_DECREF(kept);
    if (bind(func, store, &wasm_func, functype, args[8]) == 0)
        outcome = Py_NewRef(Py_None);
done:
    Py_XDECREF(handle);
    Py_XDECREF(params);
    Py_XDECREF(results);
    Py_XDECREF(store_ref);
    Py_XDECREF(calls);
    Py_XDECREF(write_results);
    Py_XDECREF(rethrow);
    Py_XDECREF(native);
    return outcome;
}

/* ------------------------------------------------------------------------------------------ */
/* Globals and tables. Each function returns NotImplemented when the Python path must do the
 * operation instead (a closed store, an index it explains); the store's lock is then released. */

/* Reads (store, handle, address) from the arguments of a global or table function. */
static int where_and_address(PyObject *const *args, Where *where, void **address)
{
    if (require_configured() < 0)
        return -1;
    if (!PyObject_TypeCheck(args[1], handle_class)) {
        raise_wrong_type("the handle", "a StoreHandle", args[1]);
        return -1;
    }
    where->store = args[0];
    where->handle = args[1];
    *address = PyLong_AsVoidPtr(args[2]);
    return *address == NULL ? -1 : 0;
}

/* Raises what wasmtime's refusal to store a value (an owned wasmtime_error_t) means. */
static void value_refused(wasmtime_error_t *error)
{
    PyObject *address = PyLong_FromVoidPtr(error);
    PyObject *raised = address != NULL ? PyObject_Vectorcall(python_value_refused, &address, 1, NULL) : NULL;
    Py_XDECREF(address);
    if (raised != NULL) {
        Py_DECREF(raised);
        PyErr_SetString(PyExc_SystemError, "value_refused() returned instead of raising");
    }
}

/* The opening of the four functions below: their `expected` arguments checked, the value kind of
 * args[3] read into `code` if `code` is not NULL, and the store entered. 0 when entered; otherwise
 * where_enter's answer: < 0 raised, > 0 the Python path must do it (return NotImplemented). */
static int enter_extern(const char *name, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t expected,
                        Where *where, void **address, int *code)
{
    if (check_arguments(name, nargs, expected) < 0 || where_and_address(args, where, address) < 0)
        return -1;
    if (code != NULL && (*code = code_of(args[3])) < 0)
        return -1;
    return where_enter(where);
}

/* The end of a set: `val` unrooted and the store left; None, or what wasmtime's refusal means raised. */
static PyObject *value_stored(Where *where, wasmtime_val_t *val, wasmtime_error_t *error)
{
    wasmtime_val_unroot(val);
    if (error != NULL)
        value_refused(error);
    where_leave(where);
    return error != NULL ? NULL : Py_NewRef(Py_None);
}

/* global_get(store, handle, global_address, exact, declared) */
static PyObject *global_get(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Where where;
    void *global;
    int entered = enter_extern("global_get", args, nargs, 5, &where, &global, NULL);
    if (entered != 0)
        return entered < 0 ? NULL : Py_NewRef(Py_NotImplemented);
    int exact = PyObject_IsTrue(args[3]); /* may run Python code: the store stays usable meanwhile */
    if (exact < 0) {
        where_leave(&where);
        return NULL;
    }
    wasmtime_val_t val;
    wasmtime_global_get(where.context, (const wasmtime_global_t *)global, &val);
    PyObject *value = from_val(&where, &val, exact, args[4] == Py_None ? NULL : args[4], 1);
    where_leave(&where);
    return value;
}

/* global_set(store, handle, global_address, valtype, value) */
static PyObject *global_set(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Where where;
    void *global;
    int code;
    int entered = enter_extern("global_set", args, nargs, 5, &where, &global, &code);
    if (entered != 0)
        return entered < 0 ? NULL : Py_NewRef(Py_NotImplemented);
    wasmtime_val_t val;
    if (to_val(&where, (uint8_t)code, args[3], args[4], &val) < 0) {
        where_leave(&where);
        return NULL;
    }
    return value_stored(&where, &val, wasmtime_global_set(where.context, (const wasmtime_global_t *)global, &val));
}

/* The element `index` (an int; negative counts from the end) of a table of `size`: 0, or 1 when
 * Python's path must explain it (nothing raised). */
static int table_position(PyObject *index, uint64_t size, uint64_t *position)
{
    if (!PyLong_CheckExact(index))
        return 1;
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(index, &overflow);
    if (overflow != 0 || (value == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 1;
    }
    if (value < 0) {
        unsigned long long back = 0ULL - (unsigned long long)value; /* -value, without overflow */
        if (back > size)
            return 1;
        *position = size - back;
        return 0;
    }
    if ((unsigned long long)value >= size)
        return 1;
    *position = (uint64_t)value;
    return 0;
}

/* table_get(store, handle, table_address, index) */
static PyObject *table_get(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Where where;
    void *table;
    int entered = enter_extern("table_get", args, nargs, 4, &where, &table, NULL);
    if (entered != 0)
        return entered < 0 ? NULL : Py_NewRef(Py_NotImplemented);
    uint64_t position;
    wasmtime_val_t val;
    PyObject *value;
    if (table_position(args[3], wasmtime_table_size(where.context, (const wasmtime_table_t *)table), &position) != 0 ||
        !wasmtime_table_get(where.context, (const wasmtime_table_t *)table, position, &val))
        value = Py_NewRef(Py_NotImplemented);
    else
        value = from_val(&where, &val, 0, NULL, 1);
    where_leave(&where);
    return value;
}

/* table_set(store, handle, table_address, valtype, index, value) */
static PyObject *table_set(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Where where;
    void *table;
    int code;
    int entered = enter_extern("table_set", args, nargs, 6, &where, &table, &code);
    if (entered != 0)
        return entered < 0 ? NULL : Py_NewRef(Py_NotImplemented);
    uint64_t position;
    if (table_position(args[4], wasmtime_table_size(where.context, (const wasmtime_table_t *)table), &position) != 0) {
        where_leave(&where);
        Py_RETURN_NOTIMPLEMENTED;
    }
    wasmtime_val_t val;
    if (to_val(&where, (uint8_t)code, args[3], args[5], &val) < 0) {
        where_leave(&where);
        return NULL;
    }
    return value_stored(&where, &val,
                        wasmtime_table_set(where.context, (const wasmtime_table_t *)table, position, &val));
}

/* ------------------------------------------------------------------------------------------ */
/* Instantiation. */

/* Writes the `count` imports (Funcs here, the other externs by _instance._write_extern) into
 * `externs`, which has room for `count`: the list's length when it was made, whatever the Python code
 * called meanwhile does to the list (an IndexError if it shrinks). */
static int write_imports(PyObject *store, PyObject *imports, wasmtime_extern_t *externs, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *value = PyList_GetItem(imports, i);
        if (value == NULL)
            return -1;
        const wasmtime_func_t *func = func_of(value, store);
        if (func != NULL) {
            externs[i].kind = WASMTIME_EXTERN_FUNC;
            externs[i].of.func = *func;
            continue;
        }
        PyObject *args[2] = {Py_NewRef(value), PyLong_FromVoidPtr(&externs[i])}; /* held while Python runs */
        PyObject *written = args[1] != NULL ? PyObject_Vectorcall(python_write_extern, args, 2, NULL) : NULL;
        Py_DECREF(args[0]);
        Py_XDECREF(args[1]);
        if (written == NULL)
            return -1;
        Py_DECREF(written);
    }
    return 0;
}

/* instantiate(store, handle, module_address, imports): instantiates the module with `imports` (a
 * list of the store's externs, in import order) and returns the instance (its wasmtime_instance_t,
 * as bytes); or NotImplemented, with nothing done, where Python's path must do it (a closed store,
 * too little native stack). A failure (a trap of the start function, a link error) raises what
 * Instance._finish says, after the WASI output is delivered. */
static PyObject *instantiate(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Where where;
    void *wasm_module;
    if (check_arguments("instantiate", nargs, 4) < 0 || where_and_address(args, &where, &wasm_module) < 0)
        return NULL;
    PyObject *imports = args[3];
    if (python_write_extern == NULL || python_instantiation_failed == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "instantiate() is not configured (import wasmpy)");
        return NULL;
    }
    if (!PyList_Check(imports)) {
        PyErr_SetString(PyExc_TypeError, "instantiate() takes the imports as a list");
        return NULL;
    }
    int room = handle_stack_allows(where.handle);
    if (room <= 0)
        return room < 0 ? NULL : Py_NewRef(Py_NotImplemented); /* Python's path raises RecursionError */
    Py_ssize_t count = PyList_Size(imports);
    wasmtime_extern_t small[STACK_VALUES];
    wasmtime_extern_t *externs = count <= STACK_VALUES ? small : PyMem_Malloc(count * sizeof(*externs));
    if (externs == NULL)
        return PyErr_NoMemory();
    PyObject *outcome = NULL;
    int entered = where_enter(&where);
    if (entered != 0) {
        outcome = entered < 0 ? NULL : Py_NewRef(Py_NotImplemented); /* the store is closed */
        goto done;
    }
    if (write_imports(where.store, imports, externs, count) < 0) {
        where_leave(&where);
        goto done;
    }
    wasmtime_instance_t instance;
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error;
    Py_BEGIN_ALLOW_THREADS /* the start function may run for long */
    error = wasmtime_instance_new(where.context, (const wasmtime_module_t *)wasm_module, externs, (size_t)count,
                                  &instance, &trap);
    Py_END_ALLOW_THREADS
    if (error != NULL || trap != NULL) {
        PyObject *failed[4] = {where.store, PyLong_FromLong(error != NULL ? 2 : 1), PyLong_FromVoidPtr(trap),
                               PyLong_FromVoidPtr(error)};
        PyObject *raised = failed[1] != NULL && failed[2] != NULL && failed[3] != NULL
                               ? PyObject_Vectorcall(python_instantiation_failed, failed, 4, NULL)
                               : NULL;
        if (raised != NULL) {
            Py_DECREF(raised);
            PyErr_SetString(PyExc_SystemError, "Instance._finish() returned instead of raising");
        }
        for (int i = 1; i < 4; i++)
            Py_XDECREF(failed[i]);
        where_leave(&where);
        goto done;
    }
    int flushed = handle_method(handle_flush, where.handle); /* what a start function wrote */
    where_leave(&where);
    if (flushed == 0)
        outcome = PyBytes_FromStringAndSize((const char *)&instance, sizeof(instance));
done:
    if (externs != small)
        PyMem_Free(externs);
    return outcome;
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration: the Python classes and functions values.c works with, given by wasmpy. */

static int not_expected(PyObject *owner, const char *name)
{
    PyErr_Format(PyExc_TypeError, "%R.%s is not what wasmpy's value conversions expect", owner, name);
    return -1;
}

/* A callable class attribute of `owner` (a method), replacing `*slot`; 0 or -1 with an exception. */
static int take_method(PyObject *owner, const char *name, PyObject **slot)
{
    PyObject *found = PyObject_GetAttrString(owner, name);
    if (found == NULL)
        return -1;
    if (!PyCallable_Check(found)) {
        Py_DECREF(found);
        return not_expected(owner, name);
    }
    REPLACE_REF(*slot, found);
    return 0;
}

/* The descriptor of the attribute `name` of the instances of `owner`, with its functions, into
 * `*attribute`; `writable`: it must have a __set__ too. 0 or -1 with an exception. */
static int take_descriptor(PyObject *owner, const char *name, int writable, Attribute *attribute)
{
    PyObject *found = PyObject_GetAttrString(owner, name);
    if (found == NULL)
        return -1;
    descrgetfunc get = (descrgetfunc)PyType_GetSlot(Py_TYPE(found), Py_tp_descr_get);
    descrsetfunc set = (descrsetfunc)PyType_GetSlot(Py_TYPE(found), Py_tp_descr_set);
    if (get == NULL || (writable && set == NULL)) {
        Py_DECREF(found);
        return not_expected(owner, name);
    }
    REPLACE_REF(attribute->descriptor, found);
    attribute->get = get;
    attribute->set = set;
    return 0;
}

/* `value`, given as the keyword `keyword`, if it is a class, replacing `*slot`. */
static int take_type(const char *keyword, PyObject *value, PyTypeObject **slot)
{
    if (!PyType_Check(value)) {
        raise_wrong_type(keyword, "a class", value);
        return -1;
    }
    Py_INCREF(value);
    REPLACE_REF(*slot, (PyTypeObject *)value);
    return 0;
}

static int take_callable(const char *keyword, PyObject *value, PyObject **slot)
{
    if (!PyCallable_Check(value)) {
        raise_wrong_type(keyword, "callable", value);
        return -1;
    }
    Py_INCREF(value);
    REPLACE_REF(*slot, value);
    return 0;
}

static int take_valtypes(PyObject *valtype)
{
    for (size_t i = 0; i < VALTYPE_COUNT; i++) {
        PyObject *member = PyObject_GetAttrString(valtype, VALTYPES[i].name);
        if (member == NULL)
            return -1;
        REPLACE_REF(valtype_members[i], member);
    }
    static const char *kind_names[KIND_COUNT] = {"i32", "i64", "f32", "f64", "v128", "funcref", "externref",
                                                 "anyref", "exnref"};
    for (int kind = 0; kind < KIND_COUNT; kind++) {
        PyObject *member = PyObject_GetAttrString(valtype, kind_names[kind]);
        if (member == NULL)
            return -1;
        REPLACE_REF(kind_valtypes[kind], member);
    }
    return 0;
}

static int take_handle_class(PyObject *value)
{
    PyObject *cls = value;
    if (take_type("store_handle", value, &handle_class) < 0)
        return -1;
    return take_method(cls, "acquire", &handle_acquire) < 0 || take_method(cls, "release", &handle_release) < 0 ||
                   take_method(cls, "flush_output", &handle_flush) < 0 ||
                   take_method(cls, "keep_for_externref", &handle_keep_for_externref) < 0 ||
                   take_descriptor(cls, "context", 0, &handle_context) < 0 ||
                   take_descriptor(cls, "stack_needed", 0, &handle_stack_needed) < 0 ||
                   take_method(cls, "take_pending", &handle_take_pending) < 0 ||
                   take_method(cls, "keep", &handle_keep) < 0 ||
                   take_descriptor(cls, "deadline_ns", 1, &handle_deadline) < 0
               ? -1
               : 0;
}

/* values_configure(**objects): see _values.py and _func.py, which give them. */
static PyObject *values_configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_Size(args) != 0 || kwargs == NULL) {
        PyErr_SetString(PyExc_TypeError, "values_configure() takes keyword arguments only");
        return NULL;
    }
    PyObject *key, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(kwargs, &position, &key, &value)) {
        const char *name = PyUnicode_AsUTF8AndSize(key, NULL);
        if (name == NULL)
            return NULL;
        int status;
        if (strcmp(name, "store_handle") == 0) {
            status = take_handle_class(value);
        } else if (strcmp(name, "val") == 0) {
            status = take_type(name, value, &val_class) < 0 || take_descriptor(value, "type", 1, &val_type_slot) < 0 ||
                             take_descriptor(value, "_payload", 1, &val_payload_slot) < 0
                         ? -1
                         : 0;
        } else if (strcmp(name, "func") == 0) {
            status = take_type(name, value, &func_class) < 0 ||
                             take_descriptor(value, "_store", 1, &func_store_slot) < 0 ||
                             take_descriptor(value, "type", 1, &func_type_slot) < 0 ||
                             take_descriptor(value, "name", 1, &func_name_slot) < 0 ||
                             take_descriptor(value, "_calls", 1, &func_calls_slot) < 0 ||
                             take_method(value, "_bind_native", &func_bind_native) < 0
                         ? -1
                         : 0;
        } else if (strcmp(name, "func_types") == 0) {
            status = PyDict_CheckExact(value) ? 0 : -1;
            if (status < 0)
                PyErr_SetString(PyExc_TypeError, "func_types must be a dict");
            else
                REPLACE_REF(func_types, Py_NewRef(value));
        } else if (strcmp(name, "func_type") == 0) {
            status = take_callable(name, value, &python_func_type);
        } else if (strcmp(name, "valtype") == 0) {
            status = take_valtypes(value);
        } else if (strcmp(name, "anyref") == 0) {
            status = take_type(name, value, &anyref_class);
        } else if (strcmp(name, "kept_object") == 0) {
            status = take_callable(name, value, &kept_object);
        } else if (strcmp(name, "externref_drop") == 0) {
            void *address = PyLong_AsVoidPtr(value);
            status = address == NULL ? -1 : 0;
            if (address != NULL)
                externref_finalizer = (void (*)(void *))address;
        } else if (strcmp(name, "write_val") == 0) {
            status = take_callable(name, value, &python_write_val);
        } else if (strcmp(name, "read_val") == 0) {
            status = take_callable(name, value, &python_read_val);
        } else if (strcmp(name, "call") == 0) {
            status = take_callable(name, value, &python_call);
        } else if (strcmp(name, "call_vals") == 0) {
            status = take_callable(name, value, &python_call_vals);
        } else if (strcmp(name, "call_failed") == 0) {
            status = take_callable(name, value, &python_call_failed);
        } else if (strcmp(name, "value_refused") == 0) {
            status = take_callable(name, value, &python_value_refused);
        } else if (strcmp(name, "host_func") == 0) {
            status = take_type(name, value, &host_func_class);
        } else if (strcmp(name, "host_trampolines") == 0) {
            void *raw = is_tuple(value) && PyTuple_Size(value) == 2 ? PyLong_AsVoidPtr(PyTuple_GetItem(value, 0))
                                                                    : NULL;
            void *checked = raw != NULL ? PyLong_AsVoidPtr(PyTuple_GetItem(value, 1)) : NULL;
            status = checked != NULL ? 0 : -1;
            if (status < 0 && !PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "host_trampolines must be (raw, checked) addresses");
            if (status == 0) {
                host_trampoline = (wasmtime_func_unchecked_callback_t)raw;
                checked_host_trampoline = (wasmtime_func_callback_t)checked;
            }
        } else if (strcmp(name, "write_extern") == 0) {
            status = take_callable(name, value, &python_write_extern);
        } else if (strcmp(name, "instantiation_failed") == 0) {
            status = take_callable(name, value, &python_instantiation_failed);
        } else {
            PyErr_Format(PyExc_TypeError, "values_configure() got an unknown keyword %R", key);
            status = -1;
        }
        if (status < 0)
            return NULL;
    }
    configured = handle_class != NULL && val_class != NULL && func_class != NULL && anyref_class != NULL &&
                 func_types != NULL && python_func_type != NULL &&
                 kind_valtypes[0] != NULL && kept_object != NULL && externref_finalizer != NULL &&
                 python_write_val != NULL && python_read_val != NULL && python_call != NULL &&
                 python_call_vals != NULL && python_call_failed != NULL && python_value_refused != NULL;
    Py_RETURN_NONE;
}

static PyMethodDef values_functions[] = {
    {"values_configure", (PyCFunction)(void (*)(void))values_configure, METH_VARARGS | METH_KEYWORDS,
     "values_configure(**objects): the classes and Python conversions values.c works with (wasmpy gives them)."},
    {"export_func", (PyCFunction)(void (*)(void))export_func, METH_FASTCALL,
     "export_func(store, handle, instance, name, functype): the exported Func, or NotImplemented (Python's path)."},
    {"bind_func", (PyCFunction)(void (*)(void))bind_func, METH_FASTCALL,
     "bind_func(func, store, func_address, functype, name): binds a new Func to a wasmtime_func_t (copied)."},
    {"make_host_func", (PyCFunction)(void (*)(void))make_host_func, METH_FASTCALL,
     "make_host_func(func, store, fn, functype, c_type_address, param_kinds, result_kinds, host, name)"},
    {"global_get", (PyCFunction)(void (*)(void))global_get, METH_FASTCALL,
     "global_get(store, handle, global_address, exact, declared): the value, or NotImplemented (Python's path)."},
    {"global_set", (PyCFunction)(void (*)(void))global_set, METH_FASTCALL,
     "global_set(store, handle, global_address, valtype, value): None, or NotImplemented (Python's path)."},
    {"table_get", (PyCFunction)(void (*)(void))table_get, METH_FASTCALL,
     "table_get(store, handle, table_address, index): the element, or NotImplemented (Python's path)."},
    {"instantiate", (PyCFunction)(void (*)(void))instantiate, METH_FASTCALL,
     "instantiate(store, handle, module_address, imports): the instance's bytes, or NotImplemented (Python's path)."},
    {"table_set", (PyCFunction)(void (*)(void))table_set, METH_FASTCALL,
     "table_set(store, handle, table_address, valtype, index, value): None, or NotImplemented (Python's path)."},
    {NULL},
};

/* Makes a type from `spec` (a heap type: the limited API has no static ones) and adds it as `name`. */
static int add_type(PyObject *module, PyType_Spec *spec, const char *name, PyTypeObject **type)
{
    PyObject *made = PyType_FromSpec(spec);
    if (made == NULL)
        return -1;
    *type = (PyTypeObject *)made; /* kept for the life of the process (single-phase init) */
    return PyModule_AddObjectRef(module, name, made);
}

/* weakref.ref, from the module that defines it (PyWeakref_CheckRef() names a private symbol). */
static PyTypeObject *find_weakref_type(void)
{
    PyObject *weakref_module = PyImport_ImportModule("_weakref");
    PyObject *found = weakref_module != NULL ? PyObject_GetAttrString(weakref_module, "ref") : NULL;
    Py_XDECREF(weakref_module);
    if (found != NULL && !PyType_Check(found)) {
        PyErr_SetString(PyExc_TypeError, "_weakref.ref is not a class");
        Py_CLEAR(found);
    }
    return (PyTypeObject *)found;
}

int values_add_to_module(PyObject *module)
{
    if (add_type(module, &funccall_spec, "FuncCall", &FuncCallType) < 0 ||
        add_type(module, &hostcall_spec, "HostCall", &HostCallType) < 0 ||
        PyModule_AddFunctions(module, values_functions) < 0)
        return -1;
    weakref_type = find_weakref_type();
    if (weakref_type == NULL)
        return -1;
    handle_name = PyUnicode_InternFromString("_handle");
    params_name = PyUnicode_InternFromString("params");
    results_name = PyUnicode_InternFromString("results");
    call_failure_name = PyUnicode_InternFromString("_call_failure");
    wasm_function_name = PyUnicode_InternFromString("wasm function");
    gc_bridge_name = PyUnicode_InternFromString("_gc_bridge");
    store_ref_name = PyUnicode_InternFromString("_store");
    rethrow_name = PyUnicode_InternFromString("rethrow");
    context_name = PyUnicode_InternFromString("_context");
    to_any_name = PyUnicode_InternFromString("to_any");
    to_extern_name = PyUnicode_InternFromString("to_extern");
    zero = PyLong_FromLong(0);
    empty_tuple = PyTuple_New(0);
    invoke_checked_name = PyUnicode_InternFromString("invoke_checked");
    write_checked_results_name = PyUnicode_InternFromString("write_checked_results");
    write_results_name = PyUnicode_InternFromString("write_results");
    sixty_four = PyLong_FromLong(64);
    PyObject *one = PyLong_FromLong(1);
    PyObject *bits127 = PyLong_FromLong(127), *bits128 = PyLong_FromLong(128);
    PyObject *top = one != NULL && bits127 != NULL ? PyNumber_Lshift(one, bits127) : NULL;
    v128_lowest = top != NULL ? PyNumber_Negative(top) : NULL;
    v128_limit = one != NULL && bits128 != NULL ? PyNumber_Lshift(one, bits128) : NULL;
    Py_XDECREF(one);
    Py_XDECREF(bits127);
    Py_XDECREF(bits128);
    Py_XDECREF(top);
    if (handle_name == NULL || params_name == NULL || results_name == NULL || call_failure_name == NULL ||
        wasm_function_name == NULL || empty_tuple == NULL || invoke_checked_name == NULL || gc_bridge_name == NULL ||
        to_any_name == NULL || to_extern_name == NULL || zero == NULL || store_ref_name == NULL ||
        rethrow_name == NULL || context_name == NULL ||
        write_checked_results_name == NULL || write_results_name == NULL || sixty_four == NULL ||
        v128_lowest == NULL || v128_limit == NULL)
        return -1;
    return 0;
}
