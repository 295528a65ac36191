"""!reunion — the network's gatherings: a date poll, answers by reaction, text or native poll,
automatic reminder and close, announcement with an .ics, reminders, moves and cancellations.

Reactions, their removal (redaction) and native poll answers arrive as EVENT_HANDLERS; the poll's
reminder and deadline and the reminders before a meeting are scheduled jobs (JOB_HANDLERS), kept in
the database so that they survive restarts.
"""

from __future__ import annotations

import re
from datetime import datetime, time

from commands._reunion import (ALL, ANSWER_LABELS, DEADLINE_TIME, EXAMPLE_DISPO, EXAMPLE_EXTEND, EXAMPLE_MOVE,
                               EXAMPLE_PROPOSE, EXAMPLE_PROPOSE_DATES, ICS_MIME, JOB_POLL_CLOSE, JOB_POLL_REMINDER,
                               JOB_REMINDER, NOTICE_AFTER_DEADLINE, InputError, meeting_rooms, assessed_note,
                               candidate_summary, closed_fr, coordinators, deadline_for, default_deadline,
                               end_native_poll, ex, fix_date, ics_name, meeting_number, notify_no_answers,
                               option_number, overlap_fr, parse_day, parse_dispo, parse_proposal, parse_time,
                               past_dates, pills, post_poll, q, reaction_answer, relative_fr, reminders_fr,
                               schedule_poll_jobs, schedule_reminders, status_fr, tally_text, user_errors, where_fr)
from ess_bot.config import role_allows
from ess_bot.formatting import date_fr, datetime_fr, join_fr, md_escape, minutes_fr
from ess_bot.framework.command import command, help_text, subcommand
from ess_bot.framework.context import Context, UserError
from ess_bot.scheduler import JobContext
from ess_bot.scheduler import cancel as cancel_jobs
from ess_bot.services.meetings import AlreadyClosed, MeetingService, NewMeeting, NoOpenPoll
from ess_bot.text import closest, fold

DETAILS = (
    "Les rencontres s'organisent dans le salon de coordination : un·e coordinateur·rice propose des dates "
    "(`proposer`), chaque membre répond pour **chaque date** oui / si besoin / non, le sondage se clôt tout seul "
    "à la date limite (ou avec `clore`) et la date retenue est annoncée avec un fichier agenda (.ics), puis "
    "rappelée avant la rencontre.\n"
    "Sans dates précises, je choisis moi-même : jamais un week-end, un jour férié ni un pont ; j'évite les "
    "vacances scolaires de la zone A (académies de Besançon et de Dijon), la période du 14 juillet au 25 août, "
    "les lundis et vendredis et les jours déjà pris par une rencontre ou un événement ; je préfère le mardi, le "
    "mercredi matin et le jeudi, à 9 h 30 ou 14 h, et un espacement régulier entre les rencontres de l'année. "
    "Des dates précises sont acceptées telles quelles, avec un avertissement si elles tombent mal.\n"
    "Répondre : réagissez à chaque date avec ✅ (oui), 🤔 (si besoin) ou ❌ (non) — retirer la réaction retire "
    "la réponse, la plus récente compte — ou tapez `!reunion dispo`. Le sondage Matrix natif « Quelle date vous "
    "convient le mieux ? » (un seul choix) compte comme un « oui » pour la date choisie, sauf si vous avez "
    "répondu explicitement (réaction ou `dispo`) pour cette date : la réponse explicite l'emporte. "
    "Qui répond : les conseiller·ère·s et les coordinateur·rice·s (les comptes administrateur·rice du bot sont "
    "techniques : ni mentionnés, ni comptés). "
    "Avant la clôture (deux jours avant, par défaut), je relance les membres qui n'ont pas répondu. La meilleure "
    "date a le moins de « non », puis le plus de « oui », puis le plus de « si besoin », puis est la plus tôt. "
    "Si personne n'a répondu à la date limite, je ne fixe rien : le sondage reste ouvert et je préviens les "
    "coordinateur·rice·s, qui choisissent une date (`clore <n°> date=<n°>`) ou repoussent la date limite "
    "(`prolonger <n°> <date>`).")


