"""Domain services. They know nothing about chat: typed inputs in, typed results out."""

from __future__ import annotations

from dataclasses import dataclass

from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.parsing import DateParser
from ess_bot.services.accompaniments import AccompanimentService


@dataclass
class Services:
    """The domain services of one bot instance, handed to command handlers as ``ctx.services``."""

    config: Config
    clock: Clock
    dates: DateParser
    accompaniments: AccompanimentService


def build_services(config: Config, clock: Clock) -> Services:
    return Services(config=config, clock=clock, dates=DateParser(clock.tz),
                    accompaniments=AccompanimentService(config, clock))
