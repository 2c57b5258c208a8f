/* ComponentHost: a Python function a component imports, called from wasm without leaving C when
 * its parameters and result are all of the simple WIT types (bool, integers, floats, char,
 * string; list<u8>) or records and tuples of the simple types but list<u8>: the C callback
 * converts the arguments, calls the function and converts its result. Every other import keeps
 * the cffi callback of wasmpy/component/_instance.py.
 *
 * Included into native.c after component/call.c and component/records.c: component_arg and
 * component_result convert the simple values with the rules of the C path of calls, records.c's
 * functions the records and tuples (their `spec`, from _instance.py's plan, is checked by them
 * on use); GIL handling is the core host trampoline's (enter_python/leave_python).
 *
 * A result C does not take as it is (the wrong type, out of range, a lone surrogate, a str
 * subclass, a mapping for a record) is handed to the Python way (`finish`, the codecs), which
 * converts it or raises its own error: every message lives in wasmpy/component/_values.py. The
 * function is called once whatever way its result goes. Measured on rich.wasm: call-log("hello")
 * (an export calling an import taking a string) 2.5 us the Python way, 0.85 us this way (0.4 of
 * which the call of the export); a record of two s32 through an import 2.5 us less.
 *
 * An exception raised here (by the function, the conversions or the store's lock) is kept with
 * component_pending, as _instance.py's callback does, and reaches the Python caller of the call
 * into wasm unchanged.
 *
 * Lifetimes: wasmtime lends the arguments for the call and owns the results once they are
 * written (strings are copied with wasm_byte_vec_new, lists made with its allocator). The object
 * is the callback's data: the store keeps it (_instance.py), for as long as wasm may call it. */

#define COMPONENT_HOST_ERROR "wasmpy: a Python import raised an exception" /* as _instance.py's callback */

typedef struct {
    PyObject_HEAD
    StoreHandle *handle;  /* the store's lock, held again while Python runs (as the Python way does) */
    PyObject *fn;         /* the Python function; NULL once cleared by the GC with its store */
    PyObject *invoke;     /* the whole call the Python way: callable(args_address, nargs, results_address,
                           * nresults) */
    PyObject *finish;     /* the Python way of a result: callable(value, results_address, nresults) */
    PyObject *specs;      /* a tuple, an item per parameter and one for the result: for a record
                           * (field kinds, class, attributes, field names), for a tuple (item kinds,),
                           * else None */
    Py_ssize_t nparams;
    uint8_t kinds[MAX_FAST_VALUES];
    uint8_t result_kind;  /* COMPONENT_NO_RESULT: the function returns nothing */
} ComponentHost;

/* The last kind of a plan: those of ComponentCaller's, then records and tuples. */
#define COMPONENT_HOST_LAST_KIND WASMTIME_COMPONENT_TUPLE

static int component_host_traverse(ComponentHost *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self));
    Py_VISIT((PyObject *)self->handle);
    Py_VISIT(self->fn);
    Py_VISIT(self->invoke);
    Py_VISIT(self->finish);
    Py_VISIT(self->specs);
    return 0;
}

static int component_host_clear(ComponentHost *self)
{
    Py_CLEAR(self->handle);
    Py_CLEAR(self->fn);
    Py_CLEAR(self->invoke);
    Py_CLEAR(self->finish);
    Py_CLEAR(self->specs);
    return 0;
}

static void component_host_dealloc(ComponentHost *self)
{
    PyObject_GC_UnTrack(self);
    component_host_clear(self);
    free_instance((PyObject *)self);
}

