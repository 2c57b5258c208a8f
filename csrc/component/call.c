/* ComponentCaller: base class of wasmpy.component.ComponentFunc; calls component functions whose
 * parameters and result are all of the simple WIT types (bool, integers, floats, char, string),
 * lists of them, or records and tuples of them, without leaving C (but for what a value runs
 * itself: a record's attributes are looked up).
 *
 * Included into native.c (after Caller), whose StoreHandle, lock, GIL rules (call_wasm) and
 * output delivery it shares. The plan of a function (`kinds`, `result_kind`, `specs`) is made
 * once, from its reflected FuncType, by ComponentFunc (_instance._plan). A value the plan cannot
 * take as it is (the wrong type, out of range, a str with a lone surrogate, a str subclass, a
 * record of another class) makes the call go the Python way (`slow_call`), which converts
 * everything again and raises its own errors: so each error message lives in one place
 * (wasmpy/component/_values.py), and the two ways return the same values
 * (tests/test_component_fast.py and test_component_fast_plan.py call both). Records and tuples are
 * converted by records.c's functions, lists' results by lists.c's: the codecs' own conversions.
 *
 * Lifetimes: wasmtime borrows the arguments. A string points at the UTF-8 a `str` caches, alive
 * while the caller holds the argument: for the whole call; a list<string> borrows from a tuple
 * of its items held for the call (the list may change under it: an import may run). list<u8>
 * and other lists are copied into an array of values malloc'd for the call (a bytearray may
 * change under it); records and tuples are written by records.c into wasmtime's memory (strings
 * copied), deleted after the call. The result is the caller's (freed with
 * wasmtime_component_val_delete). A failed call is explained by Python (`failure`). */

