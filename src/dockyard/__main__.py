"""``python -m dockyard`` is the ``dockyard`` command."""

from dockyard.cli.main import app

app()
