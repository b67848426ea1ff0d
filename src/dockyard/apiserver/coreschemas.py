"""OpenAPI schemas of the built-in kinds dockyard serves: a documented subset. Pure.

The subset of ``io.k8s.api.core.v1`` and ``io.k8s.api.apps.v1`` (and
``io.k8s.apimachinery.pkg.apis.meta.v1``) that the embedded engine uses,
with the descriptions, ``x-kubernetes-patch-merge-key`` /
``x-kubernetes-patch-strategy`` and list types of the Kubernetes OpenAPI
document, so that ``kubectl explain pod.spec.containers`` reads as it does
against a cluster. These schemas keep fields the subset does not list
(``x-kubernetes-preserve-unknown-fields``): the server, not the schema, decides
what is valid (:mod:`dockyard.api.validation`). Which fields exist at all is
:func:`field_table`: every field of the Kubernetes v1.32 types, so that unknown
fields follow ``fieldValidation`` as they do in Kubernetes.

Component names are the apiserver's (``io.k8s.api.core.v1.Pod``); references
are OpenAPI v3 (``#/components/schemas/NAME``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

Schema = dict[str, Any]

CORE = "io.k8s.api.core.v1"
APPS = "io.k8s.api.apps.v1"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


def ref(name: str, description: str = "") -> Schema:
    """A reference to a component, with a description (``allOf`` wrapper, as the apiserver writes it)."""
    target = {"$ref": f"#/components/schemas/{name}"}
    return {"allOf": [target], "description": description} if description else target


def string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def integer(description: str, fmt: str = "int32") -> Schema:
    return {"type": "integer", "format": fmt, "description": description}


def boolean(description: str) -> Schema:
    return {"type": "boolean", "description": description}


def strings(description: str) -> Schema:
    return {
        "type": "array",
        "items": {"type": "string", "default": ""},
        "description": description,
        "x-kubernetes-list-type": "atomic",
    }


def string_map(description: str) -> Schema:
    return {"type": "object", "additionalProperties": {"type": "string", "default": ""}, "description": description}


def listed(item: str, description: str, *, key: str | None = None, keys: tuple[str, ...] = ()) -> Schema:
    """An array of components; ``key``: the strategic-merge key (a ``map`` list keyed by ``keys``)."""
    out: Schema = {
        "type": "array",
        "items": {"allOf": [{"$ref": f"#/components/schemas/{item}"}], "default": {}},
        "description": description,
    }
    if key:
        out.update(
            {
                "x-kubernetes-patch-merge-key": key,
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": list(keys or (key,)),
            }
        )
    else:
        out["x-kubernetes-list-type"] = "atomic"
    return out


def obj(
    description: str,
    properties: dict[str, Schema],
    *,
    required: tuple[str, ...] = (),
    gvk: tuple[str, str, str] | None = None,
    open_: bool = True,
) -> Schema:
    """An object schema; ``gvk`` adds ``x-kubernetes-group-version-kind``; ``open_`` keeps unlisted fields."""
    out: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        out["required"] = list(required)
    if gvk:
        out["x-kubernetes-group-version-kind"] = [{"group": gvk[0], "version": gvk[1], "kind": gvk[2]}]
    if open_:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


_API_VERSION = string("APIVersion defines the versioned schema of this representation of an object.")
_KIND = string("Kind is a string value representing the REST resource this object represents.")


def kind_schema(
    description: str, group: str, version: str, kind: str, spec: str | None, status: str | None, **more: Schema
) -> Schema:
    """A top-level kind: ``apiVersion``, ``kind``, ``metadata`` and its ``spec``/``status`` components."""
    props: dict[str, Schema] = {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": ref(f"{META}.ObjectMeta", "Standard object's metadata."),
    }
    if spec:
        props["spec"] = ref(spec, f"Specification of the desired behavior of the {kind}.")
    if status:
        props["status"] = ref(status, f"Most recently observed status of the {kind}. Read-only.")
    props.update(more)
    return obj(description, props, gvk=(group, version, kind), open_=False)


def _meta() -> dict[str, Schema]:
    return {
        f"{META}.ObjectMeta": obj(
            "ObjectMeta is metadata that all persisted resources must have.",
            {
                "name": string("Name must be unique within a namespace (a DNS-1123 subdomain)."),
                "generateName": string("Prefix the server uses to generate a unique name when name is empty."),
                "namespace": string("Namespace defines the space within which each name must be unique."),
                "labels": string_map("Map of string keys and values used to organize and select objects."),
                "annotations": string_map("Unstructured key value map of arbitrary metadata."),
                "uid": string("UID is the unique in time and space value for this object. Read-only."),
                "resourceVersion": string(
                    "An opaque value that represents the internal version of this object "
                    "(the store's revision). Read-only."
                ),
                "generation": integer(
                    "A sequence number representing a specific generation of the desired state.", "int64"
                ),
                "creationTimestamp": string("When this object was created (RFC 3339). Read-only.", format="date-time"),
                "deletionTimestamp": string(
                    "When this object will be deleted; set when deletion is requested and "
                    "finalizers remain. Read-only.",
                    format="date-time",
                ),
                "deletionGracePeriodSeconds": integer("Seconds allowed for graceful termination. Read-only.", "int64"),
                "finalizers": {
                    **strings("Must be empty before the object is deleted from the registry."),
                    "x-kubernetes-list-type": "set",
                    "x-kubernetes-patch-strategy": "merge",
                },
                "ownerReferences": listed(
                    f"{META}.OwnerReference",
                    "Objects this object depends on; when all are deleted, this object is garbage collected.",
                    key="uid",
                ),
            },
            open_=False,
        ),
        f"{META}.OwnerReference": obj(
            "OwnerReference contains information to identify an owning object.",
            {
                "apiVersion": string("API version of the referent."),
                "kind": string("Kind of the referent."),
                "name": string("Name of the referent."),
                "uid": string("UID of the referent."),
                "controller": boolean("If true, this reference points to the managing controller."),
                "blockOwnerDeletion": boolean("If true, the owner cannot be deleted (foreground) before this object."),
            },
            required=("apiVersion", "kind", "name", "uid"),
            open_=False,
        ),
        f"{META}.LabelSelector": obj(
            "A label query over a set of resources.",
            {
                "matchLabels": string_map("Labels that must all match."),
                "matchExpressions": {
                    "type": "array",
                    "description": "Set-based requirements, all must match.",
                    "items": obj(
                        "A selector requirement.",
                        {
                            "key": string("The label key."),
                            "operator": string("In, NotIn, Exists or DoesNotExist."),
                            "values": strings("Values for In and NotIn."),
                        },
                    ),
                },
            },
        ),
        f"{META}.Condition": obj(
            "A condition of an object's state.",
            {
                "type": string("Type of condition."),
                "status": string("True, False or Unknown."),
                "reason": string("CamelCase reason for the last transition."),
                "message": string("Human-readable details."),
                "lastTransitionTime": string("When the condition last changed.", format="date-time"),
                "lastUpdateTime": string("The last time this condition was updated.", format="date-time"),
            },
        ),
        f"{META}.Patch": {
            "type": "object",
            "description": "A patch document: JSON merge patch, JSON patch or strategic merge patch.",
        },
        f"{META}.Status": obj(
            "Status is a return value for calls that don't return other objects.",
            {
                "status": string("Success or Failure."),
                "message": string("Description of the status."),
                "reason": string("Machine-readable reason (NotFound, Conflict, Invalid, ...)."),
                "code": integer("Suggested HTTP return code."),
                "details": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "description": "Extended data: name, group, kind, causes.",
                },
            },
        ),
        f"{META}.DeleteOptions": obj(
            "DeleteOptions may be provided when deleting an API object.",
            {
                "propagationPolicy": string("Foreground, Background (default) or Orphan."),
                "gracePeriodSeconds": integer("Seconds before the object should be deleted.", "int64"),
                "preconditions": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "description": "uid and/or resourceVersion that must match.",
                },
                "dryRun": strings("All: do not persist."),
            },
        ),
        QUANTITY: {
            "type": "string",
            "x-kubernetes-int-or-string": True,
            "description": "A fixed-point number with a suffix: 100m, 0.5, 128Mi, 1G.",
        },
        INT_OR_STRING: {
            "type": "string",
            "format": "int-or-string",
            "x-kubernetes-int-or-string": True,
            "description": "An integer or a string (such as a percentage: 25%).",
        },
    }


def _pod() -> dict[str, Schema]:
    probe_handlers = {
        "exec": obj("Run a command in the container.", {"command": strings("Command line; exit 0 is healthy.")}),
        "httpGet": obj(
            "HTTP GET against the container (on the pod's own loopback).",
            {
                "path": string("Path to access."),
                "port": ref(INT_OR_STRING, "Port number or name."),
                "host": string("Host name: unset, 127.0.0.1 or localhost (the pod's loopback)."),
                "scheme": string("HTTP or HTTPS."),
                "httpHeaders": {
                    "type": "array",
                    "description": "Custom headers.",
                    "items": obj("A header.", {"name": string("Header name."), "value": string("Header value.")}),
                },
            },
        ),
        "tcpSocket": obj(
            "TCP connect to the container (on the pod's own loopback).",
            {
                "port": ref(INT_OR_STRING, "Port number or name."),
                "host": string("Host name: unset, 127.0.0.1 or localhost (the pod's loopback)."),
            },
        ),
        "grpc": obj(
            "gRPC health check: not supported by dockyard's node agent (a pod that sets it is refused, 422).",
            {"port": integer("Port number."), "service": string("Service name.")},
        ),
    }
    return {
        f"{CORE}.Pod": kind_schema(
            "Pod is a collection of containers that can run on a host.",
            "",
            "v1",
            "Pod",
            f"{CORE}.PodSpec",
            f"{CORE}.PodStatus",
        ),
        f"{CORE}.PodSpec": obj(
            "PodSpec is a description of a pod.",
            {
                "containers": listed(
                    f"{CORE}.Container",
                    "List of containers belonging to the pod. There must be at least one.",
                    key="name",
                ),
                "initContainers": listed(
                    f"{CORE}.Container",
                    "Not supported by dockyard's node agent: a pod that sets it is refused (422).",
                    key="name",
                ),
                "volumes": listed(
                    f"{CORE}.Volume", "Volumes that can be mounted by containers of this pod.", key="name"
                ),
                "restartPolicy": string("Always (default), OnFailure or Never.", enum=["Always", "OnFailure", "Never"]),
                "terminationGracePeriodSeconds": integer(
                    "Seconds the pod needs to terminate gracefully (default 30).", "int64"
                ),
                "nodeName": string("The node the pod is bound to; set by the node agent when empty."),
                "hostNetwork": boolean("Use the host's network namespace."),
                "imagePullSecrets": listed(f"{CORE}.LocalObjectReference", "Secrets for pulling images.", key="name"),
                "serviceAccountName": string("Name of the ServiceAccount to use to run this pod."),
            },
            required=("containers",),
        ),
        f"{CORE}.Container": obj(
            "A single application container that you want to run within a pod.",
            {
                "name": string("Name of the container, unique within the pod (DNS_LABEL)."),
                "image": string("Container image name."),
                "command": strings("Entrypoint array. Not executed within a shell."),
                "args": strings("Arguments to the entrypoint."),
                "workingDir": string("Container's working directory."),
                "env": listed(f"{CORE}.EnvVar", "Environment variables to set in the container.", key="name"),
                "envFrom": {
                    "type": "array",
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "description": "Variables from Secrets and ConfigMaps, set before env, in order: secretRef or "
                    "configMapRef {name, optional} and an optional prefix for the keys (a key that is not a "
                    "variable name is left out).",
                },
                "ports": listed(
                    f"{CORE}.ContainerPort",
                    "Ports to expose; published on 127.0.0.1 when hostPort is set.",
                    key="containerPort",
                    keys=("containerPort", "protocol"),
                ),
                "volumeMounts": listed(
                    f"{CORE}.VolumeMount", "Pod volumes to mount into the container's filesystem.", key="mountPath"
                ),
                "resources": ref(f"{CORE}.ResourceRequirements", "Compute resources required by this container."),
                "livenessProbe": ref(f"{CORE}.Probe", "Restart the container when this probe fails."),
                "readinessProbe": ref(f"{CORE}.Probe", "The container is Ready while this probe succeeds."),
                "startupProbe": ref(f"{CORE}.Probe", "Other probes wait until this probe succeeds."),
                "imagePullPolicy": string("Always, Never or IfNotPresent."),
                "stdin": boolean("Allocate a buffer for stdin."),
                "tty": boolean("Allocate a TTY."),
            },
            required=("name",),
        ),
        f"{CORE}.EnvVar": obj(
            "EnvVar represents an environment variable present in a Container.",
            {
                "name": string("Name of the environment variable."),
                "value": string("Value; $(VAR_NAME) references are expanded."),
                "valueFrom": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "description": "Source for the value: secretKeyRef or configMapKeyRef {name, key, optional}, or "
                    "fieldRef {fieldPath: "
                    "metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'], "
                    "metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, status.hostIP, "
                    "status.podIP}; other sources are refused (422).",
                },
            },
            required=("name",),
        ),
        f"{CORE}.ContainerPort": obj(
            "A network port in a single container.",
            {
                "containerPort": integer("Port number on the pod's IP address (1-65535)."),
                "hostPort": integer("Port published on the host (127.0.0.1)."),
                "hostIP": string("Host address to publish on: only 127.0.0.1."),
                "name": string("An IANA_SVC_NAME, unique within the pod."),
                "protocol": string("TCP (default), UDP or SCTP."),
            },
            required=("containerPort",),
        ),
        f"{CORE}.VolumeMount": obj(
            "A mounting of a Volume within a container.",
            {
                "name": string("Must match the name of a volume of the pod."),
                "mountPath": string("Path within the container at which the volume is mounted."),
                "readOnly": boolean("Mounted read-only if true."),
                "subPath": string("Path within the volume to mount (default: its root)."),
            },
            required=("name", "mountPath"),
        ),
        f"{CORE}.Volume": obj(
            "A named volume in a pod that may be accessed by any container in the pod.",
            {
                "name": string("Volume's name, unique within the pod."),
                "hostPath": obj(
                    "A directory of the host.",
                    {
                        "path": string("Path of the directory on the host."),
                        "type": string("DirectoryOrCreate, Directory, File, ..."),
                    },
                ),
                "emptyDir": obj(
                    "A temporary directory that shares the pod's lifetime.",
                    {
                        "medium": string('"" (disk) or Memory (a tmpfs of sizeLimit bytes).'),
                        "sizeLimit": ref(QUANTITY, "Total size limit; a disk emptyDir past it gets its pod evicted."),
                    },
                ),
                "secret": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "description": "A Secret's keys as files (secretName, items[] {key, path, mode}, defaultMode, "
                    "optional), on a tmpfs, mounted read-only; a changed Secret reaches the files within about 10 s.",
                },
                "configMap": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "description": "A ConfigMap's keys (data and binaryData) as files (name, items[] {key, path, "
                    "mode}, defaultMode, optional), mounted read-only; a changed ConfigMap reaches the files within "
                    "about 10 s.",
                },
                "projected": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "description": "Several Secrets' and ConfigMaps' keys as files of one directory: sources[].secret "
                    "or sources[].configMap {name, items, optional} and defaultMode; other source kinds are refused "
                    "(422).",
                },
            },
            required=("name",),
        ),
        f"{CORE}.ResourceRequirements": obj(
            "Compute resource requirements.",
            {
                "limits": {
                    "type": "object",
                    "additionalProperties": ref(QUANTITY),
                    "description": "Maximum amount of compute resources allowed (cpu, memory).",
                },
                "requests": {
                    "type": "object",
                    "additionalProperties": ref(QUANTITY),
                    "description": "Minimum amount of compute resources required.",
                },
            },
        ),
        f"{CORE}.Probe": obj(
            "A health check performed against a container.",
            {
                **probe_handlers,
                "initialDelaySeconds": integer("Seconds after the container started before probes begin."),
                "periodSeconds": integer("How often to probe (default 10)."),
                "timeoutSeconds": integer("Seconds after which the probe times out (default 1)."),
                "successThreshold": integer("Consecutive successes to be considered successful (default 1)."),
                "failureThreshold": integer("Consecutive failures to be considered failed (default 3)."),
                "terminationGracePeriodSeconds": integer(
                    "Grace period when the container is killed after this (liveness or startup) probe failed; "
                    "default: the pod's.",
                    "int64",
                ),
            },
        ),
        f"{CORE}.LocalObjectReference": obj(
            "A reference to an object in the same namespace.", {"name": string("Name of the referent.")}
        ),
        f"{CORE}.PodStatus": obj(
            "The most recently observed status of the pod. Written by the node agent.",
            {
                "phase": string("Pending, Running, Succeeded, Failed or Unknown."),
                "conditions": listed(f"{META}.Condition", "Current service state of the pod (Ready, ...).", key="type"),
                "containerStatuses": {
                    "type": "array",
                    "description": "One status per container.",
                    "items": ref(f"{CORE}.ContainerStatus"),
                },
                "podIP": string("IP address allocated to the pod."),
                "hostIP": string("IP of the node."),
                "startTime": string("When the node agent acknowledged the pod.", format="date-time"),
                "reason": string("Why the pod is in this state."),
                "message": string("Details."),
            },
        ),
        f"{CORE}.ContainerStatus": obj(
            "The current status of a container.",
            {
                "name": string("The container's name."),
                "image": string("The image it runs."),
                "imageID": string("The image's ID."),
                "containerID": string("docker://<id> of the engine container."),
                "ready": boolean("Whether the container passes its readiness probe."),
                "started": boolean("Whether it has started (and passed its startup probe)."),
                "restartCount": integer("Number of times the container has been restarted."),
                "state": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "description": "waiting{reason}, running{startedAt} or terminated{exitCode, reason}.",
                },
                "lastState": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "description": "The container's last termination.",
                },
            },
        ),
        f"{CORE}.PodTemplateSpec": obj(
            "Describes the pods that will be created from a template.",
            {
                "metadata": ref(f"{META}.ObjectMeta", "Standard object's metadata (labels of the pods)."),
                "spec": ref(f"{CORE}.PodSpec", "Specification of the desired behavior of the pod."),
            },
        ),
    }


def _others() -> dict[str, Schema]:
    return {
        f"{CORE}.Namespace": kind_schema(
            "Namespace provides a scope for Names.",
            "",
            "v1",
            "Namespace",
            f"{CORE}.NamespaceSpec",
            f"{CORE}.NamespaceStatus",
        ),
        f"{CORE}.NamespaceSpec": obj(
            "Attributes of a Namespace.",
            {
                "finalizers": strings(
                    "Finalizers is an opaque list of values that must be empty to permanently remove object from "
                    "storage. dockyard adds `kubernetes` at create (its content is deleted by the API server); only "
                    "PUT /api/v1/namespaces/NAME/finalize changes the list."
                )
            },
        ),
        f"{CORE}.NamespaceStatus": obj(
            "Status of a Namespace.",
            {
                "phase": string("Active or Terminating."),
                "conditions": listed(
                    f"{META}.Condition",
                    "While Terminating, what the deletion waits for (NamespaceContentRemaining, "
                    "NamespaceFinalizersRemaining, ...).",
                    key="type",
                ),
            },
        ),
        f"{CORE}.Secret": kind_schema(
            "Secret holds secret data of a certain type.",
            "",
            "v1",
            "Secret",
            None,
            None,
            data={
                "type": "object",
                "additionalProperties": {"type": "string", "format": "byte"},
                "description": "Secret data: keys to base64-encoded values. Never written to logs, Events "
                "or error messages.",
            },
            stringData=string_map("Write-only convenience: plain-text values merged into data on write."),
            type=string(
                "Used to facilitate programmatic handling of secret data (default Opaque: any keys). "
                "kubernetes.io/dockerconfigjson needs data[.dockerconfigjson], a JSON object; "
                "kubernetes.io/basic-auth username or password; kubernetes.io/tls tls.crt and tls.key; "
                "kubernetes.io/ssh-auth ssh-privatekey (422 naming the key otherwise)."
            ),
            immutable=boolean(
                "If true, data cannot be updated and immutable cannot be unset (422); delete and recreate the "
                "Secret to change it. type never changes after creation; it defaults to Opaque."
            ),
        ),
        f"{CORE}.ConfigMap": kind_schema(
            "ConfigMap holds configuration data for pods to consume.",
            "",
            "v1",
            "ConfigMap",
            None,
            None,
            data=string_map(
                "Configuration data: keys ([-._a-zA-Z0-9]+) to UTF-8 strings. A key may not also be in binaryData; "
                "data and binaryData hold at most 1 MiB together."
            ),
            binaryData={
                "type": "object",
                "additionalProperties": {"type": "string", "format": "byte"},
                "description": "Binary data: keys to base64-encoded bytes.",
            },
            immutable=boolean(
                "If true, data and binaryData cannot be updated and immutable cannot be unset (422); delete and "
                "recreate the ConfigMap to change it."
            ),
        ),
        f"{CORE}.Event": kind_schema(
            "Event is a report of an event somewhere in the cluster.",
            "",
            "v1",
            "Event",
            None,
            None,
            involvedObject=ref(f"{CORE}.ObjectReference", "The object that this event is about."),
            reason=string("Short, machine understandable string (BuildStarted, ScalingReplicaSet, ...)."),
            message=string("A human-readable description of the status of this operation."),
            type=string("Normal or Warning."),
            count=integer("The number of times this event has occurred."),
            firstTimestamp=string("The time at which the event was first recorded.", format="date-time"),
            lastTimestamp=string("The time at which the most recent occurrence was recorded.", format="date-time"),
            source=obj(
                "The component reporting this event.",
                {"component": string("Component from which the event is generated."), "host": string("Node name.")},
            ),
            reportingComponent=string("Name of the controller that emitted this Event."),
            reportingInstance=string("ID of the controller instance."),
            eventTime=string("Time when this Event was first observed.", format="date-time"),
        ),
        f"{CORE}.ObjectReference": obj(
            "A reference to an object.",
            {
                "apiVersion": string("API version of the referent."),
                "kind": string("Kind of the referent."),
                "namespace": string("Namespace of the referent."),
                "name": string("Name of the referent."),
                "uid": string("UID of the referent."),
                "resourceVersion": string("Specific resourceVersion."),
                "fieldPath": string("A piece of the object, such as spec.containers{name}."),
            },
        ),
        f"{APPS}.Deployment": kind_schema(
            "Deployment enables declarative updates for Pods and ReplicaSets.",
            "apps",
            "v1",
            "Deployment",
            f"{APPS}.DeploymentSpec",
            f"{APPS}.DeploymentStatus",
        ),
        f"{APPS}.DeploymentSpec": obj(
            "The specification of the desired behavior of the Deployment.",
            {
                "replicas": integer("Number of desired pods (default 1)."),
                "selector": ref(
                    f"{META}.LabelSelector",
                    "Label selector for pods; must match the template's labels. Immutable after creation (apps/v1).",
                ),
                "template": ref(f"{CORE}.PodTemplateSpec", "Template describes the pods that will be created."),
                "strategy": ref(f"{APPS}.DeploymentStrategy", "How to replace existing pods with new ones."),
                "minReadySeconds": integer("Seconds a new pod must be ready to count as available."),
                "revisionHistoryLimit": integer("Old ReplicaSets kept to allow rollback (default 10)."),
                "paused": boolean("Indicates that the deployment is paused."),
                "progressDeadlineSeconds": integer(
                    "Seconds for the deployment to make progress before it is considered failed (default 600)."
                ),
            },
            required=("selector", "template"),
        ),
        f"{APPS}.DeploymentStrategy": {
            **obj(
                "How to replace existing pods with new ones.",
                {
                    "type": string("Recreate or RollingUpdate (default).", enum=["Recreate", "RollingUpdate"]),
                    "rollingUpdate": obj(
                        "Rolling update parameters.",
                        {
                            "maxSurge": ref(
                                INT_OR_STRING, "Pods that can be scheduled above the desired number (25%)."
                            ),
                            "maxUnavailable": ref(
                                INT_OR_STRING, "Pods that can be unavailable during the update (25%)."
                            ),
                        },
                    ),
                },
            ),
            "x-kubernetes-patch-strategy": "retainKeys",
        },
        f"{APPS}.DeploymentStatus": obj(
            "The most recently observed status of the Deployment.",
            {
                "observedGeneration": integer("The generation observed by the deployment controller.", "int64"),
                "replicas": integer("Total pods targeted by this deployment."),
                "updatedReplicas": integer("Pods with the desired template."),
                "readyReplicas": integer("Pods with a Ready condition."),
                "availableReplicas": integer("Pods ready for at least minReadySeconds."),
                "unavailableReplicas": integer("Pods still needed for 100% available capacity."),
                "conditions": listed(f"{META}.Condition", "Available and Progressing.", key="type"),
            },
        ),
        f"{APPS}.ReplicaSet": kind_schema(
            "ReplicaSet ensures that a specified number of pod replicas are running at any given time.",
            "apps",
            "v1",
            "ReplicaSet",
            f"{APPS}.ReplicaSetSpec",
            f"{APPS}.ReplicaSetStatus",
        ),
        f"{APPS}.ReplicaSetSpec": obj(
            "The specification of a ReplicaSet.",
            {
                "replicas": integer("Number of desired pods (default 1)."),
                "selector": ref(
                    f"{META}.LabelSelector",
                    "Label query over pods that should match the replica count. Immutable after creation (apps/v1).",
                ),
                "template": ref(f"{CORE}.PodTemplateSpec", "The pods created when too few are running."),
                "minReadySeconds": integer("Seconds a new pod must be ready to count as available."),
            },
            required=("selector",),
        ),
        f"{APPS}.ReplicaSetStatus": obj(
            "The most recently observed status of the ReplicaSet.",
            {
                "replicas": integer("The most recently observed number of replicas."),
                "fullyLabeledReplicas": integer("Pods whose labels match the template's."),
                "readyReplicas": integer("Pods with a Ready condition."),
                "availableReplicas": integer("Pods ready for at least minReadySeconds."),
                "observedGeneration": integer("The generation of the most recently observed ReplicaSet.", "int64"),
            },
        ),
    }


def _nodes() -> dict[str, Schema]:
    """``v1`` Node, with the descriptions of ``k8s.io/api/core/v1/types.go`` and what dockyard's agent writes."""
    return {
        f"{CORE}.Node": kind_schema(
            "Node is a worker node in Kubernetes. dockyard's node agent registers its one node at start and "
            "updates its status every 10 seconds.",
            "",
            "v1",
            "Node",
            f"{CORE}.NodeSpec",
            f"{CORE}.NodeStatus",
        ),
        f"{CORE}.NodeSpec": obj(
            "NodeSpec describes the attributes that a node is created with.",
            {
                "unschedulable": boolean(
                    "Unschedulable controls node schedulability of new pods (kubectl cordon). The node agent "
                    "binds no new pod while it is set: they stay Pending, reason Unschedulable. Pods already "
                    "bound keep running."
                ),
                "podCIDR": string("PodCIDR represents the pod IP range assigned to the node (informational)."),
                "podCIDRs": strings("podCIDRs represents the IP ranges assigned to the node (informational)."),
                "providerID": string("ID of the node assigned by the cloud provider (informational)."),
                "taints": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "Refused (422): dockyard's node honours no taints; use unschedulable.",
                },
            },
        ),
        f"{CORE}.NodeStatus": obj(
            "NodeStatus is information about the current status of a node.",
            {
                "capacity": {
                    "type": "object",
                    "additionalProperties": ref(QUANTITY),
                    "description": "Capacity represents the total resources of a node: cpu (os.cpu_count()), "
                    "memory (MemTotal of /proc/meminfo), pods (110).",
                },
                "allocatable": {
                    "type": "object",
                    "additionalProperties": ref(QUANTITY),
                    "description": "Allocatable represents the resources of a node available for scheduling "
                    "(the capacity: dockyard reserves none).",
                },
                "conditions": listed(
                    f"{CORE}.NodeCondition",
                    "Conditions is an array of current observed node conditions: Ready, MemoryPressure, "
                    "DiskPressure, PIDPressure.",
                    key="type",
                ),
                "addresses": listed(
                    f"{CORE}.NodeAddress",
                    "List of addresses reachable to the node: InternalIP 127.0.0.1 and Hostname.",
                    key="type",
                ),
                "daemonEndpoints": ref(
                    f"{CORE}.NodeDaemonEndpoints",
                    "Endpoints of daemons running on the Node (port 0: the agent serves no TCP endpoint).",
                ),
                "nodeInfo": ref(f"{CORE}.NodeSystemInfo", "Set of ids/uuids to uniquely identify the node."),
            },
        ),
        f"{CORE}.NodeCondition": obj(
            "NodeCondition contains condition information for a node.",
            {
                "type": string("Type of node condition."),
                "status": string("Status of the condition, one of True, False, Unknown."),
                "lastHeartbeatTime": string("Last time we got an update on a given condition.", format="date-time"),
                "lastTransitionTime": string(
                    "Last time the condition transit from one status to another.", format="date-time"
                ),
                "reason": string("(brief) reason for the condition's last transition."),
                "message": string("Human readable message indicating details about last transition."),
            },
            required=("type", "status"),
        ),
        f"{CORE}.NodeAddress": obj(
            "NodeAddress contains information for the node's address.",
            {
                "type": string("Node address type, one of Hostname, ExternalIP or InternalIP."),
                "address": string("The node address."),
            },
            required=("type", "address"),
        ),
        f"{CORE}.NodeDaemonEndpoints": obj(
            "NodeDaemonEndpoints lists ports opened by daemons running on the Node.",
            {
                "kubeletEndpoint": obj(
                    "Endpoint on which Kubelet is listening.",
                    {"Port": integer("Port number of the given endpoint.")},
                )
            },
        ),
        f"{CORE}.NodeSystemInfo": obj(
            "NodeSystemInfo is a set of ids/uuids to uniquely identify the node.",
            {
                "machineID": string("MachineID reported by the node (/etc/machine-id)."),
                "systemUUID": string("SystemUUID reported by the node (/sys/class/dmi/id/product_uuid, if readable)."),
                "bootID": string("Boot ID reported by the node."),
                "kernelVersion": string("Kernel Version reported by the node from 'uname -r'."),
                "osImage": string("OS Image reported by the node from /etc/os-release."),
                "containerRuntimeVersion": string(
                    "ContainerRuntime Version reported by the node through runtime remote API "
                    "(e.g. podman://4.3.1, docker://20.10.24)."
                ),
                "kubeletVersion": string("Kubelet Version reported by the node (dockyard-<version>)."),
                "kubeProxyVersion": string("Deprecated: KubeProxy Version reported by the node."),
                "operatingSystem": string("The Operating System reported by the node."),
                "architecture": string("The Architecture reported by the node."),
            },
        ),
    }


