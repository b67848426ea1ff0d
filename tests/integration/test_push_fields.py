"""Push fields are honoured or refused, never accepted and retried to failure (DESIGN.md "Rules").

``spec.changes`` are the Dockerfile instructions ``docker commit --change`` and ``podman commit --change`` both
apply; anything else the engine refuses on every attempt, so the API server refuses it at once: 422 naming
``spec.changes[i]``, nothing stored.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from integration.test_buildconfig_fields import accepted, refused

PUSHES = "/apis/dockyard.dev/v1alpha1/namespaces/default/pushes"


def push(name: str, **spec: Any) -> dict[str, Any]:
    body = {"podName": "web", "image": "127.0.0.1:5000/snap:v1", **spec}
    return {"apiVersion": "dockyard.dev/v1alpha1", "kind": "Push", "metadata": {"name": name}, "spec": body}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("BOGUS instr", ("BOGUS", "CMD")),
        ("RUN rm -rf /", ("RUN",)),
        ("FROM scratch", ("FROM",)),
        ("CMD", ("argument",)),
        ("", ("instruction",)),
    ],
)
def test_a_change_the_engines_cannot_apply_is_422_naming_it(api: httpx.Client, change: str, words: str) -> None:
    refused(api, push("bad", changes=["ENV A=1", change]), "spec.changes[1]", *words, url=PUSHES)


def test_the_changes_both_engines_apply_are_accepted(api: httpx.Client) -> None:
    changes = [
        'CMD ["sh", "-c", "echo hi"]',
        "entrypoint /bin/sh",
        "ENV A=1 B=2",
        "EXPOSE 8080/tcp",
        'LABEL a="b"',
        "ONBUILD RUN true",
        "STOPSIGNAL SIGINT",
        "USER 1000:1000",
        "VOLUME /data",
        "WORKDIR /srv",
    ]
    accepted(api, push("good", changes=changes), url=PUSHES)
