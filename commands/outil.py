"""!outil — the network's pooled tools: share a link or a file, search, list, see, modify, remove.

Files posted by members are remembered (EVENT_HANDLERS["file"]) so that ``!outil ajouter`` may be sent
as a reply to one; a tool found alone is sent again in the room from its original Matrix content,
without a new upload.
"""

from __future__ import annotations

import re

from commands._events import (changes_lines, clearable, domain_errors, ex, match_closed, option_keys, record_id,
                              single_link, split_args, tag_option, tags_fr, tokens_for, words_fr)
from ess_bot.formatting import date_fr, join_fr, md_code, md_escape, md_link
from ess_bot.framework.command import command, help_text, subcommand
from ess_bot.framework.context import Context, UserError
from ess_bot.framework.messages import Outgoing
from ess_bot.parsing import ChoiceError, match_among, md_quote
from ess_bot.services.tools import (CLEAR, TOOL_TYPES, FileRef, NewTool, SeenFile, ToolChanges, ToolView,
                                    file_ref_from_content)
from ess_bot.vocabulary import PHASES

EXAMPLE_ADD = ('!outil ajouter "Trame de business plan ESS" https://exemple.org/trame-bp.docx #businessplan #scop '
               'type=trame phase=ante-création')
EXAMPLE_SEARCH = "!outil business plan"
EXAMPLE_EDIT = '!outil modifier 3 type=guide phase=émergence #statuts'
EXAMPLE_TAGS = "!outil modifier 3 #statuts -#scop"
EXAMPLE_SHOW = "!outil voir 3"
EXAMPLE_REMOVE = "!outil retirer 3"
KEYS = option_keys("option", {
    "titre": ("title", "nom"),
    "lien": ("url", "link", "adresse"),
    "type": ("genre", "categorie", "catégorie"),
    "phase": ("etape", "étape"),
    "description": ("desc", "descr", "resume", "résumé"),
    "tags": ("mots-cles", "mots-clés", "motscles", "mot-cle", "mot-clé"),
})
RESULTS_SHOWN = 5
LIST_MAX = 30
TYPES_TEXT = ", ".join(TOOL_TYPES.labels())
DETAILS = (f"Types : {TYPES_TEXT} (les premières lettres suffisent). Phases : {', '.join(PHASES.labels())}. "
           "Pour partager un fichier : envoyez-le dans le salon, puis répondez à son message avec "
           "`!outil ajouter \"Titre\" #mot-clé type=…` (seuls les fichiers de ce salon-ci peuvent être partagés "
           "ainsi). "
           "Pour modifier les mots-clés : `#mot` ajoute, `-#mot` retire, `tags=a,b` les remplace tous. "
           "Pas de coordonnées personnelles ni de données de santé dans le titre ou la description (RGPD). "
           "La recherche ignore accents et majuscules et tolère les petites fautes ; un seul résultat est envoyé "
           "directement.")


def svc(ctx: Context):
    return ctx.services.tools


def partner_name(ctx: Context, slug: str) -> str:
    p = ctx.config.partner(slug)
    return p.name if p else slug


def kind_text(tool: ToolView) -> str:
    return tool.type_label + (f" · {tool.phase_label}" if tool.phase_label else "")


def tool_line(ctx: Context, tool: ToolView, with_link: bool = True) -> str:
    text = f"n°{tool.id} · **{md_escape(tool.title)}** ({kind_text(tool)})"
    if tool.tags:
        text += " " + tags_fr(tool.tags)
    if with_link:
        if tool.link:
            text += f" — {md_link(tool.link, tool.link)}"
        elif tool.file:
            text += f" — 📎 fichier : `{ctx.prefix}outil voir {tool.id}`"
    return text


