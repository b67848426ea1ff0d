"""``dockyard manifests``: what a Kubernetes cluster needs to run dockyard, printed as YAML or JSON.

- ``dockyard manifests crds``: the CustomResourceDefinitions of dockyard's kinds
  (:mod:`dockyard.apiserver.crds`, generated from the models that validate on the embedded server).

YAML is a stream of documents (``kubectl apply -f -``); JSON is one ``v1`` ``List``, as ``kubectl get -o json``
prints several objects.
"""

from __future__ import annotations

import json
from typing import Any

import typer
import yaml

from dockyard.apiserver import crds as crds_mod

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
