"""!projet — pseudonymous projects: create, view, list, modify, holder profile, referral to another
partner (accept/refuse), outcome."""

from __future__ import annotations

from commands._accompaniment import (actor, changes_text, de_partner, ex, label_shown_for_holder, list_audience,
                                     member_name, member_pill, outcome_text, partner_name, profile_lines,
                                     project_lines, project_title, referral_line, require_project_place, said,
                                     service, shows_project, subcommand_hint, typed_list, user_errors, value_text,
                                     FIELD_LABELS)
from ess_bot.formatting import date_fr, join_fr, md_code, md_escape, minutes_fr
from ess_bot.framework.command import command, help_text, subcommand
from ess_bot.framework.context import Context, UserError
from ess_bot.parsing import (ParseError, Token, choice_key, looks_like_code, match_age, match_among, md_quote,
                             match_choice, match_phrase, parse_fte, parse_yes_no, resolve_options,
                             retention_start, split_options)
from ess_bot.services.accompaniments import REF_MAX_WORDS, Change, NewOutcome, NewProject, Profile, ProjectChanges
from ess_bot.vocabulary import (AGE_BANDS, DEPARTMENT_LIST, EMPLOYMENT_STATUSES, ESUS, FRR, GENDERS, LEGAL_FORMS,
                                MINIMA, NATURES, OUTCOMES, QPV, Choice, ChoiceList)

NEW_EXAMPLE = '!projet nouveau "Café culturel Pixel" dep=25 forme=association collectif'
DETAILS = (
    "Un projet est désigné par un code au hasard (`P-7K3Q`) et un nom court — le nom du projet, jamais celui "
    "d'une personne. Aucune coordonnée (nom, adresse, e-mail, téléphone) n'est enregistrée : elles restent dans "
    "les fichiers de votre structure. Un projet n'est visible que de sa structure, des structures vers "
    "lesquelles il a été orienté (après acceptation) et des coordinateur·rice·s ; sa fiche ne s'affiche qu'en "
    "message direct ou dans le salon d'une de ces structures. Seule la structure qui le porte (et la coordination) "
    "modifie sa fiche, le profil du porteur et l'issue, et l'oriente vers une autre structure : celle-ci est "
    "prévenue dans son salon (sans salon propre : dans le salon de coordination, par le code du projet seulement), "
    "et la structure qui porte le projet est informée de chaque orientation et de chaque réponse. Aucune donnée "
    "de santé dans le chat.")

PROJECT_FIELDS = ChoiceList("option", (
    Choice("libelle", "libellé", ("nom", "intitule", "label")),
    Choice("dep", "département", ("departement", "dept")),
    Choice("nature", "nature"),
    Choice("forme", "forme juridique", ("forme-juridique", "juridique", "statut-juridique")),
    Choice("esus", "ESUS"),
    Choice("collectif", "collectif", ("collective",)),
))
PROFILE_FIELDS = ChoiceList("option", (
    Choice("genre", "genre", ("sexe",)),
    Choice("age", "âge", ("tranche", "tranche-age")),
    Choice("statut", "statut", ("situation",)),
    Choice("minima", "minima sociaux", ("minimas",)),
    Choice("qpv", "QPV"),
    Choice("frr", "FRR", ("zrr",)),
))
PROFILE_OPTION_LISTS = {"genre": ("gender", GENDERS), "age": ("age_band", AGE_BANDS),
                        "statut": ("employment_status", EMPLOYMENT_STATUSES), "minima": ("minima", MINIMA),
                        "qpv": ("qpv", QPV), "frr": ("frr", FRR)}
OUTCOME_FIELDS = ChoiceList("option", (
    Choice("forme", "forme juridique", ("forme-juridique", "juridique")),
    Choice("emplois", "emplois", ("etp", "emploi", "jobs")),
    Choice("date", "date", ("le",)),
    Choice("issue", "issue", ("resultat",)),
))


@command("projet", group="Accompagnement", summary="créer et consulter les projets accompagnés (codes pseudonymes)",
         usage="!projet <nouveau|voir|liste|modifier|profil|orienter|accepter|refuser|issue> …",
         aliases=["projets"], details=DETAILS)
