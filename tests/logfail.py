"""Unexpected WARNING and ERROR log lines fail the test that caused them (after qutebrowser's logfail).

Every record of level WARNING or above from the watched logger trees (``kiro_tray``, ``aiohttp``,
``asyncio``) is collected, whatever thread logs it and whatever handlers or propagation the product set
up: the hook is the log-record factory, which every logger calls. A record belongs to the test that is
running (its setup, call or teardown; a module-scoped fixture is torn down in the teardown of the
module's last test, so module-level allowances cover it). At the end of a test's teardown, lines nobody
allowed fail it with an error listing them. A test that already failed only gets them as a report section.

Allowing, on a test, a class or a module (``pytestmark``), several at once::

    @pytest.mark.allow_log(r"refresh failed", level=logging.WARNING, logger="kiro_tray.upstream")

``level`` is the most severe level allowed (default WARNING: an ERROR with the same text still fails);
``logger`` is a logger tree (default: any). Tests about the warning itself use the ``expected_log``
fixture: ``expected_log(r"regex", level=..., logger=...)`` allows the line and fails the test unless it
appeared (waiting a little for it at teardown: another thread may log it just after the test's last step).

Loaded from ``tests/conftest.py`` (or ``-p tests.logfail``).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from kiro_tray.logging_setup import Redactor

WATCHED = ("kiro_tray", "aiohttp", "asyncio")
#: How long a test's teardown waits for an expected line still missing: one logged on another thread
#: (the gateway's loop) may come just after the answer the test saw, and must not land in the next test.
EXPECTED_WAIT = 10.0


def _in_tree(name: str, tree: str) -> bool:
    return name == tree or name.startswith(tree + ".")


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception as exc:  # a broken format string is still a line worth reporting
        return f"{record.msg!r} % {record.args!r} ({type(exc).__name__})"


@dataclass(frozen=True)
class Allowance:
    pattern: re.Pattern[str]
    level: int = logging.WARNING
    logger: str | None = None

    @classmethod
    def of(cls, pattern: str, level: int | str = logging.WARNING, logger: str | None = None) -> Allowance:
        number = level if isinstance(level, int) else logging.getLevelNamesMapping()[level.upper()]
        return cls(re.compile(pattern), number, logger)

    def allows(self, record: logging.LogRecord) -> bool:
        return (
            record.levelno <= self.level
            and (self.logger is None or _in_tree(record.name, self.logger))
            and self.pattern.search(_message(record)) is not None
        )

    def __str__(self) -> str:
        where = f" on {self.logger}" if self.logger else ""
        return f"{logging.getLevelName(self.level)} {self.pattern.pattern!r}{where}"


class Collector:
    """Wraps the log-record factory: keeps every watched record of level WARNING or above."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[logging.LogRecord] = []
        self._previous = logging.getLogRecordFactory()

    def install(self) -> None:
        self._previous = logging.getLogRecordFactory()
        logging.setLogRecordFactory(self._make)

    def uninstall(self) -> None:
        if logging.getLogRecordFactory() == self._make:
            logging.setLogRecordFactory(self._previous)

    def _make(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self._previous(*args, **kwargs)
        if record.levelno >= logging.WARNING and any(_in_tree(record.name, tree) for tree in WATCHED):
            with self._lock:
                self._records.append(record)
        return record

    def take(self) -> list[logging.LogRecord]:
        with self._lock:
            records, self._records = self._records, []
        return records


_COLLECTOR = pytest.StashKey[Collector]()
_EXPECTED = pytest.StashKey[list[Allowance]]()
_FAILED = pytest.StashKey[bool]()
_REDACTOR = Redactor()


def _line(record: logging.LogRecord) -> str:
    # Redacted again: a record logged where no redacting handler was set up must not print a secret here.
    return _REDACTOR.redact(f"{record.levelname} {record.name} [{record.threadName}]: {_message(record)}")


def pytest_configure(config: pytest.Config) -> None:
    collector = Collector()
    collector.install()
    config.stash[_COLLECTOR] = collector


def pytest_unconfigure(config: pytest.Config) -> None:
    if _COLLECTOR in config.stash:
        config.stash[_COLLECTOR].uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and report.when in ("setup", "call"):
        item.stash[_FAILED] = True
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    collector = item.config.stash[_COLLECTOR]
    try:
        result = yield
    finally:
        # Everything logged since the previous test ended, its fixtures' teardown included.
        records = collector.take()
    expected = item.stash.get(_EXPECTED, [])

    def missing() -> list[Allowance]:
        return [e for e in expected if not any(e.allows(r) for r in records)]

    deadline = time.monotonic() + EXPECTED_WAIT
    while missing() and not item.stash.get(_FAILED, False) and time.monotonic() < deadline:
        time.sleep(0.01)  # a bounded poll: records arrive from any thread, with no event to wait on
        records += collector.take()
    allowances = [Allowance.of(*m.args, **m.kwargs) for m in item.iter_markers("allow_log")]
    unexpected = [r for r in records if not any(a.allows(r) for a in allowances + expected)]
    problems = [f"unexpected log line: {_line(r)}" for r in unexpected]
    problems += [f"expected log line never appeared: {e}" for e in missing()]
    if not problems:
        return result
    text = "\n".join(problems)
    if item.stash.get(_FAILED, False):
        item.add_report_section("teardown", "log lines", text)
        return result
    hint = "\n(allow expected ones with @pytest.mark.allow_log(regex, level=..., logger=...) or expected_log)"
    pytest.fail(text + hint, pytrace=False)


class ExpectLog(Protocol):
    def __call__(self, pattern: str, level: int | str = ..., logger: str | None = ...) -> None: ...


@pytest.fixture
def expected_log(request: pytest.FixtureRequest) -> ExpectLog:
    """``expected_log(regex, level=WARNING, logger=None)``: the line is allowed and must appear."""
    expected = request.node.stash.setdefault(_EXPECTED, [])

    def expect(pattern: str, level: int | str = logging.WARNING, logger: str | None = None) -> None:
        expected.append(Allowance.of(pattern, level, logger))

    return expect
