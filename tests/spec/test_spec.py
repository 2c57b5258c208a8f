"""The WebAssembly spec test suite: one test per .wast file (see wast_runner.py)."""

import pytest

import wast_runner

FILES = wast_runner.suite_files()
_MISSING = wast_runner.suite_missing_reason() or (None if FILES else "the suite has no .wast files")
# Without the suite there is one test, which skips; or fails, where WASMPY_SPEC_SUITE asked for it.
_NO_SUITE = [pytest.param(None, marks=[] if wast_runner.SUITE_NAMED else pytest.mark.skip(reason=_MISSING))]


@pytest.mark.parametrize("rel", FILES or _NO_SUITE, ids=lambda rel: rel or "wasm-testsuite")
def test_wast(rel, spec_pool, request):
    if rel is None:
        pytest.fail(f"the WebAssembly spec test suite cannot be read: {_MISSING}", pytrace=False)
    reason = wast_runner.skip_reason(rel)
    if reason is not None:
        request.node.user_properties.append(("wast", {"rel": rel, "passed": 0, "failed": 0, "xfail": False,
                                                      "skipped": wast_runner.count_assertions(rel), "skip": reason}))
        pytest.skip(f"skip list: {reason}")
    missing = wast_runner.converter_missing_reason()
    if missing is not None:
        pytest.skip(missing)

    result = spec_pool.result(rel)
    gap = wast_runner.api_gap(rel)
    request.node.user_properties.append(("wast", {"rel": rel, "passed": result.passed, "failed": result.failed,
                                                  "skipped": result.skipped, "xfail": gap is not None,
                                                  "seconds": round(result.seconds, 2)}))
    if gap is not None:
        if result.failed:
            pytest.xfail(f"API gap: {gap}\n{result.report(limit=5)}")
        pytest.fail(f"{rel} is listed in API_GAPS ({gap}) but passes now: remove it from the list")
    if result.failed:
        pytest.fail(result.report(), pytrace=False)
