/* Records and tuples whose fields are all of the simple WIT types (bool, integers, floats, char,
 * string) converted in C, for the record and tuple codecs of wasmpy/component/_values.py: for a
 * record of two s32 (rich.wasm's point), the Python codecs take about 0.5 us to prepare it, 3 to
 * write it and 1.5 to read it, these 0.1, 0.4 and 0.4.
 *
 * Included into native.c after component/call.c, whose component_arg and component_result convert
 * each field with the rules of the C path of a call. A value prepare does not take as it is (not
 * of the record's exact class, a field of the wrong type, an int subclass, out of range, a lone
 * surrogate...) makes it return None: the Python way then explains the refusal or converts it,
 * so every error message lives in one place.
 *
 * What write makes is wasmtime's (valrecord_new_uninit, wasm_byte_vec_new for names and strings,
 * which are copied): a host function's results are freed by wasmtime, a call's arguments by
 * wasmtime_component_val_delete. Every field is converted before anything is allocated, so a
 * refusal leaves nothing half-made. */

/* The field kinds of `kinds` (bytes, each BOOL to STRING) in *out and their count in *count;
 * -1 with an exception if `kinds` is not that. */
static int component_field_kinds(PyObject *kinds, const char *function, const uint8_t **out, Py_ssize_t *count)
{
    char *data;
    if (!PyBytes_Check(kinds)) {
        PyErr_Format(PyExc_TypeError, "%s: kinds must be bytes", function);
        return -1;
    }
    if (PyBytes_AsStringAndSize(kinds, &data, count) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < *count; i++)
        if ((uint8_t)data[i] > WASMTIME_COMPONENT_STRING) {
            PyErr_Format(PyExc_ValueError, "%s: a field kind it does not convert (%d)", function, (uint8_t)data[i]);
            return -1;
        }
    *out = (const uint8_t *)data;
    return 0;
}

/* 0 if `fields` is an exact tuple of `count` items; -1 with an exception otherwise. */
static int component_field_tuple(PyObject *fields, Py_ssize_t count, const char *function, const char *what)
{
    if (!PyTuple_CheckExact(fields) || PyTuple_Size(fields) != count) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a tuple of one item per field", function, what);
        return -1;
    }
    return 0;
}

/* The address in the int `address` (a wasmtime_component_val_t *); NULL with an exception if it
 * is not a non-null address. */
static wasmtime_component_val_t *component_val_at(PyObject *address, const char *function)
{
    if (!PyLong_Check(address)) {
        PyErr_Format(PyExc_TypeError, "%s: the address must be an int", function);
        return NULL;
    }
    wasmtime_component_val_t *val = PyLong_AsVoidPtr(address);
    if (val == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "%s: a null address", function);
    return val;
}

/* 1 if component_arg takes every item of the tuple `items` for its kind as it is, 0 (no
 * exception) if not, -1 with an exception. */
static int component_fields_taken(PyObject *items, const uint8_t *kinds, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        wasmtime_component_val_t value;
        void *owned = NULL; /* stays NULL for kinds BOOL to STRING */
        PyObject *item = PyTuple_GetItem(items, i); /* borrowed */
        int taken = item == NULL ? -1 : component_arg(item, kinds[i], &value, &owned);
        if (taken <= 0)
            return taken;
    }
    return 1;
}

/* component_prepare_record(value, cls, attributes, kinds) -> tuple or None: the values of the
 * attributes (a tuple of str) of `value`, if it is an object of exactly `cls` whose attributes C
 * takes as they are for their kinds; None if the Python way must convert it. */
