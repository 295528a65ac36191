"""Command families, one module each (declaration, arguments, French help, thin handler)."""

from __future__ import annotations

from commands import aide, ping
from ess_bot.framework.command import Registry

MODULES = (aide, ping)


def build_registry() -> Registry:
    registry = Registry()
    for module in MODULES:
        registry.load_module(module)
    return registry


def job_handlers() -> dict:
    handlers: dict = {}
    for module in MODULES:
        handlers.update(getattr(module, "JOB_HANDLERS", {}))
    return handlers
