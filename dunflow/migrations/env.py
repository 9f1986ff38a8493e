"""Alembic environment: dunflow's SQLModel tables, on the connection dunflow.migrations hands in."""

from __future__ import annotations

from alembic import context
from dunflow.store import SQLModel  # importing the store registers every table on the metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
