"""!evenement — announce the network's events in the announcement and partner rooms, with an .ics
file, J-N reminders, updates and cancellations."""

from __future__ import annotations

from datetime import date, datetime, time

from commands._events import (JOB_HANDLERS, announce_event, announcement_rooms, at, audience_keys,  # noqa: F401
                              changes_lines, clearable, domain_errors, event_card, event_warnings, ex, find_when,
                              ics_filename, option_keys, organiser_key, parse_moment, parse_time, record_id,
                              reminders_prefix, reminders_text, room_label, schedule_reminders, single_link,
                              split_args, tag_option, when_fr, words_fr)
from ess_bot.formatting import join_fr, md_escape
from ess_bot.parsing import md_quote
from ess_bot.framework.command import command, help_text, subcommand
from ess_bot.framework.context import Context, UserError
from ess_bot.scheduler import cancel as cancel_jobs
from ess_bot.services.events import EventChanges, EventView, NewEvent
from ess_bot.text import closest

EXAMPLE_ADD = '!evenement ajouter "Inauguration du Pixel" 15/01/2027 18h fin=21h lieu="Le Pixel, Besançon"'
EXAMPLE_EDIT = '!evenement modifier 3 date=22/01/2027 heure=18h30 lieu="Le Pixel, Besançon"'
EXAMPLE_TAGS = "!evenement modifier 3 #mois-ess -#atelier"
EXAMPLE_CANCEL = '!evenement annuler 3 "salle indisponible"'
EXAMPLE_SHOW = "!evenement voir 3"
KEYS = option_keys("option", {
    "titre": ("title", "nom"),
    "date": ("jour",),
    "heure": ("debut", "début"),
    "fin": ("jusqua", "end"),
    "lieu": ("adresse", "ou", "où"),
    "lien": ("url", "inscription", "link"),
    "public": ("audience", "pour"),
    "organisateur": ("par", "orga", "organisatrice", "partenaire"),
    "tags": ("mots-cles", "mots-clés", "motscles", "mot-cle", "mot-clé"),
})
DETAILS = (
    "Le titre s'écrit entre guillemets. La date s'écrit `15/01/2027`, `15 janvier 2027` (sans année : la "
    "prochaine) ou `jeudi` (le prochain jeudi ; aussi `jeudi prochain`, `demain`), l'heure `18h` ou `18h30` "
    "(ou une plage `18h-21h`). Options : `fin=21h` (2 h après le début par défaut), `lieu=\"…\"`, "
    "`lien=https://…` (inscription), `public=porteurs,partenaires` (porteurs, partenaires, conseillers, "
    "financeurs, élus, tout public), `organisateur=…` (votre structure par défaut ; `réseau` pour tout le "
    "réseau), des mots-clés `#mois-ess`. Pour modifier les mots-clés : `#mot` ajoute, `-#mot` retire, "
    "`tags=a,b` les remplace tous. Pas de coordonnées personnelles ni de données de santé (RGPD). Un week-end, "
    "un jour férié ou un doublon (même titre, même heure) sont signalés. L'annonce part dans les salons "
    "d'annonces et les salons des partenaires, avec un fichier .ics pour l'agenda, puis des rappels quelques "
    "jours avant.")


def svc(ctx: Context):
    return ctx.services.events


@command("evenement", group="Agenda et événements", summary="annoncer un événement du réseau, avec rappels",
         usage="!evenement <ajouter|modifier|annuler|liste|voir> …", aliases=["événement", "evenements", "evt"],
         details=DETAILS)
async def evenement(ctx: Context, args: list[str]) -> None:
    if not args:
        raise UserError(help_text(ctx.command, ctx.role, ctx.prefix))
    names = [n for s in ctx.command.subcommands for n in s.names()]
    guess = closest(args[0], names)
    hint = f" Vouliez-vous dire `{ctx.prefix}evenement {guess}` ?" if guess else ""
    raise UserError(f"Action inconnue : {md_quote(args[0])}.{hint}\n\n" + help_text(ctx.command, ctx.role, ctx.prefix))


# -- ajouter -------------------------------------------------------------------------------------

