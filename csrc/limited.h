/* What wasmpy._native's C files (native.c, values.c) need of the C API on top of the limited API
 * of Python 3.11 they are built on (setup.py: Py_LIMITED_API=0x030B0000), so that one abi3 binary
 * serves 3.11 and every later Python: declarations 3.11's limited headers lack, and functions for
 * the macros the limited API does not have. Include it after <Python.h>. */

#ifndef WASMPY_LIMITED_H
#define WASMPY_LIMITED_H

#include <Python.h>

/* Vectorcall (PEP 590) joined the stable ABI in 3.12, with the flag bit and the nargsf offset
 * bit CPython has used since 3.8 and the functions 3.11 already exports (PyObject_Vectorcall,
 * PyVectorcall_Call: public in 3.11, outside its limited API). So they are declared here, for a
 * 3.11 build, as 3.12's limited headers declare them: 3.11's ABI is frozen with exactly these,
 * and from 3.12 on the stable ABI guarantees them, so the one binary links and behaves the same
 * on every Python from 3.11 on. Without them each call of a Func and each call of a host function
 * would build a tuple of its arguments. When the oldest supported Python is 3.12, this block goes
 * and nothing else changes. */
#if defined(Py_LIMITED_API) && Py_LIMITED_API + 0 < 0x030C0000
#define Py_TPFLAGS_HAVE_VECTORCALL (1UL << 11)
#define PY_VECTORCALL_ARGUMENTS_OFFSET ((size_t)1 << (8 * sizeof(size_t) - 1))
typedef PyObject *(*vectorcallfunc)(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames);
PyAPI_FUNC(PyObject *) PyObject_Vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                           PyObject *kwnames);
PyAPI_FUNC(PyObject *) PyVectorcall_Call(PyObject *callable, PyObject *tuple, PyObject *dict);
#endif

/* From 3.13 on, PyArg_ParseTuple() and the other functions with '#' formats read their lengths as
 * Py_ssize_t under their own names, so 3.13's headers no longer turn them, under PY_SSIZE_T_CLEAN,
 * into the _SizeT forms (gh-104922). 3.11 and 3.12 read Py_SSIZE_T_CLEAN's lengths only in those
 * forms and refuse '#' formats in the others ("PY_SSIZE_T_CLEAN macro must be defined for '#'
 * formats"), so a build for 3.11 made with 3.13's headers calls the _SizeT forms, declared here as
 * 3.12's headers declare them and map the names to them: every Python from 3.11 on exports them
 * (stable ABI). */
#if defined(Py_LIMITED_API) && Py_LIMITED_API + 0 < 0x030D0000 && PY_VERSION_HEX >= 0x030D0000 &&                \
    defined(PY_SSIZE_T_CLEAN)
PyAPI_FUNC(int) _PyArg_Parse_SizeT(PyObject *, const char *, ...);
PyAPI_FUNC(int) _PyArg_ParseTuple_SizeT(PyObject *, const char *, ...);
PyAPI_FUNC(int) _PyArg_ParseTupleAndKeywords_SizeT(PyObject *, PyObject *, const char *, char **, ...);
PyAPI_FUNC(int) _PyArg_VaParse_SizeT(PyObject *, const char *, va_list);
PyAPI_FUNC(int) _PyArg_VaParseTupleAndKeywords_SizeT(PyObject *, PyObject *, const char *, char **, va_list);
PyAPI_FUNC(PyObject *) _Py_BuildValue_SizeT(const char *, ...);
PyAPI_FUNC(PyObject *) _Py_VaBuildValue_SizeT(const char *, va_list);
PyAPI_FUNC(PyObject *) _PyObject_CallFunction_SizeT(PyObject *callable, const char *format, ...);
PyAPI_FUNC(PyObject *) _PyObject_CallMethod_SizeT(PyObject *obj, const char *name, const char *format, ...);
#define PyArg_Parse _PyArg_Parse_SizeT
#define PyArg_ParseTuple _PyArg_ParseTuple_SizeT
#define PyArg_ParseTupleAndKeywords _PyArg_ParseTupleAndKeywords_SizeT
#define PyArg_VaParse _PyArg_VaParse_SizeT
#define PyArg_VaParseTupleAndKeywords _PyArg_VaParseTupleAndKeywords_SizeT
#define Py_BuildValue _Py_BuildValue_SizeT
#define Py_VaBuildValue _Py_VaBuildValue_SizeT
#define PyObject_CallFunction _PyObject_CallFunction_SizeT
#define PyObject_CallMethod _PyObject_CallMethod_SizeT
#endif

