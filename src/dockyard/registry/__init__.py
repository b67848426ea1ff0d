"""OCI distribution registry access.

- :mod:`.reference` — parse/print image references (pure)
- :mod:`.client` — manifest digests and tag lists over HTTP, with auth challenges
- :mod:`.digest` — check, compute and compare content digests (pure)
- :mod:`.server` — run a local ``docker-registry`` on loopback
- :mod:`.errors` — ``RegistryError`` and its subclasses
"""