static PyObject *component_host_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *handle, *fn, *invoke, *finish, *specs;
    const char *kinds;
    Py_ssize_t count;
    int result_kind;
    if ((kwargs != NULL && PyDict_Size(kwargs) != 0) ||
        !PyArg_ParseTuple(args, "O!Oy#iO!OO:ComponentHost", StoreHandleType, &handle, &fn, &kinds, &count,
                          &result_kind, &PyTuple_Type, &specs, &invoke, &finish))
        return NULL;
    if (!PyCallable_Check(fn) || !PyCallable_Check(invoke) || !PyCallable_Check(finish)) {
        PyErr_SetString(PyExc_TypeError, "ComponentHost: fn, invoke and finish must be callable");
        return NULL;
    }
    if (component_check_plan("ComponentHost", kinds, count, result_kind, COMPONENT_HOST_LAST_KIND, specs, NULL) < 0)
        return NULL;
    ComponentHost *self = (ComponentHost *)alloc_instance(type);
    if (self == NULL)
        return NULL;
    self->handle = (StoreHandle *)Py_NewRef(handle);
    self->fn = Py_NewRef(fn);
    self->invoke = Py_NewRef(invoke);
    self->finish = Py_NewRef(finish);
    self->specs = Py_NewRef(specs);
    self->nparams = count;
    memcpy(self->kinds, kinds, (size_t)count);
    self->result_kind = (uint8_t)result_kind;
    return (PyObject *)self;
}

static PyObject *component_host_data_address(ComponentHost *self, PyObject *unused)
{
    return PyLong_FromVoidPtr(self);
}

/* Writes `value` into `*out` (wasmtime's once the callback returns) if C takes it as it is for
 * `kind`: 1; 0 (no exception, nothing written) if the Python way must; -1 with an exception. */
static int component_host_result(PyObject *value, uint8_t kind, wasmtime_component_val_t *out)
{
    if (kind == COMPONENT_BYTES) {
        const char *data;
        Py_ssize_t size;
        if (!component_bytes_of(value, &data, &size))
            return 0;
        /* No Python code runs below: a bytearray cannot change under the loop. */
        out->kind = WASMTIME_COMPONENT_LIST;
        wasmtime_component_vallist_new_uninit(&out->of.list, (size_t)size);
        for (Py_ssize_t i = 0; i < size; i++) {
            out->of.list.data[i].kind = WASMTIME_COMPONENT_U8;
            out->of.list.data[i].of.u8 = (uint8_t)data[i];
        }
        return 1;
    }
    wasmtime_component_val_t converted;
    void *owned = NULL; /* stays NULL for kinds BOOL to STRING */
    int taken = component_arg(value, kind, &converted, &owned);
    if (taken <= 0)
        return taken;
    *out = converted;
    if (kind == WASMTIME_COMPONENT_STRING) /* component_arg lends the str's UTF-8: wasmtime frees the result */
        wasm_byte_vec_new(&out->of.string, converted.of.string.size, converted.of.string.data);
    return 1;
}

/* The spec of parameter `index` (nparams: of the result); borrowed. */
static PyObject *component_host_spec_of(ComponentHost *host, Py_ssize_t index)
{
    return PyTuple_GetItem(host->specs, index); /* a tuple of nparams + 1 items: checked when made */
}

/* The Python value of the argument `val` (of the plan's kind for parameter `index`); NULL with an
 * exception. */
static PyObject *component_host_param(ComponentHost *host, Py_ssize_t index, wasmtime_component_val_t *val)
{
    uint8_t kind = host->kinds[index];
    if (kind <= COMPONENT_FAST_LAST_KIND)
        return component_result(val, kind);
    return component_read_compound(val, kind, component_host_spec_of(host, index));
}

