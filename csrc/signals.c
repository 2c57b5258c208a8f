/* wasm traps next to other fault handlers (faulthandler, crash reporters) in one process.
 *
 * wasmtime turns a wasm out-of-bounds access (SIGSEGV), `unreachable` (SIGILL) and an integer
 * division by zero (SIGFPE) into a Trap from its own signal handler, W: W recognises the fault by
 * the faulting instruction's address in the signal's context, points that context at wasmtime's
 * unwinder and returns. Any other fault W passes to the handler that was installed before it.
 * W only works when it gets the fault's own context. A handler installed over W later gets the
 * fault first, and faulthandler (faulthandler.enable() after wasmtime installed W) does not call
 * W with that context: it dumps the Python traceback, puts W back and raise()s the signal again,
 * so W sees a context inside raise(), not wasm, and the process dies of a wasm trap.
 *
 * So wasmpy keeps this chain, for each signal W handles:
 *
 *   below          what was installed before wasmpy (SIG_DFL, or faulthandler enabled first)
 *   not_wasm       wasmpy's handler, installed just before W so that W forwards to it
 *   W              wasmtime's handler (made to install itself at import: a throwaway engine)
 *   covered[1]     a handler installed over W later (say faulthandler.enable())
 *   top[1]         wasmpy's handler installed over that: it calls W with the fault's context
 *   covered[2], top[2], ... likewise, when yet another handler is installed over top[1]
 *
 * Every fault reaches W first, wherever W is in the chain: W handles wasm's own. Any other fault
 * W passes to not_wasm, which passes it on as if W were not there: if the fault came in through
 * top[k], to covered[k] (the handler top[k] took the place of); if it came to W directly (W is the
 * disposition again: what covered it has put it back), to `below`. Both kinds of chaining work:
 * a handler that calls the one it replaced (another copy of wasmtime) enters top[k-1] or W, and
 * one that puts back the one it replaced and raises the signal again (faulthandler) enters it
 * anew; each step goes one level down, and at SIG_DFL the disposition is reset and the faulting
 * instruction runs again, killing the process by the signal, as wasmtime itself does.
 *
 * Each level has its own top handler function, so the current disposition tells which level is
 * live. keep_trap_handlers_first() (run by wasmpy's faulthandler.enable/disable wrappers and at
 * every instantiation) queries the disposition of each signal: one of wasmpy's (W or a top[k]) is
 * the live level; anything else was installed over the live level, and is covered by a new one.
 *
 * The handlers only call async-signal-safe functions (sigaction) and the next handler, and keep
 * their state in static tables and one initial-exec thread-local (no allocation on first use). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "api.h"
#include "signals.h"

/* How many handlers, each installed over the last, wasmpy can cover. faulthandler's enable()
 * and disable() in any order need two; keep_trap_handlers_first() refuses more than this. */
#define COVER_LEVELS 8

typedef void (*siginfo_handler_t)(int, siginfo_t *, void *);

typedef struct {
    int signum;
    const char *name;
    int managed;                                /* W is installed on this signal */
    struct sigaction below;                     /* the disposition before wasmpy */
    struct sigaction wasmtime;                  /* W */
    struct sigaction covered[COVER_LEVELS + 1]; /* [k], k >= 1: what top[k] was installed over */
    int live_level;                             /* 0: W is the disposition; k: top[k] is */
} fault_chain_t;

/* SIGBUS: wasmtime uses it on some systems only; the chain is kept where W is installed. */
static fault_chain_t chains[] = {
    {.signum = SIGSEGV, .name = "SIGSEGV"},
    {.signum = SIGILL, .name = "SIGILL"},
    {.signum = SIGFPE, .name = "SIGFPE"},
    {.signum = SIGBUS, .name = "SIGBUS"},
};
#define CHAIN_COUNT (sizeof(chains) / sizeof(chains[0]))

/* The top handler through which this thread's current fault entered W: 0 if it entered W
 * directly, or once not_wasm has passed the fault on (a raise() from there enters afresh). */
static __thread int entered_level __attribute__((tls_model("initial-exec")));

static fault_chain_t *chain_for(int signum)
{
    for (size_t i = 0; i < CHAIN_COUNT; i++)
        if (chains[i].signum == signum)
            return &chains[i];
    return NULL;
}

/* Passes a signal to a handler as the kernel would, or, for SIG_DFL and SIG_IGN, makes that the
 * disposition and returns, so that the faulting instruction runs again and the signal's default
 * action happens with the fault's own state (as wasmtime does). */
static void pass_on(const struct sigaction *next, int signum, siginfo_t *info, void *context)
{
    if (next->sa_flags & SA_SIGINFO)
        next->sa_sigaction(signum, info, context);
    else if (next->sa_handler == SIG_DFL || next->sa_handler == SIG_IGN)
        (void)sigaction(signum, next, NULL);
    else
        next->sa_handler(signum);
}

