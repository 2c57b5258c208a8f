/* wasi.h: WASI configuration, shared by preview 1 modules and WASI 0.2 components. */

typedef struct wasi_config_t wasi_config_t;

wasi_config_t *wasi_config_new(void);
void wasi_config_delete(wasi_config_t *config);
bool wasi_config_set_argv(wasi_config_t *config, size_t argc, const char *argv[]);
void wasi_config_inherit_argv(wasi_config_t *config);
bool wasi_config_set_env(wasi_config_t *config, size_t envc, const char *names[], const char *values[]);
void wasi_config_inherit_env(wasi_config_t *config);
bool wasi_config_set_stdin_file(wasi_config_t *config, const char *path);
void wasi_config_set_stdin_bytes(wasi_config_t *config, wasm_byte_vec_t *binary);
void wasi_config_inherit_stdin(wasi_config_t *config);
bool wasi_config_set_stdout_file(wasi_config_t *config, const char *path);
void wasi_config_inherit_stdout(wasi_config_t *config);
bool wasi_config_set_stderr_file(wasi_config_t *config, const char *path);
void wasi_config_inherit_stderr(wasi_config_t *config);
void wasi_config_set_stdout_custom(wasi_config_t *config,
                                   ssize_t (*callback)(void *data, const unsigned char *buf, size_t len),
                                   void *data, void (*finalizer)(void *));
void wasi_config_set_stderr_custom(wasi_config_t *config,
                                   ssize_t (*callback)(void *data, const unsigned char *buf, size_t len),
                                   void *data, void (*finalizer)(void *));
void wasi_config_inherit_network(wasi_config_t *config);
void wasi_config_allow_ip_name_lookup(wasi_config_t *config, bool enable);
bool wasi_config_preopen_dir(wasi_config_t *config, const char *path, const char *guest_path, bool fs_mutable);
wasmtime_error_t *wasmtime_context_set_wasi(wasmtime_context_t *context, wasi_config_t *wasi);
/* wasi:http for components; only after wasmtime_context_set_wasi. */
void wasmtime_context_set_wasi_http(wasmtime_context_t *context);
