"""A builder's engine client takes the API version the agent negotiated, without asking the engine.

Podman 4.3 answers ``GET /version`` in about 0.7 s (it runs its OCI runtime and conmon to fill it in);
each build paid that once when the builder let docker-py ask.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from dockyard.agent.engine import connect


def test_a_given_api_version_sends_no_request(tmp_path: Path) -> None:
    path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(0.5)
    seen: list[bytes] = []

    def accept() -> None:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            return
        seen.append(conn.recv(4096))
        conn.close()

    thread = threading.Thread(target=accept)
    thread.start()
    client = connect.open_client(f"unix://{path}", timeout=5, api_version="1.41")
    thread.join()
    server.close()
    try:
        assert seen == []
        assert connect.api_version(client) == "1.41"
    finally:
        client.close()


def test_without_a_version_docker_py_asks_the_engine(tmp_path: Path) -> None:
    import docker.errors

    with pytest.raises(docker.errors.DockerException):
        connect.open_client(f"unix://{tmp_path / 'nothing.sock'}", timeout=1)


def test_api_version_of_something_else_is_none() -> None:
    assert connect.api_version(object()) is None
