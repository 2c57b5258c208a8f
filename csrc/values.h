/* values.c, seen from native.c: conversions between Python values and wasm values in C.
 *
 * native.c calls values_add_to_module() from its module init; everything else of values.c is
 * reached from Python (wasmpy._native.values_configure, FuncCall, HostCall, global_get, ...).
 *
 * What values.c needs of native.c's StoreHandle, and how it gets it today: through the type's
 * Python-level methods and attributes, looked up once (values_configure) and called as C
 * descriptors, so values.c depends on no internal of native.c:
 *   acquire(), release()          the store's lock (reentrant, interruptible, deadlock-checked)
 *   context                       the wasmtime_context_t address (WasmError once closed)
 *   stack_needed                  native stack bytes a call into wasm may use
 *   flush_output()                WASI output written while wasm ran, delivered
 *   keep_for_externref(object)    the data of a new externref (freed by externref_drop_address())
 *   kept_object(address)          (module function) the object of such data
 * Each costs a descriptor call (about 40 to 80 instructions, a Python int for the addresses).
 * Direct C entry points in native.c would make them a few instructions each, e.g.
 *   int wasmpy_handle_acquire(PyObject *handle);   int wasmpy_handle_release(PyObject *handle);
 *   wasmtime_context_t *wasmpy_handle_context(PyObject *handle);   (NULL, no exception, once closed)
 *   size_t wasmpy_handle_stack_needed(PyObject *handle);   int wasmpy_handle_flush(PyObject *handle);
 *   void *wasmpy_keep_for_externref(PyObject *handle, PyObject *object);
 *   PyObject *wasmpy_kept_object(void *data);          (a new reference)
 * declared here and defined (not static) in native.c; values.c would then call them instead. */

#ifndef WASMPY_VALUES_H
#define WASMPY_VALUES_H

#include <Python.h>

/* Adds values.c's types and functions to the module wasmpy._native; 0, or -1 with an exception set. */
int values_add_to_module(PyObject *module);

#endif