def service(ctx) -> MeetingService:
    return ctx.services.meetings


def require_coordination(ctx: Context, action: str) -> str:
    """Proposing, closing, moving and cancelling happen in the coordination room."""
    room = ctx.config.rooms.coordination
    p = ctx.prefix
    if not room:
        raise UserError("Aucun salon de coordination n'est configuré (`rooms.coordination`) : c'est là que "
                        "s'organisent les rencontres du réseau. Merci de demander à l'administrateur du bot de le "
                        "renseigner.")
    if ctx.event.room_id != room:
        raise UserError(f"Les rencontres du réseau s'organisent dans le salon de coordination : merci de {action} "
                        f"là-bas. Ici, vous pouvez consulter `{p}reunion prochaine`, `{p}reunion liste` et "
                        f"`{p}reunion etat`, et répondre avec `{p}reunion dispo`.")
    return room


async def no_open_poll(ctx: Context) -> str:
    """No poll is open: say so, with the date chosen by the poll closed last, if any."""
    p = ctx.prefix
    last = await service(ctx).latest_closed(ctx.session)
    if last is None:
        return (f"Aucun sondage de date n'est ouvert en ce moment. Pour voir les rencontres : `{p}reunion liste`.")
    over = last.ends_at <= ctx.clock.now()
    return (f"Aucun sondage de date n'est ouvert en ce moment. Le dernier, n°{last.id} {q(last.title)}, est clos : "
            f"la rencontre {'a eu lieu le' if over else 'aura lieu le'} **{datetime_fr(last.starts_at)}**"
            f"{where_fr(last)}. Tous les détails et le fichier agenda : `{p}reunion prochaine`.")


@command("reunion", group="Rencontres du réseau",
         summary="les rencontres du réseau : sondage de dates, réponses, annonce et rappels",
         usage="!reunion <action> …", aliases=["rencontre"],
         details=DETAILS)
async def reunion(ctx: Context, args: list[str]) -> None:
    p = ctx.prefix
    if args:
        names_ = [n for s in ctx.command.subcommands if role_allows(ctx.role, s.role) for n in s.names()]
        guess = closest(args[0], names_)
        hint = f" Vouliez-vous dire `{p}reunion {ctx.command.find_sub(guess).name}` ?" if guess else ""
        raise UserError(f"Action inconnue pour `{p}reunion` : {q(args[0])}.{hint}\n\n"
                        + help_text(ctx.command, ctx.role, p))
    raise UserError(help_text(ctx.command, ctx.role, p))


# -- proposing -----------------------------------------------------------------------------------------

@subcommand("reunion", "proposer", role="coordinator",
            summary="ouvrir un sondage de dates (dates choisies par le bot, ou dates précises)",
            usage='!reunion proposer ["Titre"] [entre <date> et <date>] [n=4] [durée=3h] [lieu=…] [limite=<date>] '
                  '| ["Titre"] <date heure>, <date heure>…',
            examples=[EXAMPLE_PROPOSE, EXAMPLE_PROPOSE_DATES, "!reunion proposer"])
