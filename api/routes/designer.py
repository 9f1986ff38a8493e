"""The designer page: static files under designer/app, bpmn-js from designer/node_modules
(installed by `npm ci` in designer/, which scripts/install.sh runs)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from dunflow.settings import PROJECT_ROOT

DESIGNER = PROJECT_ROOT / "designer"


def mount_designer(app: FastAPI) -> None:
    app.mount("/designer/vendor", StaticFiles(directory=DESIGNER / "node_modules" / "bpmn-js" / "dist",
                                              check_dir=False), name="designer-vendor")
    app.mount("/designer", StaticFiles(directory=DESIGNER / "app", html=True), name="designer")
