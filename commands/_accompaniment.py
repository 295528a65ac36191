"""Shared by !projet and !suivi: the acting member, error translation and French wording of views.

Not a command module (the leading underscore keeps it out of the registry): imported by
``commands.projet`` and ``commands.suivi``.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from decimal import Decimal
from typing import Iterator

from ess_bot.formatting import date_fr, join_fr, minutes_fr
from ess_bot.framework.context import Context, UserError
from ess_bot.parsing import ParseError, PersonalDataError, Token, quote
from ess_bot.services.accompaniments import (AccompanimentError, AccompanimentService, AccompanimentView, Actor,
                                             Ambiguous, Change, OutcomeView, PersonalDataRefused, Profile,
                                             ProjectView, ReferralView)
from ess_bot.text import TokenizeError
from ess_bot.vocabulary import (AGE_BANDS, DEPARTMENT_NAMES, EMPLOYMENT_STATUSES, ESUS, FRR, GENDERS, LEGAL_FORMS,
                                MINIMA, MODALITIES, NATURES, OUTCOMES, PHASES, QPV, REFERRAL_STATUSES, THEMES,
                                ChoiceList)


def actor(ctx: Context) -> Actor:
    return Actor(user_id=ctx.member.user_id, partner=ctx.member.partner, role=ctx.member.role)


def service(ctx: Context) -> AccompanimentService:
    return ctx.services.accompaniments


def tokens(ctx: Context, args: list[str]) -> list[Token]:
    """The arguments with their quoting (a quoted label is never read as a phase or a date)."""
    known = ctx.tokens[len(ctx.tokens) - len(args):] if args else []
    if [t.text for t in known] == list(args):
        return list(known)
    return [Token(a, " " in a) for a in args]  # args built by hand: guess (a token with a space was quoted)


def ex(ctx: Context, example: str) -> str:
    """An example written with "!" shown with the configured prefix."""
    return ctx.prefix + example[1:] if example.startswith("!") else example


@contextmanager
def user_errors(ctx: Context, example: str | None = None) -> Iterator[None]:
    """Turn parser and domain refusals into a French reply (with an example when useful)."""
    try:
        yield
    except Ambiguous as exc:
        if example and exc.candidates:  # show the example with one of the real codes
            example = example.replace("P-7K3Q", exc.candidates[0].code)
        raise UserError(f"{exc.message}\nExemple : `{ex(ctx, example)}`" if example else exc.message) from None
    except (PersonalDataError, PersonalDataRefused) as exc:
        # the message with the contact details stays in the room: say how to remove it
        message = (f"{exc.message} Pensez aussi à supprimer votre message (menu du message → « Supprimer ») : "
                   "il contient ces coordonnées.")
        if example:
            message += f"\nExemple : `{ex(ctx, example)}`"
        raise UserError(message) from None
    except (ParseError, AccompanimentError) as exc:
        message = exc.message
        if example and "Exemple" not in message and "exemple" not in message:
            message += f"\nExemple : `{ex(ctx, example)}`"
        raise UserError(message) from None


def require_private_place(ctx: Context, what: str, example: str) -> None:
    """Details (holder profile, history, lists) are shown only where the audience may see them: in a
    direct message, or in the room of the member's own partner. A reply in the coordination room or in
    another partner's room would show them to every partner there, defeating the visibility rule."""
    if ctx.room_kind == "direct":
        return
    own = ctx.config.partner(ctx.member.partner)
    if own is not None and own.room and ctx.event.room_id == own.room:
        return
    raise UserError(f"🔒 Pour protéger les données des projets, {what} ne s'affiche qu'en message direct avec moi "
                    f"ou dans le salon de votre structure (tout le salon verrait la réponse). Écrivez-moi en "
                    f"privé, par exemple : `{ex(ctx, example)}`")


def record_number(ctx: Context, text: str | None, example: str) -> int:
    """``42``, ``n°42``, ``#42`` → 42."""
    m = re.fullmatch(r"(?:n°|no|n|#)?\s*(\d{1,9})", (text or "").strip(), re.I)
    if m is None:
        shown = quote(text) if text else "rien"
        raise UserError(f"Numéro de suivi attendu (reçu : {shown}). Le numéro est donné quand le suivi est "
                        f"enregistré, ou par `{ctx.prefix}suivi liste`. Exemple : `{ex(ctx, example)}`")
    return int(m.group(1))


# -- wording -------------------------------------------------------------------------------------

def member_name(ctx: Context, user_id: str | None) -> str:
    if not user_id:
        return "?"
    m = ctx.config.member(user_id)
    return m.display if m else user_id


def partner_name(ctx: Context, slug: str) -> str:
    p = ctx.config.partner(slug)
    return p.name if p else slug


def department_text(dep: str) -> str:
    name = DEPARTMENT_NAMES.get(dep)
    return f"{dep} ({name})" if name else dep


def fte_text(value: Decimal | None) -> str:
    if value is None:
        return "non renseigné"
    text = f"{value.normalize():f}".replace(".", ",")
    return f"{text} ETP"


def project_title(label: str, code: str) -> str:
    return f"{label} ({code})"


def record_summary(view: AccompanimentView, with_project: bool = True) -> str:
    """``Café culturel Pixel (P-7K3Q) · émergence · individuel · 1 h 30 · mardi 24 novembre 2026``."""
    parts = [project_title(view.project_label, view.project_code)] if with_project else []
    parts += [PHASES.label(view.phase), MODALITIES.label(view.modality), minutes_fr(view.duration_minutes),
              date_fr(view.date)]
    text = " · ".join(parts)
    if view.themes:
        text += " · thèmes : " + ", ".join(THEMES.label(t) for t in view.themes)
    return text


def record_line(ctx: Context, view: AccompanimentView, *, advisor: bool = False, with_project: bool = True) -> str:
    text = f"n°{view.id} · {record_summary(view, with_project)}"
    if advisor:
        text += f" · {member_name(ctx, view.advisor)} ({partner_name(ctx, view.partner)})"
    if view.note:
        text += f" — « {view.note} »"
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
        text += f" (« {r.note} »)"
    if r.reason:
        text += f" — raison : « {r.reason} »"
    return text


FIELD_LABELS = {"label": "nom", "department": "département", "nature": "nature", "legal_form": "forme juridique",
                "collective": "collectif", "esus": "agrément ESUS", "gender": "genre", "age_band": "tranche d'âge",
                "employment_status": "statut", "minima": "minima sociaux", "qpv": "QPV", "frr": "FRR",
                "project": "projet", "date": "date", "phase": "phase", "modality": "modalité",
                "duration_minutes": "durée", "themes": "thèmes", "note": "note"}
FIELD_LISTS: dict[str, ChoiceList] = {"nature": NATURES, "legal_form": LEGAL_FORMS, "esus": ESUS, "gender": GENDERS,
                                      "age_band": AGE_BANDS, "employment_status": EMPLOYMENT_STATUSES,
                                      "minima": MINIMA, "qpv": QPV, "frr": FRR, "phase": PHASES,
                                      "modality": MODALITIES}


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
    if name == "themes":
        return ", ".join(THEMES.label(t) for t in value)
    return str(value)


def changes_text(changes: list[Change]) -> str:
    return join_fr([f"{FIELD_LABELS.get(c.name, c.name)} : {value_text(c.name, c.before)} → "
                    f"{value_text(c.name, c.after)}" for c in changes])