async def proposer(ctx: Context, args: list[str]) -> None:
    room = require_coordination(ctx, "lancer le sondage")
    svc = service(ctx)
    settings = ctx.config.meetings
    now = ctx.clock.now()
    notes: list[str] = []
    warnings: list[str] = []
    with user_errors(ctx, EXAMPLE_PROPOSE):
        prop = parse_proposal(args, ctx.clock.today(), ctx.clock.tz, settings, ctx.prefix)
        if prop.explicit:
            past_dates(prop, now)
            starts = sorted(prop.explicit)
            for start, cand in zip(starts, await svc.assess_dates(ctx.session, starts, prop.duration)):
                note = assessed_note(cand)
                notes.append(note)
                if note:
                    warnings.append(f"{datetime_fr(start)} : {md_escape(note[2:].strip())}")
            chosen = "Dates données"
        else:
            tentative = prop.deadline_day or default_deadline(now, settings).date()
            window, candidates = await svc.suggest(ctx.session, window=prop.window, n=prop.n,
                                                   duration_minutes=prop.duration,
                                                   not_before=tentative + NOTICE_AFTER_DEADLINE)
            if not candidates:
                raise InputError(f"Aucune date possible entre le {date_fr(window.start)} et le {date_fr(window.end)} "
                                 "(week-ends, jours fériés et ponts exclus). Élargissez la fenêtre, par exemple "
                                 "`entre 1/03 et 15/04`.")
            candidates = sorted(candidates, key=lambda c: c.start)
            starts = [c.start for c in candidates]
            notes = [candidate_summary(c) for c in candidates]
            chosen = f"Dates choisies entre le {date_fr(window.start)} et le {date_fr(window.end)}"
            wanted = prop.n or settings.candidates
            if len(candidates) < wanted:
                chosen += f" (seulement {len(candidates)} possibles sur les {wanted} demandées)"
        deadline = deadline_for(prop, starts[0], now, settings)
        warnings += [overlap_fr(o) for o in await svc.overlapping_polls(ctx.session, starts)]
        view = await svc.propose(ctx.session, NewMeeting(
            title=prop.title, starts=tuple(starts), location=prop.location, duration_minutes=prop.duration,
            deadline=deadline, room_id=room, created_by=ctx.event.sender,
            native_poll=settings.native_poll and len(starts) >= 2, notes=tuple(notes)))
    post_poll(ctx, ctx.config, view, svc.voter_ids())
    reminder_at = schedule_poll_jobs(ctx, ctx.session, ctx.clock, settings, view)
    p = ctx.prefix
    count = f"{len(view.options)} dates" if len(view.options) > 1 else "une date"
    lines = [f"✅ Sondage n°{view.id} ouvert ci-dessous : {count}, réponses jusqu'au "
             f"{datetime_fr(view.deadline)}. {chosen}."]
    if reminder_at:
        lines.append(f"Je relancerai les membres sans réponse le {datetime_fr(reminder_at)}, puis je clôturerai "
                     f"le sondage à la date limite (ou plus tôt : `{p}reunion clore {view.id}`).")
    else:
        lines.append(f"Je clôturerai le sondage à la date limite (ou plus tôt : `{p}reunion clore {view.id}`).")
    if warnings:
        lines.append("⚠️ Attention — " + " ; ".join(warnings) + ". Dates acceptées quand même ; pour recommencer : "
                     f"`{p}reunion annuler {view.id}`.")
    ctx.reply("\n".join(lines))


# -- answering -----------------------------------------------------------------------------------------

def answers_text(ctx, view, answers: dict[int, str]) -> str:
    lines = []
    for o in view.options:
        given = answers.get(o.position)
        lines.append(f"- n°{o.position} {datetime_fr(o.starts_at)} : "
                     + (f"**{ANSWER_LABELS[given]}**" if given else "*pas de réponse*"))
    return "\n".join(lines)


@subcommand("reunion", "dispo", aliases=["disponibilites", "disponibilités", "repondre", "répondre", "vote"],
            summary="répondre au sondage sans réaction : oui / si besoin / non pour chaque date",
            usage="!reunion dispo [n° sondage] 1=oui 2=sibesoin 3=non | !reunion dispo [n° sondage] 2 oui",
            examples=[EXAMPLE_DISPO, "!reunion dispo 2 si besoin", "!reunion dispo 4 tout=non"])
