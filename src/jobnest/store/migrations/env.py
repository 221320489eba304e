"""The Alembic environment: migrates the connection that ``upgrade`` hands over.

Only online mode exists: jobnest always migrates a live database, never writes SQL scripts.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from jobnest.store.schema import metadata


def run_migrations(connection: Connection) -> None:
    """Run the pending revisions inside the caller's transaction."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("jobnest migrations run online only: use jobnest.store.migrations.upgrade")
run_migrations(context.config.attributes["connection"])
