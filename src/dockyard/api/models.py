"""Pydantic models of the ``dockyard.dev/v1alpha1`` kinds' ``spec``.

Field names follow OpenShift's ``build.openshift.io/v1`` types (BuildConfig,
Build), the Kubernetes Push proposal (Push), and kpush (Image, ImageDeploy);
see DESIGN.md "Resources". Unknown fields in a spec are rejected
(``extra="forbid"``), which is what ``fieldValidation=Strict`` expects of a
server. Status is written by controllers through ``/status`` and is not
validated; its models (:data:`STATUS_MODELS`) only describe it. Field
descriptions end up in the OpenAPI documents (``kubectl explain``). No I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from dockyard.api import gitref, imagepolicy, kinds, names, reference

# Kubernetes DNS-1123 subdomain (metadata.name of most kinds), API conventions "Naming".
DNS1123_SUBDOMAIN = names.DNS1123_SUBDOMAIN
DNS1123_LABEL = names.DNS1123_LABEL
"""Kubernetes DNS-1123 label (at most 63 characters, checked apart): a Namespace's name, a Service's."""
# Distribution reference grammar (distribution/reference/regexp.go), simplified: no spaces, no scheme.
IMAGE_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$")
ENV_NAME_CHARS = re.compile(r"^[\x20-\x3c\x3e-\x7e]*$")
"""The characters of an environment variable name: Kubernetes ``IsRelaxedEnvVarName`` (KEP-4369, on by default
since 1.32): printable ASCII other than '=', which would split the variable."""
ENV_NAME_MESSAGE = "a valid environment variable name must consist only of printable ASCII characters other than '='"
"""Kubernetes' message for a name :data:`ENV_NAME_CHARS` refuses."""


def is_env_name(name: str) -> bool:
    """True if ``name`` is a non-empty environment variable name (:data:`ENV_NAME_CHARS`)."""
    return bool(name) and ENV_NAME_CHARS.match(name) is not None


# Tag grammar of the distribution reference package (reference/regexp.go ``tag``).
_TAG = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)


