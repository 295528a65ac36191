"""!projet — pseudonymous projects: create, view, list, modify, holder profile, referral to another
partner (accept/refuse), outcome."""

from __future__ import annotations

from commands._accompaniment import (actor, changes_text, ex, member_name, outcome_text, partner_name,
                                     profile_lines, project_lines, referral_line, require_private_place, service, tokens,
                                     user_errors)
from ess_bot.formatting import date_fr, join_fr, minutes_fr, pill
from ess_bot.framework.command import command, help_text, subcommand
from ess_bot.framework.context import Context, UserError
from ess_bot.parsing import (ParseError, Token, choice_key, match_among, match_choice, parse_fte, parse_yes_no,
                             quote, resolve_options, split_options)
from ess_bot.services.accompaniments import NewOutcome, NewProject, Profile, ProjectChanges
from ess_bot.vocabulary import (AGE_BANDS, DEPARTMENT_LIST, EMPLOYMENT_STATUSES, ESUS, FRR, GENDERS, LEGAL_FORMS,
                                MINIMA, NATURES, OUTCOMES, QPV, Choice, ChoiceList)

NEW_EXAMPLE = '!projet nouveau "Café culturel Pixel" dep=25 forme=association collectif'
DETAILS = (
    "Un projet est désigné par un code au hasard (`P-7K3Q`) et un nom court — le nom du projet, jamais celui "
    "d'une personne. Aucune coordonnée (nom, adresse, e-mail, téléphone) n'est enregistrée : elles restent dans "
    "les fichiers de votre structure. Un projet n'est visible que de sa structure, des structures vers "
    "lesquelles il a été orienté (après acceptation) et des coordinateur·rice·s.")

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
        raise UserError(f"Sous-commande inconnue : {quote(args[0])}. Pour consulter un projet : "
                        f"`{ctx.prefix}projet voir {' '.join(args)}`.\n\n" + help_text(ctx.command, ctx.role, ctx.prefix))
    raise UserError(help_text(ctx.command, ctx.role, ctx.prefix))


