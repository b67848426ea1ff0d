"""Binary build contexts against the real API server over HTTPS: streamed to disk, bounded while streaming.

The attacks: a gzip bomb (a few MB that expand to GiBs), an endless plain body,
an archive of too many members, and a big honest upload that must not be held
in memory. Bodies are generated lazily, so the tests themselves stay small.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.api import archive
from dockyard.apiserver import app as app_module
from dockyard.apiserver import subresources
from dockyard.storage import sqlite

GROUP = "/apis/dockyard.dev/v1alpha1/namespaces/default"
MiB = 1024 * 1024


def _config(client: httpx.Client, name: str) -> None:
    body = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildConfig",
        "metadata": {"name": name},
        "spec": {
            "source": {"type": "Binary"},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/x:latest"}},
        },
    }
    resp = client.post(f"{GROUP}/buildconfigs", json=body)
    assert resp.status_code == 201, resp.text


def _builds(client: httpx.Client) -> list[str]:
    return [b["metadata"]["name"] for b in client.get(f"{GROUP}/builds").json()["items"]]


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _gzip_member(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def gzip_bomb(size: int) -> Iterator[bytes]:
    """A tar.gz of one member of ``size`` zero bytes, as concatenated gzip members (gzip(1) reads them
    as one stream): about 1 KiB per MiB, made from one compressed MiB repeated."""
    yield _gzip_member(_header("zeros", size))
    mib = _gzip_member(bytes(MiB))
    for _ in range(size // MiB):
        yield mib
    yield _gzip_member(bytes(size % MiB + 1024 + (-size % 512)))


def gzip_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """One gzip stream of ``chunks``, compressed lazily."""
    c = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        out = c.compress(chunk)
        if out:
            yield out
    yield c.flush()


def many_small_files(count: int, size: int) -> Iterator[bytes]:
    """An uncompressed tar of ``count`` files of ``size`` zero bytes each."""
    for i in range(count):
        yield _header(f"f{i}", size) + bytes(size + (-size % 512))
    yield bytes(1024)


class Counted:
    """An upload body that counts the bytes the client got to send."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.sent = chunks, 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.sent += len(chunk)
            yield chunk


def upload(client: httpx.Client, name: str, body: object) -> httpx.Response:
    return client.post(
        f"{GROUP}/buildconfigs/{name}/instantiatebinary",
        content=body,  # type: ignore[arg-type]
        headers={"Content-Type": "application/octet-stream"},
    )


def context_files(db_path: Path) -> list[str]:
    folder = Path(f"{db_path}-contexts")
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_gzip_bomb_is_refused_with_413_naming_the_limit_and_leaves_nothing(apiserver_factory):
    server = apiserver_factory(max_context_bytes=10 * MiB)
    with server.client(timeout=60) as client:
        _config(client, "bin")
        resp = upload(client, "bin", gzip_stream(iter([_header("zeros", 3 * 1024 * MiB)] + [bytes(MiB)] * 3072)))
        assert resp.status_code == 413, resp.text
        assert resp.json()["reason"] == "RequestEntityTooLarge"
        assert "exceeds 10485760 uncompressed bytes (--max-context-bytes)" in resp.json()["message"]
        assert _builds(client) == []
    assert context_files(server.db_path) == []


def test_the_default_limit_is_2_gib_and_a_3_gib_bomb_is_refused(apiserver):
    with apiserver.client(timeout=60) as client:
        _config(client, "bin")
        resp = upload(client, "bin", gzip_bomb(3 * 1024 * MiB))
        assert resp.status_code == 413, resp.text
        assert "exceeds 2147483648 uncompressed bytes (--max-context-bytes)" in resp.json()["message"]
        assert _builds(client) == []
    assert context_files(apiserver.db_path) == []


def test_the_uncompressed_total_counts_every_member(apiserver_factory):
    server = apiserver_factory(max_context_bytes=10 * MiB)
    with server.client(timeout=60) as client:
        _config(client, "bin")
        resp = upload(client, "bin", gzip_stream(many_small_files(3000, MiB)))  # 3 GiB in 1 MiB files
        assert resp.status_code == 413, resp.text
        assert "10485760 uncompressed bytes" in resp.json()["message"]
        assert _builds(client) == []
    assert context_files(server.db_path) == []


