"""!suivi — log an accompaniment session in one line; list, history, modify, cancel.

Redacting the ``!suivi`` message cancels the record it created (EVENT_HANDLERS below).
"""

from __future__ import annotations

import re

from commands._accompaniment import (actor, changes_text, ex, member_name, outcome_text, partner_name,
                                     record_line, record_number, record_summary, referral_line,
                                     require_private_place, service, tokens, user_errors)
from ess_bot.formatting import join_fr, minutes_fr
from ess_bot.framework.command import command, help_text, subcommand
from ess_bot.framework.context import Context, UserError
from ess_bot.framework.messages import Outgoing, render_markdown
from ess_bot.parsing import RecordLine, parse_record_line, quote
from ess_bot.services.accompaniments import AccompanimentChanges, AccompanimentError, NewAccompaniment, NotFound

EXAMPLE = "!suivi P-7K3Q émergence 1h30 hier"
DETAILS = (
    "Les éléments se donnent dans n'importe quel ordre : le projet (son code `P-7K3Q` ou un morceau de son nom, "
    "entre guillemets s'il contient plusieurs mots), la phase (accueil, émergence, ante-création, financement, "
    "lancement, post-création — les premières lettres suffisent), la durée (`1h30`, `45min`), la date "
    "(aujourd'hui par défaut : `hier`, `mardi`, `12/11`…), la modalité (individuel par défaut, ou collectif, "
    "atelier, permanence, visio, téléphone), une note entre guillemets (280 caractères, sans nom ni coordonnées) "
    "et des thèmes (`themes=juridique,financement`).")


@command("suivi", group="Accompagnement", summary="enregistrer un suivi d'accompagnement en une ligne",
         usage='!suivi <projet> <phase> <durée> [date] [modalité] ["note"] [themes=…]',
         examples=[EXAMPLE, '!suivi "Café culturel Pixel" ante 2h mardi visio themes=juridique',
                   '!suivi Pixel financement 45min le 12/11 "dossier France Active"'],
         details=DETAILS)
async def suivi(ctx: Context, args: list[str]) -> None:
    if not args:
        raise UserError(help_text(ctx.command, ctx.role, ctx.prefix))
    svc = service(ctx)
    with user_errors(ctx, EXAMPLE):
        line = parse_record_line(tokens(ctx, args), ctx.clock.now(), ctx.services.dates, example=ex(ctx, EXAMPLE))
    ref, words, note = _project_and_note(ctx, line)
    code = await _resolve(ctx, ref, words) if ref is not None else None  # first: names words not understood
    missing = [what for what, value in (("le projet (son code ou son nom)", code), ("la phase", line.phase),
                                        ("la durée", line.duration)) if value is None]
    if missing:
        example = EXAMPLE.replace("P-7K3Q", code) if code else EXAMPLE
        raise UserError(f"Il manque {join_fr(missing)}. Exemple : `{ex(ctx, example)}`\n"
                        f"(Détails : `{ctx.prefix}aide suivi`.)")
    with user_errors(ctx, EXAMPLE):
        view = await svc.log_accompaniment(ctx.session, actor(ctx), NewAccompaniment(
            project=code, date=line.date or ctx.clock.today(), phase=line.phase, duration_minutes=line.duration,
            modality=line.modality or "individuel", themes=line.themes or (), note=note,
            source_event_id=ctx.event.event_id))
    text = f"✅ Suivi n°{view.id} enregistré — {record_summary(view)}"
    if view.note:
        text += f"\nNote : « {view.note} »"
    text += (f"\nPour l'annuler : `{ctx.prefix}suivi annuler {view.id}` (ou supprimez votre message) ; "
             f"pour le corriger : `{ctx.prefix}suivi modifier {view.id} durée=2h`.")
    ctx.reply(text)


def _project_and_note(ctx: Context, line: RecordLine) -> tuple[str | None, list[str], str | None]:
    """Which text names the project, the bare words it came from, and the note."""
    quoted = list(line.quoted)
    ref: str | None = line.project_code or line.project_option
    words: list[str] = []
    if ref is not None:
        if line.project_words:
            raise UserError(f"Je n'ai pas compris {join_fr([quote(w) for w in line.project_words])}. "
                            f"Exemple : `{ex(ctx, EXAMPLE)}`")
    elif line.project_words:
        words = list(line.project_words)
        ref = " ".join(words)
    elif quoted:
        ref = quoted.pop(0)
    notes = quoted + ([line.note] if line.note else [])
    if len(notes) > 1:
        raise UserError("Une seule note par suivi, entre guillemets (j'en vois "
                        f"{len(notes)} : {join_fr([quote(n) for n in notes])}). "
                        f"Exemple : `{ex(ctx, EXAMPLE)} \"premier rendez-vous\"`")
    return ref, words, (notes[0] if notes else None)


