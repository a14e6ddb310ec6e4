"""Alembic migrations of the alert store, shipped with the package and run when a store opens."""