class Strict(BaseModel):
    """Base: camelCase field names as in the wire format, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _image_reference(value: str) -> str:
    if not IMAGE_REFERENCE.match(value) or "://" in value:
        raise ValueError(f"{value!r} is not an image reference (expected HOST[:PORT]/REPOSITORY[:TAG])")
    return value


# --- BuildConfig / Build (OpenShift build.openshift.io/v1 names) -------------------------------


class GitBuildSource(Strict):
    """A git repository to build from (OpenShift ``GitBuildSource``); checked by :mod:`dockyard.api.gitref`."""

    uri: str = Field(
        min_length=1,
        description="URL of the repository to clone: https://, http://, ssh://, "
        "git://, file://, user@host:path or a local path (no ext:: or "
        "other transport:: forms, nothing starting with '-').",
    )
    ref: str | None = Field(
        default=None,
        description="Branch, tag or commit to check out (git refname rules "
        "or a hex commit id; nothing starting with '-'); the "
        "default branch when unset.",
    )

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        return gitref.check_uri(value)

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        return None if value is None else gitref.check_ref(value)


class SourceControlUser(Strict):
    """The author or committer of a commit (OpenShift ``SourceControlUser``)."""

    name: str | None = Field(default=None, description="Name of the user.")
    email: str | None = Field(default=None, description="E-mail of the user.")


class GitSourceRevision(Strict):
    """The commit a build is asked for (OpenShift ``GitSourceRevision``)."""

    commit: str | None = Field(
        default=None, description="The commit (hex id) or ref to build; it becomes the Build's source.git.ref."
    )
    author: SourceControlUser | None = Field(default=None, description="Author of the commit.")
    committer: SourceControlUser | None = Field(default=None, description="Committer of the commit.")
    message: str | None = Field(default=None, description="Commit message.")

    @field_validator("commit")
    @classmethod
    def _commit(cls, value: str | None) -> str | None:
        return None if value is None else gitref.check_ref(value)


class SourceRevision(Strict):
    """The source revision of a build (OpenShift ``SourceRevision``)."""

    type: Literal["Git"] = Field(default="Git", description="The kind of revision: Git.")
    git: GitSourceRevision | None = Field(default=None, description="The git commit.")


class LocalObjectReference(Strict):
    """A reference to an object in the same namespace (here: a Secret)."""

    name: str = Field(min_length=1, description="Name of the referenced object.")


class BuildSource(Strict):
    """Where the build context comes from (OpenShift ``BuildSource``).

    Each type has what it needs and nothing another type needs (422 naming the field): Git needs ``git``,
    Dockerfile needs ``dockerfile``, and ``git`` is refused beside Binary and Dockerfile, where nothing would
    clone it. CEL rules state the same in the CRD (Kubernetes mode).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.type != 'Git' || has(self.git)",
                    "message": "Required value: a Git source needs git",
                    "fieldPath": ".git",
                    "reason": "FieldValueRequired",
                },
                {
                    "rule": "self.type == 'Git' || !has(self.git)",
                    "message": "Forbidden: git may only be set when type is Git",
                    "fieldPath": ".git",
                    "reason": "FieldValueForbidden",
                },
                {
                    "rule": "self.type != 'Dockerfile' || has(self.dockerfile)",
                    "message": "Required value: a Dockerfile source needs dockerfile",
                    "fieldPath": ".dockerfile",
                    "reason": "FieldValueRequired",
                },
                {
                    "rule": "self.type == 'Git' || !has(self.sourceSecret)",
                    "message": "Forbidden: sourceSecret may only be set when type is Git",
                    "fieldPath": ".sourceSecret",
                    "reason": "FieldValueForbidden",
                },
            ]
        }
    )

    type: Literal["Git", "Binary", "Dockerfile"] = Field(
        default="Git",
        description="Git: clone spec.source.git (required); Binary: an archive uploaded with "
        "instantiatebinary (dockyard start-build --from-dir); Dockerfile: only the "
        "inline dockerfile (required).",
    )
    git: GitBuildSource | None = Field(
        default=None,
        validate_default=True,
        description="The repository of a Git source: required for type Git, refused for the other types.",
    )
    contextDir: str | None = Field(
        default=None, description="Subdirectory of the source used as the build context (relative, no '..')."
    )
    dockerfile: str | None = Field(
        default=None,
        min_length=1,
        validate_default=True,
        description="The Dockerfile to build, for every source type (required for type Dockerfile): written at "
        "strategy.dockerStrategy.dockerfilePath (default Dockerfile) in contextDir, replacing the source's "
        "own file there.",
    )
    sourceSecret: LocalObjectReference | None = Field(
        default=None,
        description="A kubernetes.io/basic-auth Secret with the credentials to clone the source: type Git only "
        "(refused for the other types, which clone nothing).",
    )

    @field_validator("git")
    @classmethod
    def _git(cls, value: GitBuildSource | None, info: ValidationInfo) -> GitBuildSource | None:
        kind = info.data.get("type")
        if kind is None:
            return value  # the type itself is refused
        if kind == "Git" and value is None:
            raise ValueError("Required value: a Git source needs git (the repository to clone)")
        if kind != "Git" and value is not None:
            raise ValueError(f"Forbidden: git may only be set when type is Git (a {kind} source never clones it)")
        return value

    @field_validator("sourceSecret")
    @classmethod
    def _source_secret(cls, value: LocalObjectReference | None, info: ValidationInfo) -> LocalObjectReference | None:
        kind = info.data.get("type")
        if kind is not None and kind != "Git" and value is not None:
            raise ValueError(
                f"Forbidden: sourceSecret may only be set when type is Git (a {kind} source clones nothing)"
            )
        return value

    @field_validator("dockerfile")
    @classmethod
    def _dockerfile(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("type") == "Dockerfile":
            raise ValueError("Required value: a Dockerfile source needs dockerfile (the Dockerfile to build)")
        return value

    @field_validator("contextDir")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        return _relative_path(value)


def _relative_path(value: str | None) -> str | None:
    """``value`` if it is a relative path without ``..`` components (OpenShift's rule for ``contextDir`` and
    ``dockerfilePath``; the builder also refuses one that a symbolic link takes outside the source).

    Raises:
        ValueError: an absolute path or a ``..`` component.
    """
    if value is not None and (value.startswith("/") or ".." in value.split("/")):
        raise ValueError("must be a relative path inside the source, without '..'")
    return value


class EnvVar(Strict):
    """A name and a value (a build argument)."""

    name: str = Field(
        min_length=1,
        description="Name of the variable: printable ASCII characters other than '=' (as a pod's env).",
        json_schema_extra={"pattern": r"^[\x20-\x3c\x3e-\x7e]+$"},  # the CRD's check (Kubernetes mode)
    )
    value: str = Field(default="", description="Its value.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not is_env_name(value):
            raise ValueError(f"Invalid value: {value[:64]!r}: {ENV_NAME_MESSAGE}")
        return value


DOCKER_IMAGE_KIND = "DockerImage"
"""``kind`` of an image reference a build pushes to or builds from: ``name`` is a registry reference."""
IMAGE_KIND = "Image"
"""``kind`` of a reference to an Image object (kpush Image) in the BuildConfig's namespace: what an ImageChange
trigger follows, and what ``output.to`` and ``dockerStrategy.from`` may name instead of a registry reference
(resolved by the build controller when a build starts)."""
DEFAULT_IMAGE_TAG = "latest"
"""The tag an Image follows when it names neither ``spec.tag`` nor ``spec.policy``."""


def _only_kind(value: str, *supported: str) -> str:
    if value not in supported:
        quoted = ", ".join(f'"{kind}"' for kind in supported)
        raise ValueError(f'Unsupported value: "{value[:64]}": supported values: {quoted}')
    return value


def _no_namespace(value: str | None) -> str | None:
    if value:
        raise ValueError(
            f'Invalid value: "{value[:64]}": not supported: a reference names something in the object\'s own '
            "namespace (omit namespace)"
        )
    return value


_NO_NAMESPACE = "Not supported: must be empty (references stay in the object's own namespace)."


_DNS1123_SUBDOMAIN_CEL = DNS1123_SUBDOMAIN.pattern.replace("\\.", "[.]")
""":data:`DNS1123_SUBDOMAIN` without a backslash, for a CEL string literal."""


def _image_name(value: str) -> str:
    if len(value) > 253 or not DNS1123_SUBDOMAIN.match(value):
        raise ValueError(f"{value[:64]!r} is not the name of an Image (a lowercase RFC 1123 subdomain)")
    return value


class ObjectReference(Strict):
    """An image a build pushes to or builds from (OpenShift's ``ObjectReference`` of an image): a registry
    reference (``kind: DockerImage``), or an Image of the object's namespace (``kind: Image``, OpenShift's
    ImageStreamTag), which the build controller resolves when a build starts (see ``BuildOutput.to`` and
    ``DockerBuildStrategy.from``).

    Another kind and a ``namespace`` are refused (422 naming the field), as nothing would resolve them; so is a
    ``kind: Image`` name that is no Image's name (a registry reference there was once pushed to literally).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"!has(self.kind) || self.kind != '{IMAGE_KIND}' || "
                    f"(size(self.name) <= 253 && self.name.matches('{_DNS1123_SUBDOMAIN_CEL}'))",
                    "message": "with kind Image, name is the name of an Image (a lowercase RFC 1123 subdomain)",
                    "fieldPath": ".name",
                    "reason": "FieldValueInvalid",
                }
            ]
        }
    )

    kind: str = Field(
        default=DOCKER_IMAGE_KIND,
        description="DockerImage (default): name is a registry reference; Image: name is an Image of the "
        "object's namespace, resolved when each build starts.",
        json_schema_extra={"enum": [DOCKER_IMAGE_KIND, IMAGE_KIND]},  # the CRD's check (Kubernetes mode)
    )
    name: str = Field(
        min_length=1,
        description="DockerImage: image reference HOST[:PORT]/REPOSITORY[:TAG] (or @DIGEST); Image: the Image's name.",
    )
    namespace: str | None = Field(default=None, description=_NO_NAMESPACE, json_schema_extra={"maxLength": 0})

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        return _only_kind(value, DOCKER_IMAGE_KIND, IMAGE_KIND)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _image_reference(value)  # an Image's name is one too; kind Image asks more (_image_kind_name)

    @model_validator(mode="after")
    def _image_kind_name(self) -> ObjectReference:
        if self.kind == IMAGE_KIND:
            try:
                _image_name(self.name)
            except ValueError as err:
                raise ValidationError.from_exception_data(
                    "ObjectReference",
                    [
                        InitErrorDetails(
                            type=PydanticCustomError("value_error", str(err)), loc=("name",), input=self.name
                        )
                    ],
                ) from None
        return self

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return _no_namespace(value)


class ImageObjectReference(Strict):
    """An Image object in the same namespace (``kind: Image``): what an ImageChange trigger follows."""

    kind: str = Field(
        default=IMAGE_KIND,
        description="Image (the only kind supported): a dockyard Image in the BuildConfig's namespace.",
        json_schema_extra={"enum": [IMAGE_KIND]},  # the CRD's check (Kubernetes mode)
    )
    name: str = Field(
        min_length=1,
        max_length=253,
        description="Name of the Image (a lowercase RFC 1123 subdomain).",
        json_schema_extra={"pattern": DNS1123_SUBDOMAIN.pattern},  # the CRD's check (Kubernetes mode)
    )
    namespace: str | None = Field(default=None, description=_NO_NAMESPACE, json_schema_extra={"maxLength": 0})

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        return _only_kind(value, IMAGE_KIND)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _image_name(value)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return _no_namespace(value)


class DockerBuildStrategy(Strict):
    """How a Dockerfile is built (OpenShift ``DockerBuildStrategy``)."""

    dockerfilePath: str | None = Field(
        default=None, description="Path of the Dockerfile inside the context (default Dockerfile; relative, no '..')."
    )
    buildArgs: list[EnvVar] = Field(default_factory=list, description="Build arguments (ARG) passed to the build.")
    noCache: bool = Field(default=False, description="Build without the engine's layer cache.")
    from_: ObjectReference | None = Field(
        default=None,
        alias="from",
        description="The image that replaces the FROM image of the Dockerfile's last stage: a registry image "
        "(kind DockerImage), or an Image (kind Image) whose status.latestImage (repository@digest) the build "
        "controller writes here as kind DockerImage when the build starts (the Build fails with reason "
        "InvalidImageReference if the Image is missing or has no latestImage yet).",
    )

    @field_validator("dockerfilePath")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        return _relative_path(value)


class BuildStrategy(Strict):
    """How the image is built (OpenShift ``BuildStrategy``; only Docker)."""

    type: Literal["Docker"] = Field(default="Docker", description="The build strategy: Docker.")
    dockerStrategy: DockerBuildStrategy = Field(
        default_factory=DockerBuildStrategy, description="Options of the Docker strategy."
    )


class BuildOutput(Strict):
    """Where the built image is pushed (OpenShift ``BuildOutput``)."""

    to: ObjectReference = Field(
        description="Where the build pushes: a registry reference (kind DockerImage), or an Image (kind Image) "
        "whose spec.repository and spec.tag (default latest) the build controller resolves when the build starts "
        "and records in status.outputDockerImageReference. An Image that chooses its tag by spec.policy, or a "
        "missing Image, fails the Build with reason InvalidOutputReference."
    )
    pushSecret: LocalObjectReference | None = Field(
        default=None, description="A kubernetes.io/dockerconfigjson Secret for the registry pushed to."
    )


class ImageChangeTrigger(Strict):
    """An ImageChange trigger's options (OpenShift ``ImageChangeTrigger``): the Image it follows.

    Without ``from`` it follows ``dockerStrategy.from`` when that is ``kind: Image`` (OpenShift's default); with a
    registry reference there, or none, ``from`` is required (checked by ``BuildConfigSpec``).
    """

    from_: ImageObjectReference | None = Field(
        default=None,
        alias="from",
        description="The Image (same namespace) whose status.latestImage starts a build when it changes; the "
        "build uses that image as its base (dockerStrategy.from). Default: the Image strategy.dockerStrategy.from "
        "names (required when that is not kind Image).",
    )


class WebHookTrigger(Strict):
    """A Generic trigger's options (OpenShift ``WebHookTrigger``): the secret in the webhook's URL.

    One of ``secret`` and ``secretReference`` is required (a webhook without a secret can never be called);
    with both, either one is accepted in the URL.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.secret) && self.secret != '') || has(self.secretReference)",
                    "message": "Required value: must provide a value for at least one of secret or secretReference",
                    "fieldPath": ".secretReference",
                    "reason": "FieldValueRequired",
                }
            ]
        }
    )

    secret: str | None = Field(
        default=None,
        description="The secret of the webhook URL .../webhooks/SECRET/generic, inline (shown only to admin).",
    )
    secretReference: LocalObjectReference | None = Field(
        default=None,
        validate_default=True,
        description="A Secret (same namespace) whose key WebHookSecretKey is the secret of the webhook URL.",
    )

    @field_validator("secretReference")
    @classmethod
    def _some_secret(cls, value: LocalObjectReference | None, info: ValidationInfo) -> LocalObjectReference | None:
        if value is None and not info.data.get("secret"):
            raise ValueError(
                "Required value: must provide a value for at least one of secret or secretReference "
                "(a webhook without a secret can never be called)"
            )
        return value


