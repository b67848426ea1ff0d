"""Image reference parsing (dockyard.api.reference, the one parser): pure, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dockyard.api import reference
from dockyard.api.reference import InvalidReference, Reference, parse
from dockyard.registry import errors as registry_errors
from dockyard.registry import reference as registry_reference

SHA = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", Reference("docker.io", "library/busybox", "latest", None)),
        ("busybox:1.35", Reference("docker.io", "library/busybox", "1.35", None)),
        ("team/app", Reference("docker.io", "team/app", "latest", None)),
        ("docker.io/busybox", Reference("docker.io", "library/busybox", "latest", None)),
        ("index.docker.io/team/app:v1", Reference("docker.io", "team/app", "v1", None)),
        ("127.0.0.1:5000/app", Reference("127.0.0.1:5000", "app", "latest", None)),
        ("127.0.0.1:41234/a/b/c:v1.2-rc_3", Reference("127.0.0.1:41234", "a/b/c", "v1.2-rc_3", None)),
        ("localhost/app:dev", Reference("localhost", "app", "dev", None)),
        ("localhost:5000/app", Reference("localhost:5000", "app", "latest", None)),
        ("quay.io/org/app@" + SHA, Reference("quay.io", "org/app", None, SHA)),
        ("quay.io/org/app:v1@" + SHA, Reference("quay.io", "org/app", "v1", SHA)),
        ("Registry/app", Reference("Registry", "app", "latest", None)),  # upper case → a host
        ("[::1]:5000/app:v1", Reference("[::1]:5000", "app", "v1", None)),
        ("localhost", Reference("docker.io", "library/localhost", "latest", None)),
        ("localhost:5000", Reference("docker.io", "library/localhost", "5000", None)),
        ("a__b/c-d--e.f", Reference("docker.io", "a__b/c-d--e.f", "latest", None)),
        ("my-registry.example.com:443/x", Reference("my-registry.example.com:443", "x", "latest", None)),
    ],
)
def test_parse(text: str, expected: Reference) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " busybox",
        "busybox ",
        "Busybox",  # single component must be lower case
        "127.0.0.1:5000/App",
        "app:",
        "app:-bad",
        "app:" + "a" * 129,
        "app@sha256:abc",
        "app@sha256:" + "AB" * 32,  # sha256 hex must be lower case
        "app@" + "x" * 64,
        "a/",
        "/a",
        "a//b",
        "a_/b",
        "-a/b",
        "a..b",
        "host:port/app",
        "ab" * 32,  # an image ID, not a name
        "registry.example.com/" + "a" * 300,
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse(text)


def test_invalid_reference_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse("UPPER")


def test_str_and_properties() -> None:
    ref = parse("127.0.0.1:5000/team/app:v1")
    assert str(ref) == "127.0.0.1:5000/team/app:v1"
    assert ref.repository_url == "127.0.0.1:5000/team/app"
    assert ref.manifest_reference == "v1"
    pinned = ref.with_digest(SHA)
    assert str(pinned) == f"127.0.0.1:5000/team/app@{SHA}"
    assert pinned.manifest_reference == SHA
    assert pinned.tag is None
    assert str(pinned.with_tag("v2")) == "127.0.0.1:5000/team/app:v2"
    assert str(parse("busybox")) == "docker.io/library/busybox:latest"
    assert parse("busybox").familiar() == "busybox:latest"
    assert parse("team/app:v1").familiar() == "team/app:v1"
    assert parse("127.0.0.1:5000/app").familiar() == "127.0.0.1:5000/app:latest"


def test_registry_reference_raises_a_registry_error() -> None:
    """The registry's view of the one parser: same result, and a bad reference is a ``RegistryError``."""
    assert registry_reference.parse("127.0.0.1:5000/a/b:v1") == parse("127.0.0.1:5000/a/b:v1")
    with pytest.raises(registry_errors.RegistryError) as caught:
        registry_reference.parse("UPPER")
    assert isinstance(caught.value, InvalidReference)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("host:5000/a/b:v1", ("host:5000/a/b", "v1")),
        ("host:5000/a/b", ("host:5000/a/b", "latest")),
        ("busybox", ("busybox", "latest")),
        (f"app:v1@{SHA}", ("app", "v1")),
    ],
)
def test_split_tag(text: str, expected: tuple[str, str]) -> None:
    assert reference.split_tag(text) == expected


def test_with_digest_and_tag_validate() -> None:
    ref = parse("app")
    with pytest.raises(InvalidReference):
        ref.with_digest("sha256:123")
    with pytest.raises(InvalidReference):
        ref.with_tag("bad tag")


# --- properties ---------------------------------------------------------------------

_component = st.from_regex(r"\A[a-z0-9]{1,8}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,8}){0,2}\Z")
_path = st.lists(_component, min_size=1, max_size=3).map("/".join)
_registry = st.one_of(
    st.just(None),
    st.sampled_from(["127.0.0.1:5000", "localhost", "localhost:41234", "quay.io", "r.example.com:443", "[::1]:5000"]),
)
_tag = st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z"))
_digest = st.one_of(st.none(), st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex()))


@given(registry=_registry, path=_path, tag=_tag, digest=_digest)
def test_roundtrip(registry: str | None, path: str, tag: str | None, digest: str | None) -> None:
    # without a registry, a first component with "." would itself be read as a host
    assume(registry is not None or "/" not in path or "." not in path.split("/")[0])
    text = (f"{registry}/" if registry else "") + path + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ref = parse(text)
    # the printed form is canonical: it parses back to itself
    assert parse(str(ref)) == ref
    assert str(parse(str(ref))) == str(ref)
    assert ref.registry == (registry or reference.DEFAULT_REGISTRY)
    assert ref.digest == digest
    assert ref.tag == (tag or (None if digest else "latest"))
    if registry:
        assert ref.repository == path
    else:
        assert ref.repository == (path if "/" in path else "library/" + path)


@given(st.text(max_size=40))
def test_parse_never_crashes(text: str) -> None:
    try:
        ref = parse(text)
    except InvalidReference:
        return
    assert parse(str(ref)) == ref
