/* wasmpy's own C helpers: see wasmpy.h. Included into the cffi module's source. */

#include <errno.h>
#include <sys/mman.h>

#include "stack.h"

/* The result convention of wasmpy.h, for what a wasmtime call returned. */
static int wasmpy_status(wasmtime_error_t *result, wasm_trap_t *const *trap, wasmtime_error_t **error)
{
    *error = result;
    if (result != NULL)
        return 2;
    return *trap != NULL;
}

int wasmpy_stack_room(size_t *size, size_t *left)
{
    char here, *low;
    if (wasmpy_stack_bounds(&low, size) != 0)
        return -1;
    *left = &here > low ? (size_t)(&here - low) : 0;
    return 0;
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

/* The result convention of wasmpy_module_new, for what a wasmtime module call returned. */
static int wasmpy_module_status(wasmtime_error_t *result, wasmtime_error_t **error)
{
    *error = result;
    return result == NULL ? 0 : 2;
}

int wasmpy_module_new(wasm_engine_t *engine, wasm_engine_t *compiler, const uint8_t *wasm, size_t wasm_len,
                      size_t stack_needed, wasmtime_module_t **module, wasmtime_error_t **error)
{
    wasmtime_module_t *compiled;
    wasm_byte_vec_t code;
    wasmtime_error_t *result;

    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    if (compiler == engine)
        return wasmpy_module_status(wasmtime_module_new(engine, wasm, wasm_len, module), error);
    result = wasmtime_module_new(compiler, wasm, wasm_len, &compiled);
    if (result != NULL)
        return wasmpy_module_status(result, error);
    result = wasmtime_module_serialize(compiled, &code);
    wasmtime_module_delete(compiled);
    if (result != NULL)
        return wasmpy_module_status(result, error);
    result = wasmtime_module_deserialize(engine, (const uint8_t *)code.data, code.size, module);
    wasm_byte_vec_delete(&code);
    return wasmpy_module_status(result, error);
}

int wasmpy_module_validate(wasm_engine_t *engine, const uint8_t *wasm, size_t wasm_len, size_t stack_needed,
                           wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    return wasmpy_module_status(wasmtime_module_validate(engine, wasm, wasm_len), error);
}

int wasmpy_module_deserialize(wasm_engine_t *engine, const uint8_t *bytes, size_t bytes_len, size_t stack_needed,
                              wasmtime_module_t **module, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    return wasmpy_module_status(wasmtime_module_deserialize(engine, bytes, bytes_len, module), error);
}

int wasmpy_module_deserialize_file(wasm_engine_t *engine, const char *path, size_t stack_needed,
                                   wasmtime_module_t **module, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    return wasmpy_module_status(wasmtime_module_deserialize_file(engine, path, module), error);
}

int wasmpy_try_reserve(size_t inaccessible, size_t accessible)
{
    void *slots = MAP_FAILED, *tables = MAP_FAILED;
    int failure = 0;

    if (inaccessible > 0) {
        slots = mmap(NULL, inaccessible, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (slots == MAP_FAILED)
            return errno;
    }
    if (accessible > 0) {
        tables = mmap(NULL, accessible, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (tables == MAP_FAILED)
            failure = errno;
        else
            munmap(tables, accessible);
    }
    if (slots != MAP_FAILED)
        munmap(slots, inaccessible);
    return failure;
}
