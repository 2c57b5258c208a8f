/* wasmpy._buffer: a base class that exports a wasm linear memory through the
 * buffer protocol, so that memoryview(memory) works on every supported Python
 * (a pure-Python class can export a buffer only from 3.12 on, PEP 688).
 *
 * A subclass provides `_buffer_span()` returning (address, length) of the
 * memory's current bytes. The view keeps the exporting object alive, and the
 * count of live views lets the owner refuse to free memory still in use. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    Py_ssize_t exports;
} BufferExporter;

static int exporter_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    PyObject *span = PyObject_CallMethod(self, "_buffer_span", NULL);
    if (span == NULL)
        return -1;
    unsigned long long address;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(span, "Kn;_buffer_span() must return (address, length)", &address, &length)) {
        Py_DECREF(span);
        return -1;
    }
    Py_DECREF(span);
    if (length < 0) {
        PyErr_SetString(PyExc_BufferError, "negative buffer length");
        return -1;
    }
    if (PyBuffer_FillInfo(view, self, (void *)(uintptr_t)address, length, 0, flags) < 0)
        return -1;
    ((BufferExporter *)self)->exports++;
    return 0;
}

static void exporter_releasebuffer(PyObject *self, Py_buffer *view)
{
    (void)view;
    ((BufferExporter *)self)->exports--;
}

static PyBufferProcs exporter_as_buffer = {
    exporter_getbuffer,
    exporter_releasebuffer,
};

static PyMemberDef exporter_members[] = {
    {"_buffer_exports", T_PYSSIZET, offsetof(BufferExporter, exports), READONLY,
     "Number of live buffer views of this object."},
    {NULL},
};

static PyTypeObject BufferExporterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasmpy._buffer.BufferExporter",
    .tp_basicsize = sizeof(BufferExporter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base class exporting `_buffer_span()` through the buffer protocol.",
    .tp_as_buffer = &exporter_as_buffer,
    .tp_members = exporter_members,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef buffer_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wasmpy._buffer",
    .m_doc = "Buffer protocol support for wasm memories.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__buffer(void)
{
    if (PyType_Ready(&BufferExporterType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&buffer_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&BufferExporterType);
    if (PyModule_AddObject(module, "BufferExporter", (PyObject *)&BufferExporterType) < 0) {
        Py_DECREF(&BufferExporterType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
