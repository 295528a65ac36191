"""Shared by !projet and !suivi: the acting member, error translation and French wording of views.

Not a command module (the leading underscore keeps it out of the registry): imported by
``commands.projet`` and ``commands.suivi``.
"""

from __future__ import annotations

import difflib
import re
from contextlib import contextmanager
from decimal import Decimal
from typing import Iterator

from ess_bot.framework.command import example_for as ex  # noqa: F401 (re-exported)
from ess_bot.formatting import date_fr, join_fr, md_escape, minutes_fr, pill
from ess_bot.framework.context import Context, UserError
from ess_bot.parsing import ParseError, PersonalDataError, choice_key, md_quote, parse_number
from ess_bot.services.accompaniments import (AccompanimentError, AccompanimentService, AccompanimentView, Actor,
                                             Ambiguous, Change, OutcomeView, PersonalDataRefused, Profile,
                                             ProjectView, ReferralView)
from ess_bot.text import closest, fold
from ess_bot.vocabulary import (AGE_BANDS, DEPARTMENT_NAMES, EMPLOYMENT_STATUSES, ESUS, FRR, GENDERS, LEGAL_FORMS,
                                MINIMA, MODALITIES, NATURES, OUTCOMES, PHASES, QPV, REFERRAL_STATUSES, THEMES,
                                ChoiceList)


def actor(ctx: Context) -> Actor:
    return Actor(user_id=ctx.member.user_id, partner=ctx.member.partner, role=ctx.member.role)


def service(ctx: Context) -> AccompanimentService:
    return ctx.services.accompaniments


# -- escaping ------------------------------------------------------------------------------------
#
# Every text a person or the configuration provided (labels, notes, reasons, partner and member names,
# typed values) is escaped where it is put into a Markdown reply: the helpers below return Markdown.

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def said(value: object) -> str:
    """A value the person typed, named in a reply: ``« valeur »``, escaped for Markdown (control
    characters shown as a space)."""
    return f"« {md_escape(_UNPRINTABLE.sub(' ', str(value if value is not None else '')))} »"


def typed_list(values: list[str], limit: int = 5) -> str:
    """Typed values named in a reply (:func:`ess_bot.parsing.md_quote`): the first ``limit``, then how
    many more (a 10 kB line is not echoed whole)."""
    shown = [md_quote(v) for v in values[:limit]]
    if len(values) > limit:
        rest = len(values) - limit
        return ", ".join(shown) + f" et {rest} autre{'s' if rest > 1 else ''}"
    return join_fr(shown)


def error_text(exc: AccompanimentError) -> str:
    """A service refusal as Markdown: the service writes plain text, except what it carries over from
    the parser (already Markdown)."""
    return exc.message if exc.markdown else md_escape(exc.message)


@contextmanager
def user_errors(ctx: Context, example: str | None = None) -> Iterator[None]:
    """Turn parser and domain refusals into a French reply (with an example when useful)."""
    try:
        yield
    except Ambiguous as exc:
        message = error_text(exc)
        if any(not label_shown_for_holder(ctx, c.partner) for c in exc.candidates):
            # a shared room: name the candidates by code and holder, not by label
            names = join_fr([f"{c.code} ({partner_name(ctx, c.partner)})" for c in exc.candidates])
            message = f"Plusieurs projets correspondent : {names}. Utilisez le code du projet."
        if example and exc.candidates:  # show the example with one of the real codes
            example = example.replace("P-7K3Q", exc.candidates[0].code)
        raise UserError(f"{message}\nExemple : `{ex(ctx, example)}`" if example else message) from None
    except (PersonalDataError, PersonalDataRefused) as exc:
        # the message with the personal data stays in the room: say how to remove it
        what = "cette donnée de santé" if exc.kind == "health" else "ces coordonnées"
        text = error_text(exc) if isinstance(exc, AccompanimentError) else exc.message
        message = (f"{text} Pensez aussi à supprimer votre message (menu du message → « Supprimer ») : "
                   f"il contient {what}.")
        if example:
            message += f"\nExemple : `{ex(ctx, example)}`"
        raise UserError(message) from None
    except (ParseError, AccompanimentError) as exc:
        message = error_text(exc) if isinstance(exc, AccompanimentError) else exc.message
        if example and "Exemple" not in message and "exemple" not in message:
            message += f"\nExemple : `{ex(ctx, example)}`"
        raise UserError(message) from None


