"""Alembic environment: migrations run on the engine handed in by ``debate.store.db``."""

from alembic import context
from sqlmodel import SQLModel

import debate.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata
config = context.config
engine = config.attributes.get("engine")

if engine is None:  # `alembic` CLI use during development: offline SQL rendering
    context.configure(url="sqlite://", target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
