"""``dockyard manifests``: what a Kubernetes cluster needs to run dockyard, printed as YAML or JSON.

- ``dockyard manifests crds``: the CustomResourceDefinitions of dockyard's kinds
  (:mod:`dockyard.apiserver.crds`, generated from the models that validate on the embedded server).
- ``dockyard manifests kubernetes``: everything else (:mod:`dockyard.cli.cluster`): the namespace, service
  accounts, RBAC, the controllers Deployment and the agent DaemonSet.
- ``dockyard manifests kustomize DIR``: both, written as a kustomize base (``deploy/kubernetes/`` is one).

YAML is a stream of documents (``kubectl apply -f -``); JSON is one ``v1`` ``List``, as ``kubectl get -o json``
prints several objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
import yaml

from dockyard.apiserver import crds as crds_mod
from dockyard.cli import cluster

app = typer.Typer(
    name="manifests", help="Print the manifests a Kubernetes cluster needs to run dockyard.", no_args_is_help=True
)

FORMATS = ("yaml", "json")


def render(objects: list[dict[str, Any]], output: str) -> str:
    """``objects`` as a YAML stream (``---`` between documents) or a JSON ``List``.

    Raises:
        ValueError: ``output`` is neither ``yaml`` nor ``json``.
    """
    if output == "yaml":
        return "".join("---\n" + yaml.safe_dump(o, sort_keys=False, width=120) for o in objects)
    if output == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n"
    raise ValueError(f"--output {output!r}: choose yaml or json")


def _emit(objects: list[dict[str, Any]], output: str) -> None:
    try:
        text = render(objects, output)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(text, nl=False)


@app.command("crds")
def crds(output: str = typer.Option("yaml", "--output", "-o", help="yaml or json")) -> None:
    """The apiextensions.k8s.io/v1 CustomResourceDefinitions of BuildConfig, Build, Push, Image and ImageDeploy.

    Install them with `dockyard manifests crds | kubectl apply -f -`.
    """
    _emit(crds_mod.all_crds(), output)


ImageOpt = typer.Option(cluster.DEFAULT_IMAGE, "--image", help="the dockyard image (deploy/Containerfile)")
EngineOpt = typer.Option(
    "docker",
    "--engine",
    help="the nodes' container engine: docker (/var/run/docker.sock) or podman "
    "(/run/podman/podman.sock); the agent mounts its socket",
)
ReplicasOpt = typer.Option(2, "--replicas", help="controller replicas (leader election: one acts)")
NamespaceOpt = typer.Option(cluster.NAMESPACE, "--namespace", "-n", help="namespace of dockyard's workloads")


def _options(image: str, engine: str, replicas: int, namespace: str) -> cluster.Options:
    opts = cluster.Options(image=image, engine=engine, replicas=replicas, namespace=namespace)
    try:
        opts.check()
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    return opts


@app.command("kubernetes")
def kubernetes(
    output: str = typer.Option("yaml", "--output", "-o", help="yaml or json"),
    image: str = ImageOpt,
    engine: str = EngineOpt,
    replicas: int = ReplicasOpt,
    namespace: str = NamespaceOpt,
) -> None:
    """The namespace, ServiceAccounts, least-privilege RBAC, the controllers Deployment and the agent DaemonSet.

    Install with `dockyard manifests crds | kubectl apply -f -` then `dockyard manifests kubernetes | kubectl apply -f -`
    (or `kubectl apply -k deploy/kubernetes`).
    """
    _emit(cluster.objects(_options(image, engine, replicas, namespace)), output)


@app.command("kustomize")
def kustomize(
    directory: Path = typer.Argument(..., help="directory to write the kustomize base into (created if missing)"),
    image: str = ImageOpt,
    engine: str = EngineOpt,
    replicas: int = ReplicasOpt,
    namespace: str = NamespaceOpt,
) -> None:
    """Write the CRDs and `manifests kubernetes` as a kustomize base (`kubectl apply -k DIR`)."""
    files = cluster.kustomize_files(crds_mod.all_crds(), _options(image, engine, replicas, namespace))
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    typer.echo(f"wrote {', '.join(files)} to {directory}")