_TRIGGER_FIELDS = {"imageChange": "ImageChange", "generic": "Generic"}
"""The options field of each trigger type that has one."""


def _trigger_rules() -> list[Any]:
    """The CEL rules of :class:`BuildTriggerPolicy` in the CRD: each type's options required, and refused beside
    another type (what :meth:`BuildTriggerPolicy._options_of_type` checks on the embedded server)."""
    rules: list[Any] = []
    for field, type_ in _TRIGGER_FIELDS.items():
        rules.append(
            {
                "rule": f"self.type != '{type_}' || has(self.{field})",
                "message": f"Required value: type {type_} needs {field}",
                "fieldPath": f".{field}",
                "reason": "FieldValueRequired",
            }
        )
        rules.append(
            {
                "rule": f"self.type == '{type_}' || !has(self.{field})",
                "message": f"Forbidden: {field} may only be set when type is {type_}",
                "fieldPath": f".{field}",
                "reason": "FieldValueForbidden",
            }
        )
    return rules


class BuildTriggerPolicy(Strict):
    """What starts a build by itself (OpenShift ``BuildTriggerPolicy``): the options of its type (``imageChange``
    of ImageChange, ``generic`` of Generic) are required, and refused beside another type."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _trigger_rules()})  # Kubernetes mode

    type: Literal["ConfigChange", "ImageChange", "Generic"] = Field(
        description="ConfigChange: on creation and every spec change; ImageChange: when the latest digest of "
        "the Image named by imageChange.from changes; Generic: on a POST to the generic webhook."
    )
    imageChange: ImageChangeTrigger | None = Field(
        default=None,
        validate_default=True,
        description="ImageChange (required): {from: {kind: Image, name}}, the Image followed; {} follows the "
        "Image strategy.dockerStrategy.from names.",
    )
    generic: WebHookTrigger | None = Field(
        default=None,
        validate_default=True,
        description="Generic (required): {secret} or {secretReference: {name}} authenticating the webhook URL.",
    )

    @field_validator("imageChange", "generic")
    @classmethod
    def _options_of_type(cls, value: Any, info: ValidationInfo) -> Any:
        field = str(info.field_name)
        own, kind = _TRIGGER_FIELDS[field], info.data.get("type")
        if kind is None:
            return value  # the type itself is refused
        if kind == own and value is None:
            raise ValueError(f"Required value: type {own} needs {field}")
        if kind != own and value is not None:
            raise ValueError(f"Forbidden: {field} may only be set when type is {own}")
        return value


class ResourceRequirements(Strict):
    """Compute resources of the build (Kubernetes ``ResourceRequirements``): accepted only empty.

    Builds run through the engine's build API (the build pod's container never runs), which dockyard does not
    limit; a limit or request would be stored and ignored, so it is refused (422 naming ``spec.resources``).
    """

    # maxProperties 0 in the CRD schema: kube-apiserver refuses them too (Kubernetes mode)
    limits: dict[str, str | int | float] = Field(
        default_factory=dict,
        description="Not supported: must be empty (builds are not limited).",
        json_schema_extra={"maxProperties": 0},
    )
    requests: dict[str, str | int | float] = Field(
        default_factory=dict,
        description="Not supported: must be empty (builds are not limited).",
        json_schema_extra={"maxProperties": 0},
    )

    @model_validator(mode="after")
    def _nothing_to_ignore(self) -> ResourceRequirements:
        if self.limits or self.requests:
            raise ValueError(
                "build resource limits and requests are not supported: builds run through the engine's build "
                "API, which dockyard does not limit; remove resources.limits and resources.requests"
            )
        return self


class CommonSpec(Strict):
    """Fields a BuildConfig shares with the Builds it makes (OpenShift ``CommonSpec``)."""

    source: BuildSource = Field(description="Where the build context comes from.")
    strategy: BuildStrategy = Field(default_factory=BuildStrategy, description="How the image is built.")
    output: BuildOutput = Field(description="Where the built image is pushed.")
    resources: ResourceRequirements | None = Field(
        default=None, description="Compute resources of the build: not supported, accepted only empty (422 otherwise)."
    )
    completionDeadlineSeconds: int | None = Field(
        default=None,
        gt=0,
        description="Seconds the build may take, from its pod's creation, before it fails with BuildDeadlineExceeded.",
    )


MAX_TRIGGERS = 64
"""Triggers of one BuildConfig at most (``maxItems``: bounds the cost of the CRD's rule over them)."""


def _image_change_from_rule() -> dict[str, Any]:
    """The CEL rule of :meth:`BuildConfigSpec._image_change_from` in the CRD (Kubernetes mode)."""
    strategy_image = (
        "has(self.strategy) && has(self.strategy.dockerStrategy) && has(self.strategy.dockerStrategy.from) && "
        f"has(self.strategy.dockerStrategy.from.kind) && self.strategy.dockerStrategy.from.kind == '{IMAGE_KIND}'"
    )
    return {
        "rule": f"!has(self.triggers) || ({strategy_image}) || self.triggers.all(t, t.type != 'ImageChange' || "
        "!has(t.imageChange) || has(t.imageChange.from))",
        "message": "Required value: an ImageChange trigger needs imageChange.from unless strategy.dockerStrategy.from "
        "is an Image (kind Image), the one it then follows",
        "fieldPath": ".triggers",
        "reason": "FieldValueRequired",
    }


class BuildConfigSpec(CommonSpec):
    """The desired state of a BuildConfig: how to build, and when (OpenShift ``BuildConfigSpec``).

    An ImageChange trigger without ``imageChange.from`` follows ``strategy.dockerStrategy.from`` when that is an
    Image (``kind: Image``), as OpenShift's follows the strategy's ImageStreamTag; otherwise it is refused (422
    naming ``spec.triggers[i].imageChange.from``).
    """

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_image_change_from_rule()]})

    triggers: list[BuildTriggerPolicy] = Field(
        default_factory=list,
        max_length=MAX_TRIGGERS,
        description=f"What starts builds by itself (at most {MAX_TRIGGERS}).",
    )
    runPolicy: Literal["Serial", "Parallel", "SerialLatestOnly"] = Field(
        default="Serial",
        description="Serial: one build at a time, in order; Parallel: all at once; "
        "SerialLatestOnly: one at a time, queued ones superseded by newer ones.",
    )
    successfulBuildsHistoryLimit: int = Field(default=5, ge=0, description="Completed builds kept.")
    failedBuildsHistoryLimit: int = Field(default=5, ge=0, description="Failed, errored and cancelled builds kept.")

    def strategy_image(self) -> str | None:
        """The name of the Image ``strategy.dockerStrategy.from`` names (``kind: Image``), or None."""
        base = self.strategy.dockerStrategy.from_
        return base.name if base is not None and base.kind == IMAGE_KIND else None

    @model_validator(mode="after")
    def _image_change_from(self) -> BuildConfigSpec:
        if self.strategy_image() is not None:
            return self
        missing = [
            i
            for i, t in enumerate(self.triggers)
            if t.type == "ImageChange" and t.imageChange and not t.imageChange.from_
        ]
        if missing:
            message = (
                "Required value: an ImageChange trigger needs imageChange.from (the Image it follows) unless "
                "strategy.dockerStrategy.from is an Image (kind Image), the one it then follows"
            )
            raise ValidationError.from_exception_data(
                "BuildConfigSpec",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", message),
                        loc=("triggers", i, "imageChange", "from"),
                        input=None,
                    )
                    for i in missing
                ],
            )
        return self


