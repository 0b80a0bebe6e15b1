"""The Starlette application of ``skysolve serve``: nova's routes, the web page, the limits.

Routes (``ID`` is a decimal job number; a submission and its job share it; the
``/api/submissions`` and ``/api/jobs`` routes answer POST as GET, as nova's do):

=====================================  ==============================================
``POST /api/login``                    request-json ``{"apikey": K}`` → a session
``POST /api/upload``                   multipart: request-json + ``file`` → ``subid``
                                       (an image, or an x/y list: a FITS table of
                                       ``X``, ``Y``; without a file: a source list, as
                                       below)
``POST /api/url_upload``               a source list (``x``, ``y``, ``image_width``,
                                       ``image_height``); a ``url`` is refused
``GET /api/submissions/ID``            nova's submission (its ``jobs``)
``GET /api/jobs/ID``                   ``{"status": "solving"|"success"|"failure"}``
``GET /api/jobs/ID/calibration``       ra, dec, radius, pixscale, orientation (a raster
                                       image's as shown), parity, width/height_arcsec
``GET /api/jobs/ID/info``              status, calibration, file name, tags
``GET /api/jobs/ID/result``            skysolve's summary: figures, overlay, timings
``GET /api/recent``                    the latest jobs
``GET /api/health``                    ``{"status": "ok", "jobs": {state: count}}``
``GET /wcs_file/ID`` ...               ``.wcs``, ``.new`` (``new_fits_file``),
                                       ``.corr``, ``.rdls``, ``.axy``, ``json_file``,
                                       ``preview`` (PNG)
``GET /kml_file/ID``                   a solved job's preview on the sky, a KMZ for
                                       Google Earth's sky mode (:mod:`skysolve.io.kml`)
``GET /``                              the web page (``static/``)
=====================================  ==============================================

Safety: a body over ``max_upload_mb`` is refused (413) before it is read whole; the
image format is sniffed from the bytes and the image decoded before the job is
accepted; files are stored and served under names the server chooses, reached
only through a job number; when ``max_queue`` jobs are waiting or running an
upload gets 503 with ``Retry-After``; CORS headers are sent only for
``cors_origins``; every refused request is a 4xx with a JSON body
``{"status": "error", "errormessage": ...}``, an unexpected error a 500 with
the same shape and no traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import nova
from .nova import BadRequest
from .queue import JobQueue
from .store import JobStore, QueueFull
from .worker import FILES

__all__ = ["ServerConfig", "content_disposition", "create_app"]

STATIC = Path(__file__).parent / "static"
#: Download routes: route name -> (file, media type, download suffix).
DOWNLOADS = {"wcs_file": ("application/fits", ".wcs"), "new_fits_file": ("application/fits",
             ".new"), "corr_file": ("application/fits", ".corr"),
             "rdls_file": ("application/fits", ".rdls"), "axy_file": ("application/fits", ".axy"),
             "json_file": ("application/json", ".json"), "preview": ("image/png", ".png")}


@dataclass
class ServerConfig:
    """How ``skysolve serve`` runs (the command line's options)."""

    host: str = "127.0.0.1"
    port: int = 8080
    database: str | None = None
    workers: int = 1
    data_dir: str = "skysolve-data"
    api_key: str | None = None
    max_upload_mb: float = 100.0
    max_pixels: int = 100_000_000
    max_queue: int = 1000
    time_limit_s: float = 30.0
    cors_origins: list[str] = field(default_factory=list)
    #: Days a finished job (its row, upload and files) is kept; None keeps it for good.
    keep_days: float | None = None


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": "error", "errormessage": message}, status_code=status,
                        headers=headers)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413, whether its
    ``Content-Length`` says so or the bytes run over while being read."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = _error(f"the request body is over the limit of {self.limit} bytes", 413)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await too_large(scope, receive, send)
            return
        seen, started = 0, False

        async def counting() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        async def watching(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, watching)
        except _TooLarge:
            if not started:
                await too_large(scope, receive, send)