/* PyVectorcall_NARGS(), which the limited API has as a function, not inline. */
static inline Py_ssize_t positional_count(size_t nargsf)
{
    return (Py_ssize_t)(nargsf & ~PY_VECTORCALL_ARGUMENTS_OFFSET);
}

/* Replaces the reference in `slot` (Py_XSETREF, which the limited API lacks). */
#define REPLACE_REF(slot, value)                                                                             \
    do {                                                                                                      \
        PyObject *replaced_ = (PyObject *)(slot);                                                             \
        (slot) = (value);                                                                                     \
        Py_XDECREF(replaced_);                                                                                \
    } while (0)

/* PyObject_CallOneArg() is not in the limited API: its vectorcall, with the slot before the
 * argument free for the callee to use (PY_VECTORCALL_ARGUMENTS_OFFSET). */
static inline PyObject *call_one_arg(PyObject *callable, PyObject *arg)
{
    PyObject *args[2] = {NULL, arg};
    return PyObject_Vectorcall(callable, args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* PyLong_Check() and the like call PyType_GetFlags() in the limited API; the exact types, which
 * are what calls pass almost always, are recognised by their type alone first. */
static inline int is_int(PyObject *value)
{
    return Py_IS_TYPE(value, &PyLong_Type) || PyLong_Check(value);
}

static inline int is_float(PyObject *value)
{
    return Py_IS_TYPE(value, &PyFloat_Type) || PyFloat_Check(value);
}

static inline int is_tuple(PyObject *value)
{
    return Py_IS_TYPE(value, &PyTuple_Type) || PyTuple_Check(value);
}

static inline int is_list(PyObject *value)
{
    return Py_IS_TYPE(value, &PyList_Type) || PyList_Check(value);
}

/* The __name__ of an object's type, for messages (the limited API has no tp_name); "object" if
 * even that fails, so that the error being reported is the one raised. */
static inline PyObject *type_name_of(PyObject *object)
{
    PyObject *name = PyType_GetName(Py_TYPE(object));
    if (name == NULL) {
        PyErr_Clear();
        name = PyUnicode_FromString("object");
    }
    return name;
}

/* Raises TypeError("<argument> must be <expected>, not <type of value>"); cold, so that it stays out
 * of the fast paths it is called from. */
static inline __attribute__((cold)) void raise_wrong_type(const char *argument, const char *expected,
                                                          PyObject *value)
{
    PyObject *name = type_name_of(value);
    if (name != NULL) {
        PyErr_Format(PyExc_TypeError, "%s must be %s, not %.100U", argument, expected, name);
        Py_DECREF(name);
    }
}

/* Frees an instance of one of this module's heap types, or of a subclass, and lets go of the
 * reference to its type that each instance of a heap type holds. */
static inline void free_instance(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    freefunc free_slot = (freefunc)PyType_GetSlot(type, Py_tp_free);
    free_slot(self);
    Py_DECREF(type);
}

/* Allocates an instance of `type` (one of this module's types or a subclass) through its tp_alloc. */
static inline PyObject *alloc_instance(PyTypeObject *type)
{
    allocfunc alloc_slot = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    return alloc_slot(type, 0);
}

#endif