async def dispo(ctx: Context, args: list[str]) -> None:
    svc = service(ctx)
    p = ctx.prefix
    if not svc.is_voter(ctx.event.sender):
        raise UserError("Les sondages de dates attendent les réponses des conseiller·ère·s et des "
                        "coordinateur·rice·s ; votre compte est un compte administrateur·rice (technique) : "
                        f"ses réponses ne sont pas comptées. Pour voir où en est le sondage : `{p}reunion etat`.")
    if not args:
        with user_errors(ctx, EXAMPLE_DISPO, several="!reunion dispo {id}"):
            try:
                view = await svc.find_poll(ctx.session, None)
            except NoOpenPoll:
                raise UserError(await no_open_poll(ctx)) from None
        answers = await svc.answers_of(ctx.session, view.id, ctx.event.sender)
        ctx.reply(f"Vos réponses au sondage n°{view.id} {q(view.title)} :\n{answers_text(ctx, view, answers)}\n"
                  f"Pour répondre : `{ex(ctx, EXAMPLE_DISPO)}` (oui, si besoin, non) ou `{p}reunion dispo 2 oui`.")
        return
    with user_errors(ctx, EXAMPLE_DISPO, several="!reunion dispo {id} 1=oui 2=sibesoin 3=non"):
        meeting_id, pairs = parse_dispo(args, p)
        try:
            view = await svc.find_poll(ctx.session, meeting_id)
        except NoOpenPoll:
            raise UserError(await no_open_poll(ctx)) from None
        if not view.is_poll:
            raise UserError(closed_fr(view) + (f" Détails : `{p}reunion prochaine`." if view.is_fixed else ""))
        wanted: dict[int, str] = {}
        for position, answer in pairs:
            for pos in ([o.position for o in view.options] if position == ALL else [position]):
                wanted[pos] = answer
        answers = await svc.answer(ctx.session, view.id, ctx.event.sender, wanted, source="text",
                                   event_id=ctx.event.event_id)
    ctx.reply(f"✅ C'est noté, {md_escape(ctx.member.display)} — sondage n°{view.id} {q(view.title)} :\n"
              f"{answers_text(ctx, view, answers)}\n"
              f"Vous pouvez changer d'avis jusqu'au {datetime_fr(view.deadline)} (la réponse la plus récente compte).")


@subcommand("reunion", "etat", aliases=["état", "resultats", "résultats", "sondage"],
            summary="où en est le sondage : réponses par date, qui n'a pas répondu, meilleure date",
            usage="!reunion etat [n°]", examples=["!reunion etat", "!reunion etat 3"])
async def etat(ctx: Context, args: list[str]) -> None:
    svc = service(ctx)
    if len(args) > 1:
        raise UserError(f"Je n'ai pas compris {q(' '.join(args[1:]))}. Exemple : `{ex(ctx, '!reunion etat 3')}`")
    meeting_id = meeting_number(args[0], "!reunion etat 3", ctx.prefix) if args else None
    with user_errors(ctx, "!reunion etat 3", several="!reunion etat {id}"):
        try:
            view = await svc.find_poll(ctx.session, meeting_id)
        except NoOpenPoll:
            raise UserError(await no_open_poll(ctx)) from None
        tally = await svc.tally(ctx.session, view.id)
    ctx.reply(tally_text(tally, ctx.config, ctx.clock.now()))


# -- closing, cancelling, moving --------------------------------------------------------------------------

@subcommand("reunion", "clore", aliases=["cloturer", "clôturer", "fermer", "fixer"], role="coordinator",
            summary="clore le sondage : la meilleure date (ou celle indiquée) est annoncée avec son .ics",
            usage="!reunion clore [n° sondage] [date=n°]", examples=["!reunion clore", "!reunion clore 3 date=2"])
async def clore(ctx: Context, args: list[str]) -> None:
    require_coordination(ctx, "clore le sondage")
    example = "!reunion clore 3 date=2"
    meeting_id = position = None
    rest = list(args)
    with user_errors(ctx, example):
        for token in list(rest):
            m = re.match(r"^(?:date\s*=\s*|n°\s*=?\s*|no\s*=\s*)(.+)$", fold(token))
            if m:
                position = option_number(m.group(1), example, ctx.prefix)
                rest.remove(token)
        if rest:
            meeting_id = meeting_number(rest.pop(0), example, ctx.prefix)
        if rest and position is None:
            position = option_number(rest.pop(0), example, ctx.prefix)
    if rest:
        raise UserError(f"Je n'ai pas compris {q(' '.join(rest))}. Exemple : `{ex(ctx, example)}`")
    svc = service(ctx)
    with user_errors(ctx, example, several="!reunion clore {id}"):
        view = await svc.find_poll(ctx.session, meeting_id)
        if not view.is_poll:
            raise UserError(closed_fr(view))
        try:
            await fix_date(ctx, ctx.session, ctx.config, ctx.clock, svc, view.id, ctx.event.sender, position)
        except AlreadyClosed as exc:   # closed a moment ago by the deadline (or another coordinator)
            raise UserError(closed_fr(exc.meeting)) from None