async def projet(ctx: Context, args: list[str]) -> None:
    if args:
        near = None if looks_like_code(args[0]) else subcommand_hint(ctx, args[0])
        if near is not None:
            rest = " ".join(f'"{t.text}"' if t.quoted else t.text for t in ctx.tokens[1:])
            raise UserError(f"Sous-commande inconnue {md_quote(args[0])}. Vouliez-vous dire `{near}` ? Par exemple : "
                            f"{md_code((near + ' ' + rest).strip())} (toutes les sous-commandes : "
                            f"`{ctx.prefix}aide projet`).")
        raise UserError(f"Sous-commande inconnue {md_quote(args[0])}. Pour consulter un projet : "
                        f"{md_code(f'{ctx.prefix}projet voir ' + ' '.join(args[:REF_MAX_WORDS]))}.\n\n"
                        + help_text(ctx.command, ctx.role, ctx.prefix))
    raise UserError(help_text(ctx.command, ctx.role, ctx.prefix))


def _ref_and_rest(ctx: Context, args: list[str], example: str) -> tuple[str, list[Token]]:
    """The project (first argument: a code, or a label in quotes) and what follows."""
    toks = list(ctx.tokens)
    if not toks:
        raise UserError(f"Quel projet ? Indiquez son code ou son nom. Exemple : `{ex(ctx, example)}`")
    return toks[0].text, toks[1:]


# -- nouveau -------------------------------------------------------------------------------------

@subcommand("projet", "nouveau", summary="créer un projet et obtenir son code",
            usage='!projet nouveau "<nom du projet>" [dep=25] [nature=…] [forme=…] [collectif] [esus=…]',
            examples=[NEW_EXAMPLE, '!projet nouveau "Recyclerie du Haut-Doubs" dep=25 nature=reprise forme=scic'],
            aliases=["creer", "ajouter"])
async def nouveau(ctx: Context, args: list[str]) -> None:
    me = actor(ctx)
    with user_errors(ctx, NEW_EXAMPLE):
        options, rest = split_options(list(ctx.tokens))
        opts = resolve_options(options, PROJECT_FIELDS, ex(ctx, NEW_EXAMPLE))
        values = _project_options(opts)
    quoted = [t.text for t in rest if t.quoted]
    words: list[str] = []
    plain = [t.text for t in rest if not t.quoted]
    i = 0
    while i < len(plain):
        with user_errors(ctx, NEW_EXAMPLE):
            i += _positional_project_words(plain, i, values, words)
    if len(quoted) > 1:
        raise UserError(f"Un seul nom entre guillemets, s'il vous plaît (j'en vois {len(quoted)} : "
                        f"{typed_list(quoted)}). Exemple : `{ex(ctx, NEW_EXAMPLE)}`")
    if quoted and words:
        raise UserError(f"Je n'ai pas compris {typed_list(words)}. Exemple : `{ex(ctx, NEW_EXAMPLE)}`")
    label = quoted[0] if quoted else " ".join(words)
    if "label" in values:
        if label:
            raise UserError(f"Le nom est donné deux fois ({md_quote(label)} et {md_quote(values['label'])}). "
                            f"Exemple : `{ex(ctx, NEW_EXAMPLE)}`")
        label = values.pop("label")
    if not label:
        raise UserError(f"Quel est le nom du projet ? (le nom du projet, pas celui de la personne) "
                        f"Exemple : `{ex(ctx, NEW_EXAMPLE)}`")
    defaults: set[str] = set()
    if "department" not in values:
        partner = ctx.config.partner(me.partner)
        deps = partner.departments if partner else ()
        if len(deps) != 1:
            covered = f" ({md_escape(partner.name)} couvre {join_fr([md_escape(d) for d in deps])})" if deps else ""
            raise UserError(f"Dans quel département est le projet{covered} ? Précisez-le avec `dep=`. "
                            f"Exemple : `{ex(ctx, NEW_EXAMPLE)}`")
        values["department"] = deps[0]
        defaults.add("department")
    for name, default in (("nature", "creation"), ("legal_form", "nsp"), ("collective", False), ("esus", "non")):
        if name not in values:
            values[name] = default
            defaults.add(name)
    with user_errors(ctx, NEW_EXAMPLE):
        view = await service(ctx).create_project(ctx.session, me, NewProject(label=label, **values))
    # the label only where the room may read it (the person typed it, but the reply does not repeat it)
    named = f" — {md_escape(view.label)}" if label_shown_for_holder(ctx, view.partner) else ""
    lines = [f"✅ Projet **{view.code}** créé{named}", *project_lines(ctx, view, defaults),
             f"Notez ce code : il sert à enregistrer les suivis, par exemple "
             f"`{ctx.prefix}suivi {view.code} accueil 1h`.",
             f"Pour corriger : `{ctx.prefix}projet modifier {view.code} nature=reprise` ; profil du porteur "
             f"(facultatif, par tranches) : `{ctx.prefix}projet profil {view.code} femme 26-49 salarie`."]
    ctx.reply("\n".join(lines))


