"""Spec suite plumbing: the worker pool that runs .wast files, and the assertion summary."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wast_runner  # noqa: E402

_results = {}  # rel -> counts, from the reports (so that it works under pytest-xdist too)


@pytest.fixture(scope="session")
def spec_pool(request):
    """Runs the selected .wast files in worker processes, in test order, ahead of the tests."""
    files = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        rel = callspec.params.get("rel") if callspec is not None else None
        if rel and wast_runner.skip_reason(rel) is None:
            files.append(rel)
    jobs = wast_runner.default_jobs()
    if not files or wast_runner.converter_missing_reason():  # every test skips: nothing to run
        yield None
        return
    if jobs == 0:  # WASMPY_SPEC_JOBS=0: in this process, without crash isolation (for debugging)
        yield _InProcess()
        return
    pool = wast_runner.Pool(files, jobs)
    yield pool
    pool.close()


class _InProcess:
    @staticmethod
    def result(rel):
        return wast_runner.run_file(rel)


def pytest_runtest_logreport(report):
    for name, value in getattr(report, "user_properties", ()):
        if name == "wast":
            _results[value["rel"]] = value


def pytest_collection_modifyitems(items):
    global _collected
    _collected = any(item.originalname == "test_wast" for item in items if hasattr(item, "originalname"))


_collected = False


def pytest_terminal_summary(terminalreporter):
    if not _collected:
        return
    write = terminalreporter.write_line
    terminalreporter.section("WebAssembly spec suite")
    missing = wast_runner.suite_missing_reason() or wast_runner.converter_missing_reason()
    if missing:
        write(f"not run: {missing}")
    if not _results:
        return
    width = max(len(rel) for rel in _results)
    write(f"{'file':<{width}}  {'passed':>7} {'failed':>7} {'skipped':>7}  note")
    for rel in sorted(_results):
        counts = _results[rel]
        note = ("skip list" if counts.get("skip") else
                "API gap (xfail)" if counts.get("xfail") else
                "FAILED" if counts["failed"] else "")
        write(f"{rel:<{width}}  {counts['passed']:>7} {counts['failed']:>7} {counts['skipped']:>7}  {note}")
    write("")
    for suite in wast_runner.SUITES:
        rows = [c for rel, c in _results.items() if rel.startswith(suite + "/")]
        if rows:
            write(f"{suite}: " + _totals(rows) + f"  ({len(rows)} files: "
                  f"{sum(1 for c in rows if c.get('skip'))} on the skip list, "
                  f"{sum(1 for c in rows if c.get('xfail'))} with API gaps)")
    gaps = [c for c in _results.values() if c.get("xfail")]
    write(f"API gaps (xfail): {len(gaps)} files, {sum(c['failed'] for c in gaps)} of the failed assertions")
    write(f"skip list: {sum(1 for c in _results.values() if c.get('skip'))} files "
          f"({len(wast_runner.SKIP)} entries in wast_runner.SKIP)")
    write("spec assertions: " + _totals(_results.values()))


def _totals(rows):
    rows = list(rows)
    return (f"{sum(c['passed'] for c in rows)} passed, {sum(c['failed'] for c in rows)} failed, "
            f"{sum(c['skipped'] for c in rows)} skipped")