class BuildSpec(CommonSpec):
    """One build: a copy of its BuildConfig's spec at trigger time (OpenShift ``BuildSpec``)."""

    triggeredBy: list[dict[str, Any]] = Field(
        default_factory=list, description="Why the build started: [{message, imageChangeBuild?}]."
    )
    revision: SourceRevision | None = Field(
        default=None, description="The source revision asked for: {type: Git, git: {commit, author, message}}."
    )


# --- Push (Kubernetes Push proposal, OpenStack Zun commit) ---------------------------------------


COMMIT_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")
"""The Dockerfile instructions a commit may apply: those both engines take in ``changes`` (Docker Engine's
``POST /commit``, moby ``builder/dockerfile`` ``validCommitCommands``, also takes HEALTHCHECK; Podman's
``podman commit --change`` lists these ten)."""


COMMIT_CHANGE_PATTERN = r"^\s*(?i:" + "|".join(COMMIT_CHANGES) + r")\s+\S"
""":func:`_commit_change`'s rule as the CRD's pattern (Kubernetes mode: kube-apiserver reads CRD patterns as Go's
RE2, which takes the scoped case-insensitive group)."""


def _commit_change(value: str) -> str:
    """One ``spec.changes`` entry: ``INSTRUCTION ARGUMENTS`` with an instruction of :data:`COMMIT_CHANGES` (any
    case, as a Dockerfile's) and an argument. Raises ValueError naming what is wrong."""
    instruction, rest = (value.split(None, 1) + ["", ""])[:2]
    if not instruction:
        raise ValueError(f"a Dockerfile instruction is required, one of {', '.join(COMMIT_CHANGES)}")
    if instruction.upper() not in COMMIT_CHANGES:
        raise ValueError(
            f"{instruction!r} cannot be applied to a commit: use one of {', '.join(COMMIT_CHANGES)} "
            "(as docker commit --change and podman commit --change)"
        )
    if not rest.strip():
        raise ValueError(f"{instruction.upper()} needs an argument")
    return value


