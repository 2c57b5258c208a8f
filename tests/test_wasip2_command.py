"""The C command (tests/wasip2/command.c, adapted by jco's preview 1 adapter) run as a component,
by hand and by ``wasmpy.run``; commands written in WAT for what the adapter never does
(``exit-with-code``, ``run`` returning an error, another WASI 0.2 version)."""

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wasmpy
from childproc import child_json, run_python
from wasmpy.component import Component

COMMAND = Path(__file__).parent / "wasip2" / "command.wasm"
RICH = Path(__file__).parent / "components" / "rich.wasm"


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
    wasm_tools = find_wasm_tools()
    if wasm_tools is None:
        pytest.skip("wasm-tools is not installed (it comes with the test extra)")
    subprocess.run([wasm_tools, "component", "embed", "--dummy", str(wit), "-w", "fetcher", "-o", str(core)],
                   check=True)
    subprocess.run([wasm_tools, "component", "new", str(core), "-o", str(component)], check=True)
    return Component(component.read_bytes())


def find_wasm_tools():
    """The wasm-tools of the test extra: beside this Python first (its venv's bin, which need not be
    on PATH when pytest runs as /path/venv/bin/pytest), else on PATH; None if there is none."""
    return shutil.which("wasm-tools", path=os.path.dirname(sys.executable)) or shutil.which("wasm-tools")


def test_wasi_http_import_is_a_link_error_unless_http_is_on(fetcher):
    with pytest.raises(wasmpy.LinkError, match="wasi:http/outgoing-handler.*http=True"):
        wasmpy.Instance(fetcher, None, wasmpy.Store())
    instance = wasmpy.Instance(fetcher, None, wasmpy.Store(wasi=wasmpy.WasiConfig(http=True)))
    assert "run" in instance.exports


def test_find_wasm_tools_looks_beside_python_first(monkeypatch):
    beside = shutil.which("wasm-tools", path=os.path.dirname(sys.executable))
    if beside is None:
        pytest.skip("no wasm-tools beside this Python (not a venv with the test extra)")
    monkeypatch.setenv("PATH", os.defpath)
    assert find_wasm_tools() == beside


# --- wasmpy.run: the adapted C command

def run_tool(*args, **options):
    out = io.BytesIO()
    code = wasmpy.run(COMMAND, ["command", *args], stdout=out, **options)
    return code, out.getvalue()


def test_run_a_command_component_with_args_and_stdout():
    assert run_tool("echo", "one", "two words") == (0, b"one\ntwo words\n")


def test_run_a_command_component_with_stdin_and_env():
    assert run_tool("upper", stdin=b"abc\n") == (0, b"ABC\n")
    assert run_tool("env", "GREETING", env={"GREETING": "hello"}) == (0, b"hello\n")
    assert run_tool("env", "GREETING") == (1, b"")  # exits with 3: the adapter makes every non-zero code 1


def test_run_a_command_component_exit_codes():
    assert run_tool("exit", "0") == (0, b"")
    # The preview 1 adapter calls wasi:cli/exit's exit(err) for any non-zero proc_exit: 1.
    assert run_tool("exit", "5") == (1, b"")
    assert run_tool("exit", "1") == (1, b"")


def test_run_a_command_component_with_a_read_only_preopen(tmp_path):
    (tmp_path / "in.txt").write_text("kept")
    assert run_tool("cat", "/data/in.txt", preopens=[(tmp_path, "/data", True)]) == (0, b"kept")
    code, out = run_tool("write", "/data/in.txt", "lost", preopens=[(tmp_path, "/data", True)])
    assert code == 1 and out.startswith(b"cannot write /data/in.txt")
    assert (tmp_path / "in.txt").read_text() == "kept"
    assert run_tool("write", "/data/new.txt", "made", preopens=[(tmp_path, "/data")]) == (0, b"")
    assert (tmp_path / "new.txt").read_text() == "made"


def test_run_takes_a_component_object_and_names_it_in_argv0():
    out = io.BytesIO()
    assert wasmpy.run(Component.from_file(COMMAND), stdout=out, stderr=out) == 1  # no subcommand: usage
    assert out.getvalue().startswith(b"usage: component ")


