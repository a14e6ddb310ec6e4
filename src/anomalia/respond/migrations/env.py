"""Alembic environment of the alert store: run by :func:`anomalia.respond.store.migrate` on the connection
it is given (``config.attributes["connection"]``), never from a URL of its own."""

from __future__ import annotations

from alembic import context

from anomalia.respond.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
