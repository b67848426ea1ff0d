"""Storage: the SQLite object store with revisions, optimistic concurrency and a watch log.

See :mod:`dockyard.storage.sqlite`. Imports only :mod:`dockyard.api`.
"""