# -- where details may be shown -------------------------------------------------------------------
#
# A reply is read by the whole room. A project's details (label, holder profile, notes, history) are
# shown only in a direct message, or in the room of a partner that may see the project (the holding
# partner, or a partner it was referred to and that accepted) — whoever asks, coordinators included.

def room_partner(ctx: Context) -> str | None:
    """The partner whose room the command was typed in (None: direct message, coordination, other)."""
    if ctx.room_kind == "direct":
        return None
    p = ctx.config.partner_by_room(ctx.event.room_id)
    return p.slug if p is not None else None


def label_shown_for_holder(ctx: Context, holder: str) -> bool:
    """Without a database look-up: may a project held by ``holder`` be named here? (direct message or
    the holder's own room; accepted referrals are checked by :func:`shows_project`)."""
    return ctx.room_kind == "direct" or room_partner(ctx) == holder


async def shows_project(ctx: Context, code: str, holder: str | None = None) -> bool:
    """Whether this place may show the details of project ``code`` (held by ``holder``, when known: its
    own room needs no database look-up; a partner that accepted a referral does)."""
    if ctx.room_kind == "direct" or (holder is not None and label_shown_for_holder(ctx, holder)):
        return True
    partner = room_partner(ctx)
    return partner is not None and await service(ctx).partner_sees(ctx.session, partner, code)


async def require_project_place(ctx: Context, code: str, what: str, example: str) -> None:
    """Refuse to show ``what`` of project ``code`` here when the room's members may not see it."""
    if await shows_project(ctx, code):
        return
    partner = room_partner(ctx)
    if partner is None:
        where = "ce salon est partagé entre plusieurs structures"
    else:
        where = f"le projet {code} n'est pas suivi par {partner_name(ctx, partner)}, dont les membres lisent ce salon"
    raise UserError(f"🔒 Pour protéger les données des projets, je n'affiche pas ici {what} : {where}. Je "
                    "l'affiche en message direct avec moi, ou dans le salon d'une structure qui suit le projet. "
                    f"Écrivez-moi en privé, par exemple : `{ex(ctx, example)}`")


def list_audience(ctx: Context, what: str, example: str) -> str | None:
    """Where a list (of projects, of one's records) may be shown: a direct message (returns None) or the
    room of the member's own partner (returns that partner: the list keeps to what it may see)."""
    if ctx.room_kind == "direct":
        return None
    partner = room_partner(ctx)
    if partner is not None and partner == ctx.member.partner:
        return partner
    raise UserError(f"🔒 Pour protéger les données des projets, {what} ne s'affiche qu'en message direct avec moi "
                    f"ou dans le salon de votre structure (tout le salon verrait la réponse). Écrivez-moi en "
                    f"privé, par exemple : `{ex(ctx, example)}`")


def record_number(ctx: Context, text: str | None, example: str) -> int:
    """``42``, ``n°42``, ``#42`` → 42 (a French refusal naming the value otherwise)."""
    try:
        return parse_number(text or "", "du suivi", ex(ctx, example))
    except ParseError as exc:
        raise UserError(f"{exc.message} Le numéro est donné quand le suivi est enregistré, ou par "
                        f"`{ctx.prefix}suivi liste`.") from None


def suggestion(word: str, lists: list[ChoiceList], cutoff: float = 0.75) -> str | None:
    """The closed-list label nearest to a mistyped word (``acceuil`` → ``accueil``), if any is close."""
    spellings = {choice_key(sp): c.label for clist in lists for c in clist.choices for sp in c.spellings()}
    near = difflib.get_close_matches(choice_key(word), list(spellings), n=1, cutoff=cutoff)
    return spellings[near[0]] if near else None


