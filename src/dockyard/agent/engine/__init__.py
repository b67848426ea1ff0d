"""Engine layer: the container engine (Docker Engine or Podman) through docker-py.

docker-py is the raw Engine API layer; these modules are the small domain
layer above it:

- :mod:`.connect` — find or start an engine → :class:`~.connect.Engine`
- :mod:`.images` — build, push, commit (streaming logs, failures as errors)
- :mod:`.errors` — ``EngineError`` and its subclasses
"""
