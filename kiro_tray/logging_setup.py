"""Logging: the ``kiro_tray`` logger, a redacting filter, a ring buffer for the log panel, a rotating file.

Redaction works twice over: known secret values (registered as they become known: client key, refresh and
access tokens) are replaced wherever they appear, and secret-shaped text (``Bearer …``, ``"refreshToken":
"…"``, ``ksk_…``) is masked even when the value was never registered.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import re
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from .signals import Signal

LOGGER_NAME = "kiro_tray"
MASK = "***"
_MIN_SECRET_LEN = 8

_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=:-]{8,}"),
    re.compile(
        r"(?i)(\"?(?:refresh_?token|access_?token|client_?secret|api_?key|x-api-key|authorization)"
        r"\"?\s*[:=]\s*\"?)[^\s\",}]{6,}"
    ),
    re.compile(r"()\bksk_[A-Za-z0-9]{8,}"),
)


class Redactor:
    """Thread-safe set of secret values plus patterns; ``redact(text)`` masks them all."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._regex: re.Pattern[str] | None = None

    def add(self, *values: str | None) -> None:
        with self._lock:
            for value in values:
                if value and len(value) >= _MIN_SECRET_LEN and value not in self._secrets:
                    self._secrets.add(value)
                    self._regex = None

    def redact(self, text: str) -> str:
        regex = self._regex
        if regex is None and self._secrets:
            with self._lock:
                ordered = sorted(self._secrets, key=len, reverse=True)
                regex = self._regex = re.compile("|".join(re.escape(s) for s in ordered))
        if regex is not None:
            text = regex.sub(MASK, text)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text


class RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redactor.redact(message)
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            cleaned = cleaned + "\n" + self.redactor.redact(formatted)
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = cleaned, None
        return True


@dataclass(frozen=True, slots=True)
class LogLine:
    created: float
    level: int
    level_name: str
    logger: str
    message: str


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file that is created, and re-created on rotation, readable by the user only."""

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding)


class RingBufferHandler(logging.Handler):
    """Keeps the last ``capacity`` (already redacted) lines and announces each one."""

    def __init__(self, capacity: int = 2000) -> None:
        super().__init__(logging.DEBUG)
        self.lines: deque[LogLine] = deque(maxlen=capacity)
        self.appended: Signal[LogLine] = Signal("log.appended")

    def emit(self, record: logging.LogRecord) -> None:
        line = LogLine(record.created, record.levelno, record.levelname, record.name, record.getMessage())
        self.lines.append(line)
        self.appended.emit(line)


@dataclass
class LoggingSetup:
    redactor: Redactor
    ring: RingBufferHandler
    file_path: Path | None
    logger: logging.Logger
    listener: logging.handlers.QueueListener

    def set_level(self, level: int) -> None:
        self.logger.setLevel(level)

    def close(self) -> None:
        for handler in list(self.logger.handlers):
            self.logger.removeHandler(handler)
            handler.close()
        self.listener.stop()
        for handler in self.listener.handlers:
            handler.close()


def setup_logging(level: int, log_dir: Path | None, *, console: bool = True) -> LoggingSetup:
    """Configure the ``kiro_tray`` logger (idempotent: earlier handlers are replaced).

    The logger's own handlers never block: the ring buffer is in memory, and the console and file
    handlers run on a :class:`~logging.handlers.QueueListener` thread, so a slow disk never stalls the
    event loop. Redaction happens before a record is queued."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level)
    logger.propagate = False
    redactor = Redactor()
    redacting = RedactingFilter(redactor)
    formatter = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    ring = RingBufferHandler()
    outputs: list[logging.Handler] = []
    if console:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        outputs.append(stream)
    file_path: Path | None = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_path = log_dir / "kiro-tray.log"
        if file_path.exists():
            os.chmod(file_path, 0o600)
        rotating = PrivateRotatingFileHandler(
            file_path, maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8", delay=True
        )
        rotating.setFormatter(formatter)
        outputs.append(rotating)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, *outputs, respect_handler_level=True)
    listener.start()
    for handler in (ring, logging.handlers.QueueHandler(records)):
        handler.addFilter(redacting)
        logger.addHandler(handler)
    return LoggingSetup(redactor, ring, file_path, logger, listener)
