"""!suivi — log an accompaniment session in one line; list, history, modify, cancel.

Redacting the ``!suivi`` message cancels the record it created (EVENT_HANDLERS below).
"""

from __future__ import annotations

import re

from commands._accompaniment import (actor, changes_text, de_partner, error_text, ex, list_audience, member_name,
                                     outcome_text, partner_name, record_line, record_number, record_summary,
                                     referral_line, require_project_place, said, service, shows_project,
                                     subcommand_hint, suggestion, typed_list, user_errors)
from ess_bot.formatting import join_fr, md_escape, minutes_fr
from ess_bot.framework.command import command, help_text, subcommand
from ess_bot.framework.context import Context, UserError
from ess_bot.framework.messages import Outgoing, render_markdown
from ess_bot.parsing import RecordLine, md_quote, parse_record_line
from ess_bot.services.accompaniments import AccompanimentChanges, AccompanimentError, NewAccompaniment, NotFound
from ess_bot.vocabulary import MODALITIES, PHASES

HISTORY_LIMIT = 15  # records shown by !suivi projet (the latest ones; the totals count them all)

EXAMPLE = "!suivi P-7K3Q émergence 1h30 hier"
DETAILS = (
    "Les éléments se donnent dans n'importe quel ordre : le projet (son code `P-7K3Q` ou un morceau de son nom, "
    "entre guillemets s'il contient plusieurs mots), la phase (accueil, émergence, ante-création, financement, "
    "lancement, post-création — les premières lettres suffisent), la durée (`1h30`, `45min`), la date "
    "(aujourd'hui par défaut : `hier`, `mardi`, `12/11`…), la modalité (individuel par défaut, ou collectif, "
    "atelier, permanence, visio, téléphone), une note entre guillemets (280 caractères, sans nom, coordonnées ni "
    "donnée de santé) "
    "et des thèmes (`themes=juridique,financement`). Sans année, une date est la plus proche d'aujourd'hui "
    "(l'an dernier si c'est le cas, ce que la réponse précise) ; au plus 3 ans en arrière. Dans un salon partagé, "
    "la réponse ne répète ni le nom du projet ni la note.")


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
        line = parse_record_line(list(ctx.tokens), ctx.clock.now(), ctx.services.dates, example=ex(ctx, EXAMPLE))
    ref, words, note = _project_and_note(ctx, line)
    if ref is None or line.phase is None or line.duration is None:
        code = await _resolve(ctx, ref, words) if ref is not None else None  # first: names words not understood
        missing = [what for what, value in (("le projet (son code ou son nom)", code), ("la phase", line.phase),
                                            ("la durée", line.duration)) if value is None]
        example = EXAMPLE.replace("P-7K3Q", code) if code else EXAMPLE
        raise UserError(f"Il manque {join_fr(missing)}. Exemple : `{ex(ctx, example)}`\n"
                        f"(Détails : `{ctx.prefix}aide suivi`.)")
    with user_errors(ctx, EXAMPLE):
        try:  # the service resolves the code or label itself: one lookup on the common path
            view = await svc.log_accompaniment(ctx.session, actor(ctx), NewAccompaniment(
                project=ref, date=line.date or ctx.clock.today(), phase=line.phase, duration_minutes=line.duration,
                modality=line.modality or "individuel", themes=line.themes or (), note=note,
                source_event_id=ctx.event.event_id))
        except NotFound:
            await _resolve(ctx, ref, words)  # says which word was not understood
            raise
    shown = await shows_project(ctx, view.project_code, view.project_partner)
    text = f"✅ Suivi n°{view.id} enregistré — {record_summary(view, label=shown)}{_assumed(line)}"
    if view.note and shown:
        text += f"\nNote : {said(view.note)}"
    duplicate = await svc.earlier_duplicate(ctx.session, view)
    if duplicate is not None:
        text += (f"\n⚠️ Vous avez déjà enregistré ce suivi (n°{duplicate} : même projet, date, phase et durée). "
                 f"S'il s'agit d'un doublon, annulez celui-ci : `{ctx.prefix}suivi annuler {view.id}`.")
    text += (f"\nPour l'annuler : `{ctx.prefix}suivi annuler {view.id}` (ou supprimez votre message) ; "
             f"pour le corriger : `{ctx.prefix}suivi modifier {view.id} durée=2h`.")
    ctx.reply(text)


def _assumed(line: RecordLine) -> str:
    """`` (année 2025 déduite)`` when the date was typed without a year and a past year was deduced."""
    return f" (année {line.assumed_year} déduite)" if line.assumed_year else ""


