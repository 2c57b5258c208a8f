/* component/wasi.h: wasi:http for component linkers (the store needs wasmtime_context_set_wasi_http). */

wasmtime_error_t *wasmtime_component_linker_add_wasi_http(wasmtime_component_linker_t *linker);
