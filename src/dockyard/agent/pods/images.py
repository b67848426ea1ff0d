"""The image manager: pull policy, pull back-off, image identity, the pause image.

kubelet ``pkg/kubelet/images/image_manager.go`` ``EnsureImageExists``: the effective pull policy
(:func:`podspec.effective_pull_policy`) decides whether to pull; a failed pull is retried after a back-off
(``initial`` doubling to ``maximum``) keyed by pod, container and image, and reported as the container's
waiting reason (``ErrImagePull``, then ``ImagePullBackOff``; ``ErrImageNeverPull``, ``InvalidImageName``).
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lightkube.models.core_v1 import Container
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.agent.engine import containers as engine
from dockyard.agent.engine import errors as engine_errors
from dockyard.agent.pods.state import Failure, PodState

__all__ = ["PAUSE_IMAGE", "ImageManager", "PullAuth"]

#: Built locally from the static busybox (nothing can be pulled here).
PAUSE_IMAGE = "localhost/dockyard-pause:1"
_PAUSE_DOCKERFILE = 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox", "sleep", "2147483647"]\n'
_CACHE_LIMIT = 4096

PullAuth = Callable[[Pod, str], "Sequence[Mapping[str, str]]"]
"""Called before a pull: ``(pod, image) -> auth configs`` (``{"username", "password"}``) to try in order, as the
kubelet tries each credential its keyring finds for the image (``pullImageWithCreds``); ``[]``: pull anonymously.
May raise :class:`dockyard.agent.engine.errors.PullFailed` (credentials that cannot be read)."""


class ImageManager:
    """Images for the pods of one engine.

    Args:
        engine: the engine's container operations.
        backoff: the pull back-off (the crash back-off policy).
        pull_timeout: bound on one pull, in seconds.
        pull_auth: optional ``(pod, image) -> auth configs`` for private registries (image pull secrets,
            :data:`PullAuth`).
        pause_image: the infra image; built from ``busybox`` if missing.
        busybox: a static busybox binary for the pause image.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        engine: engine.Containers,
        *,
        backoff: podspec.BackOffPolicy,
        pull_timeout: float,
        pull_auth: PullAuth | None,
        pause_image: str,
        busybox: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._backoff = backoff
        self._pull_timeout = pull_timeout
        self._pull_auth = pull_auth
        self.pause_image = pause_image
        self._busybox = Path(busybox)
        self._clock = clock
        self._lock = threading.Lock()
        self._pause_ready = False
        self._image_ids: dict[str, str] = {}  # node-wide: image reference → imageID

    def ensure_image(self, state: PodState, pod: Pod, container: Container, now: float) -> tuple[str, str] | None:
        """kubelet ``EnsureImageExists``: ``None`` when the image is there, else the container's waiting
        ``(reason, message)``.

        Raises:
            EngineError: the engine could not tell whether it has the image.
        """
        image = container.image or ""
        if not image:
            return "InvalidImageName", "image is required"
        policy = podspec.effective_pull_policy(container)
        present = self._engine.image_present(image)
        if policy == "Never":
            if present:
                return None
            return "ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never'
        if policy == "IfNotPresent" and present:
            return None
        key = (container.name, image)
        failure = state.pull_failures.get(key)
        if failure is not None and now < failure.retry_at:
            return "ImagePullBackOff", f'Back-off pulling image "{image}": {failure.message}'
        try:
            self._pull(pod, image)
        except engine_errors.PullFailed as e:
            backoff = self._backoff.initial if failure is None else min(2 * failure.backoff, self._backoff.maximum)
            message = f'failed to pull image "{image}": {e}'
            state.pull_failures[key] = Failure(retry_at=self._clock() + backoff, backoff=backoff, message=message)
            return "ErrImagePull", message
        state.pull_failures.pop(key, None)
        return None

    def _pull(self, pod: Pod, image: str) -> None:
        """Pull with each credential :attr:`_pull_auth` gives, until one works; anonymously when it gives none
        (kubelet ``kuberuntime_image.go`` ``PullImage``: the errors of every attempt, joined).

        Raises:
            PullFailed: every attempt failed (the engine's reasons, never a credential).
        """
        creds = list(self._pull_auth(pod, image)) if self._pull_auth else []
        if not creds:
            self._engine.pull(image, auth=None, timeout=self._pull_timeout)
            return
        reasons: list[str] = []
        for auth in creds:
            try:
                self._engine.pull(image, auth=auth, timeout=self._pull_timeout)
                return
            except engine_errors.PullFailed as e:
                reasons.append(str(e))
        raise engine_errors.PullFailed("; ".join(dict.fromkeys(reasons)))

    def image_user(self, image: str) -> str:
        """The image's ``Config.User`` (``""``: root), for ``runAsNonRoot`` and ``runAsGroup`` (kubelet
        ``getImageUser``).

        Raises:
            EngineError: the engine has no such image or failed.
        """
        attrs = self._engine.inspect_image(image)
        return str((attrs.get("Config") or {}).get("User") or "")

    def image_id(self, image_ref: str) -> str:
        """``docker-pullable://repo@sha256:…`` when the image has a repo digest, else its id ``sha256:…``
        (the kubelet's ``imageID``); ``""`` when unknown."""
        if not image_ref:
            return ""
        cached = self._image_ids.get(image_ref)
        if cached is not None:
            return cached
        try:
            attrs = self._engine.inspect_image(image_ref)
        except engine_errors.EngineError:
            return ""
        digests = attrs.get("RepoDigests") or []
        image_id = str(attrs.get("Id") or image_ref)
        if image_id and not image_id.startswith("sha256:"):
            image_id = "sha256:" + image_id
        value = f"docker-pullable://{digests[0]}" if digests else image_id
        if len(self._image_ids) > _CACHE_LIMIT:
            self._image_ids.clear()
        self._image_ids[image_ref] = value
        return value

    def ensure_pause_image(self) -> None:
        """Build the pause image from the static busybox unless the engine has it (once per process).

        Raises:
            EngineError: the build failed. OSError: the busybox binary cannot be read.
        """
        with self._lock:
            if self._pause_ready:
                return
            if not self._engine.image_present(self.pause_image):
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w") as tar:
                    _add_file(tar, "Dockerfile", _PAUSE_DOCKERFILE.encode(), 0o644)
                    _add_file(tar, "busybox", self._busybox.read_bytes(), 0o755)
                self._engine.build(context=buf.getvalue(), tag=self.pause_image)
            self._pause_ready = True


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))
