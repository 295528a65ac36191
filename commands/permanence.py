"""!permanence — where and when the partners receive project holders, and the next date."""

from __future__ import annotations

from datetime import date, datetime, time

from commands._events import q, safe
from ess_bot.formatting import WEEKDAYS_FR, date_fr, join_fr, time_fr
from ess_bot.framework.command import command
from ess_bot.framework.context import Context, UserError
from ess_bot.services.permanences import PermanenceView


def hours_fr(slots: tuple[tuple[time, time], ...]) -> str:
    """((9:00, 12:00), (14:00, 17:00)) → ``9 h – 12 h et 14 h – 17 h``."""
    fmt = [f"{time_fr(datetime.combine(date.min, a))} – {time_fr(datetime.combine(date.min, b))}" for a, b in slots]
    return join_fr(fmt)


def weekdays_fr(days: tuple[int, ...]) -> str:
    """(0, 1, 2, 3, 4) → ``du lundi au vendredi``; (1, 3) → ``le mardi et le jeudi``."""
    if len(days) >= 3 and list(days) == list(range(days[0], days[-1] + 1)):
        return f"du {WEEKDAYS_FR[days[0]]} au {WEEKDAYS_FR[days[-1]]}"
    return join_fr([f"le {WEEKDAYS_FR[d]}" for d in days])


def next_fr(view: PermanenceView, today: date) -> str:
    if view.next is None:
        return "Prochaine date : aucune dans les quatre prochains mois."
    day = view.next.day
    when = "aujourd'hui" if day == today else ("demain" if (day - today).days == 1 else "")
    text = f"Prochaine : **{date_fr(day)}**" + (f" ({when})" if when else "")
    if view.next.skipped:
        feries = join_fr([f"le {date_fr(d)} ({name})" for d, name in view.next.skipped])
        text += f" — pas de permanence {feries}, jour férié"
    return text


def permanence_lines(view: PermanenceView, today: date) -> list[str]:
    lines = [f"- **{safe(view.partner_name)}** — {weekdays_fr(view.weekdays)}, {hours_fr(view.slots)}"]
    if view.address:
        lines.append(f"  {safe(view.address)}")
    lines.append(f"  {next_fr(view, today)}")
    return lines


@command("permanence", group="Agenda et événements", summary="les permanences d'accueil des partenaires",
         usage="!permanence [ville]", examples=["!permanence", "!permanence Besançon", "!permanence lons"],
         aliases=["permanences", "perm"],
         details="Avec une ville (les premières lettres suffisent, accents facultatifs) : l'adresse, les horaires "
                 "et la date de la prochaine permanence, jours fériés exclus. Sans ville : toutes, par ville.")
async def permanence(ctx: Context, args: list[str]) -> None:
    service = ctx.services.permanences
    today = ctx.clock.today()
    towns = service.towns()
    if not towns:
        ctx.reply("Aucune permanence n'est renseignée pour l'instant (section `[[permanences]]` de la configuration).")
        return
    if not args:
        lines = ["📍 **Permanences du réseau**"]
        current = None
        for view in service.all():
            if view.town != current:
                lines.append(f"\n**{safe(view.town)}**")
                current = view.town
            lines += permanence_lines(view, today)
        lines.append(f"\nPour une ville : `{ctx.prefix}permanence {towns[0]}`.")
        ctx.reply("\n".join(lines))
        return
    text = " ".join(args)
    match = service.find_town(text)
    known = join_fr(towns)
    if match.candidates:
        raise UserError(f"Plusieurs villes correspondent à {q(text)} : {join_fr(list(match.candidates), 'ou')}. "
                        f"Précisez, par exemple : `{ctx.prefix}permanence {match.candidates[0]}`.")
    if match.town is None:
        raise UserError(f"Je ne connais pas de permanence à {q(text)}. Villes connues : {known}. "
                        f"Exemple : `{ctx.prefix}permanence {towns[0]}`.")
    views = service.for_town(match.town)
    lines = [f"📍 **Permanences à {safe(match.town)}**"]
    for view in views:
        lines += permanence_lines(view, today)
    ctx.reply("\n".join(lines))