def subcommand_hint(ctx: Context, word: str) -> str | None:
    """``!projet nouveau`` for ``nouvaeu``: the nearest subcommand name, if close."""
    if ctx.command is None:
        return None
    names = [n for sub in ctx.command.subcommands for n in sub.names()]
    found = closest(word, names, cutoff=0.7) if len(fold(word)) >= 3 else None
    if found is None:
        return None
    sub = ctx.command.find_sub(found)
    return f"{ctx.prefix}{ctx.command.name} {sub.name}" if sub else None


# -- wording -------------------------------------------------------------------------------------

def _member_text(ctx: Context, user_id: str | None) -> str:
    if not user_id:
        return "?"
    m = ctx.config.member(user_id)
    return m.display if m else user_id


def _partner_text(ctx: Context, slug: str) -> str:
    p = ctx.config.partner(slug)
    return p.name if p else slug


def member_name(ctx: Context, user_id: str | None) -> str:
    """The member's display name (from the configuration), escaped for Markdown."""
    return md_escape(_member_text(ctx, user_id))


def partner_name(ctx: Context, slug: str) -> str:
    """The partner's name (from the configuration), escaped for Markdown."""
    return md_escape(_partner_text(ctx, slug))


def member_pill(ctx: Context, user_id: str) -> str:
    """A mention pill for the member, named by their display name."""
    return pill(user_id, _member_text(ctx, user_id))


_VOWELS = frozenset("aeiouyAEIOUY")


def de_partner(name: str) -> str:
    """``de`` before a name (Markdown), elided before a vowel: ``d'URSCOP``, ``d'Aldess``,
    ``de BGE Franche-Comté``."""
    first = fold(name.lstrip("\\")[:1])
    return f"d'{name}" if first and first in _VOWELS else f"de {name}"


def member_with_partner(ctx: Context, user_id: str | None, partner: str) -> str:
    """``Karim (BGE Franche-Comté)`` — or just ``Karim (BGE)`` when the display name already names it
    (Markdown)."""
    name = _member_text(ctx, user_id)
    p = ctx.config.partner(partner)
    full = _partner_text(ctx, partner)
    words = {fold(w) for w in name.replace("(", " ").replace(")", " ").replace(",", " ").split()}
    marks = {fold(full), fold(partner), fold(partner.split("-")[0]), fold(full.split()[0]) if full.split() else ""}
    if p is not None and (fold(full) in fold(name) or any(m and len(m) >= 3 and m in words for m in marks)):
        return md_escape(name)
    return f"{md_escape(name)} ({md_escape(full)})"


def department_text(dep: str) -> str:
    name = DEPARTMENT_NAMES.get(dep)
    return f"{dep} ({name})" if name else dep


def fte_text(value: Decimal | None) -> str:
    if value is None:
        return "non renseigné"
    text = f"{value.normalize():f}".replace(".", ",")
    return f"{text} ETP"


def project_title(label: str, code: str) -> str:
    """``Café culturel Pixel (P-7K3Q)``, as Markdown."""
    return f"{md_escape(label)} ({code})"


def record_summary(view: AccompanimentView, with_project: bool = True, *, label: bool = True) -> str:
    """``Café culturel Pixel (P-7K3Q) · émergence · individuel · 1 h 30 · mardi 24 novembre 2026``;
    ``label=False`` (a room whose members may not see the project): ``P-7K3Q · émergence · …``."""
    parts = []
    if with_project:
        parts.append(project_title(view.project_label, view.project_code) if label else view.project_code)
    parts += [PHASES.label(view.phase), MODALITIES.label(view.modality), minutes_fr(view.duration_minutes),
              date_fr(view.date)]
    text = " · ".join(parts)
    if view.themes:
        text += " · thèmes : " + ", ".join(THEMES.label(t) for t in view.themes)
    return text


def record_line(ctx: Context, view: AccompanimentView, *, advisor: bool = False, with_project: bool = True) -> str:
    text = f"n°{view.id} · {record_summary(view, with_project)}"
    if advisor:
        text += f" · {member_with_partner(ctx, view.advisor, view.partner)}"
    if view.note:
        text += f" — {said(view.note)}"
    return text


