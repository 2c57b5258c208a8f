"""The C command (tests/wasip2/command.c, adapted by jco's preview 1 adapter) run as a component."""

import io
import subprocess
from pathlib import Path

import pytest

import wasmpy
from wasmpy.component import Component

COMMAND = Path(__file__).parent / "wasip2" / "command.wasm"


def run_command(*args, **options):
    out = io.BytesIO()
    store = wasmpy.Store(wasi=wasmpy.WasiConfig(argv=["command", *args], stdout=out, **options))
    instance = wasmpy.Instance(Component(COMMAND.read_bytes()), None, store)
    return instance.exports["wasi:cli/run@0.2.12"].run(), out.getvalue()


def test_args_and_stdout():
    assert run_command("echo", "one", "two words") == (None, b"one\ntwo words\n")


def test_stdin_and_env():
    assert run_command("upper", stdin=b"abc\n") == (None, b"ABC\n")
    assert run_command("env", "GREETING", env={"GREETING": "hello"}) == (None, b"hello\n")


def test_nonzero_exit_is_an_exit_trap():
    with pytest.raises(wasmpy.ExitTrap) as failure:
        run_command("exit", "5")
    assert failure.value.code != 0


def test_read_only_preopen_refuses_writes(tmp_path):
    (tmp_path / "in.txt").write_text("kept")
    assert run_command("cat", "/data/in.txt", preopens=[(tmp_path, "/data", True)]) == (None, b"kept")
    with pytest.raises(wasmpy.ExitTrap):
        run_command("write", "/data/in.txt", "lost", preopens=[(tmp_path, "/data", True)])
    assert (tmp_path / "in.txt").read_text() == "kept"


ARGC_MODULE = """(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "argc") (result i32) (drop (call $sizes (i32.const 0) (i32.const 4))) (i32.load (i32.const 0))))"""


def test_one_wasi_config_for_a_module_and_a_component_in_one_store():
    out = io.BytesIO()
    store = wasmpy.Store(wasi=wasmpy.WasiConfig(argv=["command", "echo", "shared"], stdout=out))
    module = wasmpy.Instance(wasmpy.Module(ARGC_MODULE), {}, store)
    component = wasmpy.Instance(Component(COMMAND.read_bytes()), None, store)
    assert module.exports["argc"]() == 3
    assert component.exports["wasi:cli/run@0.2.12"].run() is None
    assert out.getvalue() == b"shared\n"
    with pytest.raises(wasmpy.WasmError):
        store.wasi = wasmpy.WasiConfig()  # the context was set once, for both


@pytest.fixture(scope="module")
def fetcher(tmp_path_factory):
    """A component importing wasi:http (wit/fetcher.wit, dummy exports), built by wasm-tools."""
    wit = Path(__file__).parent / "wasip2" / "wit"
    core, component = (tmp_path_factory.mktemp("fetcher") / name for name in ("core.wasm", "fetcher.wasm"))
    try:
        subprocess.run(["wasm-tools", "component", "embed", "--dummy", str(wit), "-w", "fetcher", "-o", str(core)],
                       check=True)
        subprocess.run(["wasm-tools", "component", "new", str(core), "-o", str(component)], check=True)
    except FileNotFoundError:
        pytest.skip("wasm-tools is not installed (it comes with the test extra)")
    return Component(component.read_bytes())


def test_wasi_http_import_is_a_link_error_unless_http_is_on(fetcher):
    with pytest.raises(wasmpy.LinkError, match="wasi:http/outgoing-handler.*http=True"):
        wasmpy.Instance(fetcher, None, wasmpy.Store())
    instance = wasmpy.Instance(fetcher, None, wasmpy.Store(wasi=wasmpy.WasiConfig(http=True)))
    assert "run" in instance.exports
