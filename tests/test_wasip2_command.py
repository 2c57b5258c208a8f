"""The C command (tests/wasip2/command.c, adapted by jco's preview 1 adapter) run as a component."""

import io
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
