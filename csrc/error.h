/* wasm.h / wasmtime/error.h / wasmtime/trap.h: errors, traps and backtraces. */

typedef struct wasmtime_error wasmtime_error_t;
wasmtime_error_t *wasmtime_error_new(const char *message);
void wasmtime_error_delete(wasmtime_error_t *error);
void wasmtime_error_message(const wasmtime_error_t *error, wasm_name_t *message);
bool wasmtime_error_exit_status(const wasmtime_error_t *error, int *status);

typedef struct wasm_frame_t wasm_frame_t;
typedef struct wasm_frame_vec_t {
    size_t size;
    wasm_frame_t **data;
} wasm_frame_vec_t;
void wasm_frame_vec_delete(wasm_frame_vec_t *vec);
uint32_t wasm_frame_func_index(const wasm_frame_t *frame);
size_t wasm_frame_func_offset(const wasm_frame_t *frame);
size_t wasm_frame_module_offset(const wasm_frame_t *frame);
const wasm_name_t *wasmtime_frame_func_name(const wasm_frame_t *frame);
const wasm_name_t *wasmtime_frame_module_name(const wasm_frame_t *frame);
void wasmtime_error_wasm_trace(const wasmtime_error_t *error, wasm_frame_vec_t *out);

typedef struct wasm_trap_t wasm_trap_t;
void wasm_trap_delete(wasm_trap_t *trap);
void wasm_trap_message(const wasm_trap_t *trap, wasm_message_t *out);
void wasm_trap_trace(const wasm_trap_t *trap, wasm_frame_vec_t *out);
wasm_trap_t *wasmtime_trap_new(const char *msg, size_t msg_len);

typedef uint8_t wasmtime_trap_code_t;
bool wasmtime_trap_code(const wasm_trap_t *trap, wasmtime_trap_code_t *code);

/* wasmtime/config.h, declared here for wasmtime_error_t: loads wasmtime's compilation cache
 * settings from a TOML file (NULL: its default file). */
wasmtime_error_t *wasmtime_config_cache_config_load(wasm_config_t *config, const char *path);
