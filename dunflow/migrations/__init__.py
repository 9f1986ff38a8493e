"""The store's schema, versioned: Alembic migrations, run by `dunflow db upgrade` and at start-up.

A change to the tables in dunflow/store.py needs a new migration:
`dunflow db revision -m "what changed"` writes one from the difference, to be read and tidied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).resolve().parent
FIRST = "0001"  # the schema create_all made before migrations existed
LOCK_ID = 7_355_608  # PostgreSQL advisory lock: one upgrade at a time across API and workers


def _config(connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def _adopt(connection: Connection, config: Config) -> None:
    """A store made by create_all before migrations: mark it as the first revision."""
    has_version = MigrationContext.configure(connection).get_current_revision() is not None
    if not has_version and inspect(connection).has_table("case"):
        command.stamp(config, FIRST)


@contextmanager
def _locked(engine: Engine) -> Iterator[Config]:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        config = _config(connection)
        _adopt(connection, config)
        yield config


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _locked(engine) as config:
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    with _locked(engine) as config:
        command.downgrade(config, revision)


def mark_newest(engine: Engine) -> None:
    """For a store whose tables were just made from the models: they are the newest revision's."""
    with engine.begin() as connection:
        command.stamp(_config(connection), "head")


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def revision(engine: Engine, message: str) -> None:
    """Write a new migration from the difference between the store (at head) and the tables."""
    with engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)
