"""!permanence — where and when the partners receive project holders, and the next date."""

from __future__ import annotations

from datetime import date, datetime, time

from ess_bot.formatting import WEEKDAYS_FR, date_fr, join_fr, md_code, md_escape, time_fr
from ess_bot.framework.command import command
from ess_bot.framework.context import Context, UserError
from ess_bot.parsing import md_quote
from ess_bot.services.permanences import AreaMatch, PermanenceView
from ess_bot.vocabulary import DEPARTMENT_NAMES

EXAMPLES = ["!permanence", "!permanence Besançon", "!permanence lons", "!permanence 25", "!permanence 90000"]


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
        feries = join_fr([f"le {date_fr(d)} ({md_escape(name)})" for d, name in view.next.skipped])
        text += f" — pas de permanence {feries}, " + ("jours fériés" if len(view.next.skipped) > 1 else "jour férié")
    return text


def permanence_lines(view: PermanenceView, today: date) -> list[str]:
    lines = [f"- **{md_escape(view.partner_name)}** — {weekdays_fr(view.weekdays)}, {hours_fr(view.slots)}"]
    if view.address:
        lines.append(f"  {md_escape(view.address)}")
    lines.append(f"  {next_fr(view, today)}")
    return lines


def towns_fr(towns) -> str:
    """The towns of the configuration, in Markdown."""
    return join_fr([md_escape(t) for t in towns])


def department_fr(code: str) -> str:
    """``25`` → ``le département 25 (Doubs)``."""
    name = DEPARTMENT_NAMES.get(code)
    return f"le département {code}" + (f" ({name})" if name else "")


def render_views(title: str, views, today: date, by_town: bool) -> list[str]:
    lines = [title]
    current = None
    for view in views:
        if by_town and view.town != current:
            lines.append(f"\n**{md_escape(view.town)}**")
            current = view.town
        lines += permanence_lines(view, today)
    return lines


def area_reply(ctx: Context, area: AreaMatch, towns: list[str], today: date) -> str:
    where = f"au code postal {area.postcode}" if area.postcode else f"dans {department_fr(area.department)}"
    if area.views and area.exact:
        return "\n".join(render_views(f"📍 **Permanences {where}**", area.views, today, by_town=True))
    if area.views:
        lines = render_views(f"📍 Aucune permanence {where} ; dans {department_fr(area.department)} :",
                             area.views, today, by_town=True)
        return "\n".join(lines)
    return (f"Aucune permanence {where}"
            + (f" ni dans {department_fr(area.department)}" if area.postcode else "")
            + f". Villes connues : {towns_fr(towns)}. Exemple : {md_code(f'{ctx.prefix}permanence {towns[0]}')}, ou "
            f"`{ctx.prefix}permanence` pour toutes.")


@command("permanence", group="Agenda et événements", summary="les permanences d'accueil des partenaires",
         usage="!permanence [ville | département | code postal]", examples=EXAMPLES,
         aliases=["permanences", "perm"],
         details="Avec une ville (les premières lettres suffisent, accents facultatifs), un département (`25`) ou "
                 "un code postal (`25300`) : l'adresse, les horaires et la date de la prochaine permanence, jours "
                 "fériés exclus. Sans rien : toutes, par ville.")
async def permanence(ctx: Context, args: list[str]) -> None:
    service = ctx.services.permanences
    today = ctx.clock.today()
    towns = service.towns()
    if not towns:
        ctx.reply("Aucune permanence n'est renseignée pour l'instant (section `[[permanences]]` de la configuration).")
        return
    text = " ".join(args).strip()
    if not text:
        lines = render_views("📍 **Permanences du réseau**", service.all(), today, by_town=True)
        lines.append(f"\nPour une ville : {md_code(f'{ctx.prefix}permanence {towns[0]}')} ; pour un département : "
                     f"`{ctx.prefix}permanence 25`.")
        ctx.reply("\n".join(lines))
        return
    if service.is_area(text):
        ctx.reply(area_reply(ctx, service.find_area(text), towns, today))
        return
    match = service.find_town(text)
    if match.candidates:
        raise UserError(f"Plusieurs villes correspondent à {md_quote(text)} : "
                        f"{join_fr([md_escape(t) for t in match.candidates], 'ou')}. "
                        f"Précisez, par exemple : {md_code(f'{ctx.prefix}permanence {match.candidates[0]}')}.")
    if match.town is None:
        raise UserError(f"Je ne connais pas de permanence à {md_quote(text)}. Villes connues : {towns_fr(towns)}. "
                        f"Exemple : {md_code(f'{ctx.prefix}permanence {towns[0]}')}, ou un département : "
                        f"`{ctx.prefix}permanence 25`.")
    views = service.for_town(match.town)
    ctx.reply("\n".join(render_views(f"📍 **Permanences à {md_escape(match.town)}**", views, today, by_town=False)))
