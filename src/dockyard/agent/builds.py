"""Run one Build on the engine: fetch the source, build with the engine's build API, push.

The node agent's version of OpenShift's ``docker-build`` builder image
(``openshift/builder``): the same three stages (``FetchInputs``, ``Build``,
``PushImage``, reported as ``StageInfo``) and the same failure reasons
(``FetchSourceFailed``, ``DockerBuildFailed``, ``PushImageToRegistryFailed``),
but with the engine's own build API instead of a privileged Docker-in-Docker
pod. The digest reported is the one the registry serves for the pushed tag.

Sources: ``Git`` (``git clone`` of a path, ``file://``, ``git://``, ``ssh://``
or ``http(s)://`` URI, then a detached checkout of ``ref``'s commit; the URI
and ref always follow ``--``/``--end-of-options``, and ``GIT_ALLOW_PROTOCOL``
keeps git to those transports (no ``ext::``); ``sourceSecret`` basic-auth
credentials go to git through ``GIT_CONFIG_*`` environment variables, never
the command line), ``Dockerfile`` (inline), and
``Binary`` (the archive uploaded through ``instantiatebinary``, fetched from
the API server). ``source.dockerfile``, for every source type, is the
Dockerfile built: written at ``dockerStrategy.dockerfilePath`` (default
``Dockerfile``) in ``contextDir``, over the source's own file there
(:func:`place_dockerfile`). With ``dockerStrategy.from`` the last ``FROM`` of the
Dockerfile is replaced by that image, as OpenShift's Docker strategy does.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import fcntl
import hashlib
import io
import logging
import os
import re
import shutil
import ssl
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dockyard.agent import pushes
from dockyard.agent.engine import connect, images
from dockyard.agent.engine import errors as engine_errors
from dockyard.agent.logsink import LogSink
from dockyard.api import archive, buildpod, gitref, models, provenance, timefmt
from dockyard.api import labels as well_known
from dockyard.api import objects as api_objects
from dockyard.api.buildpod import BuildResult
from dockyard.registry import client as registry
from dockyard.registry import digest as registry_digest
from dockyard.registry import errors as registry_errors
from dockyard.registry import manifests, reference

log = logging.getLogger(__name__)

GIT_TIMEOUT = 300  # seconds for one clone
SCRATCH_PREFIX = "dockyard-build-"
"""Prefix of a build's temporary directories (the clone fetched ahead, the work directory)."""

_registry_tls: ssl.SSLContext | None = None


def registry_tls() -> ssl.SSLContext:
    """The TLS context for registry requests (httpx's default: the public CAs, ``SSL_CERT_FILE`` honoured),
    made once per process.

    Loading the CA bundle costs 20–60 ms; :mod:`dockyard.agent.builder` calls this at import, so builders
    forked from the preloaded forkserver inherit the context instead of loading it for each request.
    """
    global _registry_tls
    if _registry_tls is None:
        _registry_tls = httpx.create_ssl_context()
    return _registry_tls


def registry_transport() -> httpx.HTTPTransport:
    """One connection pool for a build's registry requests (a base digest, the manifest GETs and PUTs):
    each request reuses the connection and :func:`registry_tls`. Close it when the build ends."""
    return httpx.HTTPTransport(verify=registry_tls())