@subcommand("reunion", "prolonger", aliases=["rallonger", "repousser"], role="coordinator",
            summary="repousser la date limite d'un sondage (la relance et la clôture sont reprogrammées)",
            usage="!reunion prolonger <n°> <date> [heure]", examples=[EXAMPLE_EXTEND])
async def prolonger(ctx: Context, args: list[str]) -> None:
    require_coordination(ctx, "prolonger le sondage")
    p = ctx.prefix
    if len(args) < 2:
        raise UserError(f"Indiquez le numéro du sondage et sa nouvelle date limite. "
                        f"Exemple : `{ex(ctx, EXAMPLE_EXTEND)}` (à 18 h sauf heure précisée).")
    meeting_id = meeting_number(args[0], EXAMPLE_EXTEND, p)
    svc = service(ctx)
    tz = ctx.clock.tz
    with user_errors(ctx, EXAMPLE_EXTEND):
        current = await svc.get(ctx.session, meeting_id)
        if not current.is_poll:
            raise UserError(closed_fr(current))
        words = list(args[1:])
        at = parse_time(words[-1]) if len(words) > 1 else None
        if at is not None:
            words = words[:-1]
        if words and fold(words[-1]) in ("a", "à"):
            words = words[:-1]
        day = parse_day(" ".join(words), ctx.clock.today())
        view = await svc.extend(ctx.session, meeting_id, datetime.combine(day, at or DEADLINE_TIME, tzinfo=tz))
        tally = await svc.tally(ctx.session, view.id)
    await cancel_jobs(ctx.session, f"meeting:{view.id}:poll:")
    revision = view.deadline.astimezone(tz).strftime(":%Y%m%d%H%M")
    reminder_at = schedule_poll_jobs(ctx, ctx.session, ctx.clock, ctx.config.meetings, view, revision=revision)
    waiting = list(tally.not_answered)
    text = (f"⏳ **Sondage n°{view.id} — {md_escape(view.title)}** : la date limite est repoussée au "
            f"**{datetime_fr(view.deadline)}**.")
    if waiting:
        text += (f"\n{pills(ctx.config, waiting)} : il manque votre réponse. Réagissez aux dates du sondage "
                 f"(✅ oui · 🤔 si besoin · ❌ non) ou tapez `{p}reunion dispo {view.id} 1=oui 2=sibesoin 3=non`.")
    ctx.announce(view.room_id, text, mentions=waiting)
    lines = [f"✅ Sondage n°{view.id} : réponses jusqu'au {datetime_fr(view.deadline)}."]
    if reminder_at:
        lines.append(f"Je relancerai les membres sans réponse le {datetime_fr(reminder_at)}, puis je clôturerai le "
                     "sondage à la date limite.")
    else:
        lines.append("Je clôturerai le sondage à la date limite.")
    ctx.reply(" ".join(lines))


@subcommand("reunion", "annuler", role="coordinator",
            summary="annoncer l'annulation d'une rencontre (ou d'un sondage), avec son .ics d'annulation",
            usage='!reunion annuler <n°> ["raison"]', examples=['!reunion annuler 3 "grève des transports"'])
async def annuler(ctx: Context, args: list[str]) -> None:
    require_coordination(ctx, "annuler une rencontre")
    example = '!reunion annuler 3 "grève des transports"'
    if not args:
        raise UserError(f"Indiquez le numéro de la rencontre à annuler. Exemple : `{ex(ctx, example)}` "
                        f"(les numéros : `{ctx.prefix}reunion liste`).")
    meeting_id = meeting_number(args[0], example, ctx.prefix)
    reason = " ".join(args[1:])
    svc = service(ctx)
    with user_errors(ctx, example):
        before = await svc.get(ctx.session, meeting_id)
        view = await svc.cancel(ctx.session, meeting_id, ctx.event.sender, reason)
    await cancel_jobs(ctx.session, f"meeting:{view.id}:")
    config = ctx.config
    members = svc.voter_ids()
    why = f"\nRaison : {md_escape(view.cancel_reason)}" if view.cancel_reason else ""
    if before.is_poll:
        if before.native_poll:
            await end_native_poll(ctx, ctx.session, svc, view, "Sondage annulé.")
        ctx.announce(view.room_id, f"❌ Le sondage n°{view.id} {q(view.title)} est annulé par "
                                   f"{md_escape(ctx.member.display)} : inutile d'y répondre.{why}\n"
                                   f"{pills(config, members)}",
                     mentions=members)
        return
    text = (f"❌ **{md_escape(view.title)}** du {datetime_fr(view.starts_at)}{where_fr(view)} est **annulée**.{why}\n"
            f"Le fichier agenda ci-joint la retire de votre calendrier ; les rappels sont supprimés.\n"
            f"{pills(config, members)}")
    data = svc.ics(view)
    for room in meeting_rooms(config, view):
        ctx.announce(room, text, mentions=members)
        ctx.announce_file(room, ics_name(view), data, ICS_MIME)


