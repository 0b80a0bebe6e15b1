"""``skysolve serve``: a local plate-solving service with astrometry.net's web API and a web page.

Programs that already speak nova.astrometry.net's web API (astroquery's
``AstrometryNet``, capture and mount programs, observatory scripts) solve against
this server unchanged when pointed at it; people drop an image on its page at
``/``. Accepted jobs live in an embedded SQLite database with their files in the
data directory, so that a server killed outright and started again finishes every
job it had accepted (:mod:`.store`); N worker processes solve them
(:mod:`.queue`, on :class:`skysolve.batch.LocalPool`).

Modules
-------
``store``
    The job queue in SQLite and each job's folder in the data directory.
``worker``
    One job in a worker process: sources, solve, solve-field's files, the
    figures and overlay the page draws, a preview image.
``queue``
    The workers: dispatch, the per-job time limit, restart after a worker dies.
``nova``
    astrometry.net's web API: request-json → skysolve hints, and its JSON shapes.
``app``
    The Starlette application: routes, the upload limit, JSON errors.
``static/``
    The web page (HTML, JavaScript, CSS; nothing from outside).

Needs the optional extra ``skysolve[server]`` (Starlette, uvicorn,
python-multipart); only :mod:`.app` and :func:`serve` import them.

May import: ``errors``, ``_args``, ``_files``, ``geometry``, ``io``, ``batch``, ``solver``,
``database``, ``defaultdb``, ``fields``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXTRA_MODULES", "create_app", "missing_extra", "serve"]

#: What ``skysolve[server]`` installs: import name -> distribution name.
EXTRA_MODULES = {"starlette": "starlette", "uvicorn": "uvicorn",
                 "python_multipart": "python-multipart"}


def missing_extra() -> list[str]:
    """The distributions of ``skysolve[server]`` that are not installed."""
    import importlib.util

    return [dist for mod, dist in EXTRA_MODULES.items()
            if importlib.util.find_spec(mod) is None]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """The ASGI application (see :func:`skysolve.server.app.create_app`)."""
    from .app import create_app as _create

    return _create(*args, **kwargs)


def serve(config: Any, on_ready: Any = None) -> None:
    """Run the service until interrupted (see :class:`skysolve.server.app.ServerConfig`).

    The data directory is taken, its job store opened, the port bound and the database
    loaded first, so that a port in use, a damaged store or a missing or bad database
    file is this call's exception (``FileNotFoundError``, a ``FileFormatError``)
    rather than a failed start of the web server (a traceback on its console and
    ``SystemExit(3)``); the service's start then finds the database loaded
    (:func:`skysolve.fields.load_database` keeps it). ``on_ready()``, if given, is called
    once they are done, before the server answers requests.
    """
    import uvicorn

    from ..errors import SkysolveError
    from ..fields import load_database
    from .app import create_app as _create
    from .store import JobStore, exclusive

    with exclusive(config.data_dir), _listen(config.host, config.port) as sock:
        JobStore(config.data_dir).close()  # (a store that cannot be opened: said here)
        load_database(config.database)
        if on_ready is not None:
            on_ready()
        server = uvicorn.Server(uvicorn.Config(_create(config), log_level="warning",
                                               timeout_graceful_shutdown=5))
        server.run(sockets=[sock])
        if not server.started:  # (as uvicorn.run's exit status 3)
            raise SkysolveError("the service did not start (its error is above)")


def _listen(host: str, port: int) -> Any:
    """The server's listening socket, bound here: a port in use or an address that is not
    this computer's is an ``OSError`` naming them (uvicorn, binding it itself, logs the
    error and exits the process with status 3, after the service's start)."""
    import contextlib
    import socket

    # (the address family as uvicorn chooses it: "localhost" is 127.0.0.1, not ::1)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: "
                                 f"{exc.strerror or exc}") from None
    return contextlib.closing(sock)
