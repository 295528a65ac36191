"""Import every model module so that Base.metadata knows all tables (Alembic autogenerate, tests)."""

from ess_bot.storage import models  # noqa: F401