@subcommand("evenement", "ajouter", summary="annoncer un événement (salons d'annonces et des partenaires)",
            usage='!evenement ajouter "Titre" <date> <heure> [fin=…] [lieu="…"] [lien=…] [public=…] '
                  '[#mot-clé]',
            examples=[EXAMPLE_ADD,
                      '!evenement ajouter "Atelier statuts SCIC" 3 février 2027 14h-17h lieu="URSCOP, Dijon" '
                      'public=porteurs lien=https://urscop.example/atelier #scic',
                      '!evenement ajouter "Café ESS" jeudi 9h lieu="Le Pixel, Besançon"'],
            aliases=["annoncer", "nouveau", "creer"])
async def ajouter(ctx: Context, args: list[str]) -> None:
    if not args:
        raise UserError(help_text(ctx.command, ctx.role, ctx.prefix))
    a = split_args(ctx, args, KEYS, EXAMPLE_ADD)
    today = ctx.clock.today()
    when = find_when(ctx, a.words, today, a.quoted)
    day, start_t, end_t = when.day, when.start, when.end
    if "date" in a.options:
        day, t = parse_moment(ctx, a.options["date"], today, None, "la date", EXAMPLE_ADD)
        start_t = t or start_t
    if "heure" in a.options:
        start_t = _time(ctx, a.options["heure"], EXAMPLE_ADD)
    title = a.options.get("titre") or " ".join(when.rest)
    missing = [what for what, value in (("le titre (entre guillemets)", title), ("la date", day),
                                        ("l'heure de début", start_t)) if not value]
    if missing:
        raise UserError(f"Il manque {join_fr(missing)}. Exemple : `{ex(ctx, EXAMPLE_ADD)}`\n"
                        f"(Détails : `{ctx.prefix}aide evenement`.)")
    if a.untags:
        raise UserError("Un nouvel événement n'a pas de mot-clé à retirer "
                        f"({md_escape(' '.join('-#' + t for t in a.untags))}). "
                        f"Exemple : `{ex(ctx, EXAMPLE_ADD)} #mois-ess`")
    start = at(ctx.config, day, start_t)
    end = at(ctx.config, day, end_t) if end_t else None
    if "fin" in a.options:
        end = _end(ctx, a.options["fin"], day, EXAMPLE_ADD)
    tags = tuple(a.tags) + (tag_option(a.options["tags"]) if "tags" in a.options else ())
    new = NewEvent(title=title, start=start, end=end, location=a.options.get("lieu"),
                   link=single_link(ctx, a, "événement", EXAMPLE_ADD),
                   audience=audience_keys(ctx, a.options["public"], EXAMPLE_ADD) if "public" in a.options else (),
                   tags=tags,
                   partner=organiser_key(ctx, a.options["organisateur"], EXAMPLE_ADD)
                   if "organisateur" in a.options else None,
                   rooms=announcement_rooms(ctx.config))
    with domain_errors(ctx, EXAMPLE_ADD):
        view = await svc(ctx).create(ctx.session, ctx.member, new)
    plan = schedule_reminders(ctx, view)
    announce_event(ctx, view, svc(ctx).ics(view), "📅 Nouvel événement :", first=True,
                   footer=f"Événement n°{view.id} — le fichier joint l'ajoute à votre agenda.")
    lines = [f"✅ Événement n°{view.id} {md_quote(view.title)} enregistré : {when_fr(view.start, view.end)}.",
             _where_announced(ctx, view),
             f"Rappels prévus : {reminders_text(ctx.config, plan)}.",
             *await event_warnings(ctx, view),
             f"Pour le modifier : `{ctx.prefix}evenement modifier {view.id} lieu=\"…\"` ; pour l'annuler : "
             f"`{ctx.prefix}evenement annuler {view.id} \"raison\"`."]
    ctx.reply("\n".join(lines))


# -- modifier ------------------------------------------------------------------------------------

