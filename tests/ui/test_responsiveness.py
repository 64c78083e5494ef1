"""200 fast concurrent requests keep the UI responsive: the loop never stalls and updates are coalesced."""

from __future__ import annotations

import asyncio
import itertools
import time

import aiohttp
import pytest
from PySide6.QtCore import QTimer

from ..harness import TEST_KEY
from .conftest import Arun, UiFactory, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]

REQUESTS = 200
TICK_MS = 10
#: Between two timer ticks, the loop thread may not compute for longer than this (its CPU time: other
#: processes on a loaded machine do not count) ...
MAX_BUSY_MS = 400
#: ... nor be away for longer than this by the wall clock (a blocking call waits without computing; a
#: frozen UI is seconds, while a loaded 2-core machine can deschedule the process for most of a second).
MAX_LAG_MS = 2000


def test_200_concurrent_requests_keep_the_ui_responsive(make_app: UiFactory, arun: Arun) -> None:
    app = make_app(log_level="WARNING")
    app.window.show()
    model = app.window.requests_model
    batches: list[int] = []
    model.rowsInserted.connect(lambda _parent, first, last: batches.append(last - first + 1))

    ticks: list[tuple[float, float]] = []  # (wall clock, the loop thread's CPU time)
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time())))

    async def one(session: aiohttp.ClientSession, i: int) -> int:
        body = {
            "model": "claude-sonnet-4.5",
            "messages": [{"role": "user", "content": f"request {i}"}],
            "stream": i % 2 == 0,
        }
        async with session.post(
            f"{app.service.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {TEST_KEY}"},
        ) as resp:
            await resp.read()
            return resp.status

    async def burst() -> list[int]:
        timer.start()
        connector = aiohttp.TCPConnector(limit=REQUESTS)
        async with aiohttp.ClientSession(connector=connector) as session:
            statuses = await asyncio.gather(*(one(session, i) for i in range(REQUESTS)))
        await wait_until(
            app.bridge.flushed,
            lambda: (
                model.rowCount() == REQUESTS and all(model.record_at(r).finished for r in range(REQUESTS))
            ),
        )
        timer.stop()
        return statuses

    started = time.perf_counter()
    statuses = arun(burst(), timeout=40)
    elapsed = time.perf_counter() - started
    assert statuses == [200] * REQUESTS
    assert len(ticks) > 5
    gaps = [(b[0] - a[0]) * 1000 for a, b in itertools.pairwise(ticks)]
    busy = [(b[1] - a[1]) * 1000 for a, b in itertools.pairwise(ticks)]
    report = (
        f"{REQUESTS} concurrent requests in {elapsed:.2f} s: largest event-loop gap {max(gaps):.0f} ms, "
        f"of which computing {busy[gaps.index(max(gaps))]:.0f} ms; longest computing {max(busy):.0f} ms; "
        f"{len(batches)} table insert batches"
    )
    print(report)
    assert max(busy) < MAX_BUSY_MS, f"event loop busy without a break: {report}"
    assert max(gaps) < MAX_LAG_MS, f"event loop stalled: {report}"
    assert sum(batches) == REQUESTS
    assert len(batches) < REQUESTS / 4, f"{len(batches)} insert batches: updates are not coalesced"
    app.window.refresh_metrics()
    assert app.window.metrics.labels["total"].text() == f"{REQUESTS}"
