"""Kubernetes API access for controllers, the node agent and the CLI.

Everything above the API server reaches state only through here, so the same
code runs against ``dockyard up`` and against a real Kubernetes cluster.
"""
