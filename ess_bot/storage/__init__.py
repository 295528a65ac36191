"""Storage: SQLAlchemy models, the async database handle and its Alembic migrations."""

from ess_bot.storage.db import Database
from ess_bot.storage.models import Base

__all__ = ["Base", "Database"]
