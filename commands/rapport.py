"""!rapport — activity report for a period: a short summary and three files (CSV, XLSX, PNG).

Only counts leave the database: no project label, no holder detail. Advisors get their own
partner's figures; coordinators and admins the whole network's, or one partner's when asked. In a
partner's room only that partner's figures are shown (the whole room reads the answer).
"""

from __future__ import annotations

import asyncio
import re

from sqlalchemy.ext.asyncio import AsyncSession

from ess_bot.formatting import md_code, md_escape
from ess_bot.framework.command import command
from ess_bot.framework.context import Context, UserError
from ess_bot.parsing import choice_key
from ess_bot.report_files import (CSV_MIMETYPE, PNG_MIMETYPE, XLSX_MIMETYPE, csv_bytes, file_stem, png_bytes,
                                  summary_markdown, xlsx_bytes)
from ess_bot.services.periods import PeriodError, parse_period
from ess_bot.services.reports import ReportForbidden

EXAMPLE = "!rapport T3 2026"
NETWORK_WORDS = frozenset({"reseau", "tous", "tout", "toutlereseau", "ensemble"})
PARTNER_OPTION = re.compile(r"^(?:partenaire|structure)=(.*)$", re.I)
DETAILS = (
    "Période (par défaut : le trimestre en cours) : `2026`, `T3 2026`, `S1 2026`, `novembre 2026`, "
    "`du 01/01/2026 au 30/06/2026`, `ce trimestre`, `trimestre dernier`, `mois dernier`, `2025-2026`. "
    "Les conseiller·ère·s obtiennent les chiffres de leur structure ; les coordinateur·rice·s ceux de tout le "
    "réseau, ou d'une structure en ajoutant son nom (`!rapport 2026 urscop`). Dans le salon d'une structure, "
    "seuls ses chiffres s'affichent. La réponse donne un résumé et trois fichiers : un tableau CSV, un classeur "
    "Excel (une feuille par répartition) et un graphique des heures par structure et par mois. Seuls des effectifs "
    "y figurent : aucun nom de projet ni donnée de porteur·euse. Les suivis annulés ne comptent pas.")


@command("rapport", group="Accompagnement", summary="bilan d'activité d'une période, avec tableau, classeur et graphique",
         usage="!rapport [période] [structure]",
         examples=[EXAMPLE, "!rapport 2026", "!rapport trimestre dernier", "!rapport S1 2026 urscop",
                   "!rapport du 01/01/2026 au 30/06/2026"],
         aliases=["bilan", "rapports"], where=("direct", "coordination", "partner"), details=DETAILS)
async def rapport(ctx: Context, args: list[str]) -> None:
    period_words, requested, network = _split(ctx, args)
    requested = _room_scope(ctx, requested, network)
    text = " ".join(period_words)
    try:
        period = parse_period(text, ctx.clock.today())
    except PeriodError as exc:
        hint = ""
        if ctx.member.role != "advisor" and any(w.isalpha() and len(w) > 2 for w in period_words):
            hint = " Pour une structure, ajoutez son identifiant : " + _slugs(ctx) + "."
        raise UserError(f"{exc.message}{hint}\nExemple : `{ctx.prefix}{EXAMPLE[1:]}`") from None
    svc = ctx.services.reports
    try:
        scope = svc.scope(ctx.member.role, ctx.member.partner, requested)
    except ReportForbidden as exc:
        raise UserError(f"🔒 {md_escape(exc.message)} Exemple : "
                        f"{md_code(f'{ctx.prefix}rapport ' + (text or 'T3 2026'))}") from None
    # Two connections work at once (the activity cube on a second, read-only session; the projects on
    # the command's), and the chart, which needs only the cube, is drawn in a thread meanwhile.
    charts: list[asyncio.Future] = []

    def draw(cube) -> None:
        charts.append(asyncio.ensure_future(asyncio.to_thread(png_bytes, svc.chart(period, scope, cube))))

    try:
        async with AsyncSession(ctx.session.bind) as side:
            report = await svc.build(ctx.session, period, scope, side=side, on_cube=draw)
        csv_data, xlsx_data = await asyncio.to_thread(lambda: (csv_bytes(report), xlsx_bytes(report)))
    finally:
        png_data = await charts[0] if charts else None
    summary = summary_markdown(report)
    if ctx.room_kind == "partner" and ctx.member.role != "advisor":
        summary += (f"\n(Dans ce salon, seuls les chiffres de {md_escape(report.scope_name)} s'affichent ; pour tout le réseau, "
                    f"écrivez-moi en message direct ou dans le salon de coordination.)")
    ctx.reply(summary)
    stem = file_stem(report)
    ctx.reply_file(f"{stem}.csv", csv_data, CSV_MIMETYPE)
    ctx.reply_file(f"{stem}.xlsx", xlsx_data, XLSX_MIMETYPE)
    ctx.reply_file(f"{stem}.png", png_data, PNG_MIMETYPE, image=True)


