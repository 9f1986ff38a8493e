"""The migrations make exactly the schema of the SQLModel tables, on SQLite and on PostgreSQL.

When this fails after a change to dunflow/store.py, write a migration:
`dunflow db revision -m "what changed"`, then read and tidy the file it makes.
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from dunflow import migrations
from dunflow.store import create_schema, make_engine
from tests.kernel.test_store import _postgres_url


def _empty_store(kind: str, tmp_path):
    if kind == "sqlite":
        return make_engine(f"sqlite:///{tmp_path}/migrated.db")
    engine = make_engine(_postgres_url())
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request, tmp_path):
    engine = _empty_store(request.param, tmp_path)
    yield engine
    engine.dispose()


def differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def head() -> str:
    config = migrations._config(None)
    return ScriptDirectory.from_config(config).get_current_head()


def test_upgrade_head_makes_exactly_the_tables_of_the_code(empty_store):
    migrations.upgrade(empty_store)
    assert differences(empty_store) == [], "the tables in dunflow/store.py changed without a migration"
    assert migrations.current(empty_store) == head()
    migrations.upgrade(empty_store)  # again: nothing to do
    assert migrations.current(empty_store) == head()


def test_a_table_the_migrations_lack_is_found(empty_store):
    migrations.upgrade(empty_store)
    with empty_store.begin() as connection:
        connection.execute(text("DROP TABLE apikey"))  # as if a table were added to the code without a migration
    assert [(kind, table.name) for kind, table in differences(empty_store)] == [("add_table", "apikey")]


def test_a_store_made_before_migrations_is_adopted(empty_store):
    migrations.upgrade(empty_store, migrations.FIRST)  # the tables dunflow made before it had migrations,
    with empty_store.begin() as connection:            # with create_all and no version mark
        connection.execute(text("DROP TABLE alembic_version"))
    assert migrations.current(empty_store) is None
    migrations.upgrade(empty_store)
    assert migrations.current(empty_store) == head()
    assert differences(empty_store) == []


def test_tables_made_from_the_models_count_as_the_newest_revision(empty_store):
    create_schema(empty_store)  # what the tests' fixtures do
    assert migrations.current(empty_store) == head()
    migrations.upgrade(empty_store)  # so a later migration is not run on tables that already have it
    assert differences(empty_store) == []


def test_downgrade_to_nothing_and_back(empty_store):
    migrations.upgrade(empty_store)
    migrations.downgrade(empty_store, "base")
    assert set(inspect(empty_store).get_table_names()) <= {"alembic_version"}
    migrations.upgrade(empty_store)
    assert differences(empty_store) == []


def test_the_cli_upgrades_and_names_an_unreachable_store(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dunflow.cli import app as cli
    from dunflow.settings import get_settings

    runner = CliRunner()
    monkeypatch.setenv("DUNFLOW_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    get_settings.cache_clear()
    try:
        assert runner.invoke(cli, ["db", "current"]).stdout.strip() == "none"
        done = runner.invoke(cli, ["db", "upgrade"])
        assert done.exit_code == 0 and f"store at revision {head()}" in done.stdout
        assert runner.invoke(cli, ["db", "current"]).stdout.strip() == head()
        monkeypatch.setenv("DUNFLOW_DATABASE_URL", "postgresql+psycopg://dunflow:x@127.0.0.1:1/gone")
        get_settings.cache_clear()
        down = runner.invoke(cli, ["db", "upgrade"])
        assert down.exit_code == 1 and "cannot reach the store" in down.output and "Traceback" not in down.output
    finally:
        get_settings.cache_clear()