COORDINATION = "io.k8s.api.coordination.v1"


def _coordination() -> dict[str, Schema]:
    """``coordination.k8s.io/v1`` Lease, with the descriptions of ``k8s.io/api/coordination/v1/types.go``."""
    return {
        f"{COORDINATION}.Lease": kind_schema(
            "Lease defines a lease concept.",
            "coordination.k8s.io",
            "v1",
            "Lease",
            f"{COORDINATION}.LeaseSpec",
            None,
        ),
        f"{COORDINATION}.LeaseSpec": obj(
            "LeaseSpec is a specification of a Lease.",
            {
                "holderIdentity": string("holderIdentity contains the identity of the holder of a current lease."),
                "leaseDurationSeconds": integer(
                    "leaseDurationSeconds is a duration that candidates for a lease need to wait to force acquire "
                    "it. This is measured against the time of last observed renewTime."
                ),
                "acquireTime": string("acquireTime is a time when the current lease was acquired.", format="date-time"),
                "renewTime": string(
                    "renewTime is a time when the current holder of a lease has last updated the lease.",
                    format="date-time",
                ),
                "leaseTransitions": integer(
                    "leaseTransitions is the number of transitions of a lease between holders."
                ),
                "strategy": string(
                    "Strategy indicates the strategy for picking the leader for coordinated leader election."
                ),
                "preferredHolder": string(
                    "PreferredHolder signals to a lease holder that the lease has a more optimal holder and "
                    "should be given up."
                ),
            },
        ),
    }


