"""``python -m dockyard.apiserver``: only the API server, over a data dir.

Usage::

    python -m dockyard.apiserver --data-dir DIR [--port 6443] [--host 127.0.0.1]
                                 [--node-name NAME] [--insecure-http]
                                 [--pod-security privileged|baseline|restricted]
                                 [--max-context-bytes N] [--max-context-members N]
                                 [--install-dockyard-crds]

The data dir holds what ``dockyard up`` keeps there for its API server:
``dockyard.db`` (SQLite), ``pki/apiserver.{crt,key}`` and ``pki/encryption-config.json``
(made on first start),
``tokens.json`` and one kubeconfig per identity (``kubeconfig`` admin,
``kubeconfig-view``, ``kubeconfig-node``). No controllers, no node agent.
Like a bare kube-apiserver it serves the built-in kinds and the kinds of the
CustomResourceDefinitions in its store; ``--install-dockyard-crds`` installs
dockyard's (as ``dockyard up`` does), else apply ``dockyard manifests crds``.
Prints ``serving URL`` once it accepts connections; SIGTERM or SIGINT
stops it (exit 0). Useful on its own and for the crash test, which kills
it with SIGKILL.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from pathlib import Path

from dockyard.api import archive, podsecurity
from dockyard.apiserver import app as app_module
from dockyard.apiserver import auth, inflight, serve, tls
from dockyard.client import connection
from dockyard.storage import datadir, encryption, sqlite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dockyard.apiserver", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--node-name", default=socket.gethostname())
    parser.add_argument(
        "--insecure-http", action="store_true", help="plain HTTP instead of TLS (loopback addresses only)"
    )
    parser.add_argument(
        "--max-long-running",
        type=int,
        default=inflight.DEFAULT_TOTAL,
        help="watches and followed logs at once, in total (429 past it)",
    )
    parser.add_argument(
        "--max-long-running-per-user",
        type=int,
        default=inflight.DEFAULT_PER_USER,
        help="watches and followed logs at once, per identity",
    )
    parser.add_argument(
        "--max-log-bytes",
        type=int,
        default=sqlite.DEFAULT_MAX_LOG_BYTES,
        help="each log keeps its last this many bytes",
    )
    parser.add_argument(
        "--pod-security",
        choices=podsecurity.LEVELS,
        default=podsecurity.DEFAULT_LEVEL,
        help="Pod Security level of namespaces without a pod-security.kubernetes.io/enforce label",
    )
    parser.add_argument(
        "--max-context-bytes",
        type=int,
        default=archive.DEFAULT_MAX_BYTES,
        help="largest binary build context, uploaded and uncompressed, in bytes (default 2 GiB)",
    )
    parser.add_argument(
        "--max-context-members",
        type=int,
        default=archive.DEFAULT_MAX_MEMBERS,
        help="most members of a binary build context (default 100000)",
    )
    parser.add_argument(
        "--install-dockyard-crds",
        action="store_true",
        help="install (or upgrade) dockyard's CustomResourceDefinitions at start, as dockyard up does",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.insecure_http and not serve.is_loopback(args.host):
        print(
            f"error: plain HTTP is served only on loopback, not on {args.host!r}; drop --insecure-http", file=sys.stderr
        )
        return 2
    data_dir: Path = args.data_dir
    try:
        datadir.lock(data_dir)  # held until the process ends: its descriptor is never closed
    except datadir.InUse as err:
        print(f"error: {err}: stop it, or pass another --data-dir", file=sys.stderr)
        return 3
    tokens = auth.load_tokens(datadir.prepare(data_dir) / "tokens.json")
    try:
        store = datadir.open_store(data_dir, max_log_bytes=args.max_log_bytes)
    except encryption.ConfigError as err:
        print(f"error: cannot use the encryption configuration: {err}", file=sys.stderr)
        return 2
    app = app_module.create_app(
        store=store,
        tokens=auth.users_by_token(tokens, node_name=args.node_name),
        long_running=inflight.Limits(total=args.max_long_running, per_user=args.max_long_running_per_user),
        pod_security=args.pod_security,
        max_context_bytes=args.max_context_bytes,
        max_context_members=args.max_context_members,
        serve_dockyard_crds=args.install_dockyard_crds,
    )
    ca, cert, key = (None, None, None) if args.insecure_http else tls.ensure_serving_certificate(data_dir / "pki")
    server = serve.Server(
        serve.config(app, host=args.host, port=args.port, cert=cert, key=key, insecure_http=args.insecure_http)
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        thread = serve.start_thread(server)
    except RuntimeError as err:
        print(f"error: {err} on {args.host}:{args.port}", file=sys.stderr)
        store.close()
        return 3
    url = f"{'http' if args.insecure_http else 'https'}://{args.host}:{args.port}"
    for ident, fname in (("admin", "kubeconfig"), ("node", "kubeconfig-node"), ("view", "kubeconfig-view")):
        connection.write_kubeconfig(data_dir / fname, server=url, token=tokens[ident], user=ident, ca_file=ca)
    print(f"serving {url}", flush=True)
    while not stop.wait(0.5) and thread.is_alive():
        pass
    serve.stop_thread(server, thread)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