class StageFailed(Exception):
    """A build stage failed; ``reason`` is OpenShift's ``StatusReason``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


class BuildCancelled(Exception):
    """The build pod was deleted (cancel, deadline): stop as soon as possible."""


@dataclass
class BuildInputs:
    """What the agent fetched from the API for this build (credentials are never logged).

    Attributes:
        source_auth: ``(username, password)`` for an http(s) git source, from ``sourceSecret``.
        push_auth: ``(username, password)`` for the output registry, from ``output.pushSecret``.
        binary: the file of the uploaded context archive for ``source.type: Binary``.
        cancelled: returns True once the build should stop.
        on_revision: called with the resolved source revision (``SourceRevision``: ``{"type": "Git",
            "git": {commit, author, committer, message}}``) as soon as the source is fetched, when the
            Build names none yet; must not block (the builder reports it through ``builds/details``).
        fetched: the source being fetched ahead (:func:`fetch_ahead`); the ``FetchInputs`` stage waits for it
            instead of fetching.
        scratch: the directory the build's temporary directory goes in, or None for the system's. The builder
            gives its state directory, which the agent removes with the build pod: a builder ended at once (a
            cancel's SIGTERM, a kill) leaves nothing in /tmp.
    """

    source_auth: tuple[str, str] | None = None
    push_auth: tuple[str, str] | None = None
    binary: Path | None = None
    cancelled: Callable[[], bool] = field(default=lambda: False)
    on_revision: Callable[[dict[str, Any]], None] | None = None
    fetched: concurrent.futures.Future[FetchedSource] | None = None
    scratch: Path | None = None


@dataclass
class FetchedSource:
    """A source fetched ahead of :func:`run_build` by :func:`fetch_ahead`.

    Attributes:
        context: the context directory (``contextDir`` within ``tree``).
        tree: the fetched tree, removed once the engine has the context.
        revision: the ``SourceRevision``, or None.
        lines: the fetch's log lines, in order; the ``FetchInputs`` stage writes them to the build log.
        error: the fetch's failure, raised by the stage after its lines.
        started: ``time.monotonic()`` when the fetch began; ``started_at`` the same as an RFC 3339 time
            (the stage's ``startTime``).
    """

    context: Path
    tree: Path
    revision: dict[str, Any] | None
    lines: list[str]
    error: StageFailed | None
    started: float
    started_at: str


def can_fetch_ahead(source: models.BuildSource) -> bool:
    """Whether :func:`fetch_ahead` can fetch ``source``: a Git source that names no ``sourceSecret`` (it needs
    nothing from the API)."""
    return (source.type or "Git") == "Git" and source.git is not None and source.sourceSecret is None


def fetch_ahead(source: models.BuildSource, workdir: Path, cancelled: Callable[[], bool]) -> FetchedSource:
    """Fetch ``source`` into ``workdir/src`` now, keeping its log lines, while the builder still makes its API
    clients and engine connection: the ``git clone`` is the first thing a build waits for, and it needs
    neither (only for :func:`can_fetch_ahead` sources).

    Returns:
        the fetched source, or its failure in ``error`` (``FetchSourceFailed``, git's message).
    Raises:
        BuildCancelled: ``cancelled()`` became true.
    """
    started, started_at = time.monotonic(), timefmt.now()
    lines: list[str] = []

    def write(line: str) -> None:
        if cancelled():
            raise BuildCancelled()
        lines.append(line)

    tree = workdir / "src"
    try:
        context, revision = fetch_source(source, workdir, write, BuildInputs(cancelled=cancelled))
    except StageFailed as err:
        return FetchedSource(tree, tree, None, lines, err, started, started_at)
    return FetchedSource(context, tree, revision, lines, None, started, started_at)


@contextlib.contextmanager
def fetching_ahead(
    source: models.BuildSource, cancelled: Callable[[], bool], scratch: Path | None = None
) -> Iterator[concurrent.futures.Future[FetchedSource] | None]:
    """Run :func:`fetch_ahead` for ``source`` on a thread of its own, into a new temporary directory (in
    ``scratch``, as :attr:`BuildInputs.scratch`), while the body runs; yields its future (None for a source it
    cannot fetch, :func:`can_fetch_ahead`). On leaving, however the body ended, waits for the fetch and removes
    the directory."""
    if not can_fetch_ahead(source):
        yield None
        return
    workdir = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=scratch))
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="builder-fetch") as fetcher:
            yield fetcher.submit(fetch_ahead, source, workdir, cancelled)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _Stages:
    """OpenShift ``StageInfo`` bookkeeping: ``name``, ``startTime``, ``durationMilliseconds``."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._t0 = 0.0

    def begin(self, name: str, *, since: tuple[float, str] | None = None) -> None:
        """Start stage ``name`` now, or at ``since`` (``(time.monotonic(), RFC 3339 time)`` of work done ahead)."""
        self.end()
        self._t0, start = since if since is not None else (time.monotonic(), timefmt.now())
        self.items.append({"name": name, "startTime": start})

    def end(self) -> None:
        if self.items and "durationMilliseconds" not in self.items[-1]:
            self.items[-1]["durationMilliseconds"] = int((time.monotonic() - self._t0) * 1000)


def push_target(build: api_objects.Build) -> str:
    """The registry reference ``build`` pushes to: the ``status.outputDockerImageReference`` the build controller
    resolved ``output.to`` to (OpenShift's builder pushes there too), or a ``kind: DockerImage`` ``output.to.name``
    (:func:`dockyard.api.buildpod.carried_output`).

    Raises:
        StageFailed: ``InvalidOutputReference``: ``output.to`` names an Image and nothing resolved it (an Image's
            name is never taken for a registry reference).
    """
    target = buildpod.carried_output(api_objects.to_dict(build))
    if target is None:
        to = build.spec.output.to
        raise StageFailed(
            "InvalidOutputReference",
            f'output.to: {to.kind} "{to.name}" was not resolved to a registry reference by the build controller '
            "(status.outputDockerImageReference)",
        )
    return target


def run_build(
    client: connect.Client, build: api_objects.Build, sink: LogSink, inputs: BuildInputs | None = None
) -> BuildResult:
    """Run ``build`` (its ``metadata`` and ``spec``, from the build pod) to completion.

    Returns:
        The result to report in the build pod's termination message. Never raises
        for a failure of the build itself; those become ``succeeded=False``.
    Raises:
        BuildCancelled: ``inputs.cancelled()`` became true.
    """
    inputs = inputs or BuildInputs()
    spec = build.spec
    started = time.monotonic()
    stages = _Stages()
    revision: dict[str, Any] | None = None
    try:
        to = push_target(build)
        base_ref = spec.strategy.dockerStrategy.from_
        if base_ref is not None and base_ref.kind != models.DOCKER_IMAGE_KIND:
            raise StageFailed(
                "InvalidImageReference",
                f'strategy.dockerStrategy.from: {base_ref.kind} "{base_ref.name}" was not resolved to a registry '
                "reference by the build controller",
            )
    except StageFailed as err:
        sink.write(f"error: {err.message}")
        sink.close()
        return BuildResult(succeeded=False, reason=err.reason, message=err.message, log_snippet=sink.snippet())

    def write(line: str) -> None:
        if inputs.cancelled():
            raise BuildCancelled()
        sink.write(line)

    def failed(reason: str, message: str) -> BuildResult:
        stages.end()
        sink.write(f"error: {message}")
        sink.close()
        return BuildResult(
            succeeded=False,
            reason=reason,
            message=message,
            log_snippet=sink.snippet(),
            stages=tuple(stages.items),
            revision=revision,
        )

    with (
        tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=inputs.scratch) as workdir,
        registry_transport() as transport,
        # registry work that overlaps the engine's (left first: waits for what it still runs)
        concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="build-aside") as aside,
    ):
        try:
            ahead = inputs.fetched.result() if inputs.fetched is not None else None
            stages.begin("FetchInputs", since=(ahead.started, ahead.started_at) if ahead is not None else None)
            write(f"--> FetchInputs: {_describe_source(spec.source)}")
            if ahead is not None:
                for line in ahead.lines:
                    write(line)
                if ahead.error is not None:
                    raise ahead.error
                context_dir, revision, tree = ahead.context, ahead.revision, ahead.tree
            else:
                context_dir, revision = fetch_source(spec.source, Path(workdir), write, inputs)
                tree = Path(workdir) / "src"
            if revision is not None and spec.revision is None and inputs.on_revision is not None:
                inputs.on_revision(revision)
            strategy = spec.strategy.dockerStrategy
            named = strategy.dockerfilePath or "Dockerfile"
            what = "dockerfilePath" if strategy.dockerfilePath else "Dockerfile"
            if spec.source.dockerfile is not None:
                place_dockerfile(context_dir, named, spec.source.dockerfile, what=what)
                write(f"Building source.dockerfile as {named}")
            path = within(context_dir, named, what=what)
            if not path.is_file():
                raise StageFailed(
                    "FetchSourceFailed",
                    f"no {named} in the source"
                    + (f" (contextDir {spec.source.contextDir})" if spec.source.contextDir else ""),
                )
            # the engine gets the file itself (a link inside the context is resolved here, as it was checked)
            dockerfile = path.relative_to(context_dir.resolve()).as_posix()
            base = strategy.from_.name if strategy.from_ is not None else None
            if base:
                path.write_text(replace_last_from(path.read_text(), base))
                write(f"Replaced the last FROM with {base} (dockerStrategy.from)")
            build_args = {a.name: a.value for a in strategy.buildArgs}
            order = build_order(build)
            # the base image's digest is a registry round trip: looked up while the engine builds, joined
            # at publish (the labels go into the pushed image's config there, not into a LABEL step: on
            # Podman that would be one more image commit)
            labels_future = aside.submit(
                provenance_labels,
                client,
                spec.source,
                revision,
                path.read_text(errors="replace"),
                build_args,
                auth=inputs.push_auth,
                auth_registry=registry_of(to),
                transport=transport,
            )
            stages.begin("Build")
            write(f"--> Build: {to}")
            # Built and pushed under a tag of its own: the output tag is shared with parallel builds of
            # the same output, and moves only after this build's own bytes are in the registry.
            target = reference.parse(to)
            own_ref = str(target.with_tag(own_tag(build)))
            context = tar_context(context_dir)
            # the source tree (a git clone) is in ``context`` now: it goes while the engine builds, not after the push
            aside.submit(shutil.rmtree, tree, ignore_errors=True)
            try:
                image_id = images.build(
                    client,
                    context=context,
                    tag=own_ref,
                    dockerfile=dockerfile,
                    buildargs=build_args,
                    nocache=strategy.noCache,
                    on_log=write,
                )
            except engine_errors.BuildFailed as err:
                raise StageFailed("DockerBuildFailed", f"Docker build strategy has failed: {err}") from err
            stages.begin("PushImage")
            write(f"--> PushImage: {to}")
            auth = {"username": inputs.push_auth[0], "password": inputs.push_auth[1]} if inputs.push_auth else None
            try:
                pushed = push_and_verify(
                    client, own_ref, auth=auth, registry_auth=inputs.push_auth, on_log=write, transport=transport
                )
                labels = {**labels_future.result(), well_known.BUILD_ORDER: order}
                digest, _moved = publish(
                    client,
                    image_id,
                    target,
                    pushed,
                    labels,
                    registry_auth=inputs.push_auth,
                    on_log=write,
                    transport=transport,
                    own_ref=own_ref,
                    aside=aside,
                )
            except (engine_errors.PushFailed, registry_errors.RegistryError) as err:
                raise StageFailed("PushImageToRegistryFailed", f"Failed to push the image: {err}") from err
            except engine_errors.TagFailed as err:
                raise StageFailed("PushImageToRegistryFailed", f"Failed to tag the image: {err}") from err
            stages.end()
        except StageFailed as err:
            return failed(err.reason, err.message)
        except engine_errors.EngineError as err:
            return failed("GenericBuildFailed", str(err))
    sink.write(f"Successfully pushed {to}@{digest} in {time.monotonic() - started:.1f}s")
    sink.close()
    return BuildResult(succeeded=True, image_digest=digest, stages=tuple(stages.items), revision=revision)


LOCK_DIR = Path(tempfile.gettempdir()) / "dockyard-push-locks"


@contextlib.contextmanager
def push_lock(ref: str) -> Iterator[None]:
    """Hold the node-wide lock of one output reference (``flock(2)`` on a file named by its hash).

    Builds of the same tag run in parallel, but tagging the built image and pushing it must not
    interleave: another build could move the engine's tag in between, and this build would push
    that build's image.
    """
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    path = LOCK_DIR / hashlib.sha256(ref.encode()).hexdigest()[:32]
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


PUSH_ATTEMPTS = 2  # a registry can refuse one of several concurrent pushes to a repository; try once more
OWN_TAG_PREFIX = buildpod.OWN_TAG_PREFIX


def own_tag(build: api_objects.Build) -> str:
    """The tag no other Build shares: ``dockyard-build-<name>-<uid prefix>`` (a valid tag, ≤ 128 characters)."""
    uid = (build.metadata.uid or "")[:8]
    text = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{OWN_TAG_PREFIX}{build.metadata.name}-{uid}".rstrip("-"))
    return text[:128]


def build_order(build: api_objects.Build) -> str:
    """The :data:`~dockyard.api.labels.BUILD_ORDER` value of ``build``: sorts in Build creation order
    (``creationTimestamp``, then the build number of its BuildConfig, then ``namespace/name``)."""
    meta = build.metadata
    stamp = meta.creationTimestamp
    created = timefmt.format(timefmt.parse_datetime(stamp) if isinstance(stamp, str) else stamp) if stamp else ""
    number = (meta.labels or {}).get(well_known.BUILD_NUMBER, "")
    number = f"{int(number):012d}" if number.isdigit() else "0" * 12
    return f"{created}/{number}/{meta.namespace}/{meta.name}"


def provenance_labels(
    client: connect.Client,
    source: models.BuildSource,
    revision: dict[str, Any] | None,
    dockerfile: str,
    build_args: dict[str, str],
    *,
    auth: tuple[str, str] | None,
    auth_registry: str,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, str]:
    """The OCI provenance keys of a built image (labels, and annotations of its manifest).

    ``source`` (the git URI without credentials) and ``revision`` (the commit) for a Git source;
    ``created`` (now, RFC 3339); ``base.name`` (the final stage's ``FROM``, build args applied) and
    ``base.digest`` (its manifest digest: the reference's own digest, else the engine's ``RepoDigests``,
    else the registry's answer for it — a registry on loopback only, with ``auth`` only if it is
    ``auth_registry``, sent through ``transport`` when given; left out when none is known). OCI image-spec
    ``annotations.md``.
    """
    labels = {well_known.OCI_CREATED: timefmt.now()}
    if source.git is not None:
        labels[well_known.OCI_SOURCE] = provenance.public_source_uri(source.git.uri)
    commit = ((revision or {}).get("git") or {}).get("commit")
    if commit:
        labels[well_known.OCI_REVISION] = str(commit)
    base = provenance.final_base_image(dockerfile, build_args)
    if base:
        labels[well_known.OCI_BASE_NAME] = base
        digest = _base_digest(client, base, auth, auth_registry, transport)
        if digest:
            labels[well_known.OCI_BASE_DIGEST] = digest
    return labels


def _base_digest(
    client: connect.Client,
    base: str,
    auth: tuple[str, str] | None,
    auth_registry: str,
    transport: httpx.BaseTransport | None = None,
) -> str | None:
    """The manifest digest ``base`` resolves to: its own digest; else what a registry on this machine serves
    for it (the pull of the build gets the same); else the engine's ``RepoDigests`` entry of its repository
    (right for a pulled image; Podman's entry of a locally built and pushed image can differ); else None."""
    try:
        ref = reference.parse(base)
    except registry_errors.InvalidReference:
        return None
    if ref.digest:
        return ref.digest
    if registry.base_url(ref.registry).startswith("http://"):  # loopback only: no network wait for a label
        try:
            return registry.manifest_digest(
                ref, auth=auth if ref.registry == auth_registry else None, timeout=3.0, transport=transport
            )
        except registry_errors.RegistryError:
            pass
    try:
        repo_digests = client.api.inspect_image(base).get("RepoDigests") or []
    except Exception:  # not on the engine
        return None
    own = [d for d in repo_digests if d.partition("@")[0] == ref.repository_url]
    return pushes.base_digest(base, own) if own else None


def push_and_verify(
    client: connect.Client,
    ref: str,
    *,
    auth: dict[str, str] | None,
    registry_auth: tuple[str, str] | None,
    on_log: Callable[[str], None],
    transport: httpx.BaseTransport | None = None,
) -> registry.Manifest:
    """Push ``ref`` and return the manifest this push wrote, as the registry serves it by digest.

    The digest comes from the push itself, not from the tag afterwards. The engine's digest must be
    well-formed (checked by :func:`images.push`), and the registry must serve a manifest under it whose
    bytes hash to it (``GET /v2/<name>/manifests/<digest>``, :func:`registry.get_manifest`).

    Raises:
        engine_errors.PushFailed: after :data:`PUSH_ATTEMPTS` failed pushes, or the engine
            reported a malformed digest.
        registry_errors.RegistryError: the registry does not serve the pushed manifest
            (``DigestMismatch``: it serves other bytes under that digest or tag).
    """
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        try:
            pushed = images.push(client, ref, auth=auth, on_log=on_log)
            target = reference.parse(ref) if pushed is None else reference.parse(ref).with_digest(pushed)
            return registry.get_manifest(target, auth=registry_auth, transport=transport)
        except (engine_errors.PushFailed, registry_errors.ManifestUnknown) as err:
            if attempt == PUSH_ATTEMPTS or "auth" in str(err).lower():
                raise
            on_log(f"push failed ({err}); retrying")
    raise AssertionError("unreachable")


def publish(
    client: connect.Client,
    image_id: str,
    target: reference.Reference,
    pushed: registry.Manifest,
    labels: dict[str, str],
    *,
    registry_auth: tuple[str, str] | None,
    on_log: Callable[[str], None],
    transport: httpx.BaseTransport | None = None,
    own_ref: str | None = None,
    aside: concurrent.futures.Executor | None = None,
) -> tuple[str, bool]:
    """Store this build's image in ``target``'s repository, labelled and annotated, and move the output tag to it.

    1. The config blob of ``pushed`` (what the engine pushed under the build's own tag) is fetched, gets
       ``labels`` merged over its own ``config.Labels`` (:func:`dockyard.registry.manifests.labelled_config`)
       and is uploaded to the same repository as a new blob; ``pushed`` becomes an OCI image manifest
       naming that config and the same layers, with ``labels`` as annotations
       (:func:`dockyard.registry.manifests.annotated_oci_manifest`). The Dockerfile has no ``LABEL`` step
       for them: the image the engine built and keeps (its local tags) has the Dockerfile's labels only.
    2. Under the node's lock of the output reference, it is stored under the tag (``PUT`` by tag: the
       registry stores the bytes, addressable by their digest too) unless the manifest the tag names
       already carries a later :data:`~dockyard.api.labels.BUILD_ORDER` (last writer by Build creation
       order, not by finishing order); then it is stored by its digest alone. Either way that digest is
       the Build's: the registry's answer for exactly those bytes. The engine's local tag follows the tag
       (to the engine's image, without the provenance labels).
    3. The own tag's manifest is deleted (a registry that refuses deletes keeps it; noted in the log), on
       ``aside`` when given, while the engine removes its tag ``own_ref`` (when given and the output tag
       moved: the image stays as the output tag; a superseded image keeps its own tag, since removing its
       last name would delete it while a parallel build may be looking at its layers as a cache candidate).

    Seven registry round trips: ``GET`` config blob, ``POST`` + ``PUT`` of the new one, ``GET`` tag,
    ``PUT``, ``DELETE`` (plus the ``GET`` of :func:`push_and_verify`), all through ``transport`` (its
    pooled connections) when given. The node's lock is taken before the config's ``GET``, and the tag's
    ``GET`` runs on ``aside`` (when given) alongside the config's three: it is still read under the lock,
    as the ``PUT`` that follows, so no build of this node moves the tag in between.

    Returns:
        ``(digest of the annotated manifest, whether the output tag moved to it)``.
    Raises:
        registry_errors.RegistryError: the registry refused a read or write, or served a config blob
            that is not an image config (or not the bytes of its digest).
        engine_errors.TagFailed: the engine refused the local tag.
    """
    order = labels.get(well_known.BUILD_ORDER, "")
    config_digest, config_size = manifests.config_descriptor(pushed.content)

    def current_manifest() -> registry.Manifest | None:
        try:
            return registry.get_manifest(target, auth=registry_auth, transport=transport)
        except registry_errors.ManifestUnknown:
            return None

    with push_lock(str(target)):
        # what the tag names, read under the lock (as the PUT that follows) while the new config is uploaded
        reading = aside.submit(current_manifest) if aside is not None else None
        # the descriptor's size bounds the read (the bytes must also hash to the digest)
        limit = min(config_size, registry.MAX_RESPONSE_BYTES)
        config = registry.get_blob(target, config_digest, limit=limit, auth=registry_auth, transport=transport)
        labelled = manifests.labelled_config(config, labels)
        # a new blob: its labels carry this build's creation time and order, so no HEAD first
        new_config = registry.put_blob(target, labelled, check_existing=False, auth=registry_auth, transport=transport)
        content = manifests.annotated_oci_manifest(
            pushed.content, pushed.media_type, labels, config=(new_config, len(labelled))
        )
        own = target.with_digest(registry_digest.compute(content))
        current = reading.result() if reading is not None else current_manifest()
        later = manifests.annotations_of(current.content).get(well_known.BUILD_ORDER, "") if current else ""
        moved = later <= order
        digest = registry.put_manifest(
            target if moved else own,
            content,
            media_type=manifests.OCI_MANIFEST,
            auth=registry_auth,
            transport=transport,
        )
        if moved:
            images.tag(client, image_id, target.repository_url, target.tag or "latest")
        else:
            on_log(f"{target} already names a later build ({later.rsplit('/', 1)[-1]}); the tag stays there")

    def drop_own_manifest() -> None:
        try:
            if not registry.delete_manifest(target.with_digest(pushed.digest), auth=registry_auth, transport=transport):
                on_log(f"note: the registry keeps the build's own tag (it refuses deletes of {pushed.digest})")
        except registry_errors.RegistryError as err:
            on_log(f"note: the build's own tag stays in the registry: {err}")

    dropping = None
    if pushed.digest != digest:
        if aside is not None:
            dropping = aside.submit(drop_own_manifest)
        else:
            drop_own_manifest()
    if moved and own_ref is not None:
        images.untag(client, own_ref)
    if dropping is not None:
        dropping.result()
    return digest, moved


def _describe_source(source: models.BuildSource) -> str:
    if source.git is not None:
        return f"git {source.git.uri} {source.git.ref or ''}".strip()
    return source.type


def fetch_source(
    source: models.BuildSource, workdir: Path, write: Callable[[str], None], inputs: BuildInputs
) -> tuple[Path, dict[str, Any] | None]:
    """Materialise the source into ``workdir/src``.

    Returns:
        ``(context directory, SourceRevision or None)``.
    Raises:
        StageFailed: ``FetchSourceFailed`` with git's own message (credentials removed).
    """
    dest = workdir / "src"
    kind = source.type or "Git"
    revision = None
    if kind == "Dockerfile":
        # only the inline Dockerfile, which run_build writes (place_dockerfile): an empty context
        (dest / (source.contextDir or ".")).mkdir(parents=True)
    elif kind == "Binary":
        if inputs.binary is None:
            raise StageFailed(
                "FetchSourceFailed",
                "no binary input was uploaded for this build "
                "(start it with dockyard start-build --from-dir/--from-file/--from-archive)",
            )
        dest.mkdir()
        extract_archive(inputs.binary, dest)
        write(f"Extracted the uploaded archive ({inputs.binary.stat().st_size} bytes)")
    elif kind == "Git":
        git = source.git
        if git is None:
            raise StageFailed("FetchSourceFailed", "source.git is required for a Git source")
        env = dict(
            os.environ,
            GIT_TERMINAL_PROMPT="0",
            GIT_ASKPASS="true",
            GIT_ALLOW_PROTOCOL=gitref.GIT_ALLOW_PROTOCOL,
            GIT_PROTOCOL_FROM_USER="0",
        )
        secrets: list[str] = []
        if inputs.source_auth:
            user, password = inputs.source_auth
            header = "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader", GIT_CONFIG_VALUE_0=header)
            secrets = [password, header]
        revision = _fetch_git(git.uri, git.ref, dest, env, write, secrets)
    else:
        raise StageFailed("FetchSourceFailed", f"source type {kind!r} is not supported")
    context = within(dest, source.contextDir or ".", what="contextDir")
    if not context.is_dir():
        raise StageFailed("FetchSourceFailed", f"contextDir {source.contextDir!r} is not a directory in the source")
    return context, revision


