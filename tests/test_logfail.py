"""The log-line check of tests/logfail.py, run by a real pytest on a generated test file."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

INNER = """
import logging
import threading

import pytest

import tests.logfail

tests.logfail.EXPECTED_WAIT = 2.0  # the test that waits in vain ends sooner

log = logging.getLogger("kiro_tray.gateway")


def test_an_unexpected_warning_fails():
    log.warning("something odd: %s", 42)


def test_an_unexpected_error_from_aiohttp_fails():
    logging.getLogger("aiohttp.server").error("Error handling request")


def test_info_and_other_loggers_pass():
    log.info("fine")
    logging.getLogger("somebody.else").warning("not ours")


@pytest.mark.allow_log(r"something odd")
def test_an_allowed_warning_passes():
    log.warning("something odd: 1")


@pytest.mark.allow_log(r"something odd")
def test_allowing_a_warning_does_not_allow_an_error():
    log.error("something odd: 2")


@pytest.mark.allow_log(r"boom", level="ERROR", logger="kiro_tray.upstream")
def test_the_logger_tree_must_match():
    logging.getLogger("kiro_tray.upstream.client").error("boom")
    logging.getLogger("kiro_tray.gateway").error("boom")


@pytest.mark.allow_log(r"^one$")
@pytest.mark.allow_log(r"^two$")
def test_several_markers_add_up():
    log.warning("one")
    log.warning("two")


def test_a_warning_from_another_thread_with_no_handler_and_no_propagation_fails():
    quiet = logging.getLogger("kiro_tray.quiet")
    quiet.propagate = False
    worker = threading.Thread(target=quiet.warning, args=("from the loop thread",), name="server-loop")
    worker.start()
    worker.join()


def test_expected_log_allows_and_passes_when_seen(expected_log):
    expected_log(r"retrying after \\d+", logger="kiro_tray")
    log.warning("retrying after 3")


def test_expected_log_waits_for_a_line_another_thread_logs_late(expected_log):
    expected_log(r"^late$")
    threading.Timer(0.3, log.warning, args=("late",)).start()


def test_the_next_test_is_not_blamed_for_it():
    pass


def test_expected_log_fails_when_never_seen(expected_log):
    expected_log(r"never said")


def test_a_test_that_already_failed_gets_no_second_error():
    log.warning("on the way down")
    assert False


def test_a_secret_in_a_line_is_masked():
    log.warning("header Authorization: Bearer abcdefghijklmnop")


@pytest.fixture(scope="module")
def module_resource():
    yield
    log.warning("module resource closed noisily")


@pytest.mark.allow_log(r"closed noisily")
def test_module_teardown_lines_count_for_the_last_test_using_it(module_resource):
    pass
"""

OTHER_MODULE = """
def test_a_later_module_is_not_blamed():
    pass
"""


def outcomes(text: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for match in re.finditer(r"^(PASSED|FAILED|ERROR) \S+::(\w+)", text, re.MULTILINE):
        found.setdefault(match.group(2), set()).add(match.group(1))
    return found


def test_unexpected_log_lines_fail_the_test_that_logged_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini("[pytest]\nmarkers =\n    allow_log: allowed log lines\n")
    pytester.makepyfile(test_inner=INNER, test_later=OTHER_MODULE)
    result = pytester.run(
        *(sys.executable, "-m", "pytest", "-p", "tests.logfail", "-p", "no:asyncio"),
        *("-p", "no:cacheprovider", "-rA", "-q"),
    )
    text = result.stdout.str()
    assert outcomes(text) == {
        "test_an_unexpected_warning_fails": {"PASSED", "ERROR"},
        "test_an_unexpected_error_from_aiohttp_fails": {"PASSED", "ERROR"},
        "test_info_and_other_loggers_pass": {"PASSED"},
        "test_an_allowed_warning_passes": {"PASSED"},
        "test_allowing_a_warning_does_not_allow_an_error": {"PASSED", "ERROR"},
        "test_the_logger_tree_must_match": {"PASSED", "ERROR"},
        "test_several_markers_add_up": {"PASSED"},
        "test_a_warning_from_another_thread_with_no_handler_and_no_propagation_fails": {"PASSED", "ERROR"},
        "test_expected_log_allows_and_passes_when_seen": {"PASSED"},
        "test_expected_log_waits_for_a_line_another_thread_logs_late": {"PASSED"},
        "test_the_next_test_is_not_blamed_for_it": {"PASSED"},
        "test_expected_log_fails_when_never_seen": {"PASSED", "ERROR"},
        "test_a_test_that_already_failed_gets_no_second_error": {"FAILED"},
        "test_a_secret_in_a_line_is_masked": {"PASSED", "ERROR"},
        "test_module_teardown_lines_count_for_the_last_test_using_it": {"PASSED"},
        "test_a_later_module_is_not_blamed": {"PASSED"},
    }, text
    assert "unexpected log line: WARNING kiro_tray.gateway [MainThread]: something odd: 42" in text
    assert "unexpected log line: ERROR aiohttp.server [MainThread]: Error handling request" in text
    assert "unexpected log line: ERROR kiro_tray.gateway [MainThread]: boom" in text
    assert "ERROR kiro_tray.upstream.client" not in text
    assert "unexpected log line: WARNING kiro_tray.quiet [server-loop]: from the loop thread" in text
    assert "expected log line never appeared: WARNING 'never said'" in text
    assert "unexpected log line: WARNING kiro_tray.gateway [MainThread]: header Authorization: ***" in text
    assert not [line for line in text.splitlines() if "log line" in line and "abcdefghijklmnop" in line]
    assert "log lines" in text and "on the way down" in text  # a failed test shows them as a section