class PushSpec(Strict):
    """Commit a running pod's container to an image and push it (the Kubernetes Push proposal)."""

    podName: str = Field(min_length=1, description="The pod whose container is committed.")
    containerName: str | None = Field(default=None, description="The container (default: the pod's first).")
    image: str = Field(description="Image reference to push to, HOST[:PORT]/REPOSITORY[:TAG].")

    imagePushSecrets: list[LocalObjectReference] = Field(
        default_factory=list,
        description="kubernetes.io/dockerconfigjson Secrets in the Push's namespace; the first with credentials for "
        "the target registry is used (read by the node agent that serves the Push).",
    )
    pause: bool = Field(default=True, description="Pause the container while it is committed.")
    changes: list[Annotated[str, AfterValidator(_commit_change)]] = Field(
        default_factory=list,
        json_schema_extra={"items": {"type": "string", "pattern": COMMIT_CHANGE_PATTERN}},  # the CRD's check
        description="Dockerfile instructions applied to the commit, as docker/podman commit --change: CMD, "
        "ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR, each with its argument.",
    )
    message: str | None = Field(default=None, description="Commit message.")
    author: str | None = Field(default=None, description="Commit author.")
    trigger: Literal["Immediate", "OnExit"] = Field(
        default="Immediate",
        description="Immediate: commit the container and push now. OnExit: wait until the container exits, commit it "
        "then (before restartPolicy restarts it) and push that; the Push stays Pending meanwhile.",
    )
    backoffLimit: int = Field(
        default=3,
        ge=0,
        description="Retries after a failed attempt before the Push is Failed (as a Job's backoffLimit); the n-th "
        "retry waits 10s·2^(n-1), at most 5m.",
    )

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        _image_reference(value)
        try:
            parsed = reference.parse(value)
        except reference.InvalidReference as err:
            raise ValueError(str(err)) from None
        if parsed.digest:
            raise ValueError(f"{value!r} names a digest: a push writes a tag (HOST[:PORT]/REPOSITORY[:TAG])")
        return value


# --- Image / ImageDeploy (kpush, Flux image automation) -------------------------------------------


class SemVerPolicy(Strict):
    """Pick the highest semantic version within a range (Flux ``SemVerPolicy``)."""

    range: str = Field(
        description="Masterminds-style semver constraint, e.g. '>=1.0.0 <2.0.0', '^1.2', '~1.4', '1.x'. "
        "Tags are read with an optional 'v'; pre-releases only when the range names one."
    )

    @field_validator("range")
    @classmethod
    def _range(cls, value: str) -> str:
        imagepolicy.parse_range(value)
        return value