static PyObject *component_prepare_record(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    static const char function[] = "component_prepare_record";
    const uint8_t *kinds;
    Py_ssize_t count;
    if (nargs != 4 || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "component_prepare_record(value, cls, attributes, kinds)");
        return NULL;
    }
    if (component_field_kinds(args[3], function, &kinds, &count) < 0 ||
        component_field_tuple(args[2], count, function, "attributes") < 0)
        return NULL;
    PyObject *value = args[0], *attributes = args[2];
    if (Py_TYPE(value) != (PyTypeObject *)args[1])
        Py_RETURN_NONE; /* a mapping, another class with the attributes, a subclass: the Python way */
    PyObject *items = PyTuple_New(count);
    if (items == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *attribute = PyTuple_GetItem(attributes, i); /* borrowed */
        if (attribute == NULL || !PyUnicode_Check(attribute)) {
            Py_DECREF(items);
            if (attribute != NULL)
                PyErr_Format(PyExc_TypeError, "%s: attributes must be str", function);
            return NULL;
        }
        PyObject *item = PyObject_GetAttr(value, attribute); /* may run Python code: nothing is held yet */
        if (item == NULL) {
            Py_DECREF(items);
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return NULL;
            PyErr_Clear(); /* the Python way says which attribute is missing */
            Py_RETURN_NONE;
        }
        PyTuple_SetItem(items, i, item); /* steals item; cannot fail on a new tuple */
    }
    int taken = component_fields_taken(items, kinds, count);
    if (taken <= 0) {
        Py_DECREF(items);
        if (taken < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    return items;
}

/* component_prepare_tuple(value, kinds) -> tuple or None: `value` (an exact tuple or list of one
 * item per kind) as a tuple, if C takes every item as it is for its kind; None if the Python way
 * must convert it. */
static PyObject *component_prepare_tuple(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const uint8_t *kinds;
    Py_ssize_t count;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "component_prepare_tuple(value, kinds)");
        return NULL;
    }
    if (component_field_kinds(args[1], "component_prepare_tuple", &kinds, &count) < 0)
        return NULL;
    PyObject *items;
    if (PyTuple_CheckExact(args[0]))
        items = Py_NewRef(args[0]);
    else if (PyList_CheckExact(args[0]))
        items = PyList_AsTuple(args[0]); /* a copy: the list may change after prepare */
    else
        Py_RETURN_NONE;
    if (items == NULL)
        return NULL;
    int taken = PyTuple_Size(items) == count ? component_fields_taken(items, kinds, count) : 0;
    if (taken <= 0) {
        Py_DECREF(items);
        if (taken < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    return items;
}

/* The fields `prepared` (a tuple from component_prepare_record/_tuple) as values in `values`
 * (borrowing the strs' UTF-8, as component_arg does); -1 with an exception if one is not what
 * prepare makes. */
static int component_fields_convert(PyObject *prepared, const uint8_t *kinds, Py_ssize_t count,
                                    wasmtime_component_val_t *values, const char *function)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        void *owned = NULL; /* stays NULL for kinds BOOL to STRING */
        PyObject *item = PyTuple_GetItem(prepared, i); /* borrowed */
        int taken = item == NULL ? -1 : component_arg(item, kinds[i], &values[i], &owned);
        if (taken < 0)
            return -1;
        if (taken == 0) {
            PyErr_Format(PyExc_ValueError, "%s: field %zd is not a value prepare makes for its kind", function, i);
            return -1;
        }
    }
    return 0;
}

/* `*value` made wasmtime's in `*out`: a string is copied (`value` borrows it). */
static void component_field_copy(wasmtime_component_val_t *out, const wasmtime_component_val_t *value)
{
    *out = *value;
    if (value->kind == WASMTIME_COMPONENT_STRING)
        wasm_byte_vec_new(&out->of.string, value->of.string.size, value->of.string.data);
}

/* Room for `count` values: `small` (MAX_FAST_VALUES of them) or malloc'd; NULL with an exception. */
static wasmtime_component_val_t *component_field_values(Py_ssize_t count, wasmtime_component_val_t *small)
{
    if (count <= MAX_FAST_VALUES)
        return small;
    if ((size_t)count > SIZE_MAX / sizeof(wasmtime_component_val_t))
        return (wasmtime_component_val_t *)PyErr_NoMemory();
    wasmtime_component_val_t *values = malloc((size_t)count * sizeof(*values));
    if (values == NULL)
        PyErr_NoMemory();
    return values;
}

/* component_write_record(out_address, names, kinds, prepared): fills the wasmtime_component_val_t
 * at `out_address` with the record of fields `names` (a tuple of bytes, in the type's order) and
 * values `prepared` (component_prepare_record's). */
static PyObject *component_write_record(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    static const char function[] = "component_write_record";
    const uint8_t *kinds;
    Py_ssize_t count;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "component_write_record(out_address, names, kinds, prepared)");
        return NULL;
    }
    wasmtime_component_val_t *out = component_val_at(args[0], function);
    if (out == NULL || component_field_kinds(args[2], function, &kinds, &count) < 0 ||
        component_field_tuple(args[1], count, function, "names") < 0 ||
        component_field_tuple(args[3], count, function, "prepared") < 0)
        return NULL;
    PyObject *names = args[1];
    for (Py_ssize_t i = 0; i < count; i++)
        if (!PyBytes_Check(PyTuple_GetItem(names, i))) {
            PyErr_Format(PyExc_TypeError, "%s: names must be bytes", function);
            return NULL;
        }
    wasmtime_component_val_t small[MAX_FAST_VALUES];
    wasmtime_component_val_t *values = component_field_values(count, small);
    if (values == NULL)
        return NULL;
    if (component_fields_convert(args[3], kinds, count, values, function) < 0) {
        if (values != small)
            free(values);
        return NULL;
    }
    /* Nothing fails from here on: wasmtime's allocators abort on no memory. */
    wasmtime_component_valrecord_t record;
    wasmtime_component_valrecord_new_uninit(&record, (size_t)count);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyTuple_GetItem(names, i); /* borrowed, bytes: checked above */
        wasm_byte_vec_new(&record.data[i].name, (size_t)PyBytes_Size(name),
                          (const wasm_byte_t *)PyBytes_AsString(name));
        component_field_copy(&record.data[i].val, &values[i]);
    }
    if (values != small)
        free(values);
    out->kind = WASMTIME_COMPONENT_RECORD;
    out->of.record = record;
    Py_RETURN_NONE;
}