def file_outgoing(ctx: Context, f: FileRef) -> Outgoing:
    """The original file, sent again from its Matrix content (``extra``: ``url`` or ``file``, ``info``)."""
    info = {k: v for k, v in (("mimetype", f.mimetype), ("size", f.size)) if v is not None}
    extra: dict = {"info": info, "msgtype": f.msgtype}
    if f.file is not None:
        extra["file"] = f.file
    else:
        extra["url"] = f.url
    return Outgoing(room_id=ctx.event.room_id, kind="image" if f.msgtype == "m.image" else "file", body=f.name,
                    filename=f.name, mimetype=f.mimetype, data=None, extra=extra, reply_to=ctx.event.event_id,
                    thread_root=ctx.event.thread_root)


async def serve(ctx: Context, tool: ToolView, headline: str = "📎") -> None:
    """Hand one tool out: its card (with the link), then its file if it has one; counted."""
    await svc(ctx).served(ctx.session, tool.id, ctx.event.room_id)
    lines = [f"{headline} **{md_escape(tool.title)}** — outil n°{tool.id} ({kind_text(tool)}), partagé par "
             f"{md_escape(partner_name(ctx, tool.partner))} le {date_fr(tool.created_at, weekday=False)}"]
    if tool.link:
        lines.append(f"Lien : {md_link(tool.link, tool.link)}")
    if tool.description:
        lines.append(md_escape(tool.description))
    if tool.tags:
        lines.append(tags_fr(tool.tags))
    if tool.file:
        lines.append(f"Fichier : {md_escape(tool.file.name)} (ci-dessous)")
    ctx.reply("\n".join(lines))
    if tool.file:
        ctx.send(file_outgoing(ctx, tool.file))


# -- search (the default action) ------------------------------------------------------------------

@command("outil", group="Outils partagés", summary="chercher et partager les outils du réseau (trames, guides…)",
         usage="!outil <mots> | !outil <ajouter|liste|voir|modifier|retirer|populaires> …", aliases=["outils"],
         examples=[EXAMPLE_SEARCH, "!outil statuts scic"], details=DETAILS)
async def outil(ctx: Context, args: list[str]) -> None:
    if not args:
        raise UserError(help_text(ctx.command, ctx.role, ctx.prefix))
    await _search(ctx, args)


@subcommand("outil", "chercher", summary="chercher un outil par mots (titre, mots-clés, type, description)",
            usage="!outil chercher <mots>", examples=["!outil chercher grille diagnostic"],
            aliases=["recherche", "rechercher", "trouver"])
async def chercher(ctx: Context, args: list[str]) -> None:
    if not args:
        raise UserError(f"Que cherchez-vous ? Exemple : `{ex(ctx, EXAMPLE_SEARCH)}`")
    await _search(ctx, args)


async def _search(ctx: Context, args: list[str]) -> None:
    query = " ".join(args)
    result = await svc(ctx).search(ctx.session, query)
    single = result.single
    if single is not None:
        await serve(ctx, single)
        return
    more = (f" (je n'ai cherché que les {len(result.words)} premiers mots : {result.dropped} autres laissés de côté)"
            if result.dropped else "")
    if not result.hits:
        ctx.reply(f"Aucun outil ne correspond à {md_quote(query)}{more}. Essayez d'autres mots, ou "
                  f"`{ctx.prefix}outil liste` pour tout voir. Pour en partager un : `{ex(ctx, EXAMPLE_ADD)}`")
        return
    hits = result.hits[:RESULTS_SHOWN]
    if result.complete:
        head = f"🔎 {len(result.hits)} outils correspondent à {md_quote(query)}"
    else:
        head = f"🔎 Aucun outil ne contient tous les mots de {md_quote(query)} ; les plus proches"
    lines = [head + more + (f" (les {RESULTS_SHOWN} premiers)" if len(result.hits) > RESULTS_SHOWN else "") + " :"]
    lines += [f"{i}. {tool_line(ctx, h.tool)}" for i, h in enumerate(hits, 1)]
    lines.append(f"Pour en recevoir un : `{ctx.prefix}outil voir <n°>`, par exemple "
                 f"`{ctx.prefix}outil voir {hits[0].tool.id}`.")
    ctx.reply("\n".join(lines))


# -- ajouter -------------------------------------------------------------------------------------