/* The call, once the store's lock is held: 0, or -1 with an exception. */
static int component_host_invoke(ComponentHost *host, wasmtime_component_val_t *args, size_t nargs,
                                 wasmtime_component_val_t *results, size_t nresults)
{
    int planned = nargs == (size_t)host->nparams;
    for (size_t i = 0; planned && i < nargs; i++)
        planned = args[i].kind == host->kinds[i]; /* wasmtime made them from the type: always, unless misused */
    if (!planned) {
        PyObject *done = PyObject_CallFunction(host->invoke, "KnKn", (unsigned long long)(uintptr_t)args,
                                               (Py_ssize_t)nargs, (unsigned long long)(uintptr_t)results,
                                               (Py_ssize_t)nresults);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    PyObject *values[MAX_FAST_VALUES];
    size_t made = 0;
    for (; made < nargs; made++) {
        values[made] = component_host_param(host, (Py_ssize_t)made, &args[made]);
        if (values[made] == NULL)
            break;
    }
    PyObject *value = made == nargs ? PyObject_Vectorcall(host->fn, values, nargs, NULL) : NULL;
    for (size_t i = 0; i < made; i++)
        Py_DECREF(values[i]);
    if (value == NULL)
        return -1;
    int taken;
    if (host->result_kind == COMPONENT_NO_RESULT)
        taken = value == Py_None;
    else if (nresults == 0) /* wasmtime wants no result written: the Python way checks the value only */
        taken = 0;
    else if (host->result_kind > COMPONENT_FAST_LAST_KIND)
        taken = component_write_compound(value, host->result_kind, component_host_spec_of(host, host->nparams),
                                         &results[0]);
    else
        taken = component_host_result(value, host->result_kind, &results[0]);
    if (taken == 0) { /* explains the refusal, or converts and writes the value */
        PyObject *done = PyObject_CallFunction(host->finish, "OKn", value, (unsigned long long)(uintptr_t)results,
                                               (Py_ssize_t)nresults);
        taken = done == NULL ? -1 : 1;
        Py_XDECREF(done);
    }
    Py_DECREF(value);
    return taken < 0 ? -1 : 0;
}

/* The exception set, kept for the call into wasm it ends (as component_set_pending does). */
static void component_host_keep_raised(void)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value != NULL && traceback != NULL)
        PyException_SetTraceback(value, traceback);
    REPLACE_REF(component_pending, value); /* takes the reference */
    Py_XDECREF(type);
    Py_XDECREF(traceback);
}

/* wasmtime_component_func_callback_t of every ComponentHost (`data`). */
static wasmtime_error_t *component_host_call(void *data, wasmtime_context_t *context,
                                             const wasmtime_component_func_type_t *type,
                                             wasmtime_component_val_t *args, size_t nargs,
                                             wasmtime_component_val_t *results, size_t nresults)
{
    (void)context;
    (void)type;
    PythonEntry entry = enter_python();
    ComponentHost *host = (ComponentHost *)data;
    /* Held for the call: the store's list is its only other owner, and the Python code run here
     * (the function, a record's attributes, the Python way) may drop it (clear the list, free the
     * store's host functions), which freed the object the rest of the call reads. */
    Py_INCREF((PyObject *)host);
    int status = -1;
    if (host->fn == NULL) /* cleared by Python's GC with its store: nothing can call it any more */
        set_wasm_error("this host function's store is being freed");
    else if (handle_acquire(host->handle) == 0) {
        status = component_host_invoke(host, args, nargs, results, nresults);
        if (handle_release(host->handle) < 0)
            status = -1;
    }
    wasmtime_error_t *error = NULL;
    if (status < 0) {
        component_host_keep_raised();
        error = wasmtime_error_new(COMPONENT_HOST_ERROR);
    }
    Py_DECREF((PyObject *)host);
    leave_python(entry, 0);
    return error;
}

static PyObject *component_host_callback_address(PyObject *module, PyObject *unused)
{
    return PyLong_FromVoidPtr((void *)&component_host_call);
}

static PyMethodDef component_host_methods[] = {
    {"data_address", (PyCFunction)component_host_data_address, METH_NOARGS,
     "The address to give wasmtime as the data of component_host_callback_address()'s callback."},
    {NULL},
};

static PyType_Slot component_host_slots[] = {
    {Py_tp_doc, "ComponentHost(handle, fn, param_kinds, result_kind, specs, invoke, finish): what the C callback "
                "of a component's Python import of simple WIT types needs (kinds as for ComponentCaller's plan, "
                "and record and tuple, whose specs say more; "
                "invoke(args_address, nargs, results_address, nresults): the whole call the Python way; "
                "finish(value, results_address, nresults): a result C does not take, the Python way)."},
    {Py_tp_new, component_host_new},
    {Py_tp_dealloc, component_host_dealloc},
    {Py_tp_traverse, component_host_traverse},
    {Py_tp_clear, component_host_clear},
    {Py_tp_methods, component_host_methods},
    {0, NULL},
};

static PyType_Spec component_host_spec = {
    .name = "wasmpy._native.ComponentHost",
    .basicsize = sizeof(ComponentHost),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = component_host_slots,
};