class Service:
    """The running service: its store, its queue, its configuration."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store: JobStore | None = None
        self.queue: JobQueue | None = None

    def start(self) -> None:
        from ..batch import DatabaseHandle
        from ..fields import load_database

        self.store = JobStore(self.config.data_dir)
        handle = DatabaseHandle(load_database(self.config.database))
        keep = self.config.keep_days
        self.queue = JobQueue(self.store, handle, self.config.workers, self.config.time_limit_s,
                              keep_s=None if keep is None else keep * 86400.0)
        self.queue.start()

    def stop(self) -> None:
        if self.queue is not None:
            self.queue.stop()
        if self.store is not None:
            self.store.close()

    # ------------------------------------------------------------ helpers

    def check_session(self, settings: dict[str, Any]) -> None:
        """With an API key, uploads need a session from a login with it."""
        if self.config.api_key and not self.store.has_session(settings.get("session")):
            raise BadRequest("no valid session: log in with the server's API key first", 403)

    def check_room(self) -> None:
        """Refuse an upload before reading its body when the queue is full (checked again,
        exactly, when the job is reserved: :meth:`JobStore.reserve`)."""
        if self.store.active_count() >= self.config.max_queue:
            raise QueueFull

    def row(self, job_id: int) -> Any:
        row = self.store.get(job_id) if 0 < job_id < 2**63 else None  # SQLite's integers
        if row is None:
            raise BadRequest(f"no job {job_id}", 404)
        return row

    def summary(self, row: Any) -> dict[str, Any]:
        return json.loads(row["result"]) if row["result"] else {}


def _copy_upload(upload: UploadFile, path: Path) -> str:
    """Copy the upload's bytes to ``path``; returns their SHA-1."""
    from .._files import atomic_path

    digest = hashlib.sha1()
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        upload.file.seek(0)
        for chunk in iter(lambda: upload.file.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _store_upload(upload: UploadFile, folder: Path, max_pixels: int | None = None
                  ) -> tuple[str, str]:
    """Copy the upload into the job's folder under a name from its sniffed format; check
    that it decodes, with at most ``max_pixels`` pixel values (refused from its header,
    before decoding: a compressed file of half a megabyte may decode to gigabytes).
    Returns (file name, SHA-1)."""
    from ..errors import SkysolveError
    from ..io.images import TooManyPixelsError, _sniff, pixel_limit, read_image

    raw = folder / "upload.bin"
    digest = _copy_upload(upload, raw)
    try:
        kind = _sniff(raw)
        name = f"input.{kind.lower()}"
        raw.rename(folder / name)
        with pixel_limit(max_pixels):
            read_image(folder / name)
    except TooManyPixelsError as exc:
        # (--max-pixels sets the service's own limit, not the one Pillow refuses from)
        pillow = type(exc.__cause__).__name__ == "DecompressionBombError"
        raise BadRequest(f"the upload is too large to solve here: {_plain(exc, folder)}"
                         + ("" if pillow else " (skysolve serve --max-pixels)"), 413) from None
    except (SkysolveError, OSError, ValueError) as exc:
        raise BadRequest(f"the upload is not a readable FITS, PNG, JPEG, TIFF, BMP, GIF, WebP "
                         f"or PNM image, nor an x/y list (a FITS table of X and Y): "
                         f"{_plain(exc, folder)[:300]}", 415) from None
    return name, digest


def _uploaded_sources(upload: UploadFile, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The source list of an upload that is an x/y list, as nova takes them: a FITS file
    with no image in its primary HDU whose first extension is a table with ``X`` and
    ``Y`` columns (solve-field's ``.axy`` and ``.xyls`` files); None for any other file
    (an image, or what is refused as one)."""
    from astropy.io import fits

    from ..errors import SkysolveError
    from ..io.astrometry_files import is_xylist, read_xylist

    f = upload.file
    try:
        f.seek(0)
        if f.read(9) != b"SIMPLE  =":
            return None
        f.seek(0)
        try:  # (the header only: an image's pixels are not read here)
            image = int(fits.Header.fromfile(f).get("NAXIS", 0)) > 0
        except (OSError, ValueError, TypeError):
            return None  # (refused as an image, with its reason)
        if image:
            return None
        f.seek(0)
        data = f.read()  # (each read from a copy: astropy closes a file object it reads)
        if not is_xylist(io.BytesIO(data)):
            return None
        try:
            xy, _, header, _ = read_xylist(io.BytesIO(data))
        except (OSError, ValueError, TypeError, SkysolveError) as exc:
            raise BadRequest(f"the upload is a FITS table that is no readable x/y list: "
                             f"{str(exc)[:300]}", 415) from None
    finally:
        f.seek(0)
    return nova.table_sources(xy[:, 0], xy[:, 1], header, settings)


def _plain(exc: Exception, folder: Path) -> str:
    """The reader's message about a file in a job's folder, with "the file" for its path
    (:func:`~skysolve.server.store.plain_message`)."""
    from .store import plain_message

    return plain_message(str(exc), folder)


async def _form(request: Request) -> Any:
    """The request's form; a client gone before its body arrived is a quiet 400 (nobody
    reads the answer), not an error with a traceback on the server's console."""
    if not request.headers.get("content-type", "").lower().lstrip().startswith(
            ("multipart/form-data", "application/x-www-form-urlencoded")):
        raise BadRequest("send the request as a form (multipart/form-data or "
                         "application/x-www-form-urlencoded) with a request-json field", 415)
    try:
        boundary = _email_boundary(request.headers.get("content-type", ""))
        if boundary is not None:
            # (read whole, within the body limit, and its line ends made CRLF)
            request._body = _crlf_delimiters(await request.body(), boundary)
        return await request.form(max_files=1, max_fields=64, max_part_size=64 << 20)
    except ClientDisconnect:
        raise BadRequest("the client went away before its request arrived") from None


def _email_boundary(content_type: str) -> bytes | None:
    """The multipart boundary of a body Python's ``email`` package named
    (``===============<digits>==``, optionally quoted), as astrometry.net's client.py
    does; None for any other. client.py builds that body by hand with bare LF line ends
    around its boundary lines, which the strict multipart parser refused (400 "Invalid
    multipart data": every upload of nova's own client)."""
    if not content_type.lower().lstrip().startswith("multipart/form-data"):
        return None
    match = re.search(r'boundary="?(=====[^";\s]*)"?', content_type)
    return None if match is None else match.group(1).encode("latin-1")


def _crlf_delimiters(body: bytes, boundary: bytes) -> bytes:
    """``body`` with CRLF around its boundary lines where they have a bare LF (the parts'
    contents untouched: only the line breaks next to ``--boundary`` are changed)."""
    delimiter = re.escape(b"--" + boundary)
    body = re.sub(rb"(?<!\r)\n(" + delimiter + rb")", rb"\r\n\1", body)
    return re.sub(rb"(" + delimiter + rb"(?:--)?)\n", rb"\1\r\n", body)


async def _settings(request: Request) -> tuple[Any, dict[str, Any]]:
    form = await _form(request)
    return form, nova.parse_request_json(form.get("request-json"))


def _svc(request: Request) -> Service:
    return request.app.state.service


async def login(request: Request) -> Response:
    svc = _svc(request)
    _, settings = await _settings(request)
    key = settings.get("apikey")
    if not isinstance(key, str) or not key:
        raise BadRequest("request-json needs an apikey")
    if svc.config.api_key and key != svc.config.api_key:
        raise BadRequest("bad apikey", 403)
    return JSONResponse({"status": "success", "message": "authenticated user: skysolve",
                         "session": svc.store.new_session()})


def _accept(svc: Service, kind: str, settings: dict[str, Any], inputs: dict[str, Any],
            filename: str | None, store_input: Any = None) -> dict[str, Any]:
    """Reserve a job, store its input, accept it (runs in a thread)."""
    inputs = {**inputs, **nova.field_options(settings)}
    hints = {"input": inputs, "solve": nova.solve_hints(settings, svc.config.time_limit_s),
             "settings": {k: v for k, v in settings.items() if k not in ("session", "x", "y")}}
    job_id = svc.store.reserve(kind, hints, filename, svc.config.max_queue)
    try:
        digest = ""
        if store_input is not None:
            name, digest = store_input(svc.store.job_dir(job_id))
            hints["input"]["input"] = name
            svc.store.set_hints(job_id, hints)
        svc.store.accept(job_id, hints["input"].get("input"))
    except BaseException:
        svc.store.drop(job_id)
        raise
    svc.queue.poke()
    return {"status": "success", "subid": job_id, "hash": digest}


async def upload(request: Request) -> Response:
    svc = _svc(request)
    svc.check_room()
    form, settings = await _settings(request)
    svc.check_session(settings)
    upload_file = form.get("file")
    if not isinstance(upload_file, UploadFile):
        if "x" in settings or "y" in settings:  # (nova takes a source list here too:
            # astrometry.net's client.py --upload-xy sends it so)
            answer = await run_in_threadpool(_accept, svc, "xy", settings,
                                             nova.source_list(settings), None)
            return JSONResponse(answer)
        raise BadRequest("the upload needs an image in the form field 'file' (or its "
                         "sources: x, y, image_width, image_height)")
    filename = str(upload_file.filename or "")[:200] or None
    sources = await run_in_threadpool(_uploaded_sources, upload_file, settings)
    if sources is not None:  # (kept beside the job as sent)
        answer = await run_in_threadpool(
            _accept, svc, "xy", settings, sources, filename,
            lambda folder: ("input.xyls", _copy_upload(upload_file, folder / "input.xyls")))
        return JSONResponse(answer)
    inputs = {"downsample": nova.downsample(settings)}
    answer = await run_in_threadpool(_accept, svc, "image", settings, inputs, filename,
                                     lambda folder: _store_upload(upload_file, folder,
                                                                  svc.config.max_pixels))
    return JSONResponse(answer)


async def url_upload(request: Request) -> Response:
    svc = _svc(request)
    svc.check_room()
    _, settings = await _settings(request)
    svc.check_session(settings)
    if "x" not in settings and "y" not in settings:
        raise BadRequest("this server does not fetch URLs: upload the image itself "
                         "(/api/upload) or send its sources (x, y, image_width, image_height)")
    inputs = nova.source_list(settings)
    answer = await run_in_threadpool(_accept, svc, "xy", settings, inputs, None)
    return JSONResponse(answer)


async def submission(request: Request) -> Response:
    return JSONResponse(nova.submission(_svc(request).row(request.path_params["id"])))


async def job(request: Request) -> Response:
    row = _svc(request).row(request.path_params["id"])
    return JSONResponse({"status": nova.job_status(row["state"])})


def _calibration(svc: Service, row: Any) -> dict[str, Any]:
    if row["state"] != "success":
        raise BadRequest(f"job {row['id']} has no calibration (status "
                         f"{nova.job_status(row['state'])})", 404)
    return nova.calibration(svc.summary(row)["figures"])


async def calibration(request: Request) -> Response:
    svc = _svc(request)
    return JSONResponse(_calibration(svc, svc.row(request.path_params["id"])))


async def info(request: Request) -> Response:
    svc = _svc(request)
    row = svc.row(request.path_params["id"])
    out = {"status": nova.job_status(row["state"]), "original_filename": row["filename"] or "",
           "tags": [], "machine_tags": [], "objects_in_field": []}
    if row["state"] == "success":
        out["calibration"] = _calibration(svc, row)
    if row["error"]:
        out["errormessage"] = row["error"]
    return JSONResponse(out)


async def result(request: Request) -> Response:
    svc = _svc(request)
    row = svc.row(request.path_params["id"])
    return JSONResponse({"id": row["id"], "state": row["state"], "filename": row["filename"],
                         "error": row["error"], "created": row["created"],
                         "started": row["started"], "finished": row["finished"],
                         "attempts": row["attempts"], **svc.summary(row)})


async def recent(request: Request) -> Response:
    rows = _svc(request).store.recent(20)
    return JSONResponse({"jobs": [{k: r[k] for k in r.keys()} for r in rows]})


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok", "jobs": _svc(request).store.counts()})


#: nova's lists of named objects in a solved field, by route: the key of the answer.
#: skysolve's catalogs carry no names (no NGC/IC objects, no star names), so the lists are
#: empty, in nova's shapes, for any job that exists.
NAMED_OBJECTS = {"annotations": "annotations", "objects_in_field": "objects_in_field",
                 "tags": "tags", "machine_tags": "tags"}


def _no_objects(key: str) -> Any:
    async def route(request: Request) -> Response:
        _svc(request).row(request.path_params["id"])  # (404 for an unknown job)
        return JSONResponse({key: []})

    return route


def content_disposition(disposition: str, stem: str, suffix: str) -> str:
    """A ``Content-Disposition`` header for a download named after the user's file.

    HTTP headers are Latin-1 bytes, so the plain ``filename`` holds only ASCII letters,
    digits and ``-_.`` (others become ``_``); a name with other characters (``М31``,
    ``星野``) is also given whole as RFC 6266's ``filename*``, which browsers prefer.

    Parameters
    ----------
    disposition : str
        ``"inline"`` or ``"attachment"``.
    stem : str
        The user's file name without its suffix (any text).
    suffix : str
        The download's suffix, such as ``".wcs"``.

    Returns
    -------
    str
        The header's value, ASCII only.
    """
    from urllib.parse import quote

    stem = stem[:80]
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_"
                   for c in stem) or "job"
    header = f'{disposition}; filename="{safe}{suffix}"'
    if stem and safe != stem:
        header += f"; filename*=UTF-8''{quote(stem + suffix, safe='')}"
    return header


def _download(name: str) -> Any:
    media, suffix = DOWNLOADS[name]

    async def route(request: Request) -> Response:
        svc = _svc(request)
        row = svc.row(request.path_params["id"])
        path = svc.store.job_dir(row["id"]) / FILES[name]
        if not path.is_file():
            raise BadRequest(f"job {row['id']} has no {name.replace('_', ' ')}", 404)
        stem = Path(row["filename"] or f"job{row['id']}").stem
        disposition = "inline" if name in ("json_file", "preview") else "attachment"
        return FileResponse(path, media_type=media, headers={
            "Content-Disposition": content_disposition(disposition, stem, suffix),
            "Cache-Control": "no-store"})

    return route


def _kmz(folder: Path, name: str) -> bytes | None:
    """The KMZ of a job's preview laid on the sky by its ``.wcs`` (None without them)."""
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning
    from PIL import Image

    from ..io.kml import sky_overlay_kmz

    wcs_path, preview = folder / FILES["wcs_file"], folder / FILES["preview"]
    if not (wcs_path.is_file() and preview.is_file()):
        return None
    header = fits.getheader(wcs_path)
    with Image.open(preview) as img:
        picture = np.asarray(img.convert("L"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # (a .wcs holds no image: NAXIS 0)
        wcs = WCS(header)
    return sky_overlay_kmz(picture, wcs, int(header["IMAGEW"]), int(header["IMAGEH"]),
                           name=name)


async def kml_file(request: Request) -> Response:
    """nova's ``/kml_file/ID``: the solved image on the sky (:func:`_kmz`)."""
    svc = _svc(request)
    row = svc.row(request.path_params["id"])
    stem = Path(row["filename"] or f"job{row['id']}").stem
    kmz = await run_in_threadpool(_kmz, svc.store.job_dir(row["id"]), stem)
    if kmz is None:
        raise BadRequest(f"job {row['id']} has no kml file", 404)
    return Response(kmz, media_type="application/vnd.google-earth.kmz", headers={
        "Content-Disposition": content_disposition("attachment", stem, ".kmz"),
        "Cache-Control": "no-store"})


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


async def _bad_request(request: Request, exc: BadRequest) -> Response:
    return _error(str(exc), exc.status)


async def _busy(request: Request, exc: Exception) -> Response:
    return _error("the queue is full: try again shortly", 503, {"Retry-After": "5"})


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return _error(str(exc.detail), exc.status_code, getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return _error(f"internal error ({type(exc).__name__})", 500)


def _routes() -> list[Any]:
    jid = "{id:int}"
    # (nova's status and result views answer any method: astrometry.net's client.py
    # sends every call as a POST of its request-json, and got 405 for them)
    both = ["GET", "POST"]
    routes = [Route("/", index), Route("/api/login", login, methods=["POST"]),
              Route("/api/upload", upload, methods=["POST"]),
              Route("/api/url_upload", url_upload, methods=["POST"]),
              Route(f"/api/submissions/{jid}", submission, methods=both),
              Route(f"/api/jobs/{jid}", job, methods=both),
              Route(f"/api/jobs/{jid}/calibration", calibration, methods=both),
              Route(f"/api/jobs/{jid}/info", info, methods=both),
              Route(f"/api/jobs/{jid}/result", result, methods=both),
              Route("/api/recent", recent), Route("/api/health", health)]
    routes += [Route(f"/api/jobs/{jid}/{name}", _no_objects(key), methods=both)
               for name, key in NAMED_OBJECTS.items()]
    # nova answers its API paths with a trailing slash too (N.I.N.A. posts to
    # /api/login/), and clients do not follow a redirect of a POST
    routes += [Route(r.path + "/", r.endpoint, methods=r.methods) for r in list(routes)
               if r.path.startswith("/api/")]
    routes += [Route(f"/{name}/{jid}", _download(name)) for name in DOWNLOADS]
    routes.append(Route(f"/annotated_display/{jid}", _download("preview")))
    routes.append(Route(f"/kml_file/{jid}", kml_file))
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    return routes


def create_app(config: ServerConfig | None = None) -> Any:
    """The ASGI application for ``config`` (started and stopped with the server)."""
    config = config or ServerConfig()
    service = Service(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = Starlette(routes=_routes(), lifespan=lifespan, exception_handlers={
        BadRequest: _bad_request, QueueFull: _busy, HTTPException: _http_error,
        Exception: _unexpected})
    app.state.service = service
    if config.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins,
                           allow_methods=["GET", "POST"])
    app.add_middleware(BodyLimit, limit=int(config.max_upload_mb * 1e6))
    return app