def test_an_endless_plain_body_is_cut_at_the_limit(apiserver_factory):
    server = apiserver_factory(max_context_bytes=10 * MiB)
    with server.client(timeout=60) as client:
        _config(client, "bin")
        body = Counted(iter([bytes(MiB)] * 1024))  # 1 GiB of zeros, no Content-Length
        try:
            resp = upload(client, "bin", body)
            assert resp.status_code == 413, resp.text
        except httpx.TransportError:
            pass  # httpx reads the answer only after sending; the server closed the connection first
        assert body.sent < 100 * MiB  # the server stopped reading: it drained no GiBs
        declared = client.post(f"{GROUP}/buildconfigs/bin/instantiatebinary", content=b"x" * (11 * MiB))
        assert declared.status_code == 413 and "10485760" in declared.json()["message"]
        assert _builds(client) == []
    assert context_files(server.db_path) == []


def test_too_many_members_is_refused_with_413(apiserver_factory):
    server = apiserver_factory(max_context_members=50)
    with server.client(timeout=60) as client:
        _config(client, "bin")
        resp = upload(client, "bin", gzip_stream(many_small_files(200, 10)))
        assert resp.status_code == 413, resp.text
        assert "more than 50 members (--max-context-members)" in resp.json()["message"]
        assert _builds(client) == []
        ok = upload(client, "bin", gzip_stream(many_small_files(50, 10)))
        assert ok.status_code == 201, ok.text
    assert len(context_files(server.db_path)) == 1


def test_the_defaults_are_2_gib_and_100000_members(tmp_path):
    assert (archive.DEFAULT_MAX_BYTES, archive.DEFAULT_MAX_MEMBERS) == (2 * 1024**3, 100_000)
    store = sqlite.Store(tmp_path / "dockyard.db")
    try:
        state = app_module.create_app(store=store, tokens={}).state.dockyard
        assert state.context_limits == archive.Limits(max_bytes=2 * 1024**3, max_members=100_000)
    finally:
        store.close()


def test_a_member_escaping_the_context_gets_422_naming_it_and_leaves_nothing(apiserver):
    with apiserver.client(timeout=60) as client:
        _config(client, "bin")
        body = _header("../escape", 1) + bytes(512) + bytes(1024)
        resp = upload(client, "bin", body)
        assert resp.status_code == 422, resp.text
        assert "'../escape'" in resp.json()["message"]
        assert _builds(client) == []
    assert context_files(apiserver.db_path) == []


def test_a_chain_of_links_leaving_the_context_gets_422_naming_it_and_leaves_nothing(apiserver):
    """CVE-2025-4517's shape (an audit wrote a file outside the context as root with it): every link's target
    stays inside as text; followed through the other links, ``escape`` leaves."""
    comp, steps, path = "d" * 247, "abcdefghijklmnop", ""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def link(name: str, target: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)

        for s in steps:
            tar.addfile(tarfile.TarInfo(f"{path}{comp}/keep"), io.BytesIO())
            link(f"{path}{s}", comp)
            path = f"{path}{comp}/"
        deep = "/".join(steps) + "/" + "l" * 254
        link(deep, "../" * len(steps))
        link("escape", deep + "/.." * 17 + "/tmp/outside")
        info = tarfile.TarInfo("escape/pwned")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with apiserver.client(timeout=60) as client:
        _config(client, "bin")
        resp = upload(client, "bin", buf.getvalue())
        assert resp.status_code == 422, resp.text
        assert "'escape'" in resp.json()["message"] and "through symbolic links" in resp.json()["message"]
        assert _builds(client) == []
    assert context_files(apiserver.db_path) == []


