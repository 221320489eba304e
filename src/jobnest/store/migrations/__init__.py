"""Schema migrations of the SQL store (Alembic), run from code: no ``alembic.ini`` needed.

``upgrade(engine)`` brings a database to the newest revision. The whole upgrade runs in
one transaction of the engine it is given, so two processes opening a new database at the
same time take turns instead of both creating the tables.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

HERE = Path(__file__).parent


def alembic_config() -> Config:
    """An Alembic configuration pointing at this folder, built in memory."""
    config = Config()
    config.set_main_option("script_location", str(HERE).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database of ``engine`` to the newest revision, in one transaction."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