@subcommand("outil", "ajouter", summary="partager un outil : un lien, ou en réponse à un fichier envoyé",
            usage='!outil ajouter "Titre" <lien> [#mot-clé …] [type=…] [phase=…] [description="…"]',
            examples=[EXAMPLE_ADD, '!outil ajouter "Grille d\'autodiagnostic ESUS" #esus type=grille'],
            aliases=["partager", "nouveau", "proposer"])
async def ajouter(ctx: Context, args: list[str]) -> None:
    a = split_args(ctx, args, KEYS, EXAMPLE_ADD)
    link = single_link(ctx, a, "outil", EXAMPLE_ADD)
    if a.untags:
        raise UserError(f"Un nouvel outil n'a pas de mot-clé à retirer "
                        f"({md_escape(' '.join('-#' + t for t in a.untags))}). "
                        f"Exemple : `{ex(ctx, EXAMPLE_ADD)}`")
    file = None
    if ctx.event.reply_to:
        file = await svc(ctx).room_file(ctx.session, ctx.event.reply_to, ctx.event.room_id)
        if file is None and not link:
            raise UserError("Je ne retrouve pas le fichier auquel vous répondez dans ce salon : je ne connais que "
                            "les fichiers envoyés ici par des membres du réseau, depuis que je suis dans le salon et "
                            "depuis moins de six mois (un fichier d'un autre salon ne peut pas être repartagé d'ici). "
                            "Envoyez le fichier ici, puis répondez à son message avec `"
                            + ex(ctx, '!outil ajouter "Titre" #mot-clé') + "` — ou donnez un lien : `"
                            + ex(ctx, EXAMPLE_ADD) + "`")
    if not link and file is None:
        raise UserError("Il faut un lien (https://…) ou répondre au message d'un fichier envoyé dans le salon.\n"
                        f"Exemple : `{ex(ctx, EXAMPLE_ADD)}`")
    title = a.options.get("titre") or " ".join(a.words)
    if not title and file is not None:
        title = re.sub(r"[_\-]+", " ", file.name.rsplit(".", 1)[0]).strip()
    if not title:
        raise UserError(f"Il manque le titre de l'outil (entre guillemets). Exemple : `{ex(ctx, EXAMPLE_ADD)}`")
    tool_type = match_closed(ctx, a.options["type"], TOOL_TYPES, EXAMPLE_ADD) if "type" in a.options else "autre"
    phase = match_closed(ctx, a.options["phase"], PHASES, EXAMPLE_ADD) if "phase" in a.options else None
    tags = tuple(a.tags) + (tag_option(a.options["tags"]) if "tags" in a.options else ())
    new = NewTool(title=title, link=link, file=file, tags=tags, type=tool_type, phase=phase,
                  description=a.options.get("description"))
    with domain_errors(ctx, EXAMPLE_ADD):
        view = await svc(ctx).add(ctx.session, ctx.member, new)
    first = re.split(r"\s+", view.title)[0]
    what = "fichier" if view.file and not view.link else ("lien et fichier" if view.file else "lien")
    text = (f"✅ Merci ! Outil n°{view.id} {md_quote(view.title)} partagé ({kind_text(view)}, {what}) au nom de "
            f"{md_escape(partner_name(ctx, view.partner))}.")
    if view.tags:
        text += " Mots-clés : " + tags_fr(view.tags) + "."
    if view.type == "autre" and "type" not in a.options:
        text += f"\nAstuce : précisez son type ({TYPES_TEXT}) avec `{ctx.prefix}outil modifier {view.id} type=trame`."
    text += (f"\nOn le retrouve avec {md_code(f'{ctx.prefix}outil {first}')} ; pour le corriger : "
             f"`{ctx.prefix}outil modifier {view.id} phase=émergence`.")
    ctx.reply(text)


# -- liste, voir, populaires ---------------------------------------------------------------------

