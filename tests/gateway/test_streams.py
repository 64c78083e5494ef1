"""Stream lifecycle: stop ends streams cleanly, a client going away closes the upstream, nothing leaks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx

from ..fake_kiro.replies import Reply, Stall, Text
from ..harness import Gateway

BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition the server thread changes (there is no event to wait on across threads)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def open_stream(gateway: Gateway, client: httpx.Client) -> tuple[httpx.Response, Iterator[str]]:
    request = client.build_request(
        "POST", gateway.url + "/v1/messages", json=BODY, headers={"x-api-key": gateway.key}
    )
    response = client.send(request, stream=True)
    return response, response.iter_lines()


def test_stop_ends_in_flight_streams_with_an_error_event(gateway: Gateway) -> None:
    gateway.enqueue(Reply([Text("started"), Stall()]))
    with httpx.Client(timeout=30) as client:
        response, lines = open_stream(gateway, client)
        seen = []
        for line in lines:
            seen.append(line)
            if '"text_delta"' in line:
                break  # the stream is live and stalled upstream
        stopper = threading.Thread(target=lambda: gateway.run(gateway.service.stop()))
        stopper.start()
        rest = list(lines)
        stopper.join(20)
        response.close()
    assert gateway.service.state == "stopped"
    events = [json.loads(line[6:]) for line in rest if line.startswith("data: ")]
    assert events[-1]["type"] == "error"
    assert "shutting down" in events[-1]["error"]["message"]
    wait_until(lambda: gateway.fake.open_streams == 0)


def test_client_disconnect_closes_the_upstream_and_leaks_nothing(gateway: Gateway) -> None:
    gateway.openai().chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "warm"}]
    )
    session = gateway.service.session
    assert session is not None
    for _ in range(5):
        gateway.enqueue(Reply([Text("started"), Stall()]))
        with httpx.Client(timeout=30) as client:
            response, lines = open_stream(gateway, client)
            for line in lines:
                if '"text_delta"' in line:
                    break
            assert gateway.fake.open_streams == 1
            response.close()  # the client walks away mid-stream
        wait_until(lambda: gateway.fake.open_streams == 0)
        wait_until(lambda: gateway.service.metrics.active_streams == 0)
    connector = session.connector
    assert connector is not None
    wait_until(lambda: sum(len(v) for v in connector._acquired_per_host.values()) == 0)
    records = [r for r in gateway.service.store if r.error_kind == "client_disconnected"]
    assert len(records) == 5
    assert gateway.service.metrics.in_flight == 0
    # and the gateway keeps serving
    reply = gateway.openai().chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}]
    )
    assert reply.choices[0].message.content