/* W's predecessor: gets every fault that is not wasm's. */
static void not_wasm(int signum, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    fault_chain_t *chain = chain_for(signum);
    int level = entered_level;
    entered_level = 0;
    if (chain != NULL)
        pass_on(level > 0 ? &chain->covered[level] : &chain->below, signum, info, context);
    entered_level = level;
    errno = saved_errno;
}

static void enter_wasmtime(int level, int signum, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    fault_chain_t *chain = chain_for(signum);
    int outer = entered_level;
    entered_level = level;
    if (chain != NULL && chain->managed)
        chain->wasmtime.sa_sigaction(signum, info, context);
    entered_level = outer;
    errno = saved_errno;
}

#define TOP_HANDLER(k) \
    static void top_handler_##k(int signum, siginfo_t *info, void *context) { enter_wasmtime(k, signum, info, context); }
TOP_HANDLER(1)
TOP_HANDLER(2)
TOP_HANDLER(3)
TOP_HANDLER(4)
TOP_HANDLER(5)
TOP_HANDLER(6)
TOP_HANDLER(7)
TOP_HANDLER(8)
#undef TOP_HANDLER

static const siginfo_handler_t top_handlers[COVER_LEVELS + 1] = {
    NULL, top_handler_1, top_handler_2, top_handler_3, top_handler_4,
    top_handler_5, top_handler_6, top_handler_7, top_handler_8,
};

/* The flags wasmtime gives W: context access, nested faults, and the alternate signal stack. */
static struct sigaction handler_action(siginfo_handler_t handler)
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = handler;
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    return action;
}

/* The level a disposition is: 0 for W, k for top[k], -1 for anything not wasmpy's. */
static int level_of(const fault_chain_t *chain, const struct sigaction *action)
{
    if (!(action->sa_flags & SA_SIGINFO))
        return -1;
    if (action->sa_sigaction == chain->wasmtime.sa_sigaction)
        return 0;
    for (int k = 1; k <= COVER_LEVELS; k++)
        if (action->sa_sigaction == top_handlers[k])
            return k;
    return -1;
}

/* Puts wasmtime's handler first in line again on every signal where something replaced it. */
static PyObject *keep_trap_handlers_first(PyObject *module, PyObject *unused)
{
    for (size_t i = 0; i < CHAIN_COUNT; i++) {
        fault_chain_t *chain = &chains[i];
        if (!chain->managed)
            continue;
        struct sigaction current;
        if (sigaction(chain->signum, NULL, &current) != 0)
            return PyErr_SetFromErrno(PyExc_OSError);
        int level = level_of(chain, &current);
        if (level >= 0) {
            chain->live_level = level;
            continue;
        }
        int next_level = chain->live_level + 1;
        if (next_level > COVER_LEVELS)
            return PyErr_Format(PyExc_RuntimeError,
                                "%d %s handlers were installed one over another after wasmpy (it keeps track "
                                "of %d): wasm traps would kill the process",
                                next_level, chain->name, COVER_LEVELS);
        /* Recorded before top[next_level] can run. */
        chain->covered[next_level] = current;
        struct sigaction top = handler_action(top_handlers[next_level]);
        if (sigaction(chain->signum, &top, NULL) != 0)
            return PyErr_SetFromErrno(PyExc_OSError);
        chain->live_level = next_level;
    }
    Py_RETURN_NONE;
}

static PyMethodDef signals_methods[] = {
    {"keep_trap_handlers_first", keep_trap_handlers_first, METH_NOARGS,
     "Puts wasmtime's trap handler first in line again for the signals where another handler (e.g. "
     "faulthandler.enable()) replaced it; faults that are not wasm's still reach that handler."},
    {NULL},
};

/* Installs not_wasm, then makes wasmtime install W over it (a throwaway engine), and records W.
 * On a signal W did not take (wasmtime's handler already installed, or not used on this system)
 * the disposition is put back as it was. */
static int install_chains(void)
{
    struct sigaction forwarder = handler_action(not_wasm);
    for (size_t i = 0; i < CHAIN_COUNT; i++) {
        if (sigaction(chains[i].signum, &forwarder, &chains[i].below) != 0) {
            int saved_errno = errno;
            while (i-- > 0)
                (void)sigaction(chains[i].signum, &chains[i].below, NULL);
            errno = saved_errno;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    wasm_engine_t *engine = wasm_engine_new_with_config(wasm_config_new());
    if (engine != NULL)
        wasm_engine_delete(engine);
    for (size_t i = 0; i < CHAIN_COUNT; i++) {
        fault_chain_t *chain = &chains[i];
        struct sigaction current;
        if (sigaction(chain->signum, NULL, &current) == 0 && (current.sa_flags & SA_SIGINFO)
                && current.sa_sigaction != not_wasm) {
            chain->wasmtime = current;
            chain->managed = 1;
        }
        else {
            (void)sigaction(chain->signum, &chain->below, NULL);
        }
    }
    return 0;
}

int wasmpy_signals_init(PyObject *module)
{
    static int installed;
    if (PyModule_AddFunctions(module, signals_methods) < 0)
        return -1;
    if (installed)
        return 0;
    if (install_chains() < 0)
        return -1;
    installed = 1;
    return 0;
}
