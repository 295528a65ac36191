"""Domain services. They know nothing about chat: typed inputs in, typed results out."""

from __future__ import annotations

from dataclasses import dataclass

from ess_bot.clock import Clock
from ess_bot.config import Config


@dataclass
class Services:
    """The domain services of one bot instance, handed to command handlers as ``ctx.services``."""

    config: Config
    clock: Clock


def build_services(config: Config, clock: Clock) -> Services:
    return Services(config=config, clock=clock)
