"""``runtime.wrote`` / ``runtime.unseen_write``: a cached object older than this process's own write of it."""

from __future__ import annotations

import uuid

from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.core_v1 import PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apps_v1 import Deployment

from dockyard.client import runtime


def _deploy(uid: str, rv: str) -> Deployment:
    spec = DeploymentSpec(selector=LabelSelector(), template=PodTemplateSpec())
    meta = ObjectMeta(name="d", namespace="n", uid=uid, resourceVersion=rv)
    return Deployment(kind="Deployment", metadata=meta, spec=spec)


def test_a_cached_copy_of_the_version_written_from_is_unseen_until_the_cache_moves_on() -> None:
    uid = str(uuid.uuid4())
    cached, written = _deploy(uid, "7"), _deploy(uid, "9")
    assert not runtime.unseen_write(cached)
    assert runtime.wrote(cached, written)
    assert runtime.unseen_write(cached), "the cache still holds the version the write was made from"
    assert not runtime.unseen_write(written), "the cache has seen the write"
    assert not runtime.unseen_write(cached), "seen once: forgotten"


def test_a_write_that_stored_nothing_new_is_not_remembered() -> None:
    uid = str(uuid.uuid4())
    cached = _deploy(uid, "7")
    assert not runtime.wrote(cached, _deploy(uid, "7")), "no new resourceVersion: no watch event will come"
    assert not runtime.unseen_write(cached)


def test_dicts_and_typed_objects_are_the_same_object() -> None:
    uid = str(uuid.uuid4())
    runtime.wrote(_deploy(uid, "3"), {"kind": "Deployment", "metadata": {"uid": uid, "resourceVersion": "4"}})
    assert runtime.unseen_write({"kind": "Deployment", "metadata": {"uid": uid, "resourceVersion": "3"}})
