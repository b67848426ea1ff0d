"""The build log shipper (:class:`dockyard.agent.logsink.LogSink`): its client may come late or fail to come.

The builder makes its API clients on a thread while it fetches the source, so the sink is given a function
that returns the client. What the sink sends is checked on httpx's in-memory transport (pure logic: the
order and completeness of the text).
"""

from __future__ import annotations

import httpx

from dockyard.agent.logsink import LogSink

PATH = "/apis/dockyard.dev/v1alpha1/namespaces/ns/builds/b-1/log"


def _recorder() -> tuple[httpx.Client, list[str]]:
    bodies: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == PATH
        bodies.append(request.content.decode())
        return httpx.Response(201)

    return httpx.Client(base_url="https://api.test", transport=httpx.MockTransport(handle)), bodies


def test_the_client_is_asked_for_only_at_the_first_send() -> None:
    client, bodies = _recorder()
    asked: list[int] = []

    def factory() -> httpx.Client:
        asked.append(1)
        return client

    sink = LogSink(factory, namespace="ns", name="b-1", interval=60)
    sink.write("--> FetchInputs")
    sink.write("Cloning")
    assert asked == []
    sink.close()
    assert asked and "".join(bodies) == "--> FetchInputs\nCloning\n"


def test_a_client_that_cannot_be_made_loses_no_text_and_fails_nothing() -> None:
    client, bodies = _recorder()
    attempts: list[int] = []

    def factory() -> httpx.Client:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("kubeconfig does not load")
        return client

    sink = LogSink(factory, namespace="ns", name="b-1", interval=60)
    sink.write("one")
    sink.flush()  # the factory fails: logged, the text kept
    assert bodies == []
    sink.write("two")
    sink.close()
    assert "".join(bodies) == "one\ntwo\n"


def test_a_plain_client_still_works() -> None:
    client, bodies = _recorder()
    sink = LogSink(client, namespace="ns", name="b-1", interval=60)
    sink.write("line")
    sink.close()
    assert bodies == ["line\n"]
