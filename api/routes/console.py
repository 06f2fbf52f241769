"""The on-call console: static HTML, CSS and plain JavaScript served by the API itself.

No build step and no second server: `/` is the page, `/console/*` its assets. Everything it
shows comes from the same `/api` a script would call, with the token the user gives once.
"""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parents[1] / "console"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def console_page() -> FileResponse:
    """The single page; the console routes itself from the URL's fragment."""
    return FileResponse(ASSETS / "index.html", headers={"cache-control": "no-cache"})


def mount_console(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/console", StaticFiles(directory=ASSETS), name="console")
