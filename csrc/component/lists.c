/* Lists of simple WIT types (bool, integers, floats, char; string when read) converted in C, for
 * wasmpy/component/_values.py's list codec: a Python conversion per element costs about 0.6 us,
 * these about 10 ns.
 *
 * Included into native.c after component/call.c, whose component_arg and component_result convert
 * each element, with the same rules as the C path of a call: an element they do not take as it is
 * sends the whole list the Python way, which explains the refusal or converts it. */

/* component_pack_list(kind, items) -> bytes or None: the wasmtime_component_val_t array of
 * `items` (an exact list or tuple) for element kind `kind` (BOOL to CHAR: values owning no
 * memory, so the bytes can be copied into a vallist as they are); None if an element is not
 * what the C path takes as it is. */
static PyObject *component_pack_list(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "component_pack_list(kind, items)");
        return NULL;
    }
    long kind = PyLong_AsLong(args[0]);
    if (kind < WASMTIME_COMPONENT_BOOL || kind > WASMTIME_COMPONENT_CHAR) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "component_pack_list: an element kind it does not pack");
        return NULL;
    }
    PyObject *items = args[1];
    int is_list = PyList_CheckExact(items);
    if (!is_list && !PyTuple_CheckExact(items))
        Py_RETURN_NONE;
    /* No Python code runs below (component_arg takes exact ints, floats, bools and one-character
     * strs only), so a list cannot change under the loop; PyList_GetItem checks the index anyway. */
    Py_ssize_t count = is_list ? PyList_Size(items) : PyTuple_Size(items);
    if (count > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(wasmtime_component_val_t))
        return PyErr_NoMemory();
    PyObject *packed = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(wasmtime_component_val_t));
    if (packed == NULL)
        return NULL;
    char *data = PyBytes_AsString(packed);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *element = is_list ? PyList_GetItem(items, i) : PyTuple_GetItem(items, i); /* borrowed */
        wasmtime_component_val_t value;
        /* Zeroed: its padding and the union's unused bytes are copied into the bytes too, which
         * gave Python stack garbage (different bytes for equal lists). */
        memset(&value, 0, sizeof(value));
        void *owned = NULL; /* stays NULL for these kinds */
        int taken = element == NULL ? -1 : component_arg(element, (uint8_t)kind, &value, &owned);
        if (taken <= 0) {
            Py_DECREF(packed);
            if (taken < 0)
                return NULL;
            Py_RETURN_NONE;
        }
        memcpy(data + i * (Py_ssize_t)sizeof(value), &value, sizeof(value)); /* bytes are not aligned for it */
    }
    return packed;
}

/* component_unpack_list(val_address, kind) -> list: the Python list of the list value at
 * `val_address` (a wasmtime_component_val_t * whose elements wasmtime made of element kind
 * `kind`, BOOL to STRING); the value stays the caller's. */
static PyObject *component_unpack_list(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyLong_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "component_unpack_list(val_address, kind)");
        return NULL;
    }
    const wasmtime_component_val_t *val = (const wasmtime_component_val_t *)PyLong_AsVoidPtr(args[0]);
    if (val == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "component_unpack_list: a null address");
        return NULL;
    }
    long kind = PyLong_AsLong(args[1]);
    if (kind == -1 && PyErr_Occurred())
        return NULL;
    if (kind < WASMTIME_COMPONENT_BOOL || kind > WASMTIME_COMPONENT_STRING || val->kind != WASMTIME_COMPONENT_LIST) {
        PyErr_SetString(PyExc_ValueError, "component_unpack_list: not a list of a kind it unpacks");
        return NULL;
    }
    size_t count = val->of.list.size;
    const wasmtime_component_val_t *data = val->of.list.data;
    if (count > (size_t)PY_SSIZE_T_MAX)
        return PyErr_NoMemory();
    PyObject *list = PyList_New((Py_ssize_t)count);
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        if (data[i].kind != kind) { /* wasmtime made it from the list's type: never, unless misused */
            Py_DECREF(list);
            PyErr_SetString(PyExc_SystemError, "component_unpack_list: an element of another kind");
            return NULL;
        }
        PyObject *item = component_result(&data[i], (uint8_t)kind);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SetItem(list, (Py_ssize_t)i, item); /* steals item; cannot fail at a valid index */
    }
    return list;
}