def test_a_big_upload_is_streamed_to_disk_not_held_in_memory(apiserver):
    """200 MiB through the server and back: the Python heap of the whole process (server thread and
    client) never holds more than a few MiB of it."""
    size = 200 * MiB
    block = hashlib.sha256(b"seed").digest() * (MiB // 32)

    def body() -> Iterator[bytes]:
        yield _header("big.bin", size)
        for _ in range(size // MiB):
            yield block
        yield bytes(1024)

    expected = hashlib.sha256()
    for chunk in body():
        expected.update(chunk)
    with apiserver.client(timeout=120) as client:
        _config(client, "bin")
        tracemalloc.start()
        try:
            resp = upload(client, "bin", body())
            _, upload_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            assert resp.status_code == 201, resp.text
            build = resp.json()["metadata"]["name"]
            got = hashlib.sha256()
            with client.stream("GET", f"{GROUP}/builds/{build}/source") as source:
                assert source.status_code == 200
                assert source.headers["content-length"] == str(size + 512 + 1024)
                for chunk in source.iter_bytes():
                    got.update(chunk)
            _, download_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert got.hexdigest() == expected.hexdigest()
    assert upload_peak < 32 * MiB, f"upload peak {upload_peak / MiB:.0f} MiB"
    assert download_peak < 32 * MiB, f"download peak {download_peak / MiB:.0f} MiB"


def test_the_context_file_is_deleted_with_its_build(apiserver):
    with apiserver.client() as client:
        _config(client, "bin")
        resp = upload(client, "bin", _header("Dockerfile", 7) + b"FROM x\n" + bytes(505) + bytes(1024))
        assert resp.status_code == 201, resp.text
        build = resp.json()["metadata"]["name"]
        assert len(context_files(apiserver.db_path)) == 1
        assert client.delete(f"{GROUP}/builds/{build}").status_code == 200
        assert client.get(f"{GROUP}/builds/{build}/source").status_code == 404
    assert context_files(apiserver.db_path) == []


def test_orphaned_context_files_are_removed_at_start(tmp_path):
    db = tmp_path / "dockyard.db"
    store = sqlite.Store(db)
    try:
        _path, file = store.new_blob_file()  # an upload a crash interrupted
        file.write(b"partial")
        file.close()
        (store.blob_dir / "0123.blob").write_bytes(b"a blob whose row was lost")
        assert len(context_files(db)) == 2
        app_module.create_app(store=store, tokens={})
        assert context_files(db) == []
    finally:
        store.close()


def test_a_rolled_back_deletion_keeps_the_file(apiserver):
    content = _header("a", 1) + b"a" + bytes(511) + bytes(1024)
    with apiserver.client() as client:
        _config(client, "bin")
        build = upload(client, "bin", content).json()["metadata"]["name"]
        store = apiserver.store
        with pytest.raises(RuntimeError), store.atomic():
            store.delete(subresources.BUILD, "default", build)
            raise RuntimeError("roll back")
        _config(client, "later")  # a later commit must not remove the file of the surviving Build
        assert client.get(f"{GROUP}/builds/{build}/source").content == content
        assert client.delete(f"{GROUP}/builds/{build}").status_code == 200
    assert context_files(apiserver.db_path) == []


def test_uploads_in_parallel_do_not_mix(apiserver):
    with apiserver.client(timeout=60) as client:
        _config(client, "bin")
    results: dict[int, httpx.Response] = {}

    def one(i: int) -> None:
        with apiserver.client(timeout=60) as c:
            data = io.BytesIO()
            with tarfile.open(fileobj=data, mode="w:gz") as tar:
                info = tarfile.TarInfo("n")
                payload = str(i).encode() * 1000
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            results[i] = upload(c, "bin", data.getvalue())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    deadline = time.monotonic() + 60
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
    assert all(r.status_code == 201 for r in results.values()) and len(results) == 4
    assert len(context_files(apiserver.db_path)) == 4


def test_view_may_not_read_an_uploaded_source(apiserver):
    """An uploaded build context is a Secret's peer (it may hold credentials): the view identity reads Builds,
    not their ``source`` (403, as for Secrets); the admin reads it."""
    content = _header("a", 1) + b"a" + bytes(511) + bytes(1024)
    with apiserver.client() as client:
        _config(client, "bin")
        build = upload(client, "bin", content).json()["metadata"]["name"]
        assert client.get(f"{GROUP}/builds/{build}/source").content == content
    with apiserver.client(token=apiserver.view_token) as view:
        assert view.get(f"{GROUP}/builds/{build}").status_code == 200
        resp = view.get(f"{GROUP}/builds/{build}/source")
        assert resp.status_code == 403, resp.text
        assert content not in resp.content