def test_run_a_component_that_is_not_a_command_is_an_error():
    with pytest.raises(TypeError, match=r"rich\.wasm is not a WASI command.*wasi:cli/run.*"
                                        r"greet, .*test:rich/api@0\.1\.0"):
        wasmpy.run(RICH)
    with pytest.raises(TypeError, match=r"component is not a WASI command.*this one exports nothing"):
        wasmpy.run(Component("(component)"))


# --- commands in WAT: what the adapter never does

def command_wat(body, version="0.2.12", run_type="(result (result))", tell=True):
    """A component exporting wasi:cli/run@VERSION whose run is the core function BODY (returning
    run's result as an i32: 0 ok, 1 err), which may call $exit (i32: 0 ok, 1 err), $exit_with_code
    (i32, a u8) and, if ``tell``, $tell (i32: the world-level import tell: func(n: u32))."""
    tell_import, tell_lower, tell_core, tell_given = (
        '(import "tell" (func $tell (param "n" u32)))', "(core func $tell (canon lower (func $tell)))",
        '(import "" "tell" (func $tell (param i32)))', '(export "tell" (func $tell))') if tell else ("",) * 4
    return f"""(component
  (import "wasi:cli/exit@0.2.12" (instance $exit
    (export "exit" (func (param "status" (result))))
    (export "exit-with-code" (func (param "status-code" u8)))))
  {tell_import}
  (core func $exit (canon lower (func $exit "exit")))
  (core func $exit_with_code (canon lower (func $exit "exit-with-code")))
  {tell_lower}
  (core module $m
    (import "" "exit" (func $exit (param i32)))
    (import "" "exit-with-code" (func $exit_with_code (param i32)))
    {tell_core}
    (func (export "run") (result i32) {body}))
  (core instance $i (instantiate $m (with "" (instance (export "exit" (func $exit))
    (export "exit-with-code" (func $exit_with_code)) {tell_given}))))
  (func $run {run_type} (canon lift (core func $i "run")))
  (instance $runner (export "run" (func $run)))
  (export "wasi:cli/run@{version}" (instance $runner)))"""


EXIT_CASES = {
    "run returns ok": ("(i32.const 0)", 0),
    "run returns err": ("(i32.const 1)", 1),
    "exit(ok)": ("(call $exit (i32.const 0)) (i32.const 1)", 0),
    "exit(err)": ("(call $exit (i32.const 1)) (i32.const 0)", 1),
    "exit-with-code(5)": ("(call $exit_with_code (i32.const 5)) (i32.const 0)", 5),
    "exit-with-code(255)": ("(call $exit_with_code (i32.const 255)) (i32.const 0)", 255),
    "exit-with-code(0)": ("(call $exit_with_code (i32.const 0)) (i32.const 1)", 0),
}


def test_run_exit_codes_of_wat_commands():
    """In a child: run returning, and wasi:cli/exit's functions, through wasmpy.run."""
    proc = run_python(f"""
        import json, wasmpy
        from test_wasip2_command import EXIT_CASES, command_wat
        codes = {{case: wasmpy.run(wasmpy.Component(command_wat(body)), imports={{"tell": print}})
                  for case, (body, _) in EXIT_CASES.items()}}
        print(json.dumps(codes))
    """)
    assert child_json(proc) == {case: code for case, (_, code) in EXIT_CASES.items()}


def test_run_finds_the_wasi_version_in_the_exports(tmp_path):
    path = tmp_path / "old.wat"  # a .wat file holding a component: the file says which it is
    path.write_text(command_wat("(call $exit_with_code (i32.const 7)) (i32.const 0)", version="0.2.0"))
    assert wasmpy.run(path, imports={"tell": print}) == 7


def test_run_passes_imports_and_exports_to_a_component():
    told = []

    def imports(exports):
        return {"tell": lambda n: told.append((n, sorted(exports)))}

    assert wasmpy.run(Component(command_wat("(call $tell (i32.const 3)) (i32.const 0)")), imports=imports) == 0
    assert told == [(3, ["wasi:cli/run@0.2.12"])]


def test_a_wasi_cli_run_export_of_another_type_is_an_error():
    component = Component(command_wat("(i32.const 0)", run_type="(result u32)"))
    with pytest.raises(TypeError, match=r"exports wasi:cli/run@0\.2\.12, but not as WASI defines it.*"
                                        r"it has run: func\(\) -> u32"):
        wasmpy.run(component, imports={"tell": print})
