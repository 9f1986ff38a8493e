"""A real headless Chromium (Debian's chromium and chromium-driver) and the API served over HTTP
with a worker, for tests of web pages."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from api.app import create_app
from tests.api.conftest import point_at
from worker import build_activities, build_worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def chromium(downloads: Path | None = None):
    path, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert path and driver_path, "install Debian packages chromium and chromium-driver (scripts/browser.sh does)"
    options = webdriver.ChromeOptions()
    options.binary_location = path
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1000"):
        options.add_argument(argument)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@asynccontextmanager
async def served_api(settings, dev_server):
    """The app on a free port (uvicorn in a thread) with a worker; yields its base URL."""
    point_at(settings, dev_server)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        with ThreadPoolExecutor(max_workers=4) as executor:
            async with build_worker(dev_server.client, settings, build_activities(settings), executor):
                yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(10)