def profile_lines(profile: Profile) -> list[str]:
    if profile.is_empty():
        return []
    pairs = [(GENDERS, profile.gender), (AGE_BANDS, profile.age_band), (EMPLOYMENT_STATUSES, profile.employment_status),
             (MINIMA, profile.minima), (QPV, profile.qpv), (FRR, profile.frr)]
    return [f"- {clist.name} : {clist.label(value)}" for clist, value in pairs]


def outcome_text(outcome: OutcomeView) -> str:
    text = f"{OUTCOMES.label(outcome.outcome)} le {date_fr(outcome.date, weekday=False)}"
    if outcome.legal_form:
        text += f", forme : {LEGAL_FORMS.label(outcome.legal_form)}"
    if outcome.outcome == "creation":
        text += f", emplois créés : {fte_text(outcome.jobs_fte)}"
    return text


def project_lines(ctx: Context, view: ProjectView, defaults: set[str] = frozenset()) -> list[str]:
    """The project's fields, one per line (``(par défaut)`` after the defaulted ones)."""
    def d(name: str) -> str:
        return " *(par défaut)*" if name in defaults else ""
    return [f"- structure qui le suit : {partner_name(ctx, view.partner)}",
            f"- département : {department_text(view.department)}{d('department')}",
            f"- nature : {NATURES.label(view.nature)}{d('nature')}",
            f"- forme juridique envisagée : {LEGAL_FORMS.label(view.legal_form)}{d('legal_form')}",
            f"- collectif : {'oui' if view.collective else 'non'}{d('collective')}",
            f"- agrément ESUS : {ESUS.label(view.esus)}{d('esus')}"]


def referral_line(ctx: Context, r: ReferralView) -> str:
    text = (f"{date_fr(r.date, weekday=False)} : {partner_name(ctx, r.from_partner)} → "
            f"{partner_name(ctx, r.to_partner)}, {REFERRAL_STATUSES.label(r.status)}")
    if r.note:
        text += f" ({said(r.note)})"
    if r.reason:
        text += f" — raison : {said(r.reason)}"
    return text


FIELD_LABELS = {"label": "nom", "department": "département", "nature": "nature", "legal_form": "forme juridique",
                "collective": "collectif", "esus": "agrément ESUS", "gender": "genre", "age_band": "tranche d'âge",
                "employment_status": "statut", "minima": "minima sociaux", "qpv": "QPV", "frr": "FRR",
                "project": "projet", "date": "date", "phase": "phase", "modality": "modalité",
                "duration_minutes": "durée", "themes": "thèmes", "note": "note", "outcome": "issue",
                "jobs_fte": "emplois créés"}
FIELD_LISTS: dict[str, ChoiceList] = {"nature": NATURES, "legal_form": LEGAL_FORMS, "esus": ESUS, "gender": GENDERS,
                                      "age_band": AGE_BANDS, "employment_status": EMPLOYMENT_STATUSES,
                                      "minima": MINIMA, "qpv": QPV, "frr": FRR, "phase": PHASES,
                                      "modality": MODALITIES, "outcome": OUTCOMES}


def value_text(name: str, value) -> str:
    if value is None or value == "" or value == ():
        return "—"
    if name in FIELD_LISTS:
        return FIELD_LISTS[name].label(value)
    if name == "collective":
        return "oui" if value else "non"
    if name == "department":
        return department_text(value)
    if name == "duration_minutes":
        return minutes_fr(value)
    if name == "date":
        return date_fr(value)
    if name == "jobs_fte":
        return fte_text(value)
    if name == "themes":
        return ", ".join(THEMES.label(t) for t in value)
    return md_escape(value)


def changes_text(changes: list[Change]) -> str:
    return join_fr([f"{FIELD_LABELS.get(c.name, c.name)} : {value_text(c.name, c.before)} → "
                    f"{value_text(c.name, c.after)}" for c in changes])