def place_dockerfile(context: Path, relative: str, text: str, *, what: str) -> Path:
    """Write ``source.dockerfile`` (``text``) at ``relative`` (``dockerStrategy.dockerfilePath``, default
    ``Dockerfile``) in ``context``, the file the build then builds, replacing what the source has there.

    OpenShift's builder (``ManageDockerfile``) writes the inline Dockerfile over the one in ``contextDir`` for Git
    and Binary sources alike; it always writes ``contextDir/Dockerfile`` and then builds ``dockerfilePath``, so an
    inline Dockerfile beside another ``dockerfilePath`` was never built there. dockyard writes it where it builds.

    A file or symbolic link already at ``relative`` is replaced, never written through (a link to a host file
    stays as it is); missing directories are made. The directory it goes in must resolve inside ``context``.

    Returns:
        the path written.
    Raises:
        StageFailed: ``FetchSourceFailed`` naming ``what`` and ``relative`` when a symbolic link takes its directory
            outside the context, or when a directory is at ``relative``.
    """
    base = context.resolve()
    target = base / relative
    parent = target.parent.resolve()
    if not parent.is_relative_to(base):
        raise StageFailed(
            "FetchSourceFailed", f"{what} {relative!r} resolves outside the source (through a symbolic link)"
        )
    parent.mkdir(parents=True, exist_ok=True)
    dest = parent / target.name
    if dest.is_dir() and not dest.is_symlink():
        raise StageFailed("FetchSourceFailed", f"{what} {relative!r} is a directory in the source")
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    dest.write_text(text)
    return dest


