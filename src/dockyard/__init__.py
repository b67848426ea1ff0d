"""dockyard: a declarative control plane for the container image lifecycle.

The Kubernetes API is its one interface; see DESIGN.md for the architecture.
"""

__version__ = "0.1.0"
