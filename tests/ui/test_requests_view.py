"""The requests panel: real requests through the openai SDK appear with the right fields; the model is
a well-behaved Qt model (qtmodeltester) that stays bounded and newest first under any sequence of changes."""

from __future__ import annotations

import time

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester

from kiro_tray.store import RequestRecord
from kiro_tray.ui.app import TrayApp
from kiro_tray.ui.requests_view import COLUMN_INDEX, RequestsFilter, RequestsModel

from ..harness import TEST_KEY
from .conftest import Arun, UiFactory, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]


def cell(model: RequestsModel | RequestsFilter, row: int, column: str) -> str:
    return str(model.data(model.index(row, COLUMN_INDEX[column]), Qt.ItemDataRole.DisplayRole))


def finished_rows(app: TrayApp) -> int:
    model = app.window.requests_model
    return sum(1 for row in range(model.rowCount()) if model.record_at(row).finished)


def client(app: TrayApp, key: str = TEST_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{app.service.url}/v1", api_key=key, max_retries=0, timeout=20)


def test_an_openai_sdk_request_appears_with_its_fields(make_app: UiFactory, arun: Arun) -> None:
    app = make_app()

    async def ask() -> openai.types.chat.ChatCompletion:
        async with client(app) as sdk:
            return await sdk.chat.completions.create(
                model="claude-sonnet-4.5", messages=[{"role": "user", "content": "Say hello"}]
            )

    completion = arun(ask())
    assert completion.usage is not None
    arun(wait_until(app.bridge.flushed, lambda: finished_rows(app) == 1))
    model = app.window.requests_model
    assert model.rowCount() == 1
    assert cell(model, 0, "API") == "openai"
    assert cell(model, 0, "Model") == completion.model
    assert "sonnet" in cell(model, 0, "Model")
    assert cell(model, 0, "Stream") == "no"
    assert cell(model, 0, "Status") == "200"
    assert cell(model, 0, "Tokens in") == f"{completion.usage.prompt_tokens:,}"
    assert cell(model, 0, "Tokens out") == f"{completion.usage.completion_tokens:,}"
    assert cell(model, 0, "Total ms") != ""
    assert cell(model, 0, "Client").startswith("AsyncOpenAI/Python")

    panel = app.window.requests
    panel.table.selectRow(0)
    detail = panel.detail.toPlainText()
    assert detail.startswith("POST /v1/chat/completions")
    assert "Status: 200" in detail
    assert TEST_KEY not in detail


def test_streams_errors_and_the_filters(make_app: UiFactory, arun: Arun) -> None:
    app = make_app()

    async def traffic() -> None:
        async with client(app) as sdk:
            stream = await sdk.chat.completions.create(
                model="claude-haiku-4.5", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for _ in stream:
                pass
        async with client(app, key="wrong-key") as sdk:
            with pytest.raises(openai.AuthenticationError):
                await sdk.chat.completions.create(
                    model="claude-sonnet-4.5", messages=[{"role": "user", "content": "hi"}]
                )

    arun(traffic())
    arun(wait_until(app.bridge.flushed, lambda: finished_rows(app) == 2))
    panel = app.window.requests
    proxy = panel.proxy
    assert proxy.rowCount() == 2
    assert cell(proxy, 0, "Status") == "401"  # newest first
    assert cell(proxy, 1, "Stream") == "yes"

    panel.status_filter.setCurrentIndex(panel.status_filter.findData("errors"))
    assert proxy.rowCount() == 1
    assert cell(proxy, 0, "Status") == "401"
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("ok"))
    assert proxy.rowCount() == 1
    assert cell(proxy, 0, "Status") == "200"
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("all"))

    haiku = cell(proxy, 1, "Model")
    panel.model_filter.setCurrentIndex(panel.model_filter.findData(haiku))
    assert proxy.rowCount() == 1
    assert cell(proxy, 0, "Model") == haiku

    panel.clear_button.click()
    arun(wait_until(app.bridge.flushed, lambda: app.window.requests_model.rowCount() == 0))
    assert proxy.rowCount() == 0
    assert panel.model_filter.count() == 1  # "All models" only


def record(
    record_id: int, model: str | None = "claude-sonnet-4.5", status: int | None = None
) -> RequestRecord:
    return RequestRecord(
        id=record_id,
        request_id=f"req-{record_id}",
        started_at=time.time(),
        method="POST",
        path="/v1/messages",
        api="anthropic",
        model=model,
        status=status,
    )


def test_the_model_passes_qtmodeltester_through_changes(qtmodeltester: ModelTester) -> None:
    model = RequestsModel(max_rows=5)
    model.add_records([record(1), record(2, "claude-haiku-4.5", 200)])
    qtmodeltester.check(model)  # stays attached: every later signal is checked too
    model.add_records([record(i, status=200 if i % 2 else 500) for i in range(3, 9)])
    assert model.rowCount() == 5
    first = model.record_at(0)
    first.status = 200
    model.update_records([first, record(99)])  # an unknown record is ignored
    model.add_records([record(2)])  # already trimmed away, older than every row: a rebuild
    model.clear()
    assert model.rowCount() == 0
    proxy = RequestsFilter()
    # The proxy does not own its source: keep a reference, or Python frees the model under the proxy and
    # the next event processing crashes the test process.
    source = RequestsModel()
    proxy.setSourceModel(source)
    qtmodeltester.check(proxy)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.lists(st.integers(1, 40), max_size=8)),
            st.tuples(st.just("update"), st.lists(st.integers(1, 40), max_size=8)),
            st.tuples(st.just("clear"), st.just([])),
        ),
        max_size=25,
    )
)
def test_the_model_stays_bounded_and_newest_first(operations: list[tuple[str, list[int]]]) -> None:
    model = RequestsModel(max_rows=10)
    shown: set[int] = set()
    for op, ids in operations:
        if op == "add":
            model.add_records([record(i) for i in ids])
            shown = set(sorted(shown | set(ids), reverse=True)[:10])
        elif op == "update":
            model.update_records([record(i, status=200) for i in ids])
        else:
            model.clear()
            shown = set()
    rows = [model.record_at(r).id for r in range(model.rowCount())]
    assert rows == sorted(shown, reverse=True)
    assert all(model.row_of(i) == rows.index(i) for i in rows)