def _ref_and_rest(ctx: Context, args: list[str], example: str) -> tuple[str, list[Token]]:
    """The project (first argument: a code, or a label in quotes) and what follows."""
    toks = tokens(ctx, args)
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
        options, rest = split_options(tokens(ctx, args))
        opts = resolve_options(options, PROJECT_FIELDS, ex(ctx, NEW_EXAMPLE))
        values = _project_options(opts)
    quoted = [t.text for t in rest if t.quoted]
    words: list[str] = []
    for tok in (t for t in rest if not t.quoted):
        with user_errors(ctx, NEW_EXAMPLE):
            _positional_project_word(tok.text, values, words)
    if len(quoted) > 1:
        raise UserError(f"Un seul nom entre guillemets, s'il vous plaît (j'en vois {len(quoted)} : "
                        f"{join_fr([quote(q) for q in quoted])}). Exemple : `{ex(ctx, NEW_EXAMPLE)}`")
    if quoted and words:
        raise UserError(f"Je n'ai pas compris {join_fr([quote(w) for w in words])}. Exemple : `{ex(ctx, NEW_EXAMPLE)}`")
    label = quoted[0] if quoted else " ".join(words)
    if "label" in values:
        if label:
            raise UserError(f"Le nom est donné deux fois ({quote(label)} et {quote(values['label'])}). "
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
            covered = f" ({partner.name} couvre {join_fr(list(deps))})" if deps else ""
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
    lines = [f"✅ Projet **{view.code}** créé — {view.label}", *project_lines(ctx, view, defaults),
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


def _positional_project_word(word: str, values: dict, words: list[str]) -> None:
    """``25``, ``collectif``, ``association``, ``reprise``: understood without ``key=``; else part of the name."""
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
        return
    name, value = found
    if name in values and values[name] != value:
        raise ParseError(f"{quote(word)} contredit une autre valeur déjà donnée pour ce champ.")
    values[name] = value


# -- voir / liste --------------------------------------------------------------------------------

@subcommand("projet", "voir", summary="la fiche d'un projet", usage="!projet voir <code ou nom>",
            examples=["!projet voir P-7K3Q", "!projet voir Pixel"], aliases=["fiche", "afficher"])
async def voir(ctx: Context, args: list[str]) -> None:
    if not args:
        raise UserError(f"Quel projet ? Exemple : `{ctx.prefix}projet voir P-7K3Q`")
    require_private_place(ctx, "la fiche d'un projet", f"!projet voir {' '.join(args)}")
    with user_errors(ctx, "!projet voir P-7K3Q"):
        history = await service(ctx).project_history(ctx.session, actor(ctx), " ".join(args))
    p = history.project
    lines = [f"**{p.label}** ({p.code})", *project_lines(ctx, p),
             f"- créé le {date_fr(p.created_at.astimezone(ctx.clock.tz), weekday=False)} par "
             f"{member_name(ctx, p.created_by)}"]
    profile = profile_lines(p.profile)
    if profile:
        lines += ["Profil du porteur :", *profile]
    else:
        lines.append(f"Profil du porteur : non renseigné (`{ctx.prefix}projet profil {p.code} femme 26-49 salarie`).")
    sessions = sum(t.sessions for t in history.totals)
    if sessions:
        minutes = sum(t.minutes for t in history.totals)
        last = history.accompaniments[-1].date
        lines.append(f"Suivis : {sessions} ({minutes_fr(minutes)}), le dernier le {date_fr(last)} — détail : "
                     f"`{ctx.prefix}suivi projet {p.code}`")
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
    require_private_place(ctx, "la liste des projets", "!projet liste")
    me = actor(ctx)
    svc = service(ctx)
    rows = await svc.list_projects(ctx.session, me, limit=30)
    pending = await svc.pending_referrals(ctx.session, me)
    lines: list[str] = []
    if not rows:
        lines.append(f"Aucun projet pour l'instant. Pour en créer un : `{ex(ctx, NEW_EXAMPLE)}`")
    else:
        lines.append(f"**Projets** ({len(rows)}{' au plus' if len(rows) == 30 else ''}) :")
        for r in rows:
            text = f"- **{r.label}** ({r.code}) · {r.department} · {NATURES.label(r.nature)}"
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
        lines += [f"- {r.project_label} ({r.project_code}), proposé par {partner_name(ctx, r.from_partner)} — "
                  f"`{ctx.prefix}projet accepter {r.project_code}`" for r in pending]
    ctx.reply("\n".join(lines))


# -- modifier / profil ---------------------------------------------------------------------------

MODIFY_EXAMPLE = "!projet modifier P-7K3Q forme=scic"


@subcommand("projet", "modifier", summary="corriger le nom, le département, la nature, la forme, ESUS…",
            usage="!projet modifier <code ou nom> <champ=valeur…>",
            examples=[MODIFY_EXAMPLE, "!projet modifier P-7K3Q esus=demandé collectif=oui",
                      '!projet modifier P-7K3Q libelle="Café Pixel"'], aliases=["corriger"])
async def modifier(ctx: Context, args: list[str]) -> None:
    with user_errors(ctx, MODIFY_EXAMPLE):
        options, rest = split_options(tokens(ctx, args))
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
    if not done:
        ctx.reply(f"Rien n'a changé : {view.label} ({view.code}) avait déjà ces valeurs.")
        return
    ctx.reply(f"✏️ Projet {view.label} ({view.code}) modifié — {changes_text(done)}.")


PROFILE_EXAMPLE = "!projet profil P-7K3Q femme 26-49 de-longue-duree rsa qpv=non"


@subcommand("projet", "profil", summary="le profil du porteur, par tranches (genre, âge, statut, minima, QPV, FRR)",
            usage="!projet profil <code> [genre] [âge] [statut] [minima] [qpv=oui|non|nc] [frr=oui|non|nc]",
            examples=[PROFILE_EXAMPLE, "!projet profil P-7K3Q homme 50+ salarie aucun frr=oui"])
async def profil(ctx: Context, args: list[str]) -> None:
    ref, rest = _ref_and_rest(ctx, args, PROFILE_EXAMPLE)
    require_private_place(ctx, "le profil d'un porteur", PROFILE_EXAMPLE)
    values: dict[str, str] = {}

    def put(name: str, value: str, text: str) -> None:
        if name in values and values[name] != value:
            raise UserError(f"Deux valeurs pour le même champ ({quote(text)}). Exemple : `{ex(ctx, PROFILE_EXAMPLE)}`")
        values[name] = value

    with user_errors(ctx, PROFILE_EXAMPLE):
        options, positional = split_options(rest)
        opts = resolve_options(options, PROFILE_FIELDS, ex(ctx, PROFILE_EXAMPLE))
        for key, text in opts.items():
            name, clist = PROFILE_OPTION_LISTS[key]
            put(name, match_choice(text, clist).key, text)
        lists = {key: clist for key, (_, clist) in PROFILE_OPTION_LISTS.items() if key not in ("qpv", "frr")}
        for tok in positional:
            found = match_among(tok.text, lists, min_prefix=1)
            if found is None:
                raise UserError(
                    f"Je n'ai pas compris {quote(tok.text)}. Valeurs possibles — genre : femme, homme, autre ; âge : "
                    "<26, 26-49, 50+ ; statut : de-indemnise, de-non-indemnise, de-longue-duree, salarie, independant, "
                    "etudiant, sans-activite ; minima : rsa, ass, aucun ; et `qpv=`, `frr=` (oui, non, nc). "
                    f"Exemple : `{ex(ctx, PROFILE_EXAMPLE)}`")
            key, choice = found
            put(PROFILE_OPTION_LISTS[key][0], choice.key, tok.text)
    if not values:
        raise UserError(f"Aucune valeur de profil donnée. Exemple : `{ex(ctx, PROFILE_EXAMPLE)}`")
    with user_errors(ctx, PROFILE_EXAMPLE):
        view, done = await service(ctx).set_profile(ctx.session, actor(ctx), ref, Profile(**values))
    head = (f"✅ Profil du porteur de {view.label} ({view.code}) enregistré" if done
            else f"Rien n'a changé pour {view.label} ({view.code})")
    ctx.reply("\n".join([head + " :", *profile_lines(view.profile)]))


# -- orienter / accepter / refuser ---------------------------------------------------------------

REFER_EXAMPLE = '!projet orienter P-7K3Q urscop "passage en SCOP"'


def _partners(ctx: Context) -> ChoiceList:
    return ChoiceList("partenaire", tuple(Choice(p.slug, p.name) for p in ctx.config.partners))


@subcommand("projet", "orienter", summary="proposer le projet à une autre structure du réseau",
            usage='!projet orienter <code> <partenaire> ["motif"]', examples=[REFER_EXAMPLE], aliases=["orientation"])
async def orienter(ctx: Context, args: list[str]) -> None:
    ref, rest = _ref_and_rest(ctx, args, REFER_EXAMPLE)
    if not rest:
        names = ", ".join(f"`{p.slug}`" for p in ctx.config.partners)
        raise UserError(f"Vers quelle structure ? ({names}) Exemple : `{ex(ctx, REFER_EXAMPLE)}`")
    with user_errors(ctx, REFER_EXAMPLE):
        target = match_choice(rest[0].text, _partners(ctx)).key
    note = " ".join(t.text for t in rest[1:]) or None
    me = actor(ctx)
    with user_errors(ctx, REFER_EXAMPLE):
        referral = await service(ctx).refer(ctx.session, me, ref, target, note)
    partner = ctx.config.partner(target)
    members = [m for m in ctx.config.members if m.partner == target]
    room = partner.room or ctx.config.rooms.coordination
    code = referral.project_code
    if room:
        text = [f"📨 **Nouvelle orientation pour {partner.name}** : le projet **{referral.project_label}** ({code}) "
                f"vous est proposé par {partner_name(ctx, me.partner)} ({member_name(ctx, me.user_id)})."]
        if note:
            text.append(f"Motif : « {referral.note} »")
        if members:
            text.append("Pour " + ", ".join(pill(m.user_id, m.display) for m in members) + " :")
        text.append(f"Pour répondre : `{ctx.prefix}projet accepter {code}` ou "
                    f"`{ctx.prefix}projet refuser {code} \"raison\"`. Une fois acceptée, l'orientation vous donne "
                    "accès à la fiche et à l'historique du projet.")
        ctx.announce(room, "\n".join(text), mentions=[m.user_id for m in members])
        where = "dans leur salon" if partner.room else "dans le salon de coordination"
        ctx.reply(f"📨 Orientation de {referral.project_label} ({code}) proposée à {partner.name}. Ses membres sont "
                  f"prévenu·e·s {where} ; vous serez informé·e de leur réponse.")
    else:
        ctx.reply(f"📨 Orientation de {referral.project_label} ({code}) proposée à {partner.name}. Aucun salon n'est "
                  f"configuré pour cette structure : prévenez-la directement (elle répondra avec "
                  f"`{ctx.prefix}projet accepter {code}`).")


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
        raise UserError(f"Je n'ai pas compris {quote(reason)} (une acceptation n'a pas de raison). "
                        f"Exemple : `{ex(ctx, example)}`")
    me = actor(ctx)
    with user_errors(ctx, example):
        r = await service(ctx).decide_referral(ctx.session, me, ref, accept, reason)
    origin = ctx.config.partner(r.from_partner)
    room = (origin.room if origin else "") or ctx.config.rooms.coordination
    mine = partner_name(ctx, me.partner)
    if accept:
        notice = (f"✅ {mine} a accepté l'orientation du projet **{r.project_label}** ({r.project_code}), "
                  f"proposée par {pill(r.created_by, member_name(ctx, r.created_by))}. Ses conseiller·ère·s peuvent "
                  "désormais consulter le projet et y enregistrer des suivis.")
        ctx.reply(f"✅ Orientation acceptée : {r.project_label} ({r.project_code}) est maintenant visible pour {mine}. "
                  f"Premier suivi, par exemple : `{ctx.prefix}suivi {r.project_code} accueil 1h`.")
    else:
        notice = (f"❌ {mine} a refusé l'orientation du projet **{r.project_label}** ({r.project_code}), proposée par "
                  f"{pill(r.created_by, member_name(ctx, r.created_by))}.")
        if r.reason:
            notice += f" Raison : « {r.reason} »"
        ctx.reply(f"Orientation refusée : {r.project_label} ({r.project_code}). {partner_name(ctx, r.from_partner)} "
                  "en est informé.")
    if room:
        ctx.announce(room, notice, mentions=[r.created_by])


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
    kind = legal_form = when = fte = None
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
            when = dates.parse(opts["date"], now)
        words = [t.text for t in positional]
        i = 0
        while i < len(words):
            span = dates.match_span(words, i, now)
            if span is not None and when is None:
                when = span[0]
                i += span[1]
                continue
            if kind is None:
                kind = match_choice(words[i], OUTCOMES).key
                i += 1
                continue
            raise UserError(f"Je n'ai pas compris {quote(words[i])}. Exemple : `{ex(ctx, OUTCOME_EXAMPLE)}`")
    if kind is None:
        raise UserError(f"Quelle issue ? (création, abandon, réorientation ou report) "
                        f"Exemple : `{ex(ctx, OUTCOME_EXAMPLE)}`")
    svc = service(ctx)
    me = actor(ctx)
    defaulted_form = False
    with user_errors(ctx, OUTCOME_EXAMPLE):
        if kind == "creation" and legal_form is None:
            project = await svc.find_project(ctx.session, me, ref)
            if project.legal_form != "nsp":
                legal_form, defaulted_form = project.legal_form, True
        outcome, previous, project = await svc.record_outcome(
            ctx.session, me, ref, NewOutcome(outcome=kind, date=when or ctx.clock.today(), legal_form=legal_form,
                                             jobs_fte=fte))
    lines = [f"✅ Issue enregistrée pour {project.label} ({project.code}) : {outcome_text(outcome)}"
             + (" (la forme juridique envisagée, faute de `forme=`)" if defaulted_form else "")]
    if previous is not None:
        lines.append(f"Elle remplace l'issue précédente : {outcome_text(previous)}.")
    if kind == "creation" and fte is None:
        lines.append(f"Emplois créés non renseignés : ajoutez-les avec `{ctx.prefix}projet issue {project.code} "
                     "creation emplois=2` (en équivalents temps plein).")
    ctx.reply("\n".join(lines))

