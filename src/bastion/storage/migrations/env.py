"""Alembic environment: runs migrations on the engine passed in by `storage.database`."""

from __future__ import annotations

from alembic import context

from bastion.storage import (
    a2a_models,  # noqa: F401 - registers the A2A task tables
    pipeline_models,  # noqa: F401 - registers the archive tables
    research_models,  # noqa: F401 - registers the research tables
)
from bastion.storage.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