@subcommand("evenement", "modifier", summary="changer la date, le lieu, le lien… (annonce de la modification)",
            usage="!evenement modifier <n°> [date=…] [heure=…] [fin=…] [lieu=…] [lien=…] [titre=…] "
                  "[public=…] [#mot-clé à ajouter] [-#mot-clé à retirer] [tags=a,b (remplace tout)]",
            examples=[EXAMPLE_EDIT, '!evenement modifier 3 titre="Inauguration du tiers-lieu Pixel"', EXAMPLE_TAGS],
            aliases=["changer", "corriger"])
async def modifier(ctx: Context, args: list[str]) -> None:
    event_id = record_id(ctx, args, "de l'événement", EXAMPLE_EDIT)
    a = split_args(ctx, args[1:], KEYS, EXAMPLE_EDIT)
    with domain_errors(ctx, EXAMPLE_EDIT):
        before = await svc(ctx).get(ctx.session, event_id)
    today = ctx.clock.today()
    when = find_when(ctx, a.words, today, a.quoted)
    if when.rest:
        raise UserError(f"Je n'ai pas compris {words_fr(when.rest)}. Les changements s'écrivent "
                        f"`champ=valeur`. Exemple : `{ex(ctx, EXAMPLE_EDIT)}`")
    day, start_t, end_t = when.day, when.start, when.end
    if "date" in a.options:
        day, t = parse_moment(ctx, a.options["date"], today, None, "la date", EXAMPLE_EDIT)
        start_t = t or start_t
    if "heure" in a.options:
        start_t = _time(ctx, a.options["heure"], EXAMPLE_EDIT)
    start = None
    if day is not None or start_t is not None:
        start = at(ctx.config, day or before.start.date(), start_t or before.start.time())
    new_day = (start or before.start).date()
    end = at(ctx.config, new_day, end_t) if end_t else None
    if "fin" in a.options:
        end = _end(ctx, a.options["fin"], new_day, EXAMPLE_EDIT)
    changes = EventChanges(
        title=a.options.get("titre"), start=start, end=end,
        location=clearable(a.options.get("lieu")), link=clearable(single_link(ctx, a, "événement", EXAMPLE_EDIT)),
        audience=(() if clearable(a.options["public"]) == "" else audience_keys(ctx, a.options["public"],
                                                                                  EXAMPLE_EDIT))
        if "public" in a.options else None,
        tags=tag_option(a.options["tags"]) if "tags" in a.options else None,
        add_tags=tuple(a.tags), remove_tags=tuple(a.untags),
        partner=organiser_key(ctx, a.options["organisateur"], EXAMPLE_EDIT) if "organisateur" in a.options else None)
    if changes.is_empty():
        raise UserError(f"Que faut-il modifier ? Exemple : `{ex(ctx, EXAMPLE_EDIT)}`")
    with domain_errors(ctx, EXAMPLE_EDIT):
        view, done = await svc(ctx).update(ctx.session, ctx.member, event_id, changes)
    await cancel_jobs(ctx.session, reminders_prefix(view.id))
    plan = schedule_reminders(ctx, view)
    lines = changes_lines(ctx, done)
    announce_event(ctx, view, svc(ctx).ics(view), "✏️ Événement modifié :", extra=lines,
                   footer=f"Événement n°{view.id} — le fichier joint met à jour votre agenda.")
    reply = [f"✅ Événement n°{view.id} modifié :"] + [f"- {line}" for line in lines]
    reply += [_where_announced(ctx, view, verb="Modification annoncée"),
              f"Rappels : {reminders_text(ctx.config, plan)}."]
    if any(c.field in ("when", "title") for c in done):
        reply += await event_warnings(ctx, view)
    ctx.reply("\n".join(reply))


# -- annuler -------------------------------------------------------------------------------------

@subcommand("evenement", "annuler", summary="annuler un événement (annonce et rappels annulés)",
            usage='!evenement annuler <n°> ["raison"]', examples=[EXAMPLE_CANCEL], aliases=["supprimer"])
