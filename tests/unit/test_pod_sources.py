"""Pure logic of :mod:`dockyard.agent.pods.sources` (the end-to-end behaviour is in
tests/integration/test_pod_secrets.py): every field path the API accepts resolves, the kubelet's order and
expansion rules, and a volume directory that holds exactly its files."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightkube.models.core_v1 import Container
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.agent.pods import sources
from dockyard.api import podsources

POD = Pod.from_dict(
    {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"a": "1"}, "annotations": {"b": "2"}},
        "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i"}]},
    }
)


@pytest.mark.parametrize("path", podsources.ENV_FIELD_PATHS)
def test_every_field_path_the_api_accepts_resolves(path: str) -> None:
    assert isinstance(sources.field_value(POD, path, pod_ip="127.2.0.9"), str)


def test_field_values() -> None:
    got = {p: sources.field_value(POD, p, pod_ip="127.2.0.9") for p in podsources.ENV_FIELD_PATHS}
    assert got == {
        "metadata.name": "p",
        "metadata.namespace": "ns",
        "metadata.uid": "u-1",
        "spec.nodeName": "n",
        "spec.serviceAccountName": "default",
        "status.hostIP": "127.0.0.1",
        "status.podIP": "127.2.0.9",
    }
    assert sources.field_value(POD, "metadata.labels['a']") == "1"
    assert sources.field_value(POD, "metadata.annotations['b']") == "2"
    with pytest.raises(podspec.ConfigError):
        sources.field_value(POD, "status.podIPs")


def test_env_order_and_expansion() -> None:
    """envFrom first, env overrides in order; $(VAR) expands in values, never in a Secret's bytes."""
    data = {"db": {"user": b"app", "pw": b"$(user)"}}
    container = Container.from_dict(
        {
            "name": "c",
            "envFrom": [{"secretRef": {"name": "db"}, "prefix": "DB_"}],
            "env": [
                {"name": "U", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}},
                {"name": "URL", "value": "x://$(U)@h/$(DB_pw)"},
                {"name": "DB_user", "value": "over"},
            ],
        }
    )
    env = sources.container_env(POD, container, lambda ns, name: data.get(name))
    assert env == {"DB_user": "over", "DB_pw": "$(user)", "U": "app", "URL": "x://app@h/$(user)"}


def test_env_from_keys_follow_the_relaxed_name_rule() -> None:
    """KEP-4369 (on by default since 1.32, the rule the API server checks ``env[].name`` with): a key that starts
    with a digit becomes a variable; one that no environment can hold (an '=', a non-ASCII byte) is left out."""
    data = {"bulk": {"1st": b"x", "a.b-c": b"y", "bad=key": b"z", "caf\u00e9": b"w"}}
    container = Container.from_dict({"name": "c", "envFrom": [{"secretRef": {"name": "bulk"}}]})
    env = sources.container_env(POD, container, lambda ns, name: data.get(name))
    assert env == {"1st": "x", "a.b-c": "y"}


def test_a_missing_secret_names_itself_unless_optional() -> None:
    container = Container.from_dict(
        {"name": "c", "env": [{"name": "V", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]}
    )
    with pytest.raises(sources.MissingSecret, match='secret "gone" not found'):
        sources.container_env(POD, container, lambda ns, name: None)
    container.env[0].valueFrom.secretKeyRef.optional = True  # type: ignore[index,union-attr]
    assert sources.container_env(POD, container, lambda ns, name: None) == {}


def test_a_volume_holds_exactly_its_files(tmp_path: Path) -> None:
    root = tmp_path / "v"
    sources.write_volume(root, {"a": (b"1", 0o600), "d/b": (b"2", 0o644)})
    assert (root / "a").read_bytes() == b"1" and (root / "a").stat().st_mode & 0o777 == 0o600
    sources.write_volume(root, {"c": (b"3", 0o644)})
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == ["c"]


def test_a_volume_written_again_changes_only_what_differs(tmp_path: Path) -> None:
    """The periodic refresh rewrites a file only when its bytes or mode differ (no rename, so no new inode, for
    a file that is up to date) and reports whether anything changed."""
    root = tmp_path / "vol"
    assert sources.write_volume(root, {"a": (b"1", 0o644), "b": (b"2", 0o644)})
    inode = (root / "a").stat().st_ino
    assert not sources.write_volume(root, {"a": (b"1", 0o644), "b": (b"2", 0o644)})
    assert (root / "a").stat().st_ino == inode
    assert sources.write_volume(root, {"a": (b"1", 0o600), "b": (b"2", 0o644)})
    assert (root / "a").stat().st_mode & 0o777 == 0o600
    assert sources.write_volume(root, {"a": (b"1", 0o600), "b": (b"22", 0o644)})
    assert (root / "b").read_bytes() == b"22"
    assert sources.write_volume(root, {"a": (b"1", 0o600)})
    assert not (root / "b").exists()
    (root / "a").unlink()
    (root / "a").symlink_to("/etc/hostname")
    assert sources.write_volume(root, {"a": (b"1", 0o600)})
    assert not (root / "a").is_symlink() and (root / "a").read_bytes() == b"1"


def test_config_maps_and_secrets_are_read_from_their_own_lookups() -> None:
    """Each kind from its own lookup, by name; the kubelet's messages name the kind; an agent without a
    ConfigMap lookup says so instead of reading a Secret of the same name."""
    secrets = {"same": {"k": b"secret"}}
    config_maps = {"same": {"k": b"config", "bin": b"\x00\xff"}}
    container = Container.from_dict(
        {
            "name": "c",
            "envFrom": [{"configMapRef": {"name": "same"}, "prefix": "CM_"}],
            "env": [
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "same", "key": "k"}}},
                {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "same", "key": "k"}}},
            ],
        }
    )
    env = sources.container_env(
        POD, container, lambda ns, name: secrets.get(name), config_maps=lambda ns, name: config_maps.get(name)
    )
    assert env == {"CM_k": "config", "CM_bin": "\x00\ufffd", "S": "secret", "C": "config"}
    with pytest.raises(podspec.ConfigError, match="reads no ConfigMaps"):
        sources.container_env(POD, container, lambda ns, name: secrets.get(name))
    missing = Container.from_dict(
        {"name": "c", "env": [{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "same", "key": "nope"}}}]}
    )
    with pytest.raises(sources.MissingSecret, match="couldn't find key nope in ConfigMap ns/same"):
        sources.container_env(POD, missing, None, config_maps=lambda ns, name: config_maps.get(name))
    with pytest.raises(sources.MissingSecret, match='configmap "same" not found'):
        sources.container_env(POD, missing, None, config_maps=lambda ns, name: None)


def test_a_projected_volume_mixes_config_maps_and_secrets() -> None:
    volume = Pod.from_dict(
        {
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "containers": [{"name": "c", "image": "i"}],
                "volumes": [
                    {
                        "name": "v",
                        "projected": {
                            "defaultMode": 0o440,
                            "sources": [
                                {"configMap": {"name": "cm", "items": [{"key": "a", "path": "conf/a"}]}},
                                {"secret": {"name": "s"}},
                            ],
                        },
                    }
                ],
            },
        }
    ).spec.volumes[0]  # type: ignore[union-attr,index]
    files = sources.volume_files(
        POD, volume, lambda ns, name: {"t": b"T"}, config_maps=lambda ns, name: {"a": b"A", "b": b"B"}
    )
    assert files == {"conf/a": (b"A", 0o440), "t": (b"T", 0o440)}
