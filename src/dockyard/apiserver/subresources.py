"""dockyard's own subresources: ``instantiate``, ``log`` and the container ``commit`` shortcut.

- ``POST .../buildconfigs/NAME/instantiate`` (OpenShift's
  ``BuildConfig/instantiate`` with a ``BuildRequest`` body): one transaction
  bumps ``status.lastVersion`` to N and creates Build ``NAME-N``.
- ``GET .../builds/NAME/log`` (Kubernetes' ``pods/log`` parameters
  ``follow`` and ``tailLines``); ``POST`` appends a chunk (node agent).
- ``POST /containers/{id}/commit`` (OpenStack Zun's container commit API):
  creates a ``Push`` for the pod container with that ID, answers 202 with
  ``Location``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dockyard.api import errors, kinds, phases
from dockyard.api import labels as well_known
from dockyard.apiserver import crud, inflight, paths, wire
from dockyard.apiserver.state import ServerState
from dockyard.storage import sqlite

Obj = dict[str, Any]


def _info(api_version: str, kind: str) -> kinds.ResourceInfo:
    info = kinds.by_kind(api_version, kind)
    assert info is not None, kind
    return info


BUILD_CONFIG = _info(kinds.API_VERSION, "BuildConfig")
BUILD = _info(kinds.API_VERSION, "Build")
PUSH = _info(kinds.API_VERSION, "Push")
POD = _info("v1", "Pod")

BUILDCONFIG_LABEL = well_known.BUILD_CONFIG
BUILD_NUMBER_ANNOTATION = well_known.BUILD_NUMBER
NODENAME_LABEL = well_known.NODE_NAME
_CONFIG_ONLY_FIELDS = ("triggers", "runPolicy", "successfulBuildsHistoryLimit", "failedBuildsHistoryLimit")
TERMINAL_PHASES = phases.TERMINAL
"""Phases after which a log no longer grows (Build phases, plus Pod ``Succeeded``/``Failed``)."""
MAX_FOLLOW_SECONDS = 24 * 3600.0
"""Upper bound on one ``follow=true`` log stream."""
LOG_PAGE_CHUNKS = 256
"""Log chunks read from the store at a time while streaming a log."""


# ------------------------------------------------------------------ instantiate


def instantiate(store: sqlite.Store, namespace: str, name: str, request: Any, *, binary: Path | None = None) -> Obj:
    """Create the next Build of a BuildConfig; returns the stored Build.

    Args:
        request: the decoded ``BuildRequest`` body, or ``None``. Besides
            ``triggeredBy`` and ``revision`` it may carry ``from`` (the base
            image, set as ``dockerStrategy.from``, as OpenShift's BuildRequest does)
            and ``metadata.annotations`` (copied onto the Build).
        binary: the uploaded source archive of ``instantiatebinary`` (a file from
            ``store.new_blob_file``), moved into the store with the Build.
    Raises:
        errors.NotFound: no such BuildConfig.
        errors.BadRequest: the body is not a BuildRequest for ``name``.
        errors.Invalid: the Build is rejected by validation.
    """
    if request is None:
        request = {}
    if not isinstance(request, dict):
        raise errors.BadRequest("the request body must be a BuildRequest object")
    if request.get("kind") not in (None, "BuildRequest"):
        raise errors.BadRequest(f"the kind in the data ({request.get('kind')}) must be BuildRequest")
    req_name = (request.get("metadata") or {}).get("name") if isinstance(request.get("metadata"), dict) else None
    if req_name not in (None, "", name):
        raise errors.BadRequest(f"the name of the BuildRequest ({req_name}) does not match the URL ({name})")
    triggered_by = request.get("triggeredBy") or [{"message": "Manually triggered"}]
    if not isinstance(triggered_by, list):
        raise errors.BadRequest("triggeredBy must be a list")
    with store.atomic():
        config = store.get(BUILD_CONFIG, namespace, name)
        status: Obj = config["status"] if isinstance(config.get("status"), dict) else {}
        try:
            number = int(status.get("lastVersion") or 0)
        except (TypeError, ValueError):
            number = 0
        for _ in range(10_000):
            number += 1
            if not store.exists(BUILD, namespace, f"{name}-{number}"):
                break
        updated = copy.deepcopy(config)
        updated["status"] = dict(status, lastVersion=number)
        store.update(BUILD_CONFIG, updated)
        spec = copy.deepcopy(config.get("spec") or {})
        for field in _CONFIG_ONLY_FIELDS:
            spec.pop(field, None)
        spec["triggeredBy"] = copy.deepcopy(triggered_by)
        if request.get("revision") is not None:
            spec["revision"] = copy.deepcopy(request["revision"])
            commit = (
                ((request["revision"] or {}).get("git") or {}).get("commit")
                if isinstance(request["revision"], dict)
                else None
            )
            git_source = (spec.get("source") or {}).get("git")
            if commit and isinstance(git_source, dict):
                git_source["ref"] = str(commit)  # build exactly the requested revision (OpenShift)
        if isinstance(request.get("from"), dict) and request["from"].get("name"):
            strategy = spec.setdefault("strategy", {"type": "Docker"})
            strategy.setdefault("dockerStrategy", {})["from"] = {
                "kind": "DockerImage",
                "name": str(request["from"]["name"]),
            }
        extra = (
            (request.get("metadata") or {}).get("annotations") if isinstance(request.get("metadata"), dict) else None
        )
        annotations = {str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {}
        build = {
            "apiVersion": BUILD.api_version,
            "kind": BUILD.kind,
            "metadata": {
                "name": f"{name}-{number}",
                "namespace": namespace,
                "labels": {BUILDCONFIG_LABEL: well_known.label_value(name)},
                "annotations": {**annotations, BUILD_NUMBER_ANNOTATION: str(number)},
                "ownerReferences": [
                    {
                        "apiVersion": BUILD_CONFIG.api_version,
                        "kind": BUILD_CONFIG.kind,
                        "name": name,
                        "uid": config["metadata"].get("uid", ""),
                        "controller": True,
                    }
                ],
            },
            "spec": spec,
            "status": {"phase": "New"},
        }
        created = crud.create(store, BUILD, namespace, build, keep_status=True)
        if binary is not None:
            store.put_blob_file(BUILD, namespace, created["metadata"]["name"], binary)
        return created


async def handle_instantiate(state: ServerState, request: Request, namespace: str, name: str) -> Response:
    """``POST .../buildconfigs/NAME/instantiate``: 201 with the new Build."""
    body = await wire.read_body(request)
    payload = wire.decode_json(body) if body.strip() else None
    build = await run_in_threadpool(instantiate, state.store, namespace, name, payload)
    return wire.json_response(build, 201)


# ------------------------------------------------------------------ logs


def tail_lines(text: bytes, lines: int | None) -> bytes:
    """The last ``lines`` lines of ``text`` (a final newline does not start a new line)."""
    if lines is None:
        return text
    if lines <= 0:
        return b""
    parts = text.split(b"\n")
    trailing = parts and parts[-1] == b""
    if trailing:
        parts = parts[:-1]
    out = b"\n".join(parts[-lines:])
    return out + b"\n" if trailing and out else out


def _pages(store: sqlite.Store, info: kinds.ResourceInfo, namespace: str, name: str, after: int) -> tuple[bytes, int]:
    """Log bytes after chunk ``after``, at most :data:`LOG_PAGE_CHUNKS` chunks: ``(bytes, last seq)``."""
    got, last = store.read_log(info, namespace, name, after=after, limit=LOG_PAGE_CHUNKS)
    return b"".join(got), last


def _log_state(store: sqlite.Store, info: kinds.ResourceInfo, namespace: str, name: str) -> str | None:
    """``"gone"``, ``"done"`` (terminal phase) or ``None`` (still running)."""
    try:
        obj = store.get(info, namespace, name)
    except errors.NotFound:
        return "gone"
    status = obj.get("status")
    phase = status.get("phase") if isinstance(status, dict) else None
    return "done" if phase in TERMINAL_PHASES else None


async def handle_get_log(
    state: ServerState, request: Request, info: kinds.ResourceInfo, namespace: str, name: str
) -> Response:
    """``GET .../NAME/log[?follow=true][&tailLines=N]``: ``text/plain``; 404 if the object is missing.

    The log is streamed page by page (never read whole); ``tailLines`` reads
    only the chunks its lines need, from the end. A ``follow=true`` stream
    holds one of the server's long-running slots (:mod:`.inflight`; 429 past them).
    """
    if info.kind == "Pod" and not info.group:  # the kubelet's: from the node agent, not the store
        from dockyard.apiserver import podlogs

        return await podlogs.handle_get(state, request, namespace, name)
    store = state.store
    tail = wire.query_int(request, "tailLines")
    follow = wire.query_bool(request, "follow")
    await run_in_threadpool(store.get, info, namespace, name)
    if tail is not None:
        text, start = await run_in_threadpool(store.read_log_tail, info, namespace, name, max(0, tail))
        text = tail_lines(text, tail)
    else:
        text, start = b"", 0
    release = state.long_running.acquire(wire.request_user(request)) if follow else None

    async def chunks(after: int) -> AsyncIterator[bytes]:
        if text:
            yield text
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_FOLLOW_SECONDS
        while True:
            more, after = await run_in_threadpool(_pages, store, info, namespace, name, after)
            if more:
                yield more
                continue
            if not follow or loop.time() >= deadline or state.stopping.is_set():
                return
            seen = state.activity.seq
            finished = await run_in_threadpool(_log_state, store, info, namespace, name)
            more, after = await run_in_threadpool(_pages, store, info, namespace, name, after)
            if more:
                yield more
                continue
            if finished:
                return
            await state.activity.wait(seen, min(5.0, deadline - loop.time()))

    if release is None:
        return StreamingResponse(chunks(start), media_type="text/plain")
    return inflight.HeldStream(chunks(start), media_type="text/plain", release=release)


async def handle_append_log(
    state: ServerState, request: Request, info: kinds.ResourceInfo, namespace: str, name: str
) -> Response:
    """``POST .../NAME/log`` with a ``text/plain`` chunk (at most 4 MiB): 201 Status Success. Builds only: a
    pod's log is its containers' output, read from its node (405)."""
    if info.kind == "Pod" and not info.group:
        raise errors.MethodNotAllowed("the server does not allow this method on the requested resource")
    body = await wire.read_body(request, wire.MAX_LOG_CHUNK)
    if body:
        await run_in_threadpool(state.store.append_log, info, namespace, name, body)
    else:
        await run_in_threadpool(state.store.get, info, namespace, name)
    return wire.json_response(wire.success_status({"name": name, "group": info.group, "kind": info.plural}, 201), 201)


# ------------------------------------------------------------------ commit


def _invalid_push(field: str, message: str) -> errors.Invalid:
    return errors.Invalid(
        kind=PUSH.kind, group=PUSH.group, name="", causes=[errors.Cause(field=field, message=message)]
    )


def find_container(pods: list[Obj], container_id: str) -> tuple[Obj, str]:
    """The pod and container name whose ``status.containerStatuses[].containerID`` is ``container_id``.

    ``containerID`` values look like ``docker://<hex>``; the argument may be
    the bare ID, the full URI, or any unique prefix of the bare ID.

    Raises:
        errors.NotFound: no such container, or the prefix is ambiguous.
    """
    exact: list[tuple[Obj, str]] = []
    prefix: list[tuple[Obj, str]] = []
    wanted = container_id.strip()
    for pod in pods:
        status: Obj = pod["status"] if isinstance(pod.get("status"), dict) else {}
        for key in ("containerStatuses", "initContainerStatuses"):
            for cs in status.get(key) or []:
                if not isinstance(cs, dict) or not isinstance(cs.get("containerID"), str):
                    continue
                full = cs["containerID"]
                bare = full.split("://", 1)[-1]
                if wanted and wanted in (full, bare):
                    exact.append((pod, str(cs.get("name", ""))))
                elif wanted and bare.startswith(wanted):
                    prefix.append((pod, str(cs.get("name", ""))))
    found = exact or prefix
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise errors.NotFound(
            f'container "{wanted}" is ambiguous: {len(found)} containers match',
            details={"name": wanted, "kind": "containers"},
        )
    raise errors.NotFound(f'container "{wanted}" not found', details={"name": wanted, "kind": "containers"})


def commit(store: sqlite.Store, container_id: str, body: Any) -> Obj:
    """Create the Push that commits a running pod container; returns the stored Push.

    Body: ``{"image": REF, "pause": bool?, "changes": [str]?, "message": str?, "author": str?}``.

    Raises:
        errors.BadRequest: the body is not an object.
        errors.Invalid: ``image`` missing, or a field of the wrong type (422).
        errors.NotFound: no pod container has that ID.
    """
    if not isinstance(body, dict):
        raise errors.BadRequest("the request body must be a JSON object")
    image = body.get("image")
    if not isinstance(image, str) or not image.strip():
        raise _invalid_push("spec.image", "Required value: image is required")
    pause = body.get("pause", True)
    if pause is None:
        pause = True
    if not isinstance(pause, bool):
        raise _invalid_push("spec.pause", "Invalid value: must be a boolean")
    changes = body.get("changes")
    if changes is not None and (not isinstance(changes, list) or not all(isinstance(c, str) for c in changes)):
        raise _invalid_push("spec.changes", "Invalid value: must be a list of strings")
    for field in ("message", "author"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise _invalid_push(f"spec.{field}", "Invalid value: must be a string")
    pods = store.list(POD, None).items
    pod, container = find_container(pods, container_id)
    meta = pod["metadata"]
    spec = {
        "podName": meta["name"],
        "containerName": container,
        "image": image,
        "pause": pause,
        "changes": changes,
        "message": body.get("message"),
        "author": body.get("author"),
    }
    push = {
        "apiVersion": PUSH.api_version,
        "kind": PUSH.kind,
        "metadata": {
            "generateName": f"{meta['name']}-{container}-",
            "labels": {NODENAME_LABEL: str((pod.get("spec") or {}).get("nodeName") or "")},
        },
        "spec": {k: v for k, v in spec.items() if v is not None},
    }
    return crud.create(store, PUSH, meta["namespace"], push)


async def handle_commit(state: ServerState, request: Request, container_id: str) -> Response:
    """``POST /containers/{id}/commit``: 202 with the Push and ``Location`` of it."""
    payload = wire.decode_json(await wire.read_body(request))
    push = await run_in_threadpool(commit, state.store, container_id, payload)
    meta = push["metadata"]
    location = paths.object_path(PUSH, meta["namespace"], meta["name"])
    return wire.json_response(push, 202, headers={"Location": location})