def _split(ctx: Context, args: list[str]) -> tuple[list[str], str | None, bool]:
    """(period words, partner slug asked for, whole network asked for). A partner is named by its
    identifier or its name (several words are fine: ``Cluster Jura``), or with ``partenaire=``."""
    words = list(args)
    requested: str | None = None
    network = False
    keys = {}
    for p in ctx.config.partners:
        keys[choice_key(p.slug)] = p.slug
        keys[choice_key(p.name)] = p.slug
    for i, word in enumerate(words):
        m = PARTNER_OPTION.match(word)
        if m:
            value = m.group(1).strip()
            slug = keys.get(choice_key(value))
            if slug is None:
                raise UserError(f"Structure inconnue : « {md_escape(value)} ». Structures : {_slugs(ctx)}. "
                                f"Exemple : `{ctx.prefix}rapport 2026 urscop`")
            requested = slug
            del words[i]
            break
    for _ in range(2):
        found = _find_partner(words, keys)
        if found is None:
            break
        if requested is not None and found != requested:
            names = [md_escape(ctx.config.partner(s).name) for s in (requested, found)]
            raise UserError(f"Une structure à la fois, s'il vous plaît (j'en vois deux : {names[0]} et {names[1]}). "
                            f"Exemple : `{ctx.prefix}rapport 2026 urscop`")
        requested = found
    rest = []
    for word in words:
        if choice_key(word) in NETWORK_WORDS:
            network = True
        else:
            rest.append(word)
    # "tout le réseau": "le" was left in the period words
    if network and rest and choice_key(rest[-1]) in ("le", "du"):
        rest.pop()
    if network and requested is not None:
        raise UserError(f"Tout le réseau ou une structure, il faut choisir. Exemple : `{ctx.prefix}rapport 2026` ou "
                        f"`{ctx.prefix}rapport 2026 urscop`")
    return rest, requested, network


def _slugs(ctx: Context) -> str:
    return ", ".join(md_code(p.slug) for p in ctx.config.partners)


def _find_partner(words: list[str], keys: dict[str, str]) -> str | None:
    """The partner named by 1 to 3 consecutive words (removed from ``words``), longest first."""
    for size in (3, 2, 1):
        for i in range(len(words) - size + 1):
            slug = keys.get(choice_key(" ".join(words[i:i + size])))
            if slug is not None:
                del words[i:i + size]
                return slug
    return None


def _room_scope(ctx: Context, requested: str | None, network: bool) -> str | None:
    """In a partner's room, only that partner's figures (and only for its own members)."""
    if ctx.room_kind != "partner":
        if network and ctx.member.role == "advisor":
            raise UserError("🔒 Les chiffres de tout le réseau sont réservés à la coordination : vous pouvez consulter "
                            f"ceux de votre structure, par exemple `{ctx.prefix}rapport T3 2026`.")
        return requested
    room_partner = ctx.config.partner_by_room(ctx.event.room_id)
    if room_partner.slug != ctx.member.partner:
        raise UserError(f"🔒 Ce salon est celui de {md_escape(room_partner.name)} : je n'y affiche pas de bilan pour une autre "
                        "structure. Écrivez-moi en message direct ou dans le salon de votre structure, par exemple "
                        f"`{ctx.prefix}rapport T3 2026`.")
    if network or (requested is not None and requested != room_partner.slug):
        raise UserError(f"🔒 Dans le salon de {md_escape(room_partner.name)}, seuls ses chiffres s'affichent (tout le salon lit "
                        "la réponse). Pour tout le réseau ou une autre structure, écrivez-moi en message direct ou "
                        f"dans le salon de coordination : `{ctx.prefix}rapport 2026`.")
    return room_partner.slug