@subcommand("reunion", "deplacer", aliases=["déplacer", "reporter", "decaler", "décaler"], role="coordinator",
            summary="changer la date d'une rencontre fixée (annonce, .ics mis à jour, rappels reprogrammés)",
            usage="!reunion deplacer <n°> <date> [heure]", examples=[EXAMPLE_MOVE])
async def deplacer(ctx: Context, args: list[str]) -> None:
    require_coordination(ctx, "déplacer une rencontre")
    if len(args) < 2:
        raise UserError(f"Indiquez le numéro de la rencontre et sa nouvelle date. Exemple : `{ex(ctx, EXAMPLE_MOVE)}`")
    meeting_id = meeting_number(args[0], EXAMPLE_MOVE, ctx.prefix)
    svc = service(ctx)
    tz = ctx.clock.tz
    with user_errors(ctx, EXAMPLE_MOVE):
        current = await svc.get(ctx.session, meeting_id)
        words = list(args[1:])
        at = parse_time(words[-1]) if len(words) > 1 else None
        if at is not None:
            words = words[:-1]
        if words and fold(words[-1]) in ("a", "à"):
            words = words[:-1]
        day = parse_day(" ".join(words), ctx.clock.today())
        if at is None:
            at = current.starts_at.time() if current.starts_at else time(14, 0)
        moved = await svc.move(ctx.session, meeting_id, ctx.event.sender, datetime.combine(day, at, tzinfo=tz))
        assessed = (await svc.assess_dates(ctx.session, [moved.meeting.starts_at], current.duration_minutes,
                                           exclude=meeting_id))[0]
    view = moved.meeting
    await cancel_jobs(ctx.session, f"meeting:{view.id}:reminder:")
    planned = schedule_reminders(ctx, ctx.session, ctx.clock, ctx.config.meetings, view)
    config = ctx.config
    members = svc.voter_ids()
    text = (f"🔁 **{md_escape(view.title)}** change de date : elle aura lieu le **{datetime_fr(view.starts_at)}** "
            f"({minutes_fr(view.duration_minutes)}){where_fr(view)}, au lieu du {datetime_fr(moved.before)}.\n"
            "Le fichier agenda ci-joint met à jour votre calendrier"
            + (f" ; rappels reprogrammés : {reminders_fr(planned)}." if planned else ".")
            + f"\n{pills(config, members)}")
    data = svc.ics(view)
    for room in meeting_rooms(config, view):
        ctx.announce(room, text, mentions=members)
        ctx.announce_file(room, ics_name(view), data, ICS_MIME)
    note = assessed_note(assessed)
    if note:
        ctx.reply(f"{md_escape(note)} — c'est fait quand même ; `{ctx.prefix}reunion deplacer {view.id} <date>` pour changer "
                  "encore.")


# -- reading ------------------------------------------------------------------------------------------------

def coordinators_text(ctx: Context) -> str:
    return join_fr([md_escape(m.display) for m in coordinators(ctx.config)]) or "l'équipe de coordination"


@subcommand("reunion", "prochaine", aliases=["prochain", "suivante", "quand"],
            summary="la prochaine rencontre (avec son .ics), ou le sondage en cours",
            usage="!reunion prochaine", examples=["!reunion prochaine"])
