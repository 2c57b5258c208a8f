/* All of wasmpy's declarations of the wasmtime C API, in dependency order.
 * Compiled code includes this, or wasmtime's own headers when building
 * against a release (WASMPY_REAL_HEADERS). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef WASMPY_REAL_HEADERS
#include <wasi.h>
#include <wasmtime.h>
#else
#include "types.h"
#include "engine.h"
#include "error.h"
#include "store.h"
#include "module.h"
#include "func.h"
#include "memory.h"
#include "global.h"
#include "table.h"
#include "instance.h"
#include "wasi.h"
#include "wat.h"
#include "component/types.h"
#include "component/component.h"
#include "component/val.h"
#include "component/func.h"
#include "component/linker.h"
#include "component/wasi.h"
#endif
