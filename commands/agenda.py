"""!agenda — the network's upcoming events and meetings, merged, in French."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from commands._events import ex, month_number
from ess_bot.formatting import MONTHS_FR, WEEKDAYS_FR, md_escape, time_fr
from ess_bot.framework.command import command
from ess_bot.framework.context import Context, UserError
from ess_bot.parsing import horizon, md_quote
from ess_bot.services.agenda import AgendaEntry
from ess_bot.text import fold

DEFAULT_COUNT = 10
MAX_COUNT = 50
ADD_EXAMPLE = '!evenement ajouter "Titre" 15/01/2027 18h'
EXAMPLES = ["!agenda", "!agenda 5", "!agenda décembre", "!agenda janvier 2027"]
KIND_LABELS = {"evenement": ("🎉", "événement", "!evenement voir"), "reunion": ("🤝", "rencontre du réseau", "")}


@dataclass(frozen=True)
class AgendaQuery:
    count: int | None = None        # the next N entries
    year: int | None = None         # or one month
    month: int | None = None

    @property
    def is_month(self) -> bool:
        return self.month is not None


def parse_agenda_args(args: list[str], today: date, prefix: str = "!") -> AgendaQuery:
    """``[]`` → next 10; ``["5"]`` → next 5; ``["décembre"]`` → the coming December; ``["janvier", "2027"]``;
    ``["12/2026"]``; ``["ce", "mois"]``, ``["mois", "prochain"]``. UserError (French) otherwise."""
    examples = ", ".join(f"`{prefix}{e[1:]}`" for e in EXAMPLES)
    words = [w for w in (fold(a).strip(".,") for a in args) if w]
    if not words:
        return AgendaQuery(count=DEFAULT_COUNT)
    text = " ".join(args)
    if len(words) == 1 and re.fullmatch(r"[0-9]+", words[0]):
        if len(words[0].lstrip("0")) > 3 or not 1 <= int(words[0]) <= MAX_COUNT:  # never int() of 5,000 digits
            raise UserError(f"Nombre hors limites : {md_quote(args[0])} (de 1 à {MAX_COUNT}). Exemples : {examples}.")
        return AgendaQuery(count=int(words[0]))
    first, last = horizon(today)
    if words in (["ce", "mois"], ["mois"], ["ce", "mois-ci"]):
        return AgendaQuery(year=today.year, month=today.month)
    if words in (["mois", "prochain"], ["le", "mois", "prochain"]):
        y, m = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        return AgendaQuery(year=y, month=m)
    m = re.fullmatch(r"([0-9]{1,2})[/\-]([0-9]{4})", words[0]) if len(words) == 1 else None
    if m and 1 <= int(m.group(1)) <= 12:
        if not first.year <= int(m.group(2)) <= last.year:
            raise UserError(f"Année hors limites : {md_quote(args[0])} (de {first.year} à {last.year}). "
                            f"Exemples : {examples}.")
        return AgendaQuery(year=int(m.group(2)), month=int(m.group(1)))
    month = month_number(words[0])
    if month is not None and len(words) <= 2:
        if len(words) == 2:
            if not re.fullmatch(r"[0-9]{4}", words[1]):
                raise UserError(f"Année illisible : {md_quote(args[1])}. Exemples : {examples}.")
            if not first.year <= int(words[1]) <= last.year:
                raise UserError(f"Année hors limites : {md_quote(args[1])} (de {first.year} à {last.year}). "
                                f"Exemples : {examples}.")
            return AgendaQuery(year=int(words[1]), month=month)
        year = today.year if month >= today.month else today.year + 1
        return AgendaQuery(year=year, month=month)
    raise UserError(f"Je n'ai pas compris {md_quote(text)} : donnez un nombre d'entrées ou un mois. "
                    f"Exemples : {examples}.")


def month_title(year: int, month: int) -> str:
    return f"{MONTHS_FR[month - 1]} {year}"


def entry_line(e: AgendaEntry, prefix: str) -> str:
    icon, label, voir = KIND_LABELS.get(e.kind, ("📌", e.kind, ""))
    day = f"{WEEKDAYS_FR[e.start.weekday()][:3]}. {e.start.day}" + ("er" if e.start.day == 1 else "")
    hours = f"{time_fr(e.start)} – {time_fr(e.end)}" if e.start.date() == e.end.date() else \
        f"{time_fr(e.start)} (jusqu'au {e.end.day} {MONTHS_FR[e.end.month - 1]})"
    parts = [f"- **{day}**, {hours} · {icon} **{md_escape(e.title)}**"]
    details = [md_escape(e.location)] if e.location else []
    if e.organiser:
        details.append(md_escape(e.organiser))
    if details:
        parts.append(" — " + ", ".join(details))
    if voir:
        parts.append(f" · `{prefix}{voir[1:]} {e.ident}`")
    elif label:
        parts.append(f" ({label})")
    return "".join(parts)


def render_agenda(entries: list[AgendaEntry], title: str, prefix: str) -> str:
    lines = [f"📆 **{title}**"]
    current: tuple[int, int] | None = None
    for e in entries:
        key = (e.start.year, e.start.month)
        if key != current:
            lines.append(f"\n**{month_title(*key).capitalize()}**")
            current = key
        lines.append(entry_line(e, prefix))
    return "\n".join(lines)


@command("agenda", group="Agenda et événements", summary="les prochains événements et rencontres du réseau",
         usage="!agenda [nombre | mois [année]]", examples=EXAMPLES, aliases=["calendrier"],
         details="Sans argument : les 10 prochaines dates. Un nombre : les N prochaines. Un mois (`décembre`, "
                 "`janvier 2027`, `ce mois`, `mois prochain`) : tout ce mois-là.")
async def agenda(ctx: Context, args: list[str]) -> None:
    query = parse_agenda_args(args, ctx.clock.today(), ctx.prefix)
    service = ctx.services.agenda
    if query.is_month:
        entries = await service.month(ctx.session, query.year, query.month)
        title = f"Agenda du réseau — {month_title(query.year, query.month)}"
        if not entries:
            ctx.reply(f"Rien de prévu en {month_title(query.year, query.month)} pour l'instant. "
                      f"Les prochaines dates : `{ctx.prefix}agenda`.")
            return
    else:
        entries = await service.upcoming(ctx.session, ctx.clock.now(), query.count)
        title = "Prochaines dates du réseau" if len(entries) != 1 else "Prochaine date du réseau"
        if not entries:
            ctx.reply("Aucun événement ni rencontre à venir pour l'instant. Pour annoncer un événement : "
                      f"`{ex(ctx, ADD_EXAMPLE)}`")
            return
    ctx.reply(render_agenda(entries, title, ctx.prefix))