def within(root: Path, relative: str, *, what: str) -> Path:
    """``root / relative`` with every symbolic link resolved, which must stay inside ``root``.

    A Git source may hold any link, absolute ones included, and the builder runs as the agent's user: a
    ``contextDir``, Dockerfile or ``dockerfilePath`` that resolves outside the source would let a Build read
    the host's files into an image, or overwrite them (the ``dockerStrategy.from`` rewrite).

    Raises:
        StageFailed: ``FetchSourceFailed`` naming ``what`` and ``relative`` when it resolves outside ``root``.
    """
    base = root.resolve()
    resolved = (base / relative).resolve()
    if not resolved.is_relative_to(base):
        raise StageFailed(
            "FetchSourceFailed", f"{what} {relative!r} resolves outside the source (through a symbolic link)"
        )
    return resolved


def _fetch_git(
    uri: str, ref: str | None, dest: Path, env: dict[str, str], write: Callable[[str], None], secrets: list[str]
) -> dict[str, Any] | None:
    """Clone ``uri`` into ``dest`` with ``ref``'s commit checked out; returns the ``SourceRevision`` (or None
    if ``git log`` cannot tell it).

    A branch or tag name (or no ref: the remote's ``HEAD``, :func:`dockyard.api.gitref.branch_or_tag_name`)
    is fetched alone, in one ``git clone --single-branch --no-tags --branch=REF`` that checks it out (and
    ``--depth 1`` unless ``uri`` is a local path, which git copies whole, hard-linking the object files where
    it can: git-clone(1), ``--local``). Anything else (a
    commit id, a ``refs/...`` name, ``origin/BRANCH``), and a name that clone does not find as a branch or
    tag of the remote, or a remote that cannot serve a shallow clone, takes the full clone:
    ``clone --no-checkout``, :func:`_resolve_commit`, ``checkout --detach``. The ref and URI follow
    ``--branch=`` and ``--`` only. A name that is both a branch and a tag of the remote is the branch, as
    for ``git clone --branch``.

    Raises:
        StageFailed: ``FetchSourceFailed`` with git's own message (credentials removed).
    """
    if gitref.branch_or_tag_name(ref):
        argv = ["git", "-c", "advice.detachedHead=false", "clone", "--quiet", "--single-branch"]
        argv += ["--no-tags"] + ([] if gitref.is_local_path(uri) else ["--depth", "1"])
        argv += ([f"--branch={ref}"] if ref else []) + ["--", uri, str(dest)]
        try:
            _git(argv, env, write, secrets)
        except StageFailed as err:
            if err.reason != "FetchSourceFailed" or "timed out" in err.message:
                raise
            shutil.rmtree(dest, ignore_errors=True)
            write(f"{ref or 'HEAD'} is not a branch or tag clone can fetch alone; cloning all of {uri}")
        else:
            return _head_revision(dest, env, write)
    _git(["git", "clone", "--quiet", "--no-checkout", "--", uri, str(dest)], env, write, secrets)
    commit = _resolve_commit(dest, ref or "HEAD", env)
    _git(["git", "-C", str(dest), "checkout", "--quiet", "--detach", commit], env, write, secrets)
    return _head_revision(dest, env, write)


