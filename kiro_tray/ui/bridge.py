"""The one subscriber of the core's Qt-free signals that widgets listen to.

Core signals may fire on any thread (log records come from worker threads too). State changes are
re-emitted as Qt signals, which Qt queues onto the GUI thread. Request records, log lines and account
changes are coalesced: callbacks only append to a locked buffer, and a single-shot timer on the GUI thread
flushes it every ``interval_ms`` at most, so hundreds of concurrent streams cost one model update per
flush.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QTimer, Signal

from ..events import (
    AccountNotice,
    AccountsChanged,
    CredentialsChanged,
    QuotaExhaustedSeen,
    QuotaRestored,
    ServiceStateChanged,
)
from ..gateway.service import GatewayService
from ..logging_setup import LogLine, RingBufferHandler
from ..store import RequestRecord

FLUSH_INTERVAL_MS = 150


@dataclass
class _Pending:
    cleared: bool = False
    added: dict[int, RequestRecord] = field(default_factory=dict)
    updated: dict[int, RequestRecord] = field(default_factory=dict)
    log_lines: list[LogLine] = field(default_factory=list)
    accounts: bool = False

    def empty(self) -> bool:
        return not (self.cleared or self.added or self.updated or self.log_lines or self.accounts)


class ServiceBridge(QObject):
    stateChanged = Signal(object)  # ServiceStateChanged
    credentialsChanged = Signal(object)  # CredentialsChanged
    quotaExhausted = Signal(object)  # QuotaExhaustedSeen
    quotaRestored = Signal(object)  # QuotaRestored
    storeCleared = Signal()
    recordsAdded = Signal(list)  # list[RequestRecord], oldest first
    recordsUpdated = Signal(list)  # list[RequestRecord] changed since the last flush
    logAppended = Signal(list)  # list[LogLine]
    accountsChanged = Signal()  # an account changed state, quota or counters (coalesced)
    accountNotice = Signal(object)  # AccountNotice
    flushed = Signal()  # after each flush: a cue to refresh counts
    _wake = Signal()

    def __init__(
        self,
        service: GatewayService,
        ring: RingBufferHandler | None = None,
        *,
        interval_ms: int = FLUSH_INTERVAL_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.ring = ring
        self._lock = threading.Lock()
        self._pending = _Pending()
        self._scheduled = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self._wake.connect(self._timer.start)
        service.state_changed.connect(self._on_state)
        service.accounts.credentials_changed.connect(self._on_credentials)
        service.accounts.quota_exhausted.connect(self._on_quota)
        service.accounts.quota_restored.connect(self._on_quota_restored)
        service.accounts.changed.connect(self._on_accounts)
        service.accounts.notices.connect(self._on_notice)
        service.store.added.connect(self._on_added)
        service.store.updated.connect(self._on_updated)
        service.store.cleared.connect(self._on_cleared)
        if ring is not None:
            ring.appended.connect(self._on_log)

    def close(self) -> None:
        """Unsubscribe from the core (the service outlives nothing here, but tests reuse loops)."""
        service = self.service
        service.state_changed.disconnect(self._on_state)
        service.accounts.credentials_changed.disconnect(self._on_credentials)
        service.accounts.quota_exhausted.disconnect(self._on_quota)
        service.accounts.quota_restored.disconnect(self._on_quota_restored)
        service.accounts.changed.disconnect(self._on_accounts)
        service.accounts.notices.disconnect(self._on_notice)
        service.store.added.disconnect(self._on_added)
        service.store.updated.disconnect(self._on_updated)
        service.store.cleared.disconnect(self._on_cleared)
        if self.ring is not None:
            self.ring.appended.disconnect(self._on_log)
        self._timer.stop()

    # ---- core callbacks (any thread) --------------------------------------------------------------

    def _on_state(self, event: ServiceStateChanged) -> None:
        self.stateChanged.emit(event)

    def _on_credentials(self, event: CredentialsChanged) -> None:
        self.credentialsChanged.emit(event)

    def _on_quota(self, event: QuotaExhaustedSeen) -> None:
        self.quotaExhausted.emit(event)

    def _on_quota_restored(self, event: QuotaRestored) -> None:
        self.quotaRestored.emit(event)

    def _on_notice(self, event: AccountNotice) -> None:
        self.accountNotice.emit(event)

    def _on_accounts(self, _: AccountsChanged) -> None:
        with self._lock:
            self._pending.accounts = True
            self._schedule()

    def _on_added(self, record: RequestRecord) -> None:
        with self._lock:
            self._pending.added[record.id] = record
            self._schedule()

    def _on_updated(self, record: RequestRecord) -> None:
        with self._lock:
            if record.id not in self._pending.added:
                self._pending.updated[record.id] = record
            self._schedule()

    def _on_cleared(self, _: None) -> None:
        with self._lock:
            pending = self._pending
            self._pending = _Pending(cleared=True, log_lines=pending.log_lines, accounts=pending.accounts)
            self._schedule()

    def _on_log(self, line: LogLine) -> None:
        with self._lock:
            self._pending.log_lines.append(line)
            self._schedule()

    def _schedule(self) -> None:
        """Caller holds the lock. Wakes the GUI-thread timer once per batch."""
        if not self._scheduled:
            self._scheduled = True
            self._wake.emit()

    # ---- GUI thread -------------------------------------------------------------------------------

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, _Pending()
            self._scheduled = False
        if pending.empty():
            return
        if pending.cleared:
            self.storeCleared.emit()
        if pending.added:
            self.recordsAdded.emit(sorted(pending.added.values(), key=lambda r: r.id))
        if pending.updated:
            self.recordsUpdated.emit(list(pending.updated.values()))
        if pending.log_lines:
            self.logAppended.emit(pending.log_lines)
        if pending.accounts:
            self.accountsChanged.emit()
        self.flushed.emit()
