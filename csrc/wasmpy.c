/* wasmpy's own C helpers: see wasmpy.h. Included into the cffi module's source. */

#include "stack.h"

/* The result convention of wasmpy.h, for what a wasmtime call returned. */
static int wasmpy_status(wasmtime_error_t *result, wasm_trap_t *const *trap, wasmtime_error_t **error)
{
    *error = result;
    if (result != NULL)
        return 2;
    return *trap != NULL;
}

int wasmpy_call(wasmtime_context_t *context, const wasmtime_func_t *func, wasmtime_val_raw_t *values,
                size_t nvalues, size_t stack_needed, wasm_trap_t **trap, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    *trap = NULL;
    return wasmpy_status(wasmtime_func_call_unchecked(context, func, values, nvalues, trap), trap, error);
}

int wasmpy_call_checked(wasmtime_context_t *context, const wasmtime_func_t *func, const wasmtime_val_t *args,
                        size_t nargs, wasmtime_val_t *results, size_t nresults, size_t stack_needed,
                        wasm_trap_t **trap, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    *trap = NULL;
    return wasmpy_status(wasmtime_func_call(context, func, args, nargs, results, nresults, trap), trap, error);
}

int wasmpy_instantiate(wasmtime_context_t *context, const wasmtime_module_t *module,
                       const wasmtime_extern_t *imports, size_t nimports, wasmtime_instance_t *instance,
                       size_t stack_needed, wasm_trap_t **trap, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    *trap = NULL;
    return wasmpy_status(wasmtime_instance_new(context, module, imports, nimports, instance, trap), trap, error);
}

int wasmpy_linker_instantiate(const wasmtime_linker_t *linker, wasmtime_context_t *context,
                              const wasmtime_module_t *module, wasmtime_instance_t *instance,
                              size_t stack_needed, wasm_trap_t **trap, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    *trap = NULL;
    return wasmpy_status(wasmtime_linker_instantiate(linker, context, module, instance, trap), trap, error);
}