def _project_options(opts: dict[str, str]) -> dict:
    values: dict = {}
    if "libelle" in opts:
        values["label"] = opts["libelle"]
    if "dep" in opts:
        values["department"] = match_choice(opts["dep"], DEPARTMENT_LIST).key
    if "nature" in opts:
        values["nature"] = match_choice(opts["nature"], NATURES).key
    if "forme" in opts:
        values["legal_form"] = match_choice(opts["forme"], LEGAL_FORMS).key
    if "esus" in opts:
        values["esus"] = match_choice(opts["esus"], ESUS).key
    if "collectif" in opts:
        values["collective"] = parse_yes_no(opts["collectif"], "collectif")
    return values


def _positional_project_words(plain: list[str], i: int, values: dict, words: list[str]) -> int:
    """``25``, ``collectif``, ``association``, ``reprise``, ``entreprise individuelle``: understood without
    ``key=``; else part of the name. Returns the number of words used."""
    phrase = match_phrase(plain, i, {"nature": NATURES, "forme": LEGAL_FORMS})
    if phrase is not None:
        name, choice, n = phrase
        _put_project_value("nature" if name == "nature" else "legal_form", choice.key, " ".join(plain[i:i + n]), values)
        return n
    word = plain[i]
    key = choice_key(word)
    found: tuple[str, object] | None = None
    if word in DEPARTMENT_LIST.keys():
        found = ("department", word)
    elif key in ("collectif", "collective"):
        found = ("collective", True)
    elif key in ("individuel", "individuelle"):
        found = ("collective", False)
    else:
        match = match_among(word, {"nature": NATURES, "forme": LEGAL_FORMS}, min_prefix=99)
        if match is not None:
            found = ("nature" if match[0] == "nature" else "legal_form", match[1].key)
    if found is None:
        words.append(word)
        return 1
    _put_project_value(found[0], found[1], word, values)
    return 1


def _put_project_value(name: str, value: object, text: str, values: dict) -> None:
    if name in values and values[name] != value:
        raise ParseError(f"{md_quote(text)} contredit une autre valeur déjà donnée pour ce champ "
                         f"({value_text(name, values[name])}). Gardez-en une seule. Exemple : `{NEW_EXAMPLE}`")
    values[name] = value


# -- voir / liste --------------------------------------------------------------------------------

@subcommand("projet", "voir", summary="la fiche d'un projet", usage="!projet voir <code ou nom>",
            examples=["!projet voir P-7K3Q", "!projet voir Pixel"], aliases=["fiche", "afficher"])
async def voir(ctx: Context, args: list[str]) -> None:
    if not args:
        raise UserError(f"Quel projet ? Exemple : `{ctx.prefix}projet voir P-7K3Q`")
    with user_errors(ctx, "!projet voir P-7K3Q"):
        history = await service(ctx).project_history(ctx.session, actor(ctx), " ".join(args), limit=1)
    p = history.project
    await require_project_place(ctx, p.code, "la fiche d'un projet", f"!projet voir {p.code}")
    lines = [f"**{md_escape(p.label)}** ({p.code})", *project_lines(ctx, p),
             f"- créé le {date_fr(p.created_at.astimezone(ctx.clock.tz), weekday=False)} par "
             f"{member_name(ctx, p.created_by)}"]
    profile = profile_lines(p.profile)
    if profile:
        lines += ["Profil du porteur :", *profile]
    else:
        lines.append(f"Profil du porteur : non renseigné (`{ctx.prefix}projet profil {p.code} femme 26-49 salarie`).")
    if history.sessions:
        lines.append(f"Suivis : {history.sessions} ({minutes_fr(history.minutes)}), le dernier le "
                     f"{date_fr(history.last_date)} — détail : `{ctx.prefix}suivi projet {p.code}`")
    else:
        lines.append(f"Suivis : aucun pour l'instant (`{ctx.prefix}suivi {p.code} accueil 1h`).")
    if history.referrals:
        lines.append("Orientations :")
        lines += [f"- {referral_line(ctx, r)}" for r in history.referrals]
    if p.outcome:
        lines.append(f"Issue : {outcome_text(p.outcome)}")
    ctx.reply("\n".join(lines))