/* component_write_tuple(out_address, kinds, prepared): fills the wasmtime_component_val_t at
 * `out_address` with the tuple of values `prepared` (component_prepare_tuple's). */
static PyObject *component_write_tuple(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    static const char function[] = "component_write_tuple";
    const uint8_t *kinds;
    Py_ssize_t count;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "component_write_tuple(out_address, kinds, prepared)");
        return NULL;
    }
    wasmtime_component_val_t *out = component_val_at(args[0], function);
    if (out == NULL || component_field_kinds(args[1], function, &kinds, &count) < 0 ||
        component_field_tuple(args[2], count, function, "prepared") < 0)
        return NULL;
    wasmtime_component_val_t small[MAX_FAST_VALUES];
    wasmtime_component_val_t *values = component_field_values(count, small);
    if (values == NULL)
        return NULL;
    if (component_fields_convert(args[2], kinds, count, values, function) < 0) {
        if (values != small)
            free(values);
        return NULL;
    }
    wasmtime_component_valtuple_t tuple;
    wasmtime_component_valtuple_new_uninit(&tuple, (size_t)count);
    for (Py_ssize_t i = 0; i < count; i++)
        component_field_copy(&tuple.data[i], &values[i]);
    if (values != small)
        free(values);
    out->kind = WASMTIME_COMPONENT_TUPLE;
    out->of.tuple = tuple;
    Py_RETURN_NONE;
}

/* The Python value of a field `val` of kind `kind`; NULL with an exception if it is of another. */
static PyObject *component_field_read(const wasmtime_component_val_t *val, uint8_t kind, const char *function)
{
    if (val->kind != kind) { /* wasmtime made it from the type: never, unless misused */
        PyErr_Format(PyExc_SystemError, "%s: a field of another kind", function);
        return NULL;
    }
    return component_result(val, kind);
}

/* component_read_record(val_address, kinds, cls) -> cls(*fields): the record value at
 * `val_address` (a wasmtime_component_val_t * of fields of `kinds`); it stays the caller's. */
static PyObject *component_read_record(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    static const char function[] = "component_read_record";
    const uint8_t *kinds;
    Py_ssize_t count;
    if (nargs != 3 || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "component_read_record(val_address, kinds, cls)");
        return NULL;
    }
    const wasmtime_component_val_t *val = component_val_at(args[0], function);
    if (val == NULL || component_field_kinds(args[1], function, &kinds, &count) < 0)
        return NULL;
    if (val->kind != WASMTIME_COMPONENT_RECORD || val->of.record.size != (size_t)count) {
        PyErr_Format(PyExc_ValueError, "%s: not a record of %zd fields", function, count);
        return NULL;
    }
    PyObject *small[MAX_FAST_VALUES];
    PyObject **fields = count <= MAX_FAST_VALUES ? small : PyMem_Malloc((size_t)count * sizeof(PyObject *));
    if (fields == NULL)
        return PyErr_NoMemory();
    PyObject *record = NULL;
    Py_ssize_t made = 0;
    for (; made < count; made++) {
        fields[made] = component_field_read(&val->of.record.data[made].val, kinds[made], function);
        if (fields[made] == NULL)
            break;
    }
    if (made == count)
        record = PyObject_Vectorcall(args[2], fields, (size_t)count, NULL);
    for (Py_ssize_t i = 0; i < made; i++)
        Py_DECREF(fields[i]);
    if (fields != small)
        PyMem_Free(fields);
    return record;
}

/* component_read_tuple(val_address, kinds) -> tuple: the tuple value at `val_address` (a
 * wasmtime_component_val_t * of items of `kinds`); it stays the caller's. */
static PyObject *component_read_tuple(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    static const char function[] = "component_read_tuple";
    const uint8_t *kinds;
    Py_ssize_t count;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "component_read_tuple(val_address, kinds)");
        return NULL;
    }
    const wasmtime_component_val_t *val = component_val_at(args[0], function);
    if (val == NULL || component_field_kinds(args[1], function, &kinds, &count) < 0)
        return NULL;
    if (val->kind != WASMTIME_COMPONENT_TUPLE || val->of.tuple.size != (size_t)count) {
        PyErr_Format(PyExc_ValueError, "%s: not a tuple of %zd items", function, count);
        return NULL;
    }
    PyObject *tuple = PyTuple_New(count);
    if (tuple == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = component_field_read(&val->of.tuple.data[i], kinds[i], function);
        if (item == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SetItem(tuple, i, item); /* steals item; cannot fail on a new tuple */
    }
    return tuple;
}
