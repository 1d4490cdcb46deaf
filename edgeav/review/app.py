"""The review page's web app (FastAPI): the page, the video (byte ranges, never read whole), thumbnails and
explanations on demand, the suggested sounds, verdicts, and the export of accepted cues."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

from edgeav.errors import EdgeavError
from edgeav.review import ReviewSession, margin

PAGE = Path(__file__).with_name("page.html")


class VerdictIn(BaseModel):
    """A verdict from the page: on suggestion `index`, the sound it shows and its (possibly nudged) time."""

    index: int
    sound: str
    verdict: str
    t: float


def frame_jpeg(session: ReviewSession, kind: str, t: float) -> bytes:
    """A thumbnail of the frame at t (`kind` "thumb"), or the explanation of the window whose sound starts at t."""
    import cv2

    from edgeav.explain import explanation_image
    from edgeav.frontends import WindowSpec
    from edgeav.io.video import VideoFile

    cfg = session.backend.cfg
    if kind == "thumb":
        with VideoFile(session.cfg.source, fps=None, size=(160, 120)) as v:
            img = cv2.cvtColor(v.frame_at(min(t, max(0.0, v.duration - 0.05))), cv2.COLOR_RGB2BGR)
    else:
        s = next((x for x in session.suggestions if abs(x.t - t) < 1e-3), None)
        if s is None:
            raise EdgeavError(f"no suggestion at {t} s", "reload the page")
        import numpy as np

        with VideoFile(session.cfg.source, fps=None, size=cfg.frame_size) as v:
            stack = np.stack([v.frame_at(min(s.window_t + o, v.duration - 0.05)) for o in cfg.frame_offsets])
        img = explanation_image(
            session.backend, session.bank, stack, s.t - WindowSpec().pre_roll_s, s.recommendations[0]
        )
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def session_state(session: ReviewSession) -> dict:
    """What the page shows: the source, the suggestions so far (each with its margin, `margin`), the card order
    asked for, the verdicts and whether the run is done."""
    with session.lock:
        sugg = [
            {"index": i, "t": s.t, "margin": round(margin(s.recommendations), 4), "recommendations": s.recommendations}
            for i, s in enumerate(session.suggestions)
        ]
    return {
        "source": Path(session.cfg.source).name,
        "model": session.cfg.model,
        "order": session.cfg.order,
        "done": session.done,
        "error": session.error,
        "suggestions": sugg,
        "verdicts": session.verdicts(),
        "store": session.cfg.feedback,
    }


def create_app(session: ReviewSession):  # noqa: ANN201  (fastapi is imported here, where it is used)
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.background import BackgroundTask

    app = FastAPI(title="edgeav review", docs_url=None, redoc_url=None)
    jpeg = functools.lru_cache(maxsize=256)(functools.partial(frame_jpeg, session))  # images are asked for again

    def image(kind: str, t: float) -> Response:
        try:
            return Response(jpeg(kind, round(t, 3)), media_type="image/jpeg")
        except EdgeavError as e:
            raise HTTPException(404, str(e)) from None

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text()

    @app.get("/api/state")
    def state() -> JSONResponse:
        return JSONResponse(session_state(session))

    @app.get("/video")
    def video() -> FileResponse:  # Starlette answers Range requests: the browser streams and seeks
        return FileResponse(session.cfg.source)

    @app.get("/api/thumb")
    def thumb(t: float) -> Response:
        return image("thumb", t)

    @app.get("/api/explain")
    def explain(t: float) -> Response:
        return image("explain", t)

    @app.get("/api/sound")
    def sound(id: str) -> FileResponse:  # noqa: A002  (the query parameter's name)
        from edgeav.foley import _sound_path

        if id not in session.bank.ids:
            raise HTTPException(404, f"{id} is not in the bank")
        try:
            return FileResponse(_sound_path(session.bank, id))
        except EdgeavError as e:
            raise HTTPException(404, str(e)) from None

    @app.post("/api/verdict")
    def verdict(v: VerdictIn) -> JSONResponse:
        try:
            session.record(v.index, v.sound, v.verdict, v.t)
        except EdgeavError as e:
            raise HTTPException(400, str(e)) from None
        return JSONResponse({"verdicts": session.verdicts()})

    @app.get("/api/export")
    def export(format: str = "otio") -> FileResponse:  # noqa: A002
        from edgeav.cues import FORMATS, Footage, write_cues

        ext = "." + format.lstrip(".")
        if ext not in FORMATS:
            raise HTTPException(400, f"unknown format {format}; one of {', '.join(FORMATS)}")
        folder = Path(tempfile.mkdtemp(prefix="edgeav-export-"))
        out = folder / f"{Path(session.cfg.source).stem}-accepted{ext}"
        try:
            write_cues(session.accepted_cues(), out, Footage.probe(session.cfg.source))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        # the file lives until it is sent, then its folder goes (one per export would pile up in /tmp)
        cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
        return FileResponse(out, filename=out.name, background=cleanup)

    return app