@subcommand("projet", "liste", summary="les projets que vous pouvez consulter, les plus actifs d'abord",
            usage="!projet liste", examples=["!projet liste"], aliases=["tous"])
async def liste(ctx: Context, args: list[str]) -> None:
    audience = list_audience(ctx, "la liste des projets", "!projet liste")
    me = actor(ctx)
    svc = service(ctx)
    rows = await svc.list_projects(ctx.session, me, limit=30, audience=audience)
    pending = await svc.pending_referrals(ctx.session, me)
    lines: list[str] = []
    if not rows:
        lines.append(f"Aucun projet pour l'instant. Pour en créer un : `{ex(ctx, NEW_EXAMPLE)}`")
    else:
        lines.append(f"**Projets** ({len(rows)}{' au plus' if len(rows) == 30 else ''}) :")
        for r in rows:
            text = f"- **{md_escape(r.label)}** ({r.code}) · {r.department} · {NATURES.label(r.nature)}"
            if r.partner != me.partner:
                text += f" · {partner_name(ctx, r.partner)}"
            if r.sessions:
                text += (f" · {r.sessions} suivi{'s' if r.sessions > 1 else ''}, {minutes_fr(r.minutes)}, "
                         f"dernier le {date_fr(r.last_date, weekday=False)}")
            else:
                text += " · aucun suivi"
            if r.outcome:
                text += f" · issue : {OUTCOMES.label(r.outcome)}"
            lines.append(text)
    if pending:
        lines.append(f"Orientations en attente de votre réponse ({len(pending)}) :")
        lines += [f"- {project_title(r.project_label, r.project_code)}, proposé par {partner_name(ctx, r.from_partner)}"
                  f"{f' (motif : {said(r.note)})' if r.note else ''} — `{ctx.prefix}projet accepter {r.project_code}` "
                  f"ou `{ctx.prefix}projet refuser {r.project_code} \"raison\"`" for r in pending]
    ctx.reply("\n".join(lines))


# -- modifier / profil ---------------------------------------------------------------------------

MODIFY_EXAMPLE = "!projet modifier P-7K3Q forme=scic"


@subcommand("projet", "modifier", summary="corriger le nom, le département, la nature, la forme, ESUS…",
            usage="!projet modifier <code ou nom> <champ=valeur…>",
            examples=[MODIFY_EXAMPLE, "!projet modifier P-7K3Q esus=demandé collectif=oui",
                      '!projet modifier P-7K3Q libelle="Café Pixel"'], aliases=["corriger"])
async def modifier(ctx: Context, args: list[str]) -> None:
    with user_errors(ctx, MODIFY_EXAMPLE):
        options, rest = split_options(list(ctx.tokens))
        opts = resolve_options(options, PROJECT_FIELDS, ex(ctx, MODIFY_EXAMPLE))
        values = _project_options(opts)
    if not rest:
        raise UserError(f"Quel projet ? Exemple : `{ex(ctx, MODIFY_EXAMPLE)}`")
    if not values:
        raise UserError(f"Rien à modifier : indiquez `champ=valeur` (libelle, dep, nature, forme, esus, collectif). "
                        f"Exemple : `{ex(ctx, MODIFY_EXAMPLE)}`")
    ref = " ".join(t.text for t in rest)
    with user_errors(ctx, MODIFY_EXAMPLE):
        view, done = await service(ctx).update_project(ctx.session, actor(ctx), ref, ProjectChanges(**values))
    shown = await shows_project(ctx, view.code, view.partner)
    title = project_title(view.label, view.code) if shown else view.code
    if not done:
        ctx.reply(f"Rien n'a changé : {title} avait déjà ces valeurs.")
        return
    ctx.reply(f"✏️ Projet {title} modifié — {_changes_here(done, shown)}.")


def _changes_here(done: list[Change], shown: bool) -> str:
    """The changes, without the label's old and new values where the room may not see the project."""
    if shown:
        return changes_text(done)
    rest = changes_text([c for c in done if c.name != "label"])
    return join_fr([rest, "nom modifié"]) if any(c.name == "label" for c in done) else rest