@subcommand("outil", "liste", summary="tous les outils, ou ceux d'un mot-clé, d'un type ou d'une phase",
            usage="!outil liste [#mot-clé | type | phase]",
            examples=["!outil liste", "!outil liste #scop", "!outil liste tableur", "!outil liste émergence"],
            aliases=["lister", "tous"])
async def liste(ctx: Context, args: list[str]) -> None:
    example = "!outil liste #scop"
    title = "Outils partagés du réseau"
    tokens = tokens_for(ctx, args)
    if not args or not " ".join(args).strip():
        tools = await svc(ctx).all(ctx.session)
    elif args[0].startswith("#") and not tokens[0].quoted:
        tag = args[0].lstrip("#")
        tools = await svc(ctx).filtered(ctx.session, tag=tag)
        title = f"Outils avec le mot-clé {md_escape('#' + tag)}"
        if not tools:
            known = await svc(ctx).known_tags(ctx.session)
            hint = (" Mots-clés utilisés : " + tags_fr(known[:30]) + ".") if known else ""
            ctx.reply(f"Aucun outil avec le mot-clé {md_quote('#' + tag)}.{hint}")
            return
    else:
        text = " ".join(args)
        try:
            found = match_among(text, {"type": TOOL_TYPES, "phase": PHASES}, min_prefix=2)
        except ChoiceError as exc:
            raise UserError(exc.message) from None
        if found is None:
            raise UserError(f"Je ne reconnais ni un type ni une phase dans {md_quote(text)}. Types : {TYPES_TEXT}. "
                            "Phases : "
                            f"{', '.join(PHASES.labels())}. Pour un mot-clé, mettez un # : `{ex(ctx, example)}`")
        field_name, choice = found
        tools = await svc(ctx).filtered(ctx.session, **{field_name: choice.key})
        title = (f"Outils de type « {choice.label} »" if field_name == "type"
                 else f"Outils pour la phase « {choice.label} »")
    if not tools:
        ctx.reply(f"Aucun outil pour l'instant. Pour en partager un : `{ex(ctx, EXAMPLE_ADD)}`")
        return
    lines = [f"🧰 **{title}** ({len(tools)})"]
    lines += [f"- {tool_line(ctx, t)}" for t in tools[:LIST_MAX]]
    if len(tools) > LIST_MAX:
        lines.append(f"… et {len(tools) - LIST_MAX} autres : précisez un mot-clé, un type ou une phase "
                     f"(`{ex(ctx, example)}`), ou cherchez : `{ex(ctx, EXAMPLE_SEARCH)}`.")
    ctx.reply("\n".join(lines))


@subcommand("outil", "voir", summary="un outil en détail, avec son fichier", usage="!outil voir <n°>",
            examples=[EXAMPLE_SHOW], aliases=["afficher", "detail", "envoyer"])
async def voir(ctx: Context, args: list[str]) -> None:
    tool_id = record_id(ctx, args, "de l'outil", EXAMPLE_SHOW)
    with domain_errors(ctx, EXAMPLE_SHOW):
        tool = await svc(ctx).get(ctx.session, tool_id)
    await serve(ctx, tool)


@subcommand("outil", "populaires", summary="les outils les plus demandés", usage="!outil populaires",
            examples=["!outil populaires"], aliases=["populaire", "top"])
async def populaires(ctx: Context, args: list[str]) -> None:
    tools = await svc(ctx).popular(ctx.session, 10)
    if not tools:
        ctx.reply(f"Aucun outil n'a encore été demandé. Cherchez-en un : `{ex(ctx, EXAMPLE_SEARCH)}`")
        return
    lines = ["🏆 **Outils les plus demandés**"]
    for i, t in enumerate(tools, 1):
        lines.append(f"{i}. {tool_line(ctx, t, with_link=False)} — demandé {t.served} fois")
    lines.append(f"Pour en recevoir un : `{ctx.prefix}outil voir {tools[0].id}`.")
    ctx.reply("\n".join(lines))


# -- modifier, retirer ---------------------------------------------------------------------------

