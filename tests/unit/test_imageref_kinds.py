"""Group/version/kind resolution for ``ImageDeploy.spec.imageRef`` (pure: no server)."""

from __future__ import annotations

import pytest

from dockyard.api import errors, kinds, models, validation
from dockyard.client import runtime
from dockyard.controllers import imagedeploy

GVK = runtime.GroupVersionKind
KPACK_V1ALPHA2 = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "kpack.io/v1alpha2",
    "resources": [
        {"name": "images/status", "kind": "Image", "namespaced": True, "verbs": ["get", "patch", "update"]},
        {
            "name": "images",
            "singularName": "image",
            "kind": "Image",
            "namespaced": True,
            "shortNames": ["cnbimage", "cnbimages"],
            "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
        },
        {"name": "clusterstores", "kind": "ClusterStore", "namespaced": False, "verbs": ["get", "list", "watch"]},
    ],
}


def test_api_version_splits_into_group_and_version() -> None:
    assert GVK.of("kpack.io/v1alpha2", "Image") == GVK("kpack.io", "v1alpha2", "Image")
    assert GVK.of("v1", "ConfigMap") == GVK("", "v1", "ConfigMap")
    assert str(GVK.of("kpack.io/v1alpha2", "Image")) == "kpack.io/v1alpha2 Image"
    assert GVK("", "v1", "Pod").api_version == "v1"
    for bad in ("", "/v1", "a/b/c", "kpack.io/"):
        with pytest.raises(ValueError):
            GVK.of(bad, "Image")


def test_discovery_paths() -> None:
    assert runtime.discovery_path(GVK("kpack.io", "v1alpha2", "Image")) == "/apis/kpack.io/v1alpha2"
    assert runtime.discovery_path(GVK("", "v1", "Pod")) == "/api/v1"


def test_the_plural_and_scope_come_from_discovery_not_the_status_subresource() -> None:
    info = runtime.resource_from_discovery(GVK("kpack.io", "v1alpha2", "Image"), KPACK_V1ALPHA2)
    assert info == kinds.ResourceInfo(
        group="kpack.io",
        version="v1alpha2",
        kind="Image",
        plural="images",
        namespaced=True,
        subresources=("status",),
        short_names=("cnbimage", "cnbimages"),
    )
    cluster = runtime.resource_from_discovery(GVK("kpack.io", "v1alpha2", "ClusterStore"), KPACK_V1ALPHA2)
    assert cluster is not None and (cluster.plural, cluster.namespaced) == ("clusterstores", False)


def test_a_kind_not_listed_or_not_watchable_is_not_served() -> None:
    assert runtime.resource_from_discovery(GVK("kpack.io", "v1alpha2", "Build"), KPACK_V1ALPHA2) is None
    only_get = {"resources": [{"name": "images", "kind": "Image", "namespaced": True, "verbs": ["get"]}]}
    assert runtime.resource_from_discovery(GVK("kpack.io", "v1alpha2", "Image"), only_get) is None
    assert runtime.resource_from_discovery(GVK("kpack.io", "v1alpha2", "Image"), {}) is None


def test_a_generic_resource_for_a_discovered_kind_and_dockyards_own() -> None:
    info = runtime.resource_from_discovery(GVK("kpack.io", "v1alpha2", "Image"), KPACK_V1ALPHA2)
    assert info is not None
    res = runtime.generic(info)
    assert (res._api_info.resource.group, res._api_info.plural) == ("kpack.io", "images")
    assert runtime.generic(info) is res
    from dockyard.client import resources

    pod = runtime.resource_from_discovery(
        GVK("", "v1", "Pod"),
        {"resources": [{"name": "pods", "kind": "Pod", "namespaced": True, "verbs": ["list", "watch"]}]},
    )
    assert pod is not None and runtime.generic(pod) is resources.resource("Pod")


def test_the_followed_kind_defaults_to_dockyards_image() -> None:
    assert imagedeploy.followed_kind(models.ImageRef(name="x")) == GVK("dockyard.dev", "v1alpha1", "Image")
    ref = models.ImageRef(name="x", apiVersion="kpack.io/v1alpha2")
    assert imagedeploy.followed_kind(ref) == GVK("kpack.io", "v1alpha2", "Image")
    ref = models.ImageRef(name="x", kind="ImageDeploy")
    assert imagedeploy.followed_kind(ref) == GVK("dockyard.dev", "v1alpha1", "ImageDeploy")


def test_a_followed_object_reads_latest_image_of_any_kind() -> None:
    obj = imagedeploy.Followed.model_validate(
        {
            "apiVersion": "kpack.io/v1alpha2",
            "kind": "Image",
            "metadata": {"name": "app", "namespace": "ns"},
            "spec": {"tag": "r/app"},
            "status": {"latestImage": "r/app@sha256:" + "a" * 64, "buildCounter": 3},
        }
    )
    assert obj.status.latestImage == "r/app@sha256:" + "a" * 64
    assert imagedeploy.Followed.model_validate({"metadata": {"name": "x"}}).status.latestImage is None


IDP = kinds.by_kind("dockyard.dev/v1alpha1", "ImageDeploy")


def idp(ref: dict[str, str]) -> dict[str, object]:
    deployment = {"selector": {}, "template": {"spec": {"containers": [{"name": "web", "image": "x"}]}}}
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "ImageDeploy",
        "metadata": {"name": "hello"},
        "spec": {"imageRef": {"name": "app", **ref}, "deployment": deployment},
    }


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        ({"apiVersion": "v1"}, "spec.imageRef.apiVersion"),
        ({"apiVersion": "kpack.io/"}, "spec.imageRef.apiVersion"),
        ({"apiVersion": "kpack.io/V1"}, "spec.imageRef.apiVersion"),
        ({"apiVersion": "kpack io/v1"}, "spec.imageRef.apiVersion"),
        ({"kind": "image"}, "spec.imageRef.kind"),
        ({"kind": ""}, "spec.imageRef.kind"),
        ({"kind": "A" * 64}, "spec.imageRef.kind"),
    ],
)
def test_bad_api_version_and_kind_are_422_naming_the_field(ref: dict[str, str], field: str) -> None:
    with pytest.raises(errors.Invalid) as exc:
        validation.validate(IDP, idp(ref))
    assert exc.value.code == 422
    assert [c["field"] for c in exc.value.to_status()["details"]["causes"]] == [field]


def test_good_api_version_and_kind_are_kept() -> None:
    out = validation.validate(IDP, idp({"apiVersion": "kpack.io/v1alpha2", "kind": "Image"}))
    assert out["spec"]["imageRef"] == {"name": "app", "apiVersion": "kpack.io/v1alpha2", "kind": "Image"}
