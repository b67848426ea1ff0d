"""Pydantic models of the ``dockyard.dev/v1alpha1`` kinds' ``spec``.

Field names follow OpenShift's ``build.openshift.io/v1`` types (BuildConfig,
Build), the Kubernetes Push proposal (Push), and kpush (Image, ImageDeploy);
see DESIGN.md "Resources". Unknown fields in a spec are rejected
(``extra="forbid"``), which is what ``fieldValidation=Strict`` expects of a
server. Status is written by controllers through ``/status`` and is not
validated strictly here. No I/O.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Kubernetes DNS-1123 subdomain (metadata.name of most kinds), API conventions "Naming".
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Distribution reference grammar (distribution/reference/regexp.go), simplified: no spaces, no scheme.
IMAGE_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$")


class Strict(BaseModel):
    """Base: camelCase field names as in the wire format, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _image_reference(value: str) -> str:
    if not IMAGE_REFERENCE.match(value) or "://" in value:
        raise ValueError(f"{value!r} is not an image reference (expected HOST[:PORT]/REPOSITORY[:TAG])")
    return value


# --- BuildConfig / Build (OpenShift build.openshift.io/v1 names) -------------------------------


class GitBuildSource(Strict):
    uri: str = Field(min_length=1)
    ref: str | None = None


class LocalObjectReference(Strict):
    name: str = Field(min_length=1)


class BuildSource(Strict):
    type: Literal["Git", "Binary", "Dockerfile"] = "Git"
    git: GitBuildSource | None = None
    contextDir: str | None = None
    dockerfile: str | None = None
    sourceSecret: LocalObjectReference | None = None

    @field_validator("contextDir")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/")):
            raise ValueError("must be a relative path inside the source, without '..'")
        return value


class EnvVar(Strict):
    name: str = Field(min_length=1)
    value: str = ""


class ObjectReference(Strict):
    kind: Literal["DockerImage", "Image"] = "DockerImage"
    name: str = Field(min_length=1)
    namespace: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _image_reference(value)


class DockerBuildStrategy(Strict):
    dockerfilePath: str | None = None
    buildArgs: list[EnvVar] = Field(default_factory=list)
    noCache: bool = False
    from_: ObjectReference | None = Field(default=None, alias="from")


class BuildStrategy(Strict):
    type: Literal["Docker"] = "Docker"
    dockerStrategy: DockerBuildStrategy = Field(default_factory=DockerBuildStrategy)


class BuildOutput(Strict):
    to: ObjectReference
    pushSecret: LocalObjectReference | None = None


class BuildTriggerPolicy(Strict):
    type: Literal["ConfigChange", "ImageChange", "Generic"]
    imageChange: dict[str, Any] | None = None
    generic: dict[str, Any] | None = None


class ResourceRequirements(Strict):
    limits: dict[str, str | int | float] = Field(default_factory=dict)
    requests: dict[str, str | int | float] = Field(default_factory=dict)


class CommonSpec(Strict):
    """Fields a BuildConfig shares with the Builds it makes (OpenShift ``CommonSpec``)."""

    source: BuildSource
    strategy: BuildStrategy = Field(default_factory=BuildStrategy)
    output: BuildOutput
    resources: ResourceRequirements | None = None
    completionDeadlineSeconds: int | None = Field(default=None, gt=0)


class BuildConfigSpec(CommonSpec):
    triggers: list[BuildTriggerPolicy] = Field(default_factory=list)
    runPolicy: Literal["Serial", "Parallel", "SerialLatestOnly"] = "Serial"
    successfulBuildsHistoryLimit: int = Field(default=5, ge=0)
    failedBuildsHistoryLimit: int = Field(default=5, ge=0)


class BuildSpec(CommonSpec):
    triggeredBy: list[dict[str, Any]] = Field(default_factory=list)
    revision: dict[str, Any] | None = None


# --- Push (Kubernetes Push proposal, OpenStack Zun commit) ---------------------------------------


class PushSpec(Strict):
    podName: str = Field(min_length=1)
    containerName: str | None = None
    image: str

    imagePushSecrets: list[LocalObjectReference] = Field(default_factory=list)
    pause: bool = True
    changes: list[str] = Field(default_factory=list)
    message: str | None = None
    author: str | None = None
    trigger: Literal["Immediate", "OnExit"] = "Immediate"

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        return _image_reference(value)


# --- Image / ImageDeploy (kpush, Flux image automation) -------------------------------------------


class ImageSpec(Strict):
    repository: str
    tag: str | None = None
    policy: dict[str, Any] | None = None
    interval: str = "1m"
    secretRef: LocalObjectReference | None = None

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        _image_reference(value)
        if "@" in value:
            raise ValueError("must name a repository, without a tag or digest")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_duration(value)
        return value


class ImageRef(Strict):
    name: str = Field(min_length=1)
    apiVersion: str | None = None
    kind: str | None = None


class ImageDeploySpec(Strict):
    imageRef: ImageRef
    containerName: str | None = None
    deployment: dict[str, Any]

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, value: dict[str, Any]) -> dict[str, Any]:
        containers = ((value.get("template") or {}).get("spec") or {}).get("containers")
        if not isinstance(containers, list) or not containers:
            raise ValueError("template.spec.containers: at least one container is required")
        return value


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
