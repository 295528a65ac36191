"""Import every model module of ``ess_bot.storage`` so that Base.metadata knows all tables
(Alembic autogenerate, tests). Adding a domain's tables is adding a module here."""

import importlib
import pkgutil

import ess_bot.storage as _storage

for _module in pkgutil.iter_modules(_storage.__path__):
    if _module.name not in ("all_models", "db", "types") and not _module.name.startswith("_"):
        importlib.import_module(f"ess_bot.storage.{_module.name}")
