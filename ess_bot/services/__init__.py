"""Domain services. They know nothing about chat: typed inputs in, typed results out."""

from __future__ import annotations

from dataclasses import dataclass

from ess_bot.clock import Clock
from ess_bot.config import Config
from ess_bot.parsing import DateParser
from ess_bot.services.accompaniments import AccompanimentService
from ess_bot.services.agenda_service import AgendaService
from ess_bot.services.events import EventService
from ess_bot.services.meetings import MeetingService
from ess_bot.services.permanences import PermanenceService
from ess_bot.services.reports import ReportService
from ess_bot.services.tools import ToolService


@dataclass
class Services:
    """The domain services of one bot instance, handed to command handlers as ``ctx.services``."""

    config: Config
    clock: Clock
    dates: DateParser
    accompaniments: AccompanimentService
    tools: ToolService
    events: EventService
    agenda: AgendaService           # merges every CalendarSource (events and network meetings)
    permanences: PermanenceService
    meetings: MeetingService
    reports: ReportService


def build_services(config: Config, clock: Clock) -> Services:
    events = EventService(config, clock)
    # the meeting date scorer avoids the events' days; the agenda and the feed show both
    meetings = MeetingService(config, clock, other_sources=[events])
    return Services(config=config, clock=clock, dates=DateParser(clock.tz),
                    accompaniments=AccompanimentService(config, clock), tools=ToolService(config, clock),
                    events=events, agenda=AgendaService([events, meetings], clock),
                    permanences=PermanenceService(config, clock), meetings=meetings,
                    reports=ReportService(config, clock))
