"""Storage: the SQL database (SQLAlchemy models, Alembic migrations)."""