async def prochaine(ctx: Context, args: list[str]) -> None:
    svc = service(ctx)
    p = ctx.prefix
    nxt = await svc.next_meeting(ctx.session)
    polls = await svc.open_polls(ctx.session)
    poll_lines = [f"Sondage n°{v.id} {q(v.title)} en cours : réponses jusqu'au {datetime_fr(v.deadline)} "
                  f"(`{p}reunion etat {v.id}`, `{p}reunion dispo {v.id} 1=oui 2=non`)." for v in polls]
    if nxt is not None:
        text = (f"📅 Prochaine rencontre du réseau : **{datetime_fr(nxt.starts_at)}**{where_fr(nxt)} — "
                f"{relative_fr(ctx.clock.today(), nxt.starts_at.date())}.\n"
                f"{q(nxt.title)} (n°{nxt.id}, {minutes_fr(nxt.duration_minutes)}) ; le fichier agenda suit.")
        ctx.reply("\n".join([text] + poll_lines))
        ctx.reply_file(ics_name(nxt), svc.ics(nxt), ICS_MIME)
        return
    if poll_lines:
        ctx.reply("Aucune date n'est encore fixée.\n" + "\n".join(poll_lines))
        return
    ctx.reply("Aucune rencontre du réseau n'est prévue pour le moment. Les coordinateur·rice·s "
              f"({coordinators_text(ctx)}) peuvent lancer un sondage de dates avec `{p}reunion proposer`.")


@subcommand("reunion", "liste", aliases=["lister", "toutes"],
            summary="les sondages ouverts, les rencontres à venir et les dernières passées ou annulées",
            usage="!reunion liste", examples=["!reunion liste"])
async def liste(ctx: Context, args: list[str]) -> None:
    views = await service(ctx).list_meetings(ctx.session)
    if not views:
        ctx.reply("Aucune rencontre ni sondage pour le moment. Les coordinateur·rice·s "
                  f"({coordinators_text(ctx)}) peuvent en lancer un avec `{ctx.prefix}reunion proposer`.")
        return
    now = ctx.clock.now()
    lines = ["**Rencontres du réseau**"] + [f"- n°{v.id} — {md_escape(v.title)} — {status_fr(v, now)}" for v in views]
    ctx.reply("\n".join(lines))


# -- reactions, their removal, native poll answers ------------------------------------------------------------

async def on_reaction(ctx: Context) -> None:
    """✅ / 🤔 / ❌ on a date of an open poll: the member's answer for that date."""
    ev = ctx.event
    answer = reaction_answer(ev.key or "")
    if ctx.member is None or answer is None or not ev.relates_to:
        return
    svc = service(ctx)
    target = await svc.option_of_event(ctx.session, ev.relates_to)
    if target is None:
        return
    meeting_id, position = target
    try:
        await svc.answer(ctx.session, meeting_id, ev.sender, {position: answer}, source="reaction",
                         event_id=ev.event_id)
    except AlreadyClosed:
        return   # closed a moment ago: a reaction after the end is ignored, like a late native answer


async def on_redaction(ctx: Context) -> None:
    """A removed reaction (or a removed ``!reunion dispo`` message) withdraws the answers it carried."""
    if ctx.event.relates_to:
        await service(ctx).withdraw(ctx.session, ctx.event.relates_to)


async def on_poll_response(ctx: Context) -> None:
    """A native poll answer: « oui » for the chosen date (unless answered explicitly); latest wins."""
    ev = ctx.event
    if ctx.member is None or not ev.relates_to:
        return
    svc = service(ctx)
    meeting_id = await svc.poll_of_event(ctx.session, ev.relates_to)
    if meeting_id is None:
        return
    positions = [int(a) for a in ev.answers if re.fullmatch(r"[0-9]{1,3}", str(a))]
    await svc.poll_response(ctx.session, meeting_id, ev.sender, positions, event_id=ev.event_id)


EVENT_HANDLERS = {"reaction": on_reaction, "redaction": on_redaction, "poll_response": on_poll_response}


# -- scheduled jobs --------------------------------------------------------------------------------------------