DISCOVERY = "io.k8s.api.discovery.v1"


def _services() -> dict[str, Schema]:
    """core/v1 Service and ``discovery.k8s.io/v1`` EndpointSlice, with the descriptions of
    ``k8s.io/api/core/v1/types.go`` and ``k8s.io/api/discovery/v1/types.go`` (and what dockyard honours:
    :mod:`dockyard.api.services`)."""
    return {
        f"{CORE}.Service": kind_schema(
            "Service is a named abstraction of software service (for example, mysql) consisting of local port "
            "(for example 3306) that the proxy listens on, and the selector that determines which pods will answer "
            "requests sent through the proxy.",
            "",
            "v1",
            "Service",
            f"{CORE}.ServiceSpec",
            f"{CORE}.ServiceStatus",
        ),
        f"{CORE}.ServiceSpec": obj(
            "ServiceSpec describes the attributes that a user creates on a service.",
            {
                "type": string(
                    "ClusterIP (default): the proxy listens on clusterIP:port; NodePort: also on "
                    "127.0.0.1:nodePort; LoadBalancer: also on 127.0.0.1:port (as k3s's ServiceLB). "
                    "ExternalName is not supported.",
                    enum=["ClusterIP", "NodePort", "LoadBalancer"],
                ),
                "selector": string_map(
                    "Route service traffic to pods with label keys and values matching this selector."
                ),
                "ports": listed(
                    f"{CORE}.ServicePort",
                    "The list of ports that are exposed by this service.",
                    key="port",
                    keys=("port", "protocol"),
                ),
                "clusterIP": string(
                    "The IP address of the service, allocated from 127.1.0.0/16 (loopback) unless given; "
                    '"None" makes a headless service. Immutable.'
                ),
                "clusterIPs": strings("The cluster IP (one: IPv4 single stack)."),
                "sessionAffinity": string("None only (round robin).", enum=["None"]),
                "ipFamilies": strings("IPv4 only."),
                "ipFamilyPolicy": string("SingleStack only.", enum=["SingleStack"]),
                "externalTrafficPolicy": string("Cluster or Local (the same on one node).", enum=["Cluster", "Local"]),
                "internalTrafficPolicy": string("Cluster or Local (the same on one node).", enum=["Cluster", "Local"]),
                "allocateLoadBalancerNodePorts": boolean("Node ports are always allocated for LoadBalancers."),
            },
        ),
        f"{CORE}.ServicePort": obj(
            "ServicePort contains information on service's port.",
            {
                "name": string("The name of this port within the service (a DNS_LABEL); required with two ports."),
                "protocol": string("TCP only (the proxy forwards TCP).", enum=["TCP"]),
                "port": integer("The port that will be exposed by this service."),
                "targetPort": ref(
                    INT_OR_STRING,
                    "Number or name of the port to access on the pods targeted by the service (a name is looked "
                    "up in the pod's containers[].ports[].name). Default: port.",
                ),
                "nodePort": integer(
                    "The port on 127.0.0.1 for NodePort and LoadBalancer services, allocated from 30000-32767 "
                    "unless given."
                ),
                "appProtocol": string("The application protocol for this port (informational)."),
            },
            required=("port",),
        ),
        f"{CORE}.ServiceStatus": obj(
            "ServiceStatus represents the current status of a service.",
            {
                "loadBalancer": obj(
                    "Status of the load-balancer: ingress 127.0.0.1 once the proxy serves it.",
                    {
                        "ingress": {
                            "type": "array",
                            "description": "Ingress points for the load-balancer.",
                            "items": obj(
                                "An ingress point.",
                                {"ip": string("IP of the ingress point."), "ipMode": string("VIP or Proxy.")},
                            ),
                        }
                    },
                ),
                "conditions": listed(f"{META}.Condition", "Current service state.", key="type"),
            },
        ),
        f"{DISCOVERY}.EndpointSlice": kind_schema(
            "EndpointSlice represents a subset of the endpoints that implement a service.",
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            None,
            None,
            addressType=string("The type of address carried by this EndpointSlice: IPv4 only.", enum=["IPv4"]),
            endpoints={
                "type": "array",
                "description": "A list of unique endpoints in this slice (at most 1000).",
                "items": ref(f"{DISCOVERY}.Endpoint"),
                "x-kubernetes-list-type": "atomic",
            },
            ports={
                "type": "array",
                "description": "The network ports exposed by each endpoint in this slice.",
                "items": ref(f"{DISCOVERY}.EndpointPort"),
                "x-kubernetes-list-type": "atomic",
            },
        ),
        f"{DISCOVERY}.Endpoint": obj(
            "Endpoint represents a single logical backend implementing a service.",
            {
                "addresses": strings("The pod's address (one, on loopback: 127.2.0.0/16)."),
                "conditions": obj(
                    "The current condition of the endpoint.",
                    {
                        "ready": boolean("The pod is Ready and not terminating: the proxy sends it new connections."),
                        "serving": boolean("The pod is Ready, terminating or not."),
                        "terminating": boolean("The pod is being deleted."),
                    },
                ),
                "nodeName": string("The node hosting this endpoint."),
                "targetRef": ref(f"{CORE}.ObjectReference", "The pod this endpoint is."),
            },
            required=("addresses",),
        ),
        f"{DISCOVERY}.EndpointPort": obj(
            "EndpointPort represents a Port used by an EndpointSlice.",
            {
                "name": string("The service port's name."),
                "protocol": string("TCP."),
                "port": integer("The port number of the endpoint (the resolved targetPort)."),
                "appProtocol": string("The application protocol for this port."),
            },
        ),
    }