PROFILE_EXAMPLE = "!projet profil P-7K3Q femme 26-49 de-longue-duree rsa qpv=non"
PROFILE_VALUES = ("genre : femme, homme, autre ; âge : l'âge (`30`) ou la tranche (`moins de 26 ans`, `26-49`, `50+`) ; "
                  "statut : `demandeur d'emploi indemnisé` (ou `de-indemnise`), `demandeur d'emploi non indemnisé`, "
                  "`demandeur d'emploi de longue durée` (`dld`), `salarié`, `indépendant`, `étudiant`, "
                  "`sans activité` ; minima : `rsa`, `ass`, `aucun` ; et `qpv=`, `frr=` (oui, non, nc)")


@subcommand("projet", "profil", summary="le profil du porteur, par tranches (genre, âge, statut, minima, QPV, FRR)",
            usage="!projet profil <code> [genre] [âge] [statut] [minima] [qpv=oui|non|nc] [frr=oui|non|nc]",
            examples=[PROFILE_EXAMPLE, "!projet profil P-7K3Q homme 52 salarié aucun frr=oui",
                      "!projet profil P-7K3Q demandeur d'emploi indemnisé moins de 26 ans"])
async def profil(ctx: Context, args: list[str]) -> None:
    ref, rest = _ref_and_rest(ctx, args, PROFILE_EXAMPLE)
    with user_errors(ctx, PROFILE_EXAMPLE):
        values = _profile_values(ctx, rest)
    if not values:
        raise UserError(f"Aucune valeur de profil donnée. Exemple : `{ex(ctx, PROFILE_EXAMPLE)}`")
    svc = service(ctx)
    with user_errors(ctx, PROFILE_EXAMPLE):
        project = await svc.find_project(ctx.session, actor(ctx), ref)
    await require_project_place(ctx, project.code, "le profil d'un porteur",
                                PROFILE_EXAMPLE.replace("P-7K3Q", project.code))
    with user_errors(ctx, PROFILE_EXAMPLE):
        view, done = await svc.set_profile(ctx.session, actor(ctx), project.code, Profile(**values))
    title = project_title(view.label, view.code)
    head = (f"✅ Profil du porteur {de_partner(title)} enregistré" if done
            else f"Rien n'a changé pour {title}")
    ctx.reply("\n".join([head + " :", *profile_lines(view.profile)]))


def _profile_values(ctx: Context, toks: list[Token]) -> dict[str, str]:
    """Profile bands from ``femme 30 demandeur d'emploi indemnisé rsa qpv=non``: options (their value may
    span several words), ages, labels of several words, then single words (by prefix)."""
    values: dict[str, str] = {}
    example = ex(ctx, PROFILE_EXAMPLE)

    def put(name: str, value: str, text: str) -> None:
        if name in values and values[name] != value:
            raise ParseError(f"Deux valeurs pour le même champ ({md_quote(text)}). Exemple : `{example}`")
        values[name] = value

    words = [t.text if not t.quoted else "\x00" for t in toks]
    lists = {key: clist for key, (_, clist) in PROFILE_OPTION_LISTS.items() if key not in ("qpv", "frr")}
    i = 0
    while i < len(toks):
        tok = toks[i]
        options, _ = split_options([tok])
        if options:
            key, text = next(iter(resolve_options(options, PROFILE_FIELDS, example).items()))
            name, clist = PROFILE_OPTION_LISTS[key]
            # "statut=demandeur d'emploi indemnisé": the value goes on over the next words
            phrase = match_phrase([text, *words[i + 1:]], 0, {key: clist})
            if phrase is not None:
                put(name, phrase[1].key, " ".join([tok.text, *words[i + 1:i + phrase[2]]]))
                i += phrase[2]
                continue
            put(name, match_choice(text, clist).key, tok.text)
            i += 1
            continue
        if key_age := match_age(words, i):
            band, n = key_age
            put("age_band", band, " ".join(words[i:i + n]))
            i += n
            continue
        phrase = match_phrase(words, i, lists)
        if phrase is not None:
            key, choice, n = phrase
            put(PROFILE_OPTION_LISTS[key][0], choice.key, " ".join(words[i:i + n]))
            i += n
            continue
        found = match_among(tok.text, lists, min_prefix=1)
        if found is None:
            raise ParseError(f"Je n'ai pas compris {md_quote(tok.text)}. Valeurs possibles — {PROFILE_VALUES}. "
                             f"Exemple : `{example}`")
        key, choice = found
        put(PROFILE_OPTION_LISTS[key][0], choice.key, tok.text)
        i += 1
    return values


