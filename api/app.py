"""The API application factory. The store engine and the Temporal client are made once, in the
lifespan, and handed to routes as dependencies."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse

from api.errors import install_error_handlers
from api.routes import (
    bulk, cases, codec, debtors, flows, health, messages, outbox, plans, statements, subscribers, webhooks,
)
from api.routes.designer import mount_designer
from api.routes.portal import install_portal
from api.simulation import Simulator
from dunflow.flows import publish_shipped_flows
from dunflow.settings import Settings, get_settings
from dunflow.migrations import upgrade
from dunflow.store import make_engine
from dunflow.temporal import connect
from dunflow.templates import TemplateCatalog


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = make_engine(settings.effective_database_url)
        upgrade(engine)
        publish_shipped_flows(engine, settings.flows_dir, TemplateCatalog(settings.templates_dir))
        app.state.settings = settings
        app.state.engine = engine
        app.state.temporal = await connect(settings, lazy=True)
        app.state.temporal_connected = False
        app.state.simulator = Simulator(settings)
        yield
        await app.state.simulator.close()
        engine.dispose()

    app = FastAPI(
        title="dunflow",
        description="Accounts-receivable collection flows on Temporal: cases, signals, messages.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(bulk.router)
    app.include_router(cases.router)
    app.include_router(plans.router)
    app.include_router(messages.router)
    app.include_router(outbox.router)
    app.include_router(statements.router)
    app.include_router(subscribers.router)
    app.include_router(webhooks.router)
    app.include_router(debtors.router)
    install_portal(app)
    app.include_router(flows.router)
    mount_designer(app)
    app.include_router(health.router)
    app.include_router(codec.router)
    app.add_middleware(CORSMiddleware, allow_origins=codec.cors_origins(settings.codec_cors_origins),
                       allow_credentials=True, allow_methods=["POST"],
                       allow_headers=["authorization", "content-type", "x-namespace"])

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/outbox")

    return app