def schemas() -> dict[str, Schema]:
    """Every built-in component schema by name (OpenAPI v3 references)."""
    return {**_meta(), **_pod(), **_others(), **_nodes(), **_coordination(), **_services()}


# ------------------------------------------------------------------ every field of the Kubernetes types

KUBERNETES_VERSION = "v1.32"
"""The Kubernetes release whose types :data:`_FIELDS` lists."""

BUILT_IN_GROUP_VERSIONS = frozenset(
    {("", "v1"), ("apps", "v1"), ("discovery.k8s.io", "v1"), ("coordination.k8s.io", "v1")}
)
"""Group/versions whose kinds dockyard serves as Kubernetes' own types (their unknown fields are never stored)."""

_FIELDS: dict[str, str] = {
    "AWSElasticBlockStoreVolumeSource": "fsType partition readOnly volumeID",
    "Affinity": "nodeAffinity:NodeAffinity podAffinity:PodAffinity podAntiAffinity:PodAntiAffinity",
    "AppArmorProfile": "localhostProfile type",
    "AttachedVolume": "devicePath name",
    "AzureDiskVolumeSource": "cachingMode diskName diskURI fsType kind readOnly",
    "AzureFileVolumeSource": "readOnly secretName shareName",
    "CSIVolumeSource": "driver fsType nodePublishSecretRef:LocalObjectReference readOnly volumeAttributes",
    "Capabilities": "add drop",
    "CephFSVolumeSource": "monitors path readOnly secretFile secretRef:LocalObjectReference user",
    "CinderVolumeSource": "fsType readOnly secretRef:LocalObjectReference volumeID",
    "ClientIPConfig": "timeoutSeconds",
    "ClusterTrustBundleProjection": "labelSelector:LabelSelector name optional path signerName",
    "Condition": "lastTransitionTime message observedGeneration reason status type",
    "ConfigMap": "apiVersion binaryData data immutable kind metadata:ObjectMeta",
    "ConfigMapEnvSource": "name optional",
    "ConfigMapKeySelector": "key name optional",
    "ConfigMapNodeConfigSource": "kubeletConfigKey name namespace resourceVersion uid",
    "ConfigMapProjection": "items:[]KeyToPath name optional",
    "ConfigMapVolumeSource": "defaultMode items:[]KeyToPath name optional",
    "Container": (
        "args command env:[]EnvVar envFrom:[]EnvFromSource image imagePullPolicy lifecycle:Lifecycle "
        "livenessProbe:Probe name ports:[]ContainerPort readinessProbe:Probe "
        "resizePolicy:[]ContainerResizePolicy resources:ResourceRequirements restartPolicy "
        "securityContext:SecurityContext startupProbe:Probe stdin stdinOnce terminationMessagePath "
        "terminationMessagePolicy tty volumeDevices:[]VolumeDevice volumeMounts:[]VolumeMount workingDir"
    ),
    "ContainerImage": "names sizeBytes",
    "ContainerPort": "containerPort hostIP hostPort name protocol",
    "ContainerResizePolicy": "resourceName restartPolicy",
    "ContainerState": "running:ContainerStateRunning terminated:ContainerStateTerminated waiting:ContainerStateWaiting",
    "ContainerStateRunning": "startedAt",
    "ContainerStateTerminated": "containerID exitCode finishedAt message reason signal startedAt",
    "ContainerStateWaiting": "message reason",
    "ContainerStatus": (
        "allocatedResources allocatedResourcesStatus:[]ResourceStatus containerID image imageID "
        "lastState:ContainerState name ready resources:ResourceRequirements restartCount started "
        "state:ContainerState user:ContainerUser volumeMounts:[]VolumeMountStatus"
    ),
    "ContainerUser": "linux:LinuxContainerUser",
    "DaemonEndpoint": "Port",
    "Deployment": "apiVersion kind metadata:ObjectMeta spec:DeploymentSpec status:DeploymentStatus",
    "DeploymentCondition": "lastTransitionTime lastUpdateTime message reason status type",
    "DeploymentSpec": (
        "minReadySeconds paused progressDeadlineSeconds replicas revisionHistoryLimit "
        "selector:LabelSelector strategy:DeploymentStrategy template:PodTemplateSpec"
    ),
    "DeploymentStatus": (
        "availableReplicas collisionCount conditions:[]DeploymentCondition observedGeneration "
        "readyReplicas replicas unavailableReplicas updatedReplicas"
    ),
    "DeploymentStrategy": "rollingUpdate:RollingUpdateDeployment type",
    "DownwardAPIProjection": "items:[]DownwardAPIVolumeFile",
    "DownwardAPIVolumeFile": "fieldRef:ObjectFieldSelector mode path resourceFieldRef:ResourceFieldSelector",
    "DownwardAPIVolumeSource": "defaultMode items:[]DownwardAPIVolumeFile",
    "EmptyDirVolumeSource": "medium sizeLimit",
    "Endpoint": (
        "addresses conditions:EndpointConditions deprecatedTopology hints:EndpointHints hostname nodeName "
        "targetRef:ObjectReference zone"
    ),
    "EndpointConditions": "ready serving terminating",
    "EndpointHints": "forZones:[]ForZone",
    "EndpointPort": "appProtocol name port protocol",
    "EndpointSlice": "addressType apiVersion endpoints:[]Endpoint kind metadata:ObjectMeta ports:[]EndpointPort",
    "EnvFromSource": "configMapRef:ConfigMapEnvSource prefix secretRef:SecretEnvSource",
    "EnvVar": "name value valueFrom:EnvVarSource",
    "EnvVarSource": (
        "configMapKeyRef:ConfigMapKeySelector fieldRef:ObjectFieldSelector "
        "resourceFieldRef:ResourceFieldSelector secretKeyRef:SecretKeySelector"
    ),
    "EphemeralContainer": (
        "args command env:[]EnvVar envFrom:[]EnvFromSource image imagePullPolicy lifecycle:Lifecycle "
        "livenessProbe:Probe name ports:[]ContainerPort readinessProbe:Probe "
        "resizePolicy:[]ContainerResizePolicy resources:ResourceRequirements restartPolicy "
        "securityContext:SecurityContext startupProbe:Probe stdin stdinOnce targetContainerName "
        "terminationMessagePath terminationMessagePolicy tty volumeDevices:[]VolumeDevice "
        "volumeMounts:[]VolumeMount workingDir"
    ),
    "EphemeralVolumeSource": "volumeClaimTemplate:PersistentVolumeClaimTemplate",
    "Event": (
        "action apiVersion count eventTime firstTimestamp involvedObject:ObjectReference kind "
        "lastTimestamp message metadata:ObjectMeta reason related:ObjectReference reportingComponent "
        "reportingInstance series:EventSeries source:EventSource type"
    ),
    "EventSeries": "count lastObservedTime",
    "EventSource": "component host",
    "ExecAction": "command",
    "FCVolumeSource": "fsType lun readOnly targetWWNs wwids",
    "FlexVolumeSource": "driver fsType options readOnly secretRef:LocalObjectReference",
    "FlockerVolumeSource": "datasetName datasetUUID",
    "ForZone": "name",
    "GCEPersistentDiskVolumeSource": "fsType partition pdName readOnly",
    "GRPCAction": "port service",
    "GitRepoVolumeSource": "directory repository revision",
    "GlusterfsVolumeSource": "endpoints path readOnly",
    "HTTPGetAction": "host httpHeaders:[]HTTPHeader path port scheme",
    "HTTPHeader": "name value",
    "HostAlias": "hostnames ip",
    "HostIP": "ip",
    "HostPathVolumeSource": "path type",
    "ISCSIVolumeSource": (
        "chapAuthDiscovery chapAuthSession fsType initiatorName iqn iscsiInterface lun portals readOnly "
        "secretRef:LocalObjectReference targetPortal"
    ),
    "ImageVolumeSource": "pullPolicy reference",
    "KeyToPath": "key mode path",
    "LabelSelector": "matchExpressions:[]LabelSelectorRequirement matchLabels",
    "LabelSelectorRequirement": "key operator values",
    "Lease": "apiVersion kind metadata:ObjectMeta spec:LeaseSpec",
    "LeaseSpec": (
        "acquireTime holderIdentity leaseDurationSeconds leaseTransitions preferredHolder renewTime strategy"
    ),
    "Lifecycle": "postStart:LifecycleHandler preStop:LifecycleHandler",
    "LifecycleHandler": "exec:ExecAction httpGet:HTTPGetAction sleep:SleepAction tcpSocket:TCPSocketAction",
    "LinuxContainerUser": "gid supplementalGroups uid",
    "LoadBalancerIngress": "hostname ip ipMode ports:[]PortStatus",
    "LoadBalancerStatus": "ingress:[]LoadBalancerIngress",
    "LocalObjectReference": "name",
    "ManagedFieldsEntry": "apiVersion fieldsType fieldsV1 manager operation subresource time",
    "NFSVolumeSource": "path readOnly server",
    "Namespace": "apiVersion kind metadata:ObjectMeta spec:NamespaceSpec status:NamespaceStatus",
    "NamespaceCondition": "lastTransitionTime message reason status type",
    "NamespaceSpec": "finalizers",
    "NamespaceStatus": "conditions:[]NamespaceCondition phase",
    "Node": "apiVersion kind metadata:ObjectMeta spec:NodeSpec status:NodeStatus",
    "NodeAddress": "address type",
    "NodeAffinity": (
        "preferredDuringSchedulingIgnoredDuringExecution:[]PreferredSchedulingTerm "
        "requiredDuringSchedulingIgnoredDuringExecution:NodeSelector"
    ),
    "NodeCondition": "lastHeartbeatTime lastTransitionTime message reason status type",
    "NodeConfigSource": "configMap:ConfigMapNodeConfigSource",
    "NodeConfigStatus": "active:NodeConfigSource assigned:NodeConfigSource error lastKnownGood:NodeConfigSource",
    "NodeDaemonEndpoints": "kubeletEndpoint:DaemonEndpoint",
    "NodeFeatures": "supplementalGroupsPolicy",
    "NodeRuntimeHandler": "features:NodeRuntimeHandlerFeatures name",
    "NodeRuntimeHandlerFeatures": "recursiveReadOnlyMounts userNamespaces",
    "NodeSelector": "nodeSelectorTerms:[]NodeSelectorTerm",
    "NodeSelectorRequirement": "key operator values",
    "NodeSelectorTerm": "matchExpressions:[]NodeSelectorRequirement matchFields:[]NodeSelectorRequirement",
    "NodeSpec": ("configSource:NodeConfigSource externalID podCIDR podCIDRs providerID taints:[]Taint unschedulable"),
    "NodeStatus": (
        "addresses:[]NodeAddress allocatable capacity conditions:[]NodeCondition config:NodeConfigStatus "
        "daemonEndpoints:NodeDaemonEndpoints features:NodeFeatures images:[]ContainerImage "
        "nodeInfo:NodeSystemInfo phase runtimeHandlers:[]NodeRuntimeHandler volumesAttached:[]AttachedVolume "
        "volumesInUse"
    ),
    "NodeSystemInfo": (
        "architecture bootID containerRuntimeVersion kernelVersion kubeProxyVersion kubeletVersion machineID "
        "operatingSystem osImage systemUUID"
    ),
    "ObjectFieldSelector": "apiVersion fieldPath",
    "ObjectMeta": (
        "annotations creationTimestamp deletionGracePeriodSeconds deletionTimestamp finalizers "
        "generateName generation labels managedFields:[]ManagedFieldsEntry name namespace "
        "ownerReferences:[]OwnerReference resourceVersion selfLink uid"
    ),
    "ObjectReference": "apiVersion fieldPath kind name namespace resourceVersion uid",
    "OwnerReference": "apiVersion blockOwnerDeletion controller kind name uid",
    "PersistentVolumeClaimSpec": (
        "accessModes dataSource:TypedLocalObjectReference dataSourceRef:TypedObjectReference "
        "resources:VolumeResourceRequirements selector:LabelSelector storageClassName "
        "volumeAttributesClassName volumeMode volumeName"
    ),
    "PersistentVolumeClaimTemplate": "metadata:ObjectMeta spec:PersistentVolumeClaimSpec",
    "PersistentVolumeClaimVolumeSource": "claimName readOnly",
    "PhotonPersistentDiskVolumeSource": "fsType pdID",
    "Pod": "apiVersion kind metadata:ObjectMeta spec:PodSpec status:PodStatus",
    "PodAffinity": (
        "preferredDuringSchedulingIgnoredDuringExecution:[]WeightedPodAffinityTerm "
        "requiredDuringSchedulingIgnoredDuringExecution:[]PodAffinityTerm"
    ),
    "PodAffinityTerm": (
        "labelSelector:LabelSelector matchLabelKeys mismatchLabelKeys namespaceSelector:LabelSelector "
        "namespaces topologyKey"
    ),
    "PodAntiAffinity": (
        "preferredDuringSchedulingIgnoredDuringExecution:[]WeightedPodAffinityTerm "
        "requiredDuringSchedulingIgnoredDuringExecution:[]PodAffinityTerm"
    ),
    "PodCondition": "lastProbeTime lastTransitionTime message reason status type",
    "PodDNSConfig": "nameservers options:[]PodDNSConfigOption searches",
    "PodDNSConfigOption": "name value",
    "PodIP": "ip",
    "PodOS": "name",
    "PodReadinessGate": "conditionType",
    "PodResourceClaim": "name resourceClaimName resourceClaimTemplateName",
    "PodResourceClaimStatus": "name resourceClaimName",
    "PodSchedulingGate": "name",
    "PodSecurityContext": (
        "appArmorProfile:AppArmorProfile fsGroup fsGroupChangePolicy runAsGroup runAsNonRoot runAsUser "
        "seLinuxChangePolicy seLinuxOptions:SELinuxOptions seccompProfile:SeccompProfile "
        "supplementalGroups supplementalGroupsPolicy sysctls:[]Sysctl "
        "windowsOptions:WindowsSecurityContextOptions"
    ),
    "PodSpec": (
        "activeDeadlineSeconds affinity:Affinity automountServiceAccountToken containers:[]Container "
        "dnsConfig:PodDNSConfig dnsPolicy enableServiceLinks ephemeralContainers:[]EphemeralContainer "
        "hostAliases:[]HostAlias hostIPC hostNetwork hostPID hostUsers hostname "
        "imagePullSecrets:[]LocalObjectReference initContainers:[]Container nodeName nodeSelector "
        "os:PodOS overhead preemptionPolicy priority priorityClassName readinessGates:[]PodReadinessGate "
        "resourceClaims:[]PodResourceClaim resources:ResourceRequirements restartPolicy runtimeClassName "
        "schedulerName schedulingGates:[]PodSchedulingGate securityContext:PodSecurityContext "
        "serviceAccount serviceAccountName setHostnameAsFQDN shareProcessNamespace subdomain "
        "terminationGracePeriodSeconds tolerations:[]Toleration "
        "topologySpreadConstraints:[]TopologySpreadConstraint volumes:[]Volume"
    ),
    "PodStatus": (
        "conditions:[]PodCondition containerStatuses:[]ContainerStatus "
        "ephemeralContainerStatuses:[]ContainerStatus hostIP hostIPs:[]HostIP "
        "initContainerStatuses:[]ContainerStatus message nominatedNodeName phase podIP podIPs:[]PodIP "
        "qosClass reason resize resourceClaimStatuses:[]PodResourceClaimStatus startTime"
    ),
    "PodTemplateSpec": "metadata:ObjectMeta spec:PodSpec",
    "PortStatus": "error port protocol",
    "PortworxVolumeSource": "fsType readOnly volumeID",
    "PreferredSchedulingTerm": "preference:NodeSelectorTerm weight",
    "Probe": (
        "exec:ExecAction failureThreshold grpc:GRPCAction httpGet:HTTPGetAction initialDelaySeconds "
        "periodSeconds successThreshold tcpSocket:TCPSocketAction terminationGracePeriodSeconds "
        "timeoutSeconds"
    ),
    "ProjectedVolumeSource": "defaultMode sources:[]VolumeProjection",
    "QuobyteVolumeSource": "group readOnly registry tenant user volume",
    "RBDVolumeSource": "fsType image keyring monitors pool readOnly secretRef:LocalObjectReference user",
    "ReplicaSet": "apiVersion kind metadata:ObjectMeta spec:ReplicaSetSpec status:ReplicaSetStatus",
    "ReplicaSetCondition": "lastTransitionTime message reason status type",
    "ReplicaSetSpec": "minReadySeconds replicas selector:LabelSelector template:PodTemplateSpec",
    "ReplicaSetStatus": (
        "availableReplicas conditions:[]ReplicaSetCondition fullyLabeledReplicas observedGeneration "
        "readyReplicas replicas"
    ),
    "ResourceClaim": "name request",
    "ResourceFieldSelector": "containerName divisor resource",
    "ResourceHealth": "health resourceID",
    "ResourceRequirements": "claims:[]ResourceClaim limits requests",
    "ResourceStatus": "name resources:[]ResourceHealth",
    "RollingUpdateDeployment": "maxSurge maxUnavailable",
    "SELinuxOptions": "level role type user",
    "ScaleIOVolumeSource": (
        "fsType gateway protectionDomain readOnly secretRef:LocalObjectReference sslEnabled storageMode "
        "storagePool system volumeName"
    ),
    "SeccompProfile": "localhostProfile type",
    "Secret": "apiVersion data immutable kind metadata:ObjectMeta stringData type",
    "SecretEnvSource": "name optional",
    "SecretKeySelector": "key name optional",
    "SecretProjection": "items:[]KeyToPath name optional",
    "SecretVolumeSource": "defaultMode items:[]KeyToPath optional secretName",
    "SecurityContext": (
        "allowPrivilegeEscalation appArmorProfile:AppArmorProfile capabilities:Capabilities privileged "
        "procMount readOnlyRootFilesystem runAsGroup runAsNonRoot runAsUser seLinuxOptions:SELinuxOptions "
        "seccompProfile:SeccompProfile windowsOptions:WindowsSecurityContextOptions"
    ),
    "Service": "apiVersion kind metadata:ObjectMeta spec:ServiceSpec status:ServiceStatus",
    "ServiceAccountTokenProjection": "audience expirationSeconds path",
    "ServicePort": "appProtocol name nodePort port protocol targetPort",
    "ServiceSpec": (
        "allocateLoadBalancerNodePorts clusterIP clusterIPs externalIPs externalName "
        "externalTrafficPolicy healthCheckNodePort internalTrafficPolicy ipFamilies ipFamilyPolicy "
        "loadBalancerClass loadBalancerIP loadBalancerSourceRanges ports:[]ServicePort "
        "publishNotReadyAddresses selector sessionAffinity sessionAffinityConfig:SessionAffinityConfig "
        "trafficDistribution type"
    ),
    "ServiceStatus": "conditions:[]Condition loadBalancer:LoadBalancerStatus",
    "SessionAffinityConfig": "clientIP:ClientIPConfig",
    "SleepAction": "seconds",
    "StorageOSVolumeSource": "fsType readOnly secretRef:LocalObjectReference volumeName volumeNamespace",
    "Sysctl": "name value",
    "TCPSocketAction": "host port",
    "Taint": "effect key timeAdded value",
    "Toleration": "effect key operator tolerationSeconds value",
    "TopologySpreadConstraint": (
        "labelSelector:LabelSelector matchLabelKeys maxSkew minDomains nodeAffinityPolicy "
        "nodeTaintsPolicy topologyKey whenUnsatisfiable"
    ),
    "TypedLocalObjectReference": "apiGroup kind name",
    "TypedObjectReference": "apiGroup kind name namespace",
    "Volume": (
        "awsElasticBlockStore:AWSElasticBlockStoreVolumeSource azureDisk:AzureDiskVolumeSource "
        "azureFile:AzureFileVolumeSource cephfs:CephFSVolumeSource cinder:CinderVolumeSource "
        "configMap:ConfigMapVolumeSource csi:CSIVolumeSource downwardAPI:DownwardAPIVolumeSource "
        "emptyDir:EmptyDirVolumeSource ephemeral:EphemeralVolumeSource fc:FCVolumeSource "
        "flexVolume:FlexVolumeSource flocker:FlockerVolumeSource "
        "gcePersistentDisk:GCEPersistentDiskVolumeSource gitRepo:GitRepoVolumeSource "
        "glusterfs:GlusterfsVolumeSource hostPath:HostPathVolumeSource image:ImageVolumeSource "
        "iscsi:ISCSIVolumeSource name nfs:NFSVolumeSource "
        "persistentVolumeClaim:PersistentVolumeClaimVolumeSource "
        "photonPersistentDisk:PhotonPersistentDiskVolumeSource portworxVolume:PortworxVolumeSource "
        "projected:ProjectedVolumeSource quobyte:QuobyteVolumeSource rbd:RBDVolumeSource "
        "scaleIO:ScaleIOVolumeSource secret:SecretVolumeSource storageos:StorageOSVolumeSource "
        "vsphereVolume:VsphereVirtualDiskVolumeSource"
    ),
    "VolumeDevice": "devicePath name",
    "VolumeMount": "mountPath mountPropagation name readOnly recursiveReadOnly subPath subPathExpr",
    "VolumeMountStatus": "mountPath name readOnly recursiveReadOnly",
    "VolumeProjection": (
        "clusterTrustBundle:ClusterTrustBundleProjection configMap:ConfigMapProjection "
        "downwardAPI:DownwardAPIProjection secret:SecretProjection "
        "serviceAccountToken:ServiceAccountTokenProjection"
    ),
    "VolumeResourceRequirements": "limits requests",
    "VsphereVirtualDiskVolumeSource": "fsType storagePolicyID storagePolicyName volumePath",
    "WeightedPodAffinityTerm": "podAffinityTerm:PodAffinityTerm weight",
    "WindowsSecurityContextOptions": "gmsaCredentialSpec gmsaCredentialSpecName hostProcess runAsUserName",
}
"""Every field of every Kubernetes v1.32 type that the built-in kinds served here reach, by type name (the last
part of its OpenAPI name; unique among these): ``name`` (a value: scalar, string map, quantity, free-form),
``name:Type`` (an object), ``name:[]Type`` (a list of objects), ``name:{}Type`` (a map of objects).

Unlike the documented schemas above (a subset, open to unlisted fields), this is complete: generated from the
Kubernetes v1.32 OpenAPI document, and ``tests/unit/test_coreschemas_fields.py`` checks it against that document.
The API server drops (``fieldValidation``) what it does not list, as decoding into Go structs does."""

FieldTable = dict[str, dict[str, tuple[str, str] | None]]
"""Type name → field name → ``None`` (a value) or ``(shape, type name)``, shape ``""`` | ``"[]"`` | ``"{}"``."""


@lru_cache(maxsize=1)
def field_table() -> FieldTable:
    """:data:`_FIELDS` parsed."""
    out: FieldTable = {}
    for type_name, text in _FIELDS.items():
        fields: dict[str, tuple[str, str] | None] = {}
        for token in text.split():
            name, _, target = token.partition(":")
            shape = target[:2] if target[:2] in ("[]", "{}") else ""
            fields[name] = (shape, target[len(shape) :]) if target else None
        out[type_name] = fields
    return out


def field_root(group: str, version: str, kind: str) -> str | None:
    """The :func:`field_table` type of a built-in kind (``Pod``), or ``None`` (dockyard's kinds, CRDs)."""
    if (group, version) in BUILT_IN_GROUP_VERSIONS and kind in field_table():
        return kind
    return None