async def _resolve(ctx: Context, ref: str, words: list[str]) -> str:
    """The project's code. When bare words name no project, say which word was not understood."""
    svc, who = service(ctx), actor(ctx)
    try:
        return (await svc.find_project(ctx.session, who, ref)).code
    except NotFound as exc:
        not_found = exc
    except AccompanimentError:  # ambiguous label: the message shows an example with a real code
        with user_errors(ctx, EXAMPLE):
            raise
    if len(words) >= 2:
        hits: dict[int, str] = {}
        for i, word in enumerate(words):
            if len(word) < 3:  # "a", "la": would match too much
                continue
            try:
                hits[i] = (await svc.find_project(ctx.session, who, word)).code
            except AccompanimentError:
                continue
        others = [w for i, w in enumerate(words) if i not in hits]
        if len(set(hits.values())) == 1 and others:
            raise UserError(f"Je n'ai pas compris {join_fr([quote(w) for w in others])} (le projet, lui, est "
                            f"bien {next(iter(hits.values()))}). Pour une phase ou une modalité, écrivez au moins "
                            "3 lettres ; un nom de projet en plusieurs mots se met entre guillemets. "
                            f"Exemple : `{ex(ctx, EXAMPLE)}`")
    raise UserError(f"{not_found.message}\nVos projets : `{ctx.prefix}projet liste`. Exemple : `{ex(ctx, EXAMPLE)}`")


@subcommand("suivi", "liste", summary="vos derniers suivis (10 par défaut)", usage="!suivi liste [nombre]",
            examples=["!suivi liste", "!suivi liste 30"], aliases=["derniers", "mes"])
async def liste(ctx: Context, args: list[str]) -> None:
    require_private_place(ctx, "la liste de vos suivis", "!suivi liste")
    limit = 10
    if args:
        if len(args) > 1 or not re.fullmatch(r"[0-9]{1,3}", args[0]) or not 1 <= int(args[0]) <= 100:
            raise UserError(f"Nombre de suivis attendu entre 1 et 100 (reçu : {quote(' '.join(args))}). "
                            f"Exemple : `{ctx.prefix}suivi liste 20`")
        limit = int(args[0])
    views = await service(ctx).list_own(ctx.session, actor(ctx), limit)
    if not views:
        ctx.reply(f"Vous n'avez encore enregistré aucun suivi. Exemple : `{ex(ctx, EXAMPLE)}`")
        return
    total = sum(v.duration_minutes for v in views)
    head = "Votre dernier suivi" if len(views) == 1 else f"Vos {len(views)} derniers suivis"
    lines = [f"**{head}** ({minutes_fr(total)} au total) :"]
    lines += [f"- {record_line(ctx, v)}" for v in views]
    ctx.reply("\n".join(lines))


@subcommand("suivi", "projet", summary="l'historique d'un projet, toutes structures confondues",
            usage="!suivi projet <code ou nom>", examples=["!suivi projet P-7K3Q"], aliases=["historique"])
async def historique(ctx: Context, args: list[str]) -> None:
    if not args:
        raise UserError(f"Quel projet ? Exemple : `{ctx.prefix}suivi projet P-7K3Q`")
    require_private_place(ctx, "l'historique d'un projet", f"!suivi projet {' '.join(args)}")
    with user_errors(ctx, "!suivi projet P-7K3Q"):
        history = await service(ctx).project_history(ctx.session, actor(ctx), " ".join(args))
    p = history.project
    lines = [f"**Historique de {p.label}** ({p.code}) — porté par {partner_name(ctx, p.partner)}"]
    if not history.accompaniments:
        lines.append(f"Aucun suivi enregistré. Exemple : `{ctx.prefix}suivi {p.code} accueil 1h`")
    else:
        totals = ", ".join(f"{partner_name(ctx, t.partner)} : {t.sessions} suivi{'s' if t.sessions > 1 else ''}, "
                           f"{minutes_fr(t.minutes)}" for t in history.totals)
        lines.append(f"Total : {totals}")
        lines += [f"- {record_line(ctx, v, advisor=True, with_project=False)}" for v in history.accompaniments]
    if history.referrals:
        lines.append("Orientations :")
        lines += [f"- {referral_line(ctx, r)}" for r in history.referrals]
    if p.outcome:
        lines.append(f"Issue : {outcome_text(p.outcome)} (enregistrée par {member_name(ctx, p.outcome.recorded_by)})")
    ctx.reply("\n".join(lines))