async def poll_reminder_job(ctx: JobContext) -> None:
    """N days before the deadline: mention the members who have not answered yet."""
    svc: MeetingService = ctx.services.meetings
    view = await svc.get(ctx.session, ctx.job.payload["meeting_id"])
    if not view.is_poll:
        ctx.status, ctx.note = "skipped", "poll no longer open"
        return
    if ctx.clock.now() >= view.deadline:
        ctx.status, ctx.note = "skipped", "deadline already passed"
        return
    tally = await svc.tally(ctx.session, view.id)
    if not tally.not_answered:
        ctx.status, ctx.note = "skipped", "everybody answered"
        return
    p = ctx.config.bot.command_prefix
    days = (view.deadline.date() - ctx.clock.today()).days
    left = (f"plus que {days} jours pour répondre" if days > 1 else
            "dernier délai demain pour répondre" if days == 1 else "dernier jour pour répondre")
    text = (f"⏳ **Sondage n°{view.id} — {md_escape(view.title)}** : {left} (jusqu'au {datetime_fr(view.deadline)}).\n"
            f"{pills(ctx.config, tally.not_answered)} : il manque votre réponse. Réagissez aux dates du sondage "
            f"(✅ oui · 🤔 si besoin · ❌ non) ou tapez `{p}reunion dispo {view.id} 1=oui 2=sibesoin 3=non`.")
    if ctx.late:
        text += (f"\n*(Relance prévue le {datetime_fr(ctx.job.run_at.astimezone(ctx.clock.tz))}, envoyée en retard : "
                 "le bot était indisponible.)*")
    ctx.announce(view.room_id, text, mentions=list(tally.not_answered))


async def poll_close_job(ctx: JobContext) -> None:
    """At the deadline: fix the best date and announce it — unless nobody answered: then the poll stays
    open and the coordinators are told how to go on."""
    svc: MeetingService = ctx.services.meetings
    view = await svc.get(ctx.session, ctx.job.payload["meeting_id"])
    if not view.is_poll:
        ctx.status, ctx.note = "skipped", "poll no longer open"
        return
    tally = await svc.tally(ctx.session, view.id)
    if tally.answered == 0:
        notify_no_answers(ctx, ctx.config, ctx.clock, view, late=ctx.late)
        ctx.note = "nobody answered: poll kept open, coordinators told"
        return
    try:
        await fix_date(ctx, ctx.session, ctx.config, ctx.clock, svc, view.id, None, late=ctx.late)
    except AlreadyClosed:
        ctx.status, ctx.note = "skipped", "poll closed meanwhile"


async def reminder_job(ctx: JobContext) -> None:
    """J-N before a fixed meeting; sent late if the bot was down, skipped once the meeting has begun."""
    svc: MeetingService = ctx.services.meetings
    payload = ctx.job.payload
    view = await svc.get(ctx.session, payload["meeting_id"])
    if not view.is_fixed or payload.get("sequence", view.sequence) != view.sequence:
        ctx.status, ctx.note = "skipped", f"meeting {view.status}, sequence {view.sequence}"
        return
    now = ctx.clock.now()
    if now >= view.starts_at:
        ctx.status, ctx.note = "skipped", "the meeting has already begun"
        return
    if ctx.late and await svc.later_reminder_due(ctx.session, view.id, ctx.job.run_at):
        # missed while the bot was down: a later reminder that is due too says it all
        ctx.status, ctx.note = "skipped", "a later reminder is due as well"
        return
    members = svc.voter_ids()
    when = relative_fr(ctx.clock.today(), view.starts_at.date())
    text = (f"⏰ Rappel : **{md_escape(view.title)}** {when}, {datetime_fr(view.starts_at)}"
            f" ({minutes_fr(view.duration_minutes)}){where_fr(view)}.\n{pills(ctx.config, members)}")
    if ctx.late:
        text += (f"\n*(Rappel prévu le {datetime_fr(ctx.job.run_at.astimezone(ctx.clock.tz))}, envoyé en retard : "
                 "le bot était indisponible.)*")
    ctx.announce(ctx.config.rooms.coordination or view.room_id, text, mentions=members)


JOB_HANDLERS = {JOB_POLL_REMINDER: poll_reminder_job, JOB_POLL_CLOSE: poll_close_job, JOB_REMINDER: reminder_job}
