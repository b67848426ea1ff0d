"""Tag policies (Flux ImagePolicy's meaning) and their admission: every bad field named by its path."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dockyard.api import errors, imagepolicy, kinds, validation
from dockyard.api.imagepolicy import Policy, select

TAGS = ["latest", "v1.0.0", "1.2.3", "v1.4.9", "1.5.0-rc.1", "2.0.0", "1.10.0", "main-abc-100", "main-def-99", "7"]


@pytest.mark.parametrize(
    ("range_", "expected"),
    [
        (">=1.0.0 <2.0.0", "1.10.0"),
        (">=1.0.0, <2.0.0", "1.10.0"),  # Masterminds' comma is AND
        ("^1.2", "1.10.0"),
        ("~1.4", "v1.4.9"),
        ("1.x", "1.10.0"),
        (">=1.5.0-0 <1.6.0", "1.5.0-rc.1"),  # a pre-release only when the range names one
        ("~1.5", None),
        ("*", "7"),  # '7' reads as 7.0.0 (Masterminds NewVersion completes it)
        ("<2.0.0 || >=7.0.0", "7"),
    ],
)
def test_semver_ranges(range_: str, expected: str | None) -> None:
    assert select(Policy(semver=range_), TAGS) == expected


def test_alphabetical_and_numerical_orders_follow_flux() -> None:
    tags = ["2024-01-02", "2024-03-01", "2023-12-31"]
    assert select(Policy(alphabetical="asc"), tags) == "2024-03-01"
    assert select(Policy(alphabetical="desc"), tags) == "2023-12-31"
    assert select(Policy(numerical="asc"), ["9", "10", "1.5"]) == "10"  # numbers, not strings
    assert select(Policy(numerical="desc"), ["9", "10", "1.5"]) == "1.5"
    with pytest.raises(imagepolicy.PolicyError, match="'latest' is not a number"):
        select(Policy(numerical="asc"), ["1", "latest"])


def test_filter_tags_extract_compares_the_named_group_and_returns_the_tag() -> None:
    policy = Policy(numerical="asc", pattern=r"^main-[a-f0-9]+-(?P<ts>[0-9]+)", extract="$ts")
    assert select(policy, TAGS) == "main-abc-100"  # 100 > 99 numerically; 'latest' etc. filtered out
    braces = Policy(alphabetical="asc", pattern=r"^main-(?P<sha>[a-f0-9]+)-", extract="${sha}")
    assert select(braces, TAGS) == "main-def-99"
    numbered = Policy(semver="^1", pattern=r"^v(\d+\.\d+\.\d+)$", extract="$1")
    assert select(numbered, TAGS) == "v1.4.9"
    assert select(Policy(alphabetical="asc", pattern="^nomatch$"), TAGS) is None


def test_expand_is_gos_expand() -> None:
    match = imagepolicy.compile_pattern(r"(?P<a>x)(y)?").search("x")
    assert imagepolicy.expand("$a-$2-$$-${a}b", match) == "x--$-xb"


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    started = time.monotonic()
    tags = ["a" * 127 + "!"] * 50
    assert select(Policy(alphabetical="asc", pattern=r"^(a+)+$"), tags) is None
    assert time.monotonic() - started < 2.0


def _causes(spec: dict[str, Any]) -> list[tuple[str, str]]:
    info = next(i for i in kinds.RESOURCES if i.kind == "Image")
    try:
        validation.validate(info, {"metadata": {"name": "app"}, "spec": spec})
    except errors.Invalid as err:
        return [(c.field, c.message) for c in err.causes]
    return []


REPO = "127.0.0.1:5000/app"


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"tag": "v1", "policy": {"semver": {"range": "^1"}}}, "spec.policy", "mutually exclusive"),
        ({"filterTags": {"pattern": "^v"}}, "spec.filterTags", "needs a policy"),
        ({"policy": {"semver": {"range": ">=banana"}}}, "spec.policy.semver.range", "not a semver range"),
        ({"policy": {}}, "spec.policy", "exactly one"),
        ({"policy": {"semver": {"range": "^1"}, "alphabetical": {}}}, "spec.policy", "exactly one"),
        ({"policy": {"alphabetical": {"order": "up"}}}, "spec.policy.alphabetical.order", "'asc' or 'desc'"),
        ({"policy": {"numerical": {"order": "down"}}}, "spec.policy.numerical.order", "'asc' or 'desc'"),
        ({"policy": {"numerical": {}}, "filterTags": {"pattern": "(a"}}, "spec.filterTags.pattern", "RE2"),
        ({"policy": {"numerical": {}}, "filterTags": {"pattern": r"(a)\1"}}, "spec.filterTags.pattern", "RE2"),
        (
            {"policy": {"numerical": {}}, "filterTags": {"pattern": "(?P<t>[0-9]+)", "extract": "$ts"}},
            "spec.filterTags.extract",
            "no group named 'ts'",
        ),
        ({"policy": {"numerical": {}, "bogus": 1}}, "spec.policy.bogus", ""),
        ({"tag": "-x"}, "spec.tag", "is not a tag"),
    ],
)
def test_admission_names_the_bad_field(spec: dict[str, Any], field: str, words: str) -> None:
    causes = _causes({"repository": REPO, **spec})
    assert [f for f, _ in causes] == [field], causes
    assert words in causes[0][1]


def test_admission_accepts_flux_shaped_policies() -> None:
    assert _causes({"repository": REPO}) == []
    assert _causes({"repository": REPO, "tag": "v1"}) == []
    assert (
        _causes(
            {
                "repository": REPO,
                "policy": {"numerical": {"order": "asc"}},
                "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)", "extract": "$ts"},
            }
        )
        == []
    )
    assert _causes({"repository": REPO, "policy": {"semver": {"range": ">=1.0.0, <2.0.0"}}}) == []