async def annuler(ctx: Context, args: list[str]) -> None:
    event_id = record_id(ctx, args, "de l'événement", EXAMPLE_CANCEL)
    reason = " ".join(args[1:]).strip() or None
    with domain_errors(ctx, EXAMPLE_CANCEL):
        view = await svc(ctx).cancel(ctx.session, ctx.member, event_id, reason)
    await cancel_jobs(ctx.session, reminders_prefix(view.id))
    extra = [f"Raison : {md_escape(view.cancel_reason)}"] if view.cancel_reason else []
    announce_event(ctx, view, svc(ctx).ics(view), "❌ Événement annulé :", extra=extra,
                   footer=f"Événement n°{view.id} — le fichier joint le retire de votre agenda.")
    ctx.reply(f"✅ Événement n°{view.id} {md_quote(view.title)} annulé ; les rappels ne partiront pas.\n"
              f"{_where_announced(ctx, view, verb='Annulation annoncée')}")


# -- liste, voir ---------------------------------------------------------------------------------

@subcommand("evenement", "liste", summary="les événements à venir", usage="!evenement liste",
            examples=["!evenement liste"], aliases=["lister", "prochains"])
async def liste(ctx: Context, args: list[str]) -> None:
    views = await svc(ctx).upcoming(ctx.session, ctx.clock.now())
    if not views:
        ctx.reply(f"Aucun événement à venir pour l'instant. Pour en annoncer un : `{ex(ctx, EXAMPLE_ADD)}`")
        return
    lines = [f"📅 **Événements à venir** ({len(views)})"]
    for v in views:
        where = f" — {md_escape(v.location)}" if v.location else ""
        lines.append(f"- n°{v.id} · **{md_escape(v.title)}** — {when_fr(v.start, v.end)}{where} "
                     f"({md_escape(v.organiser)})")
    lines.append(f"Détail et fichier agenda : `{ctx.prefix}evenement voir <n°>` ; "
                 f"tout l'agenda : `{ctx.prefix}agenda`.")
    ctx.reply("\n".join(lines))


@subcommand("evenement", "voir", summary="le détail d'un événement et son fichier .ics",
            usage="!evenement voir <n°>", examples=[EXAMPLE_SHOW], aliases=["detail", "afficher"])
async def voir(ctx: Context, args: list[str]) -> None:
    event_id = record_id(ctx, args, "de l'événement", EXAMPLE_SHOW)
    with domain_errors(ctx, EXAMPLE_SHOW):
        view = await svc(ctx).get(ctx.session, event_id)
    extra = []
    if view.cancelled:
        extra.append("Cet événement est annulé" + (f" ({md_escape(view.cancel_reason)})." if view.cancel_reason
                                                    else "."))
    elif view.end <= ctx.clock.now():
        extra.append("Cet événement est passé.")
    if view.rooms:
        extra.append("Annoncé dans " + join_fr([room_label(ctx.config, r) for r in view.rooms]) + ".")
    ctx.reply(event_card(view, "📅", extra=extra, footer=f"Événement n°{view.id}"))
    ctx.reply_file(ics_filename(view), svc(ctx).ics(view), "text/calendar")


# -- helpers -------------------------------------------------------------------------------------

def _where_announced(ctx: Context, view: EventView, verb: str = "Annoncé") -> str:
    if not view.rooms:
        return ("⚠️ Aucun salon d'annonces n'est configuré : l'événement est enregistré mais n'a été annoncé nulle "
                "part (voir `rooms.announcements` dans la configuration).")
    n = len(view.rooms)
    labels = join_fr([room_label(ctx.config, r) for r in view.rooms])
    return f"{verb} dans {n} salon{'s' if n > 1 else ''} : {labels}."


def _time(ctx: Context, text: str, example: str) -> time:
    t = parse_time(text)
    if t is None:
        raise UserError(f"Heure illisible : {md_quote(text)}. Exemples : `18h`, `18h30`, `9:15`.\n"
                        f"Exemple : `{ex(ctx, example)}`")
    return t


def _end(ctx: Context, text: str, day: date, example: str) -> datetime:
    end_day, end_t = parse_moment(ctx, text, ctx.clock.today(), day, "la fin", example)
    if end_t is None:
        raise UserError(f"Précisez l'heure de fin : {md_quote(text)}. Exemples : `fin=21h`, `fin=\"16/01/2027 12h\"`.")
    return at(ctx.config, end_day, end_t)