@subcommand("outil", "modifier", summary="corriger un outil (structure qui l'a partagé, ou coordination)",
            usage="!outil modifier <n°> [titre=…] [lien=…] [type=…] [phase=…] [description=…] "
                  "[#mot-clé à ajouter] [-#mot-clé à retirer] [tags=a,b (remplace tous les mots-clés)]",
            examples=[EXAMPLE_EDIT, EXAMPLE_TAGS,
                      '!outil modifier 3 titre="Trame de prévisionnel ESS" lien=https://exemple.org/v2',
                      "!outil modifier 3 tags=businessplan,scic"],
            aliases=["corriger", "changer"])
async def modifier(ctx: Context, args: list[str]) -> None:
    tool_id = record_id(ctx, args, "de l'outil", EXAMPLE_EDIT)
    a = split_args(ctx, args[1:], KEYS, EXAMPLE_EDIT)
    if a.words:
        raise UserError(f"Je n'ai pas compris {words_fr(a.words)} : les changements s'écrivent "
                        f"`champ=valeur`, `#mot-clé` (ajouter) ou `-#mot-clé` (retirer). "
                        f"Exemple : `{ex(ctx, EXAMPLE_EDIT)}`")
    link = single_link(ctx, a, "outil", EXAMPLE_EDIT)
    changes = ToolChanges(
        title=a.options.get("titre"),
        link=clearable(link),
        type=match_closed(ctx, a.options["type"], TOOL_TYPES, EXAMPLE_EDIT) if "type" in a.options else None,
        phase=(CLEAR if clearable(a.options["phase"]) == CLEAR
               else match_closed(ctx, a.options["phase"], PHASES, EXAMPLE_EDIT)) if "phase" in a.options else None,
        description=clearable(a.options.get("description")),
        tags=tag_option(a.options["tags"]) if "tags" in a.options else None,
        add_tags=tuple(a.tags), remove_tags=tuple(a.untags))
    if changes.is_empty():
        raise UserError(f"Que faut-il modifier ? Exemple : `{ex(ctx, EXAMPLE_EDIT)}`")
    with domain_errors(ctx, EXAMPLE_TAGS if (a.tags or a.untags or "tags" in a.options) else EXAMPLE_EDIT):
        view, done = await svc(ctx).update(ctx.session, ctx.member, tool_id, changes)
    if not done:
        ctx.reply(f"Rien n'a changé : l'outil n°{view.id} avait déjà ces valeurs.")
        return
    ctx.reply(f"✅ Outil n°{view.id} {md_quote(view.title)} modifié :\n"
              + "\n".join(f"- {line}" for line in changes_lines(ctx, done)))


@subcommand("outil", "retirer", summary="retirer un outil (structure qui l'a partagé, ou coordination)",
            usage="!outil retirer <n°>", examples=[EXAMPLE_REMOVE], aliases=["supprimer", "enlever"])
async def retirer(ctx: Context, args: list[str]) -> None:
    tool_id = record_id(ctx, args, "de l'outil", EXAMPLE_REMOVE)
    with domain_errors(ctx, EXAMPLE_REMOVE):
        view = await svc(ctx).remove(ctx.session, ctx.member, tool_id)
    ctx.reply(f"🗑️ Outil n°{view.id} {md_quote(view.title)} retiré : il n'apparaît plus dans les recherches.")


# -- files seen in rooms -------------------------------------------------------------------------

async def on_file(ctx: Context) -> None:
    """EVENT_HANDLERS["file"]: remember a member's file (``!outil ajouter`` may then reply to it)."""
    if ctx.member is None:
        return  # only members' files: nothing is kept about other people's uploads
    ref = file_ref_from_content(ctx.event.content, ctx.event.msgtype, ctx.event.event_id)
    if ref is None:
        return
    await svc(ctx).record_file(ctx.session, SeenFile(event_id=ctx.event.event_id, room_id=ctx.event.room_id,
                                                     sender=ctx.event.sender,
                                                     ts=ctx.event.timestamp or ctx.clock.now(), ref=ref))


EVENT_HANDLERS = {"file": on_file}