MODIFY_EXAMPLE = "!suivi modifier 42 durée=2h"


@subcommand("suivi", "modifier", summary="corriger un suivi (le vôtre, ou tout suivi pour un·e coordinateur·rice)",
            usage="!suivi modifier <n°> <champ=valeur…>",
            examples=[MODIFY_EXAMPLE, "!suivi modifier 42 date=hier phase=financement", "!suivi modifier 42 visio",
                      "!suivi modifier 42 note=-"], aliases=["corriger"])
async def modifier(ctx: Context, args: list[str]) -> None:
    number = record_number(ctx, args[0] if args else None, MODIFY_EXAMPLE)
    with user_errors(ctx, MODIFY_EXAMPLE):
        line = parse_record_line(tokens(ctx, args)[1:], ctx.clock.now(), ctx.services.dates,
                                 example=ex(ctx, MODIFY_EXAMPLE))
    if line.project_words:
        raise UserError(f"Je n'ai pas compris {join_fr([quote(w) for w in line.project_words])}. Pour changer de "
                        f"projet : `{ctx.prefix}suivi modifier {number} projet=P-7K3Q`. Exemple : "
                        f"`{ex(ctx, MODIFY_EXAMPLE)}`")
    notes = list(line.quoted) + ([line.note] if line.note is not None else [])
    if len(notes) > 1:
        raise UserError(f"Une seule note par suivi (j'en vois {len(notes)}). Exemple : "
                        f"`{ctx.prefix}suivi modifier {number} note=\"premier rendez-vous\"`")
    changes = AccompanimentChanges(project=line.project_code or line.project_option, date=line.date,
                                   phase=line.phase, modality=line.modality, duration_minutes=line.duration,
                                   themes=line.themes, note=notes[0] if notes else None)
    if changes == AccompanimentChanges():
        raise UserError(f"Rien à modifier : indiquez le champ et sa nouvelle valeur (durée, date, phase, modalité, "
                        f"thèmes, note, projet). Exemple : `{ex(ctx, MODIFY_EXAMPLE)}`")
    with user_errors(ctx, MODIFY_EXAMPLE):
        view, done = await service(ctx).update_accompaniment(ctx.session, actor(ctx), number, changes)
    if not done:
        ctx.reply(f"Rien n'a changé : le suivi n°{view.id} avait déjà ces valeurs — {record_summary(view)}")
        return
    text = f"✏️ Suivi n°{view.id} modifié ({changes_text(done)}) — {record_summary(view)}"
    if view.note:
        text += f"\nNote : « {view.note} »"
    ctx.reply(text)


@subcommand("suivi", "annuler", summary="annuler un suivi (le vôtre, ou tout suivi pour un·e coordinateur·rice)",
            usage="!suivi annuler <n°>", examples=["!suivi annuler 42"], aliases=["supprimer", "effacer"])
async def annuler(ctx: Context, args: list[str]) -> None:
    number = record_number(ctx, args[0] if len(args) == 1 else (" ".join(args) or None), "!suivi annuler 42")
    with user_errors(ctx, "!suivi annuler 42"):
        view = await service(ctx).cancel_accompaniment(ctx.session, actor(ctx), number)
    ctx.reply(f"🗑️ Suivi n°{view.id} annulé — {record_summary(view)}. Il ne compte plus dans les bilans.")


async def on_redaction(ctx: Context) -> None:
    """The ``!suivi`` message was deleted: cancel the record it created, and say so in the room."""
    if not ctx.event.relates_to:
        return
    view = await service(ctx).cancel_by_event(ctx.session, ctx.event.relates_to, ctx.event.sender)
    if view is None:
        return
    body, html = render_markdown(f"🗑️ Suivi n°{view.id} annulé (message d'origine supprimé) — "
                                 f"{record_summary(view)}.")
    ctx.send(Outgoing(room_id=ctx.event.room_id, kind="notice", body=body, html=html))


EVENT_HANDLERS = {"redaction": on_redaction}