class AlphabeticalPolicy(Strict):
    """Pick by alphabetical order of the (extracted) tags (Flux ``AlphabeticalPolicy``)."""

    order: Literal["asc", "desc"] = Field(
        default="asc", description="asc: the last tag in ascending order is the latest; desc: the first."
    )


class NumericalPolicy(Strict):
    """Pick by numerical order of the (extracted) tags (Flux ``NumericalPolicy``)."""

    order: Literal["asc", "desc"] = Field(
        default="asc", description="asc: the largest number is the latest; desc: the smallest."
    )


class ImagePolicyChoice(Strict):
    """Exactly one tag policy (Flux ``ImagePolicyChoice``)."""

    semver: SemVerPolicy | None = Field(default=None, description="The highest version within a range.")
    alphabetical: AlphabeticalPolicy | None = Field(default=None, description="By alphabetical order.")
    numerical: NumericalPolicy | None = Field(default=None, description="By numerical order.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ImagePolicyChoice:
        chosen = [n for n in ("semver", "alphabetical", "numerical") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "exactly one of semver, alphabetical or numerical is required"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        return self


class TagFilter(Strict):
    """Which tags a policy considers, and what of them it compares (Flux ``TagFilter``)."""

    pattern: str = Field(
        description="RE2 regular expression (Go regexp syntax) a tag must match, e.g. '^main-[a-f0-9]+-(?P<ts>[0-9]+)'."
    )
    extract: str = Field(
        default="",
        description="Go regexp.Expand template of what the policy compares, e.g. '$ts' (default: the whole tag).",
    )

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        imagepolicy.compile_pattern(value)
        return value

    @field_validator("extract")
    @classmethod
    def _extract(cls, value: str, info: ValidationInfo) -> str:
        pattern = info.data.get("pattern")
        if value and pattern is not None:  # a bad pattern is reported on its own
            imagepolicy.check_template(value, imagepolicy.compile_pattern(pattern))
        return value


class ImageSpec(Strict):
    """A repository whose newest digest is tracked (kpush ``Image``, Flux ``ImageRepository`` + ``ImagePolicy``).

    Either ``tag`` (a fixed tag, default ``latest``) or ``policy`` (a tag chosen among the repository's tags),
    never both; ``filterTags`` only with ``policy``.
    """

    repository: str = Field(description="HOST[:PORT]/REPOSITORY, without tag or digest.")
    tag: str | None = Field(
        default=None, description="The tag followed (default latest); mutually exclusive with policy."
    )
    policy: ImagePolicyChoice | None = Field(
        default=None,
        description="Tag policy instead of a fixed tag (Flux ImagePolicy): exactly one of "
        "semver{range}, alphabetical{order}, numerical{order}.",
    )
    filterTags: TagFilter | None = Field(
        default=None, description="With policy: the tags considered (pattern) and the value compared (extract)."
    )
    interval: str = Field(
        default="1m", description="How often the registry is polled (a backstop to notifications), e.g. 30s, 5m."
    )
    secretRef: LocalObjectReference | None = Field(
        default=None,
        description="A kubernetes.io/dockerconfigjson Secret in the Image's namespace with credentials for the "
        "registry (Basic, or the token service of a Bearer challenge).",
    )
    notificationSecretRef: LocalObjectReference | None = Field(
        default=None,
        description="A Secret whose 'token' key authenticates generic push notifications for this Image "
        "(POST /registry/notifications/namespaces/NAMESPACE/images/NAME, Authorization: Bearer TOKEN).",
    )

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        _image_reference(value)
        if "@" in value:
            raise ValueError("must name a repository, without a tag or digest")
        return value

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not _TAG.match(value):
            raise ValueError(f"{value[:64]!r} is not a tag (up to 128 of [A-Za-z0-9_.-], not starting with . or -)")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: ImagePolicyChoice | None, info: ValidationInfo) -> ImagePolicyChoice | None:
        if value is not None and info.data.get("tag") is not None:
            raise ValueError("tag and policy are mutually exclusive: set one (a fixed tag, or a policy)")
        return value

    @field_validator("filterTags")
    @classmethod
    def _filter_tags(cls, value: TagFilter | None, info: ValidationInfo) -> TagFilter | None:
        if value is not None and "policy" in info.data and info.data["policy"] is None:  # absent, not failed
            raise ValueError("needs a policy (with a fixed tag there is nothing to filter)")
        return value


IMAGE_REF_API_VERSION = kinds.API_VERSION
IMAGE_REF_KIND = "Image"
"""What ``ImageDeploy.spec.imageRef`` follows when ``apiVersion``/``kind`` are not given: dockyard's Image."""
# DNS-1035 label: an API version in a group (apiextensions ``spec.versions[].name``), API conventions "Naming".
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# A kind: CamelCase, letters and digits (API conventions "Types (Kinds)"; apiextensions ``names.kind``).
KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class ImageRef(Strict):
    """The object an ImageDeploy follows: by default a dockyard Image; any kind whose objects carry
    ``status.latestImage`` (``repo@sha256:…``) in the same namespace, such as kpack's ``kpack.io/v1alpha2``
    Image, as kpush follows kpack's Images."""

    name: str = Field(
        min_length=1, description="Name of the object (same namespace) whose status.latestImage is deployed."
    )
    apiVersion: str | None = Field(
        default=None,
        description="API version (GROUP/VERSION) of the followed kind, found through the server's discovery "
        f"(default {IMAGE_REF_API_VERSION}). A kind the server does not serve sets the Ready condition False "
        "with reason ImageKindNotServed, looked at again periodically.",
    )
    kind: str | None = Field(
        default=None, description=f"Kind (CamelCase) of the followed object (default {IMAGE_REF_KIND})."
    )

    @field_validator("apiVersion")
    @classmethod
    def _api_version(cls, value: str | None) -> str | None:
        if value is None:
            return value
        group, slash, version = value.partition("/")
        if not slash or not DNS1123_SUBDOMAIN.match(group) or len(group) > 253:
            raise ValueError(f"{value!r} is not GROUP/VERSION (e.g. kpack.io/v1alpha2)")
        if not DNS1035_LABEL.match(version) or len(version) > 63:
            raise ValueError(f"{value!r}: version {version!r} is not a DNS-1035 label (e.g. v1alpha2)")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        if value is not None and (not KIND.match(value) or len(value) > 63):
            raise ValueError(f"{value!r} is not a kind: CamelCase letters and digits, e.g. Image")
        return value

    @property
    def target_api_version(self) -> str:
        """``apiVersion``, or :data:`IMAGE_REF_API_VERSION` when not given."""
        return self.apiVersion or IMAGE_REF_API_VERSION

    @property
    def target_kind(self) -> str:
        """``kind``, or :data:`IMAGE_REF_KIND` when not given."""
        return self.kind or IMAGE_REF_KIND


class RollbackPolicy(Strict):
    """When an ImageDeploy takes a new digest back (Argo Rollouts' abort, Flagger's rollback, on one Deployment)."""

    enabled: bool = Field(
        default=True,
        description="Put the Deployment back on the last digest that was Available when a rollout to a new digest "
        "fails (its Deployment exceeds progressDeadlineSeconds, its new pods crash-loop or restart maxRestarts "
        "times, or they are not all Ready within timeout), and quarantine the failed digest in "
        "status.failedImages until a newer one appears. When false, a failed rollout is only reported.",
    )
    timeout: str = Field(
        default="5m",
        description="How long the new digest's pods may take to be all Ready and available, from the moment the "
        "Deployment was put on it (a duration such as 90s, 5m or 1h).",
    )
    maxRestarts: int = Field(
        default=3,
        ge=1,
        description="A container of the new digest's pods restarted this many times counts as a failed rollout "
        "(as does a container waiting with reason CrashLoopBackOff).",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        parse_duration(value)
        return value


class ImageDeploySpec(Strict):
    """Keep a Deployment on an Image's newest digest (kpush ``ImageDeploy``)."""

    imageRef: ImageRef = Field(description="The Image whose status.latestImage is deployed.")
    containerName: str | None = Field(
        default=None, description="The container whose image is set (default: the first)."
    )
    deployment: dict[str, Any] = Field(
        description="An apps/v1 DeploymentSpec for the owned Deployment.",
        json_schema_extra={"x-dockyard-ref": "io.k8s.api.apps.v1.DeploymentSpec"},
    )

    rollback: RollbackPolicy = Field(
        default_factory=RollbackPolicy,
        description="Automatic rollback of a failed rollout to a new digest (enabled by default).",
    )

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, value: dict[str, Any]) -> dict[str, Any]:
        containers = ((value.get("template") or {}).get("spec") or {}).get("containers")
        if not isinstance(containers, list) or not containers:
            raise ValueError("template.spec.containers: at least one container is required")
        return value


# --- status: written by controllers through /status; described here (OpenAPI, kubectl explain), not validated


class Described(BaseModel):
    """Base of the status models: unknown fields allowed, used for documentation only."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Condition(Described):
    """One condition of an object's state (Kubernetes API conventions, "Typical status properties")."""

    type: str = Field(description="Condition type: Succeeded, Ready, Available, Progressing.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str | None = Field(default=None, description="CamelCase reason for the last transition.")
    message: str | None = Field(default=None, description="Human-readable details.")
    lastTransitionTime: str | None = Field(default=None, description="When status last changed (RFC 3339).")


class ImageDigest(Described):
    """The pushed image."""

    imageDigest: str | None = Field(default=None, description="Digest of the pushed manifest (sha256:...).")


class BuildStatusOutput(Described):
    """What the build produced (OpenShift ``BuildStatusOutput``)."""

    to: ImageDigest | None = Field(default=None, description="The pushed image.")


class StageInfo(Described):
    """One stage of a build (OpenShift ``StageInfo``)."""

    name: str = Field(description="FetchInputs, Build or PushImage.")
    startTime: str | None = Field(default=None, description="When the stage started (RFC 3339).")
    durationMilliseconds: int | None = Field(default=None, description="How long it took.")


class BuildStatus(Described):
    """The observed state of a Build (OpenShift ``BuildStatus``)."""

    phase: Literal["New", "Pending", "Running", "Complete", "Failed", "Error", "Cancelled"] = Field(
        default="New",
        description="New, Pending (build pod created), Running, then Complete, Failed, Error or Cancelled.",
    )
    reason: str | None = Field(
        default=None,
        description="Why the build failed, in OpenShift's vocabulary (FetchSourceFailed, DockerBuildFailed, ...).",
    )
    message: str | None = Field(default=None, description="Human-readable details of the reason.")
    cancelled: bool | None = Field(default=None, description="Set to true to cancel the build.")
    startTimestamp: str | None = Field(default=None, description="When the build started running.")
    completionTimestamp: str | None = Field(default=None, description="When the build ended.")
    duration: int | None = Field(default=None, description="How long the build ran, in nanoseconds.")
    podName: str | None = Field(default=None, description="The build pod.")
    outputDockerImageReference: str | None = Field(
        default=None,
        description="The registry reference the build pushes to, written when its pod is created: output.to's "
        "name, or for kind Image the Image's repository:tag then.",
    )
    output: BuildStatusOutput | None = Field(default=None, description="What the build produced.")
    stages: list[StageInfo] = Field(default_factory=list, description="Timings of the build's stages.")
    logSnippet: str | None = Field(default=None, description="The last lines of the log of a failed build.")
    conditions: list[Condition] = Field(default_factory=list, description="The Succeeded condition.")


class ImageChangeTriggerStatus(Described):
    """The last image an ImageChange trigger started a build for."""

    from_: ImageObjectReference | None = Field(default=None, alias="from", description="The Image followed.")
    lastTriggeredImageID: str | None = Field(default=None, description="repo@sha256:... of the last build.")
    lastTriggerTime: str | None = Field(default=None, description="When it triggered.")


class BuildConfigStatus(Described):
    """The observed state of a BuildConfig."""

    lastVersion: int | None = Field(default=None, description="Number of the newest Build (NAME-N).")
    lastConfigChangeGeneration: int | None = Field(
        default=None, description="Generation the last ConfigChange build was for."
    )
    imageChangeTriggers: list[ImageChangeTriggerStatus] = Field(
        default_factory=list, description="State of the ImageChange triggers."
    )


class PushStatus(Described):
    """The observed state of a Push."""

    phase: Literal["Pending", "Running", "Succeeded", "Failed"] = Field(
        default="Pending",
        description="Pending (waiting: for the container to exit, or for the next attempt), Running, then "
        "Succeeded (the registry serves the pushed manifest by digest) or Failed.",
    )
    reason: str | None = Field(
        default=None,
        description="Why the last attempt failed, CamelCase: SourcePodNotFound, SourceContainerNotFound, "
        "CommitFailed, AuthenticationFailed, PushImageToRegistryFailed, InvalidImageReference, UnsupportedRuntime.",
    )
    message: str | None = Field(default=None, description="Progress or the failure.")
    nodeName: str | None = Field(default=None, description="The node that served the push.")
    imageDigest: str | None = Field(default=None, description="Digest of the manifest pushed, served by the registry.")
    imageID: str | None = Field(
        default=None, description="Engine id (sha256:...) of the committed image the attempts push."
    )
    attempts: int | None = Field(default=None, description="Attempts made so far (at most spec.backoffLimit + 1).")
    startTime: str | None = Field(default=None, description="When the first attempt started (RFC 3339).")
    completionTime: str | None = Field(default=None, description="When the Push ended (RFC 3339).")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Succeeded: Unknown while in progress, True once pushed, False once Failed.",
    )


class ImageStatus(Described):
    """The newest digest of the tracked repository (Flux ``ImagePolicyStatus`` + ``ImageRepositoryStatus``)."""

    latestImage: str | None = Field(default=None, description="repository@sha256:... of the newest image.")
    latestTag: str | None = Field(default=None, description="The tag it was found under (the policy's pick).")
    latestDigest: str | None = Field(default=None, description="Its digest.")
    observedPreviousImage: str | None = Field(
        default=None, description="The latestImage before the last change (Flux observedPreviousRef)."
    )
    lastScanTime: str | None = Field(default=None, description="When the registry was last asked.")
    tagCount: int | None = Field(
        default=None, description="How many tags the repository had at the last scan (policies only)."
    )
    lastHandledReconcileAt: str | None = Field(
        default=None,
        description="The dockyard.dev/reconcile-requested-at annotation value the last scan answered "
        "(Flux's lastHandledReconcileAt).",
    )
    observedGeneration: int | None = Field(default=None, description="The generation this status is for.")
    conditions: list[Condition] = Field(default_factory=list, description="The Ready condition.")


class FailedImage(Described):
    """A digest whose rollout failed and that is not deployed again (quarantined) until a newer one appears."""

    image: str = Field(description="repository@sha256:... of the failed image.")
    digest: str | None = Field(default=None, description="Its digest (sha256:...).")
    reason: str = Field(
        description="Why its rollout failed: ProgressDeadlineExceeded (the Deployment's Progressing condition), "
        "CrashLoopBackOff (a container waiting in back-off), RestartLimitExceeded (spec.rollback.maxRestarts) or "
        "ReadinessTimeout (not all Ready within spec.rollback.timeout)."
    )
    message: str | None = Field(default=None, description="Details: the pod and container, or the condition message.")
    time: str | None = Field(default=None, description="When the rollout was judged failed (RFC 3339).")


class DeployedImage(Described):
    """One image the Deployment was put on."""

    image: str = Field(description="repository@sha256:... the Deployment was put on.")
    digest: str | None = Field(default=None, description="Its digest (sha256:...).")
    deployedAt: str | None = Field(default=None, description="When the Deployment was put on it (RFC 3339).")
    availableAt: str | None = Field(
        default=None, description="When its rollout completed: every replica updated and available (RFC 3339)."
    )
    rollback: bool | None = Field(default=None, description="True when it was deployed by an automatic rollback.")


class ImageDeployStatus(Described):
    """The rollout of the owned Deployment."""

    latestImage: str | None = Field(default=None, description="The image the Deployment is on.")
    availableImage: str | None = Field(
        default=None, description="The last image whose rollout completed (Available); the target of a rollback."
    )
    deploymentName: str | None = Field(default=None, description="The owned Deployment.")
    observedGeneration: int | None = Field(default=None, description="The generation this status is for.")
    failedImages: list[FailedImage] = Field(
        default_factory=list,
        description="Digests whose rollout failed and was rolled back, newest first (at most 10); not deployed "
        "again until the Image has a newer digest.",
    )
    history: list[DeployedImage] = Field(
        default_factory=list, description="Images the Deployment was put on, newest first (at most 10)."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready (rolled out on the wanted image), Progressing (a rollout under way, or failed), "
        "RolledBack (the last new digest failed and the previous one was put back), and the Deployment's Available.",
    )


STATUS_MODELS: dict[str, type[Described]] = {
    "BuildConfig": BuildConfigStatus,
    "Build": BuildStatus,
    "Push": PushStatus,
    "Image": ImageStatus,
    "ImageDeploy": ImageDeployStatus,
}
"""Status models by kind: documentation (OpenAPI), never used to reject a write."""

SPEC_MODELS: dict[str, type[Strict]] = {
    "BuildConfig": BuildConfigSpec,
    "Build": BuildSpec,
    "Push": PushSpec,
    "Image": ImageSpec,
    "ImageDeploy": ImageDeploySpec,
}


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Parse a Go-style duration (``30s``, ``1m``, ``1h30m``, ``500ms``) into seconds.

    Raises:
        ValueError: if ``text`` is not a positive duration.
    """
    pos, total = 0, 0.0
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * units[match.group(2)]
        pos = match.end()
    if not text or pos != len(text) or total <= 0:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h")
    return total
