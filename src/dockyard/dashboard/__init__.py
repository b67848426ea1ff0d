"""The web dashboard served at ``/dashboard/`` on the API server's listener.

Server-rendered Jinja2 pages with htmx (vendored under ``static/``, nothing fetched at run time). The
dashboard holds no authority of its own: every fragment it renders and every button it serves is an
in-process request to the real Kubernetes API (``/api/...``, ``/apis/...``) carrying the signed-in user's
bearer token, so the API's authentication and authorization (:mod:`dockyard.apiserver.authz`) decide what
each user sees and may do. The browser keeps the token in ``sessionStorage`` (the tab's session only) and
sends it as an ``Authorization`` header on every request (htmx and ``fetch``): no cookie, so no ambient
credential and no cross-site request forgery surface. Live updates come from the API's own watch streams,
read by ``static/dashboard.js``, which re-fetches the affected fragment.

:mod:`.routes` is the entry point (``routes.mount(app, can=...)``); :mod:`.views` the pure formatting.
"""