/* Records and lists of simple types: records.c and lists.c, included after this file. */
static PyObject *component_prepare_record(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
static PyObject *component_prepare_tuple(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
static PyObject *component_write_record(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
static PyObject *component_write_tuple(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
static PyObject *component_read_record(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
static PyObject *component_read_tuple(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
static PyObject *component_unpack_list(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* The value kinds component_arg and component_result convert: wasmtime_component_valkind_t's
 * numbering, BOOL to STRING, and LIST for list<u8> (bytes, bytearray). A call's plan adds other
 * lists, records and tuples (COMPONENT_CALL_LAST_KIND). */
#define COMPONENT_FAST_LAST_KIND WASMTIME_COMPONENT_LIST
#define COMPONENT_BYTES WASMTIME_COMPONENT_LIST
#define COMPONENT_NO_RESULT 255

/* The exception a Python import of a component raised, on the thread whose call into wasm it ends
 * (set by the import's C callback in _instance.py, taken by the call that fails next; a call that
 * succeeds drops it: wasm handled the failure). Only ever set while a call into wasm runs on the
 * thread, and always taken or dropped when that call returns. */
static __thread PyObject *component_pending;

static PyObject *component_set_pending(PyObject *module, PyObject *exception)
{
    Py_INCREF(exception);
    REPLACE_REF(component_pending, exception);
    Py_RETURN_NONE;
}

static PyObject *component_take_pending(PyObject *module, PyObject *unused)
{
    PyObject *exception = component_pending;
    component_pending = NULL;
    return exception != NULL ? exception : Py_NewRef(Py_None);
}

static PyTypeObject *ComponentCallerType;

/* The last kind of a call's plan: those above, then records and tuples (and LIST for any list). */
#define COMPONENT_CALL_LAST_KIND WASMTIME_COMPONENT_TUPLE

/* CALLER_HEAD's failure: callable(self, status, error address) -> the exception to raise. */
typedef struct {
    CALLER_HEAD
    wasmtime_component_func_t func;
    int fast;                  /* the plan below holds */
    Py_ssize_t nparams;
    uint8_t kinds[MAX_FAST_VALUES];
    uint8_t result_kind;       /* COMPONENT_NO_RESULT: the function returns nothing */
    /* Of a LIST kind (parameters, then the result): its element kind, BOOL to STRING, or
     * COMPONENT_BYTES for list<u8> (bytes). */
    uint8_t elements[MAX_FAST_VALUES + 1];
    PyObject *specs;           /* NULL until bound with a plan; then a tuple, an item per parameter and
                                * one for the result: as in host.c, (field kinds, class, attributes,
                                * field names) for a record, (item kinds,) for a tuple; the element
                                * kind (an int) for a list but list<u8>; else None */
} ComponentCaller;

static int component_caller_traverse(ComponentCaller *self, visitproc visit, void *arg)
{
    Py_VISIT(self->specs);
    return caller_traverse((CallerHead *)self, visit, arg);
}

static int component_caller_clear(ComponentCaller *self)
{
    Py_CLEAR(self->specs);
    return caller_clear((CallerHead *)self);
}

static void component_caller_dealloc(ComponentCaller *self)
{
    PyObject_GC_UnTrack(self);
    component_caller_clear(self);
    free_instance((PyObject *)self);
}

/* Checks the spec of a value of plan kind `kind` (the records and tuples' items are checked by
 * records.c on use) and, where `element` is not NULL, sets it for a list; with `element` NULL a
 * list must be list<u8> (spec None). 0, or -1 with an exception naming `who`. */
static int component_check_spec(const char *who, int kind, PyObject *spec, uint8_t *element)
{
    if (kind == WASMTIME_COMPONENT_RECORD || kind == WASMTIME_COMPONENT_TUPLE) {
        Py_ssize_t size = kind == WASMTIME_COMPONENT_RECORD ? 4 : 1;
        if (!PyTuple_CheckExact(spec) || PyTuple_Size(spec) != size) {
            PyErr_Format(PyExc_TypeError, "%s: the spec of a %s must be a tuple of %zd items", who,
                         kind == WASMTIME_COMPONENT_RECORD ? "record" : "tuple", size);
            return -1;
        }
        return 0;
    }
    if (kind != WASMTIME_COMPONENT_LIST)
        return 0;
    if (spec == Py_None) {
        if (element != NULL)
            *element = COMPONENT_BYTES;
        return 0;
    }
    long number = element != NULL && PyLong_Check(spec) ? PyLong_AsLong(spec) : -1;
    /* list<u8> is bytes (spec None): a list of ints would not be what the Python way returns. */
    if (number < WASMTIME_COMPONENT_BOOL || number > WASMTIME_COMPONENT_STRING || number == WASMTIME_COMPONENT_U8) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, element != NULL ?
                         "%s: the spec of a list must be None (list<u8>) or its element kind, bool to string but u8" :
                         "%s: the spec of a list must be None (list<u8>, the only list planned here)", who);
        return -1;
    }
    *element = (uint8_t)number;
    return 0;
}

/* Checks a plan (for ComponentCaller and ComponentHost): `count` parameter kinds and `result_kind`
 * (COMPONENT_NO_RESULT: none), each at most `last_kind`, and `specs`, one per parameter and one
 * for the result (component_check_spec's, which fills `elements` where it is not NULL). 0, or -1
 * with an exception naming `who`. */
static int component_check_plan(const char *who, const char *kinds, Py_ssize_t count, int result_kind,
                                int last_kind, PyObject *specs, uint8_t *elements)
{
    if (count > MAX_FAST_VALUES) {
        PyErr_Format(PyExc_ValueError, "%s: too many parameters for the C path", who);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++)
        if ((uint8_t)kinds[i] > last_kind) {
            PyErr_Format(PyExc_ValueError, "%s: a parameter kind the C path does not convert", who);
            return -1;
        }
    if (result_kind != COMPONENT_NO_RESULT && (result_kind < 0 || result_kind > last_kind)) {
        PyErr_Format(PyExc_ValueError, "%s: a result kind the C path does not convert", who);
        return -1;
    }
    if (!PyTuple_CheckExact(specs) || PyTuple_Size(specs) != count + 1) {
        PyErr_Format(PyExc_TypeError, "%s: specs must be a tuple of one item per parameter and one for the result",
                     who);
        return -1;
    }
    for (Py_ssize_t i = 0; i <= count; i++)
        if (component_check_spec(who, i < count ? (uint8_t)kinds[i] : result_kind, PyTuple_GetItem(specs, i),
                                 elements != NULL ? &elements[i] : NULL) < 0)
            return -1;
    return 0;
}

static PyObject *component_caller_bind(ComponentCaller *self, PyObject *args)
{
    PyObject *handle, *slow_call, *failure, *plan, *specs;
    unsigned long long func_address;
    int result_kind;
    if (!PyArg_ParseTuple(args, "O!KOiOOO:_bind_component", StoreHandleType, &handle, &func_address, &plan,
                          &result_kind, &specs, &slow_call, &failure))
        return NULL;
    char *kinds = NULL;
    Py_ssize_t count = 0;
    uint8_t elements[MAX_FAST_VALUES + 1] = {0};
    if (plan != Py_None &&
        (PyBytes_AsStringAndSize(plan, &kinds, &count) < 0 ||
         component_check_plan("_bind_component", kinds, count, result_kind, COMPONENT_CALL_LAST_KIND, specs,
                              elements) < 0))
        return NULL;
    if (caller_bind_head((CallerHead *)self, handle, slow_call, failure) < 0)
        return NULL;
    self->fast = kinds != NULL;
    if (self->fast) {
        memcpy(self->kinds, kinds, count);
        memcpy(self->elements, elements, sizeof(elements));
        self->nparams = count;
        self->result_kind = (uint8_t)result_kind;
        Py_INCREF(specs);
        REPLACE_REF(self->specs, specs);
    }
    self->func = *(const wasmtime_component_func_t *)(uintptr_t)func_address;
    Py_RETURN_NONE;
}

/* The integer `value` (an exact int) in [low, high] as bits; 0 if it is not, without an exception. */
static int component_signed(PyObject *value, long long low, long long high, long long *out)
{
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (number == -1 && PyErr_Occurred()) || number < low || number > high) {
        PyErr_Clear();
        return 0;
    }
    *out = number;
    return 1;
}

/* The contents of an exact bytes or bytearray, what list<u8> takes as it is: 1; 0 for anything else. */
static int component_bytes_of(PyObject *value, const char **data, Py_ssize_t *size)
{
    if (PyBytes_CheckExact(value)) {
        *data = PyBytes_AsString(value);
        *size = PyBytes_Size(value);
        return 1;
    }
    if (PyByteArray_CheckExact(value)) {
        *data = PyByteArray_AsString(value);
        *size = PyByteArray_Size(value);
        return 1;
    }
    return 0;
}

/* Fills `out` (borrowing from `value`) if `value` is what the plan takes for `kind` as it is; 0
 * (no exception) if the Python way must take it, which explains the refusal or converts it; -1
 * with an exception (out of memory). What `out` needs freed after the call is left in `*owned`. */
static int component_arg(PyObject *value, uint8_t kind, wasmtime_component_val_t *out, void **owned)
{
    long long number;
    out->kind = kind;
    switch (kind) {
    case COMPONENT_BYTES: {
        const char *data;
        Py_ssize_t size;
        if (!component_bytes_of(value, &data, &size))
            return 0;
        wasmtime_component_val_t *elements = malloc((size > 0 ? (size_t)size : 1) * sizeof(*elements));
        if (elements == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < size; i++) {
            elements[i].kind = WASMTIME_COMPONENT_U8;
            elements[i].of.u8 = (uint8_t)data[i];
        }
        *owned = elements;
        out->of.list.size = (size_t)size;
        out->of.list.data = elements;
        return 1;
    }
    case WASMTIME_COMPONENT_BOOL:
        if (!PyBool_Check(value))
            return 0;
        out->of.boolean = value == Py_True;
        return 1;
    case WASMTIME_COMPONENT_U64: {
        if (!PyLong_CheckExact(value))
            return 0;
        unsigned long long bits = PyLong_AsUnsignedLongLong(value);
        if (bits == (unsigned long long)-1 && PyErr_Occurred()) { /* negative or too big */
            PyErr_Clear();
            return 0;
        }
        out->of.u64 = bits;
        return 1;
    }
    case WASMTIME_COMPONENT_F32:
    case WASMTIME_COMPONENT_F64: {
        double real;
        if (PyFloat_CheckExact(value))
            real = PyFloat_AsDouble(value);
        else if (PyLong_CheckExact(value)) {
            real = PyLong_AsDouble(value);
            if (real == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                return 0;
            }
        } else
            return 0;
        if (kind == WASMTIME_COMPONENT_F32)
            out->of.f32 = (float)real; /* as cffi stores a Python float in a C float */
        else
            out->of.f64 = real;
        return 1;
    }
    case WASMTIME_COMPONENT_CHAR: {
        if (!PyUnicode_Check(value) || PyUnicode_GetLength(value) != 1)
            return 0;
        Py_UCS4 code = PyUnicode_ReadChar(value, 0);
        if (code >= 0xD800 && code <= 0xDFFF) /* wasmtime aborts the process on a surrogate */
            return 0;
        out->of.character = code;
        return 1;
    }
    case WASMTIME_COMPONENT_STRING: {
        /* Exact str only: a subclass may override encode(), which the Python way calls. */
        if (!PyUnicode_CheckExact(value))
            return 0;
        Py_ssize_t size;
        /* Cached in the str; fails on a lone surrogate (wasmtime aborts on text that is not UTF-8). */
        const char *utf8 = PyUnicode_AsUTF8AndSize(value, &size);
        if (utf8 == NULL) {
            PyErr_Clear();
            return 0;
        }
        out->of.string.size = (size_t)size;
        out->of.string.data = (void *)utf8; /* wasmtime only reads it */
        return 1;
    }
    default:
        break;
    }
    if (!PyLong_CheckExact(value))
        return 0;
    switch (kind) {
    case WASMTIME_COMPONENT_S8:
        if (!component_signed(value, INT8_MIN, INT8_MAX, &number))
            return 0;
        out->of.s8 = (int8_t)number;
        return 1;
    case WASMTIME_COMPONENT_U8:
        if (!component_signed(value, 0, UINT8_MAX, &number))
            return 0;
        out->of.u8 = (uint8_t)number;
        return 1;
    case WASMTIME_COMPONENT_S16:
        if (!component_signed(value, INT16_MIN, INT16_MAX, &number))
            return 0;
        out->of.s16 = (int16_t)number;
        return 1;
    case WASMTIME_COMPONENT_U16:
        if (!component_signed(value, 0, UINT16_MAX, &number))
            return 0;
        out->of.u16 = (uint16_t)number;
        return 1;
    case WASMTIME_COMPONENT_S32:
        if (!component_signed(value, INT32_MIN, INT32_MAX, &number))
            return 0;
        out->of.s32 = (int32_t)number;
        return 1;
    case WASMTIME_COMPONENT_U32:
        if (!component_signed(value, 0, UINT32_MAX, &number))
            return 0;
        out->of.u32 = (uint32_t)number;
        return 1;
    case WASMTIME_COMPONENT_S64:
        if (!component_signed(value, INT64_MIN, INT64_MAX, &number))
            return 0;
        out->of.s64 = (int64_t)number;
        return 1;
    default:
        return 0;
    }
}

/* The Python value of a result of the plan's `kind` (the result is still the caller's to free). */
static PyObject *component_result(const wasmtime_component_val_t *val, uint8_t kind)
{
    switch (kind) {
    case WASMTIME_COMPONENT_BOOL: return PyBool_FromLong(val->of.boolean);
    case WASMTIME_COMPONENT_S8: return PyLong_FromLong(val->of.s8);
    case WASMTIME_COMPONENT_U8: return PyLong_FromLong(val->of.u8);
    case WASMTIME_COMPONENT_S16: return PyLong_FromLong(val->of.s16);
    case WASMTIME_COMPONENT_U16: return PyLong_FromLong(val->of.u16);
    case WASMTIME_COMPONENT_S32: return PyLong_FromLong(val->of.s32);
    case WASMTIME_COMPONENT_U32: return PyLong_FromUnsignedLong(val->of.u32);
    case WASMTIME_COMPONENT_S64: return PyLong_FromLongLong(val->of.s64);
    case WASMTIME_COMPONENT_U64: return PyLong_FromUnsignedLongLong(val->of.u64);
    case WASMTIME_COMPONENT_F32: return PyFloat_FromDouble(val->of.f32);
    case WASMTIME_COMPONENT_F64: return PyFloat_FromDouble(val->of.f64);
    case WASMTIME_COMPONENT_CHAR: return PyUnicode_FromOrdinal((int)val->of.character);
    case WASMTIME_COMPONENT_STRING:
        return PyUnicode_DecodeUTF8((const char *)val->of.string.data, (Py_ssize_t)val->of.string.size, NULL);
    case COMPONENT_BYTES: {
        size_t size = val->of.list.size;
        PyObject *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
        if (bytes == NULL)
            return NULL;
        char *data = PyBytes_AsString(bytes);
        for (size_t i = 0; i < size; i++)
            data[i] = (char)val->of.list.data[i].of.u8; /* wasmtime checked them against list<u8> */
        return bytes;
    }
    default:
        PyErr_SetString(PyExc_SystemError, "a component result kind the C path does not convert");
        return NULL;
    }
}

/* wasmtime_component_func_call, releasing the GIL as the store wants (as call_wasm does). */
static wasmtime_error_t *call_component(StoreHandle *handle, const wasmtime_component_func_t *func,
                                        const wasmtime_component_val_t *args, size_t nargs,
                                        wasmtime_component_val_t *results, size_t nresults)
{
    WasmEntry entry = enter_wasm(handle);
    wasmtime_error_t *error = wasmtime_component_func_call(func, handle->context, args, nargs, results, nresults);
    leave_wasm(entry);
    return error;
}

/* What an argument the plan made needs once the call is over. */
typedef struct {
    void *memory;   /* malloc'd for it: freed */
    PyObject *held; /* what its strings borrow from: released */
    int written;    /* written by records.c in wasmtime's memory: deleted */
} ComponentArgMade;

static void component_arg_release(wasmtime_component_val_t *value, ComponentArgMade *made)
{
    free(made->memory);
    Py_XDECREF(made->held);
    if (made->written)
        wasmtime_component_val_delete(value);
    *made = (ComponentArgMade){NULL, NULL, 0};
}

/* component_arg for a list of element kind `element` (BOOL to STRING): an exact list or tuple
 * whose every element component_arg takes, copied into an array malloc'd for the call. */
static int component_list_arg(PyObject *value, uint8_t element, wasmtime_component_val_t *out,
                              ComponentArgMade *made)
{
    PyObject *items;
    if (PyTuple_CheckExact(value))
        items = Py_NewRef(value);
    else if (PyList_CheckExact(value))
        /* The values borrow the strs' UTF-8: a tuple keeps them while an import may change the list.
         * Other elements are copied, and no Python code runs below: the list can be read as it is. */
        items = element == WASMTIME_COMPONENT_STRING ? PyList_AsTuple(value) : Py_NewRef(value);
    else
        return 0;
    if (items == NULL)
        return -1;
    int is_list = PyList_CheckExact(items);
    Py_ssize_t count = is_list ? PyList_Size(items) : PyTuple_Size(items);
    if ((size_t)count > SIZE_MAX / sizeof(wasmtime_component_val_t)) {
        Py_DECREF(items);
        PyErr_NoMemory();
        return -1;
    }
    wasmtime_component_val_t *values = malloc((count > 0 ? (size_t)count : 1) * sizeof(*values));
    if (values == NULL) {
        Py_DECREF(items);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = is_list ? PyList_GetItem(items, i) : PyTuple_GetItem(items, i); /* borrowed */
        void *owned = NULL; /* stays NULL for kinds BOOL to STRING */
        int taken = item == NULL ? -1 : component_arg(item, element, &values[i], &owned);
        if (taken <= 0) {
            free(values);
            Py_DECREF(items);
            return taken;
        }
    }
    out->kind = WASMTIME_COMPONENT_LIST;
    out->of.list.size = (size_t)count;
    out->of.list.data = values;
    made->memory = values;
    if (element == WASMTIME_COMPONENT_STRING)
        made->held = items;
    else
        Py_DECREF(items);
    return 1;
}

/* A record or tuple `value` (plan kind `kind`; `spec`: (kinds, class, attributes, names) or
 * (kinds,), checked when the plan was) prepared and written into `*out` by records.c, as the
 * codecs do: 1; 0 (no exception, nothing written) if records.c's prepare refuses it, for the
 * Python way to take; -1 with an exception. Shared by export calls and Python imports (host.c). */
static int component_write_compound(PyObject *value, uint8_t kind, PyObject *spec, wasmtime_component_val_t *out)
{
    PyObject *kinds = PyTuple_GetItem(spec, 0);
    int is_record = kind == WASMTIME_COMPONENT_RECORD;
    PyObject *prepared;
    if (is_record) {
        PyObject *args[] = {value, PyTuple_GetItem(spec, 1), PyTuple_GetItem(spec, 2), kinds};
        prepared = component_prepare_record(NULL, args, 4); /* may run Python code (attributes) */
    } else {
        PyObject *args[] = {value, kinds};
        prepared = component_prepare_tuple(NULL, args, 2);
    }
    if (prepared == NULL)
        return -1;
    if (prepared == Py_None) {
        Py_DECREF(prepared);
        return 0;
    }
    PyObject *address = PyLong_FromVoidPtr(out);
    PyObject *done = NULL;
    if (address != NULL && is_record) {
        PyObject *args[] = {address, PyTuple_GetItem(spec, 3), kinds, prepared};
        done = component_write_record(NULL, args, 4);
    } else if (address != NULL) {
        PyObject *args[] = {address, kinds, prepared};
        done = component_write_tuple(NULL, args, 3);
    }
    Py_XDECREF(address);
    Py_DECREF(prepared);
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    return 1;
}

/* component_arg for a record or tuple: what it writes is deleted after the call. */
static int component_compound_arg(PyObject *value, uint8_t kind, PyObject *spec, wasmtime_component_val_t *out,
                                  ComponentArgMade *made)
{
    int written = component_write_compound(value, kind, spec, out);
    if (written == 1)
        made->written = 1;
    return written;
}

/* Argument `index` converted by the plan into `out`, what it needs after the call in `*made`: 1;
 * 0 (no exception, nothing made) if the Python way must take it; -1 with an exception. */
static int component_caller_arg(ComponentCaller *self, Py_ssize_t index, PyObject *value,
                                wasmtime_component_val_t *out, ComponentArgMade *made)
{
    uint8_t kind = self->kinds[index];
    if (kind == WASMTIME_COMPONENT_LIST && self->elements[index] != COMPONENT_BYTES)
        return component_list_arg(value, self->elements[index], out, made);
    if (kind == WASMTIME_COMPONENT_RECORD || kind == WASMTIME_COMPONENT_TUPLE)
        return component_compound_arg(value, kind, PyTuple_GetItem(self->specs, index), out, made);
    return component_arg(value, kind, out, &made->memory);
}

/* A record or tuple value `val` (plan kind `kind`, spec as for component_write_compound) read by
 * records.c as the codecs read it; `val` stays its owner's. Shared by export results and import
 * arguments (host.c); NULL with an exception. */
static PyObject *component_read_compound(const wasmtime_component_val_t *val, uint8_t kind, PyObject *spec)
{
    PyObject *address = PyLong_FromVoidPtr((void *)val);
    if (address == NULL)
        return NULL;
    PyObject *value;
    if (kind == WASMTIME_COMPONENT_RECORD) {
        PyObject *args[] = {address, PyTuple_GetItem(spec, 0), PyTuple_GetItem(spec, 1)};
        value = component_read_record(NULL, args, 3);
    } else {
        PyObject *args[] = {address, PyTuple_GetItem(spec, 0)};
        value = component_read_tuple(NULL, args, 2);
    }
    Py_DECREF(address);
    return value;
}

/* The Python value of the plan's result `val` (still the caller's to free): as the codecs read it. */
static PyObject *component_caller_result(ComponentCaller *self, wasmtime_component_val_t *val)
{
    uint8_t kind = self->result_kind;
    int compound = kind == WASMTIME_COMPONENT_RECORD || kind == WASMTIME_COMPONENT_TUPLE;
    if (!compound && (kind != WASMTIME_COMPONENT_LIST || self->elements[self->nparams] == COMPONENT_BYTES))
        return component_result(val, kind);
    PyObject *spec = PyTuple_GetItem(self->specs, self->nparams); /* borrowed */
    if (compound)
        return component_read_compound(val, kind, spec);
    PyObject *address = PyLong_FromVoidPtr(val);
    if (address == NULL)
        return NULL;
    PyObject *args[] = {address, spec};
    PyObject *value = component_unpack_list(NULL, args, 2);
    Py_DECREF(address);
    return value;
}

static PyObject *component_call_planned(ComponentCaller *self, PyObject *const *args, Py_ssize_t nargs,
                                        const wasmtime_component_val_t *values);

static PyObject *component_caller_vectorcall(ComponentCaller *self, PyObject *const *args, size_t nargsf,
                                             PyObject *kwnames)
{
    Py_ssize_t nargs = positional_count(nargsf);
    if (!self->fast || nargs != self->nparams || (kwnames != NULL && PyTuple_Size(kwnames) != 0))
        return call_slow((CallerHead *)self, args, nargs, kwnames);

    wasmtime_component_val_t values[MAX_FAST_VALUES];
    ComponentArgMade made[MAX_FAST_VALUES] = {{NULL, NULL, 0}};
    Py_ssize_t converted = 0;
    int taken = 1;
    for (; converted < nargs; converted++) {
        taken = component_caller_arg(self, converted, args[converted], &values[converted], &made[converted]);
        if (taken <= 0)
            break;
    }
    PyObject *value = NULL;
    if (taken > 0)
        value = component_call_planned(self, args, nargs, values);
    for (Py_ssize_t i = 0; i < converted; i++)
        component_arg_release(&values[i], &made[i]);
    if (taken == 0) /* the refused argument made nothing: the ones before it are released above */
        return call_slow((CallerHead *)self, args, nargs, NULL); /* explains, or converts */
    return value;
}

/* The call, once its arguments are made. */
static PyObject *component_call_planned(ComponentCaller *self, PyObject *const *args, Py_ssize_t nargs,
                                        const wasmtime_component_val_t *values)
{
    StoreHandle *handle = self->handle;
    if (!wasmpy_stack_allows((size_t)handle->stack_needed))
        return call_slow((CallerHead *)self, args, nargs, NULL); /* raises RecursionError */
    if (handle_acquire(handle) < 0)
        return NULL;
    if (handle->context == NULL) {
        handle_release(handle);
        return call_slow((CallerHead *)self, args, nargs, NULL); /* raises: the store is closed */
    }
    int has_result = self->result_kind != COMPONENT_NO_RESULT;
    wasmtime_component_val_t result = {.kind = WASMTIME_COMPONENT_BOOL}; /* owns nothing until the call */
    wasmtime_error_t *error = call_component(handle, &self->func, values, (size_t)nargs, &result, has_result);
    int delivered = deliver_output(handle);
    if (error != NULL) {
        handle_release(handle);
        if (delivered < 0) /* the failure of the call itself comes first */
            PyErr_Clear();
        PyObject *exception = PyObject_CallFunction(self->failure, "OiK", (PyObject *)self, 2,
                                                    (unsigned long long)(uintptr_t)error);
        if (exception == NULL)
            return NULL;
        PyErr_SetObject((PyObject *)Py_TYPE(exception), exception);
        Py_DECREF(exception);
        return NULL;
    }
    Py_CLEAR(component_pending); /* raised by an import and handled by wasm: not a failure */
    PyObject *value = has_result ? component_caller_result(self, &result) : Py_NewRef(Py_None);
    if (has_result)
        wasmtime_component_val_delete(&result);
    handle_release(handle);
    if (delivered < 0)
        Py_CLEAR(value);
    return value;
}

static PyObject *component_caller_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    ComponentCaller *self = (ComponentCaller *)alloc_instance(type);
    if (self != NULL)
        self->vectorcall = (vectorcallfunc)component_caller_vectorcall;
    return (PyObject *)self;
}

static PyMethodDef component_caller_methods[] = {
    {"_bind_component", (PyCFunction)component_caller_bind, METH_VARARGS,
     "_bind_component(handle, func_address, param_kinds or None, result_kind, specs, slow_call, failure): "
     "param_kinds (bytes) and result_kind (255: none) are wasmtime value kinds, bool to string, list, record "
     "and tuple; specs: an item per parameter and one for the result, (field kinds, class, attributes, field "
     "names) for a record, (item kinds,) for a tuple, the element kind for a list (None: list<u8>, as bytes), "
     "else None; None for param_kinds: every call goes the Python way."},
    {NULL},
};

static PyMemberDef component_caller_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(ComponentCaller, vectorcall), READONLY},
    {NULL},
};

static PyType_Slot component_caller_slots[] = {
    {Py_tp_doc, "Base class of ComponentFunc: calls component functions of simple WIT types (and lists, records "
                "and tuples of them) in C."},
    {Py_tp_new, component_caller_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_dealloc, component_caller_dealloc},
    {Py_tp_traverse, component_caller_traverse},
    {Py_tp_clear, component_caller_clear},
    {Py_tp_methods, component_caller_methods},
    {Py_tp_members, component_caller_members},
    {0, NULL},
};

static PyType_Spec component_caller_spec = {
    .name = "wasmpy._native.ComponentCaller",
    .basicsize = sizeof(ComponentCaller),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = component_caller_slots,
};
