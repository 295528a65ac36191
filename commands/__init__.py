"""Command families, one module each (declaration, arguments, French help, thin handler).

Every module of this package is loaded: adding a command family is adding a module. A module may
also define ``EVENT_HANDLERS`` (reactions, redactions, poll answers…) and ``JOB_HANDLERS``
(scheduled job kinds).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ess_bot.framework.command import Registry


def modules() -> list[ModuleType]:
    """The command modules, in a stable order (``aide`` first, then alphabetical)."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    names.sort(key=lambda n: (n != "aide", n))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def build_registry() -> Registry:
    registry = Registry()
    for module in modules():
        registry.load_module(module)
    return registry


def job_handlers() -> dict:
    handlers: dict = {}
    for module in modules():
        for kind, handler in getattr(module, "JOB_HANDLERS", {}).items():
            if kind in handlers:
                raise ValueError(f"job kind {kind!r} declared twice")
            handlers[kind] = handler
    return handlers
