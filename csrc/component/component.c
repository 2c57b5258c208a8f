/* wasmpy's own C helpers for components: see component/helpers.h. Included into the cffi
 * module's source after wasmpy.c (whose wasmpy_module_status and stack checks it shares). */

int wasmpy_component_new(wasm_engine_t *engine, wasm_engine_t *compiler, const uint8_t *wasm, size_t wasm_len,
                         size_t stack_needed, wasmtime_component_t **component, wasmtime_error_t **error)
{
    wasmtime_component_t *compiled;
    wasm_byte_vec_t code;
    wasmtime_error_t *result;

    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    if (compiler == engine)
        return wasmpy_module_status(wasmtime_component_new(engine, wasm, wasm_len, component), error);
    result = wasmtime_component_new(compiler, wasm, wasm_len, &compiled);
    if (result != NULL)
        return wasmpy_module_status(result, error);
    result = wasmtime_component_serialize(compiled, &code);
    wasmtime_component_delete(compiled);
    if (result != NULL)
        return wasmpy_module_status(result, error);
    result = wasmtime_component_deserialize(engine, (const uint8_t *)code.data, code.size, component);
    wasm_byte_vec_delete(&code);
    return wasmpy_module_status(result, error);
}

int wasmpy_component_deserialize(wasm_engine_t *engine, const uint8_t *bytes, size_t bytes_len,
                                 size_t stack_needed, wasmtime_component_t **component, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    return wasmpy_module_status(wasmtime_component_deserialize(engine, bytes, bytes_len, component), error);
}

int wasmpy_component_deserialize_file(wasm_engine_t *engine, const char *path, size_t stack_needed,
                                      wasmtime_component_t **component, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    return wasmpy_module_status(wasmtime_component_deserialize_file(engine, path, component), error);
}

int wasmpy_component_instantiate(const wasmtime_component_linker_t *linker, wasmtime_context_t *context,
                                 const wasmtime_component_t *component, wasmtime_component_instance_t *instance,
                                 size_t stack_needed, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    return wasmpy_module_status(wasmtime_component_linker_instantiate(linker, context, component, instance), error);
}

int wasmpy_component_call(const wasmtime_component_func_t *func, wasmtime_context_t *context,
                          const wasmtime_component_val_t *args, size_t nargs, wasmtime_component_val_t *results,
                          size_t nresults, size_t stack_needed, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    return wasmpy_module_status(wasmtime_component_func_call(func, context, args, nargs, results, nresults), error);
}

int wasmpy_component_resource_drop(wasmtime_context_t *context, const wasmtime_component_resource_any_t *resource,
                                   size_t stack_needed, wasmtime_error_t **error)
{
    if (!wasmpy_stack_allows(stack_needed))
        return 3;
    return wasmpy_module_status(wasmtime_component_resource_any_drop(context, resource), error);
}

void wasmpy_component_vals_delete(wasmtime_component_val_t *values, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        wasmtime_component_val_delete(&values[i]);
        /* wasmtime assigns a call's results over what the buffer holds, dropping it first: a reused
         * buffer must hold a value that owns nothing, never the freed one (a double free). */
        values[i].kind = WASMTIME_COMPONENT_BOOL;
        values[i].of.boolean = false;
    }
}