# -- orienter / accepter / refuser ---------------------------------------------------------------

REFER_EXAMPLE = '!projet orienter P-7K3Q urscop "passage en SCOP"'


def _partners(ctx: Context) -> ChoiceList:
    return ChoiceList("partenaire", tuple(Choice(p.slug, p.name) for p in ctx.config.partners))


class _Notices:
    """Messages to partners about one project, one message per room (built for one command; sent by
    :meth:`send`). A partner is told in its own room, where the project may be named when the partner
    may see it; a partner without a room of its own is told in the coordination room — shared by every
    structure —, with the project's code only (never its name, a motive or a reason), its members (or
    the people given) mentioned."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.rooms: dict[str, tuple[list[str], list[str]]] = {}

    def add(self, slug: str, named: str, coded: str, *, sees: bool, address: list[str]) -> str | None:
        """Tell partner ``slug``: ``named`` (may name the project) in its own room when ``sees``, else
        ``coded``. ``address``: whom to mention (in the coordination room, the partner's members too).
        Returns where the partner is told (``partner`` or ``coordination``), or None."""
        partner = self.ctx.config.partner(slug)
        if partner is not None and partner.room:
            room, text, where = partner.room, named if sees else coded, "partner"
        elif self.ctx.config.rooms.coordination:
            room, text, where = self.ctx.config.rooms.coordination, coded, "coordination"
            address = [*address, *(m.user_id for m in self.ctx.config.members if m.partner == slug)]
        else:
            return None
        texts, who = self.rooms.setdefault(room, ([], []))
        texts.append(text)
        who.extend(u for u in address if u not in who)
        return where

    def send(self) -> None:
        for room, (texts, who) in self.rooms.items():
            text = "\n\n".join(texts)
            if who:
                text += "\nÀ l'attention de " + join_fr([member_pill(self.ctx, u) for u in who]) + "."
            self.ctx.announce(room, text, mentions=who)


@subcommand("projet", "orienter", summary="proposer le projet à une autre structure du réseau",
            usage='!projet orienter <code> <partenaire> ["motif"]', examples=[REFER_EXAMPLE], aliases=["orientation"])
async def orienter(ctx: Context, args: list[str]) -> None:
    ref, rest = _ref_and_rest(ctx, args, REFER_EXAMPLE)
    if not rest:
        names = ", ".join(md_code(p.slug) for p in ctx.config.partners)
        raise UserError(f"Vers quelle structure ? ({names}) Exemple : `{ex(ctx, REFER_EXAMPLE)}`")
    with user_errors(ctx, REFER_EXAMPLE):
        target = match_choice(rest[0].text, _partners(ctx)).key
    note = " ".join(t.text for t in rest[1:]) or None
    me = actor(ctx)
    with user_errors(ctx, REFER_EXAMPLE):
        referral = await service(ctx).refer(ctx.session, me, ref, target, note)
    code, holder, p = referral.project_code, referral.project_partner, ctx.prefix
    to = partner_name(ctx, target)
    by = f"{partner_name(ctx, me.partner)} ({member_name(ctx, me.user_id)})"
    motive = [f"Motif : {said(referral.note)}"] if referral.note else []
    answer = (f"Pour répondre : `{p}projet accepter {code}` ou `{p}projet refuser {code} \"raison\"`. Une fois "
              "acceptée, l'orientation vous donne accès à la fiche et à l'historique du projet.")
    named = "\n".join([f"📨 **Nouvelle orientation pour {to}** : le projet **{md_escape(referral.project_label)}** "
                       f"({code}) vous est proposé par {by}.", *motive, answer])
    hidden = "son nom et le motif" if referral.note else "son nom"
    coded = "\n".join([f"📨 **Nouvelle orientation pour {to}** : le projet {code} vous est proposé par {by}.",
                       f"Ce salon est partagé entre les structures : {hidden} vous sont donnés en message direct "
                       f"avec moi (`{p}projet liste`).", answer])
    notices = _Notices(ctx)
    # the partner it is proposed to may read the name in its own room: the holder (or the coordination)
    # chose to show the project to it
    where = notices.add(target, named, coded, sees=True,
                        address=[m.user_id for m in ctx.config.members if m.partner == target])
    holder_told = None
    if holder != me.partner:  # the coordination referred it: the holding partner is told
        named = "\n".join([f"📨 {by} a proposé le projet **{md_escape(referral.project_label)}** ({code}), porté par "
                           f"{partner_name(ctx, holder)}, à {to}.", *motive])
        coded = (f"📨 {by} a proposé le projet {code}, porté par {partner_name(ctx, holder)}, à {to}. Détail en "
                 f"message direct avec moi : `{p}suivi projet {code}`.")
        holder_told = notices.add(holder, named, coded, sees=True, address=[])
    notices.send()
    title = project_title(referral.project_label, code) if await shows_project(ctx, code, holder) else code
    told = ""
    if holder_told is not None:
        told = f" {partner_name(ctx, holder)}, qui porte le projet, en est informé·e."
    if where is not None:
        place = "dans leur salon" if where == "partner" else "dans le salon de coordination (par le code du projet seulement)"
        ctx.reply(f"📨 Orientation {de_partner(title)} proposée à {to}. Ses membres sont prévenu·e·s {place} ; "
                  f"vous serez informé·e de leur réponse.{told}")
    else:
        ctx.reply(f"📨 Orientation {de_partner(title)} proposée à {to}. Aucun salon n'est configuré pour cette "
                  f"structure : prévenez-la directement (elle verra la proposition avec `{p}projet liste` et "
                  f"répondra avec `{p}projet accepter {code}`).{told}")


@subcommand("projet", "accepter", summary="accepter un projet orienté vers votre structure",
            usage="!projet accepter <code>", examples=["!projet accepter P-7K3Q"])
async def accepter(ctx: Context, args: list[str]) -> None:
    await _decide(ctx, args, accept=True)


@subcommand("projet", "refuser", summary="refuser un projet orienté vers votre structure",
            usage='!projet refuser <code> ["raison"]', examples=['!projet refuser P-7K3Q "hors de notre territoire"'])
async def refuser(ctx: Context, args: list[str]) -> None:
    await _decide(ctx, args, accept=False)


async def _decide(ctx: Context, args: list[str], accept: bool) -> None:
    example = "!projet accepter P-7K3Q" if accept else '!projet refuser P-7K3Q "hors de notre territoire"'
    ref, rest = _ref_and_rest(ctx, args, example)
    reason = " ".join(t.text for t in rest) or None
    if accept and reason:
        raise UserError(f"Je n'ai pas compris {md_quote(reason)} (une acceptation n'a pas de raison). "
                        f"Exemple : `{ex(ctx, example)}`")
    me = actor(ctx)
    svc = service(ctx)
    with user_errors(ctx, example):
        r = await svc.decide_referral(ctx.session, me, ref, accept, reason)
    code, holder, origin = r.project_code, r.project_partner, r.from_partner
    mine = partner_name(ctx, me.partner)
    by = member_pill(ctx, r.created_by)
    label = md_escape(r.project_label)
    if accept:
        after = ("Ses conseiller·ère·s peuvent désormais consulter le projet et y enregistrer des suivis.")
        named = f"✅ {mine} a accepté l'orientation du projet **{label}** ({code}), proposée par {by}. {after}"
        coded = f"✅ {mine} a accepté l'orientation du projet {code}, proposée par {by}. {after}"
    else:
        named = f"❌ {mine} a refusé l'orientation du projet **{label}** ({code}), proposée par {by}."
        coded = f"❌ {mine} a refusé l'orientation du projet {code}, proposée par {by}."
        if r.reason:
            named += f" Raison : {said(r.reason)}"
            coded += (f" La raison figure dans l'historique du projet, en message direct avec moi : "
                      f"`{ctx.prefix}suivi projet {code}`.")
    # told: the partner that referred it, and the holder (when the coordination referred it)
    notices = _Notices(ctx)
    told = []
    sees = origin == holder or await svc.partner_sees(ctx.session, origin, code)
    if notices.add(origin, named, coded, sees=sees, address=[r.created_by]) is not None:
        told.append(partner_name(ctx, origin))
    if holder != origin and notices.add(holder, named, coded, sees=True, address=[]) is not None:
        told.append(partner_name(ctx, holder))
    notices.send()
    title = project_title(r.project_label, code) if await shows_project(ctx, code, holder) else code
    informed = ""
    if told:
        informed = f" {join_fr(told)} {'en est informé·e' if len(told) == 1 else 'en sont informé·e·s'}."
    if accept:
        ctx.reply(f"✅ Orientation acceptée : {title} est maintenant visible pour {mine}.{informed} "
                  f"Premier suivi, par exemple : `{ctx.prefix}suivi {code} accueil 1h`.")
    else:
        ctx.reply(f"Orientation refusée : {title}.{informed}")


# -- issue ---------------------------------------------------------------------------------------

OUTCOME_EXAMPLE = "!projet issue P-7K3Q creation forme=scop emplois=2"


@subcommand("projet", "issue", summary="enregistrer l'issue : création, abandon, réorientation ou report",
            usage="!projet issue <code> <création|abandon|réorientation|report> [forme=…] [emplois=…] [date]",
            examples=[OUTCOME_EXAMPLE, "!projet issue P-7K3Q abandon 12/11", "!projet issue P-7K3Q report"],
            aliases=["resultat"])
async def issue(ctx: Context, args: list[str]) -> None:
    ref, rest = _ref_and_rest(ctx, args, OUTCOME_EXAMPLE)
    now = ctx.clock.now()
    dates = ctx.services.dates
    oldest = retention_start(dates.today(now))
    kind = legal_form = when = fte = None
    assumed: int | None = None
    with user_errors(ctx, OUTCOME_EXAMPLE):
        options, positional = split_options(rest)
        opts = resolve_options(options, OUTCOME_FIELDS, ex(ctx, OUTCOME_EXAMPLE))
        if "issue" in opts:
            kind = match_choice(opts["issue"], OUTCOMES).key
        if "forme" in opts:
            legal_form = match_choice(opts["forme"], LEGAL_FORMS).key
        if "emplois" in opts:
            fte = parse_fte(opts["emplois"])
        if "date" in opts:
            reading = dates.read(opts["date"], now, oldest=oldest)
            when, assumed = reading.value, reading.assumed_year
        words = [t.text for t in positional]
        i = 0
        while i < len(words):
            span = dates.match_reading(words, i, now, oldest=oldest)
            if span is not None and when is None:
                when, assumed = span[0].value, span[0].assumed_year
                i += span[1]
                continue
            if kind is None:
                kind = match_choice(words[i], OUTCOMES).key
                i += 1
                continue
            raise UserError(f"Je n'ai pas compris {md_quote(words[i])}. Exemple : `{ex(ctx, OUTCOME_EXAMPLE)}`")
    if kind is None:
        raise UserError(f"Quelle issue ? (création, abandon, réorientation ou report) "
                        f"Exemple : `{ex(ctx, OUTCOME_EXAMPLE)}`")
    with user_errors(ctx, OUTCOME_EXAMPLE):
        result = await service(ctx).record_outcome(
            ctx.session, actor(ctx), ref, NewOutcome(outcome=kind, date=when, legal_form=legal_form, jobs_fte=fte))
    project, outcome = result.project, result.outcome
    shown = await shows_project(ctx, project.code, project.partner)
    title = project_title(project.label, project.code) if shown else project.code
    if result.previous is None:
        lines = [f"✅ Issue enregistrée pour {title} : {outcome_text(outcome)}"
                 + (" (la forme juridique envisagée, faute de `forme=`)" if result.form_from_project else "")]
    elif result.changes:
        lines = [f"✅ Issue mise à jour pour {title} : {outcome_text(outcome)}",
                 f"Changements : {changes_text(result.changes)}."]
    else:
        lines = [f"Rien n'a changé pour {title} : l'issue était déjà {outcome_text(outcome)}."]
    if assumed:
        lines[0] += f" (année {assumed} déduite)"
    if result.kept and result.changes:
        kept = join_fr([f"{FIELD_LABELS[name]} ({value_text(name, _outcome_value(outcome, name))})"
                        for name in result.kept])
        lines.append(f"Repris de l'issue précédente, faute d'autre valeur : {kept}.")
    if kind == "creation" and outcome.jobs_fte is None:
        lines.append(f"Emplois créés non renseignés : ajoutez-les avec `{ctx.prefix}projet issue {project.code} "
                     "creation emplois=2` (en équivalents temps plein).")
    ctx.reply("\n".join(lines))


def _outcome_value(outcome, name: str):
    return {"date": outcome.date, "legal_form": outcome.legal_form, "jobs_fte": outcome.jobs_fte}[name]