def _not_understood(words: list[str]) -> str:
    """A sentence: ``Je n'ai pas compris « acceuil » : vouliez-vous dire « accueil » ?``."""
    near = {w: suggestion(w, [PHASES, MODALITIES]) for w in words[:5]}  # the words named (typed_list)
    text = f"Je n'ai pas compris {typed_list(words)}"
    hints = [md_quote(near[w]) + (f" pour {md_quote(w)}" if len(words) > 1 else "") for w in near if near[w]]
    return f"{text} : vouliez-vous dire {join_fr(hints, last='ou')} ?" if hints else f"{text}."


def _project_and_note(ctx: Context, line: RecordLine) -> tuple[str | None, list[str], str | None]:
    """Which text names the project, the bare words it came from, and the note."""
    quoted = list(line.quoted)
    ref: str | None = line.project_code or line.project_option
    words: list[str] = []
    if ref is not None:
        if line.project_words:
            example = EXAMPLE.replace("P-7K3Q", line.project_code) if line.project_code else EXAMPLE
            raise UserError(f"{_not_understood(line.project_words)} Exemple : `{ex(ctx, example)}`")
    elif line.project_words:
        words = list(line.project_words)
        ref = " ".join(words)
    elif quoted:
        ref = quoted.pop(0)
    notes = quoted + ([line.note] if line.note else [])
    if len(notes) > 1:
        raise UserError("Une seule note par suivi, entre guillemets (j'en vois "
                        f"{len(notes)} : {typed_list(notes)}). "
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
            raise UserError(f"{_not_understood(others)} Le projet, lui, est bien "
                            f"{next(iter(hits.values()))}. Pour une phase ou une modalité, écrivez au moins "
                            "3 lettres ; un nom de projet en plusieurs mots se met entre guillemets. "
                            f"Exemple : `{ex(ctx, EXAMPLE)}`")
    hints = [w for w in words if suggestion(w, [PHASES, MODALITIES])]
    if hints:
        raise UserError(f"{_not_understood(hints)} {error_text(not_found)}\nExemple : `{ex(ctx, EXAMPLE)}`")
    sub = subcommand_hint(ctx, words[0]) if len(words) == 1 else None
    if sub is not None:
        raise UserError(f"{error_text(not_found)}\nVouliez-vous dire `{sub}` ? Exemple : `{ex(ctx, EXAMPLE)}`")
    raise UserError(f"{error_text(not_found)}\nVos projets : `{ctx.prefix}projet liste`. Exemple : `{ex(ctx, EXAMPLE)}`")


@subcommand("suivi", "liste", summary="vos derniers suivis (10 par défaut)", usage="!suivi liste [nombre]",
            examples=["!suivi liste", "!suivi liste 30"], aliases=["derniers", "mes"])
async def liste(ctx: Context, args: list[str]) -> None:
    audience = list_audience(ctx, "la liste de vos suivis", "!suivi liste")
    limit = 10
    if args:
        if len(args) > 1 or not re.fullmatch(r"[0-9]{1,3}", args[0]) or not 1 <= int(args[0]) <= 100:
            raise UserError(f"Nombre de suivis attendu entre 1 et 100 (reçu : {md_quote(' '.join(args))}). "
                            f"Exemple : `{ctx.prefix}suivi liste 20`")
        limit = int(args[0])
    found = await service(ctx).own_records(ctx.session, actor(ctx), limit, audience)
    views = found.records
    if not views:
        where = " sur les projets de votre structure" if audience else ""
        ctx.reply(f"Vous n'avez encore enregistré aucun suivi{where}. Exemple : `{ex(ctx, EXAMPLE)}`")
        return
    head = "Votre dernier suivi" if len(views) == 1 else f"Vos {len(views)} derniers suivis"
    lines = [f"**{head}** ({minutes_fr(found.minutes)} au total) :"]
    lines += [f"- {record_line(ctx, v)}" for v in views]
    ctx.reply("\n".join(lines))


@subcommand("suivi", "projet", summary="l'historique d'un projet, toutes structures confondues",
            usage="!suivi projet <code ou nom>", examples=["!suivi projet P-7K3Q"], aliases=["historique"])
async def historique(ctx: Context, args: list[str]) -> None:
    if not args:
        raise UserError(f"Quel projet ? Exemple : `{ctx.prefix}suivi projet P-7K3Q`")
    with user_errors(ctx, "!suivi projet P-7K3Q"):
        history = await service(ctx).project_history(ctx.session, actor(ctx), " ".join(args), limit=HISTORY_LIMIT)
    p = history.project
    await require_project_place(ctx, p.code, "l'historique d'un projet", f"!suivi projet {p.code}")
    lines = [f"**Historique {de_partner(md_escape(p.label))}** ({p.code}) — porté par {partner_name(ctx, p.partner)}"]
    if not history.accompaniments:
        lines.append(f"Aucun suivi enregistré. Exemple : `{ctx.prefix}suivi {p.code} accueil 1h`")
    else:
        totals = ", ".join(f"{partner_name(ctx, t.partner)} : {_sessions(t.sessions)}, {minutes_fr(t.minutes)}"
                           for t in history.totals)
        total = f"Total : {_sessions(history.sessions)}, {minutes_fr(history.minutes)}"
        if len(history.totals) > 1:
            lines.append(f"{total} — {totals}")
        else:
            lines.append(f"{total}, par {partner_name(ctx, history.totals[0].partner)}")
        lines += [f"- {record_line(ctx, v, advisor=True, with_project=False)}"
                  for v in reversed(history.accompaniments)]
        if history.older:
            lines.append(f"… et {_sessions(history.older)} plus ancien{'s' if history.older > 1 else ''}.")
    if history.referrals:
        lines.append("Orientations :")
        lines += [f"- {referral_line(ctx, r)}" for r in history.referrals]
    if p.outcome:
        lines.append(f"Issue : {outcome_text(p.outcome)} (enregistrée par {member_name(ctx, p.outcome.recorded_by)})")
    ctx.reply("\n".join(lines))


def _sessions(n: int) -> str:
    return f"{n} suivi{'s' if n > 1 else ''}"


MODIFY_EXAMPLE = "!suivi modifier 42 durée=2h"


@subcommand("suivi", "modifier", summary="corriger un suivi (le vôtre, ou tout suivi pour un·e coordinateur·rice)",
            usage="!suivi modifier <n°> <champ=valeur…>",
            examples=[MODIFY_EXAMPLE, "!suivi modifier 42 date=hier phase=financement", "!suivi modifier 42 visio",
                      "!suivi modifier 42 note=-"], aliases=["corriger"])
async def modifier(ctx: Context, args: list[str]) -> None:
    number = record_number(ctx, args[0] if args else None, MODIFY_EXAMPLE)
    with user_errors(ctx, MODIFY_EXAMPLE):
        line = parse_record_line(list(ctx.tokens[1:]), ctx.clock.now(), ctx.services.dates,
                                 example=ex(ctx, MODIFY_EXAMPLE))
    if line.project_words:
        raise UserError(f"{_not_understood(line.project_words)} Pour changer de "
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
    shown = await shows_project(ctx, view.project_code, view.project_partner)
    if not done:
        ctx.reply(f"Rien n'a changé : le suivi n°{view.id} avait déjà ces valeurs — "
                  f"{record_summary(view, label=shown)}")
        return
    changed = changes_text([c for c in done if shown or c.name != "note"])
    if not shown and any(c.name == "note" for c in done):
        changed = join_fr([changed, "note modifiée"]) if changed else "note modifiée"
    text = f"✏️ Suivi n°{view.id} modifié ({changed}) — {record_summary(view, label=shown)}{_assumed(line)}"
    if view.note and shown:
        text += f"\nNote : {said(view.note)}"
    ctx.reply(text)


@subcommand("suivi", "annuler", summary="annuler un suivi (le vôtre, ou tout suivi pour un·e coordinateur·rice)",
            usage="!suivi annuler <n°>", examples=["!suivi annuler 42"], aliases=["supprimer", "effacer"])
async def annuler(ctx: Context, args: list[str]) -> None:
    number = record_number(ctx, " ".join(args), "!suivi annuler 42")
    with user_errors(ctx, "!suivi annuler 42"):
        view = await service(ctx).cancel_accompaniment(ctx.session, actor(ctx), number)
    shown = await shows_project(ctx, view.project_code, view.project_partner)
    ctx.reply(f"🗑️ Suivi n°{view.id} annulé — {record_summary(view, label=shown)}. "
              "Il ne compte plus dans les bilans.")


async def on_redaction(ctx: Context) -> None:
    """The ``!suivi`` message was deleted: cancel the record it created, and say so in the room."""
    if not ctx.event.relates_to:
        return
    view = await service(ctx).cancel_by_event(ctx.session, ctx.event.relates_to, ctx.event.sender)
    if view is None:
        return
    shown = await shows_project(ctx, view.project_code, view.project_partner)
    body, html = render_markdown(f"🗑️ Suivi n°{view.id} annulé (message d'origine supprimé) — "
                                 f"{record_summary(view, label=shown)}.")
    ctx.send(Outgoing(room_id=ctx.event.room_id, kind="notice", body=body, html=html))


EVENT_HANDLERS = {"redaction": on_redaction}
