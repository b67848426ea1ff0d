"""Engine layer: the container engine (Docker Engine or Podman) through docker-py.

The only package of ``dockyard.agent`` that imports docker-py (``.importlinter`` checks it).

docker-py is the raw Engine API layer; these modules are the small domain
layer above it:

- :mod:`.connect` — find or start an engine → :class:`~.connect.Engine`
- :mod:`.containers` — list, inspect, create, start, kill, stop, remove containers; pull images (the pod
  runtime's only way to the engine)
- :mod:`.images` — build, push, commit, tag (streaming logs, failures as errors)
- :mod:`.errors` — ``EngineError`` and its subclasses
"""