def _head_revision(repo: Path, env: dict[str, str], write: Callable[[str], None]) -> dict[str, Any] | None:
    """OpenShift's ``SourceRevision`` of the commit checked out in ``repo`` (``git log -1 HEAD``), or None."""
    out = subprocess.run(
        ["git", "-C", str(repo), "log", "-1", "--format=%H%x00%an%x00%ae%x00%s"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    parts = out.stdout.strip().split("\x00")
    if out.returncode != 0 or len(parts) != 4:
        return None
    write(f"Commit: {parts[0][:12]} ({parts[3]}) by {parts[1]}")
    return {
        "type": "Git",
        "git": {"commit": parts[0], "author": {"name": parts[1], "email": parts[2]}, "message": parts[3]},
    }


def _resolve_commit(repo: Path, ref: str, env: dict[str, str]) -> str:
    """The full commit id ``ref`` names in the fresh clone ``repo``, as ``git checkout REF`` would find it.

    ``ref`` (a branch, tag, ``refs/...`` name or commit id, full or abbreviated)
    is tried as given, then as the remote branch ``refs/remotes/origin/REF``
    (checkout's "DWIM" of a branch that exists only on the remote). It reaches
    git only after ``--end-of-options`` (git 2.30+ ``rev-parse``), so it is
    never read as an option even if admission (:mod:`dockyard.api.gitref`)
    was bypassed; the checkout that follows is given the hex id alone.

    Raises:
        StageFailed: ``FetchSourceFailed`` when ``ref`` names no commit.
    """
    for candidate in (ref, f"refs/remotes/origin/{ref}"):
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", "--end-of-options", f"{candidate}^{{commit}}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        commit = out.stdout.strip()
        if out.returncode == 0 and gitref.is_commit(commit):
            return commit
    raise StageFailed(
        "FetchSourceFailed",
        f"Failed to fetch the input source: {ref!r} names no branch, tag or commit of the repository",
    )


def _git(argv: list[str], env: dict[str, str], write: Callable[[str], None], secrets: list[str]) -> None:
    def clean(text: str) -> str:
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    try:
        out = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as err:
        raise StageFailed("FetchSourceFailed", f"{' '.join(argv[:2])} timed out after {GIT_TIMEOUT}s") from err
    for line in (out.stdout + out.stderr).splitlines():
        write(clean(line))
    if out.returncode != 0:
        message = clean((out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1])
        raise StageFailed("FetchSourceFailed", f"Failed to fetch the input source: {message}")


_FROM = re.compile(r"^(\s*FROM\s+)(\S+)(.*)$", re.IGNORECASE)


def replace_last_from(dockerfile: str, image: str) -> str:
    """Replace the image of the last ``FROM`` instruction (keeping ``--platform`` and ``AS name``).

    The rule of OpenShift's Docker strategy ``from`` override. A Dockerfile without
    ``FROM`` is returned unchanged.
    """
    lines = dockerfile.splitlines(keepends=True)
    for i in range(len(lines) - 1, -1, -1):
        match = _FROM.match(lines[i])
        if match:
            prefix, first, rest = match.groups()
            if first.startswith("--"):  # FROM --platform=x IMAGE ...
                parts = rest.split(None, 1)
                tail = parts[1] if len(parts) > 1 else ""
                lines[i] = f"{prefix}{first} {image}{(' ' + tail) if tail else ''}".rstrip() + "\n"
            else:
                lines[i] = f"{prefix}{image}{rest}\n"
            break
    return "".join(lines)


def extract_archive(path: Path, dest: Path, limits: archive.Limits = archive.Limits()) -> None:
    """Extract a tar archive (plain, gzip, bzip2 or xz) with tarfile's ``data`` filter, within ``limits``.

    The API server checked the archive when it was uploaded; it is checked again here
    (defense in depth) in one streaming pass, :func:`dockyard.api.archive.scan`: the
    uncompressed total, the member count and the member rules, before anything is written.
    The filter (PEP 706) then refuses absolute paths, ``..`` components, and links
    pointing outside ``dest``.
    Raises:
        StageFailed: ``FetchSourceFailed`` naming the offending member or the limit.
    """
    try:
        with open(path, "rb") as file:
            archive.scan(file.read, limits)
    except archive.BadArchive as err:
        raise StageFailed("FetchSourceFailed", f"the uploaded archive is refused: {err}") from err
    try:
        with tarfile.open(path, mode="r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise StageFailed("FetchSourceFailed", f"the uploaded archive cannot be extracted: {err}") from err


def tar_context(directory: Path) -> bytes:
    """The build context as an uncompressed tar (``.git`` left out), as ``POST /build`` expects it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for entry in sorted(directory.iterdir()):
            if entry.name == ".git":
                continue
            tar.add(entry, arcname=entry.name)
    return buf.getvalue()


def registry_of(ref: str) -> str:
    """The ``host[:port]`` part of an image reference (for picking credentials)."""
    return reference.parse(ref).registry
