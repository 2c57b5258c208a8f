/* Keeping wasmtime's trap handler first in line for SIGSEGV, SIGILL, SIGFPE (and SIGBUS where
 * wasmtime uses it) when other code, faulthandler above all, installs its own handler later.
 * csrc/signals.c explains the chain. */

#ifndef WASMPY_SIGNALS_H
#define WASMPY_SIGNALS_H

#include <Python.h>

/* Called once from PyInit__native: makes wasmtime install its trap handler now (so that it is
 * known and can be put back first in line), and adds keep_trap_handlers_first() to `module`.
 * Returns 0, or -1 with a Python exception set. */
int wasmpy_signals_init(PyObject *module);

#endif
