"""Pooled tools: business-plan templates, guides, spreadsheets… shared by the partners.

A tool is a link, a file someone posted in a room (kept as its Matrix content, so it can be sent again
without uploading it twice), or both. Search is accent-, case- and typo-tolerant and ranked:
title > tags > type > description, and exact > prefix > approximate within a field.

Failures raise :class:`ToolError` subclasses whose ``message`` is French Markdown, every value in it
escaped (:func:`ess_bot.parsing.md_quote`), with no command syntax (the chat layer adds examples). Changes are returned as raw values (:class:`Change`): the chat layer words them.

The input checks shared with the events service live here, once: :func:`check_link`, :func:`clean_tags`,
:func:`check_private` (RGPD: no contact details or health data in free text) and :func:`merge_tags`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ess_bot.clock import Clock
from ess_bot.config import Config, Member, role_allows
from ess_bot.formatting import md_escape
from ess_bot.parsing import PersonalDataError, check_personal_data, md_quote
from ess_bot.storage.tools_events import URL as URL_LENGTH, RoomFile, Tool, ToolServing, ToolTag
from ess_bot.text import fold, without_controls
from ess_bot.vocabulary import PHASES, Choice, ChoiceList

TOOL_TYPES = ChoiceList("type d'outil", (
    Choice("trame", "trame", ("canevas",)),
    Choice("guide", "guide", ("fiche", "mode d'emploi")),
    Choice("tableur", "tableur", ("tableau", "excel", "calc", "feuille de calcul")),
    Choice("modele_statuts", "modèle de statuts", ("statuts", "modele")),
    Choice("support_atelier", "support d'atelier", ("atelier", "support", "diaporama", "présentation")),
    Choice("grille_diagnostic", "grille de diagnostic", ("grille", "diagnostic", "diag")),
    Choice("autre", "autre"),
), example="trame")

FILE_MSGTYPES = ("m.file", "m.image", "m.video", "m.audio")
FILE_SIZE_MAX = 2**31 - 1  # a size the database's INTEGER column holds (PostgreSQL's is 32 bits); beyond: unknown
FILE_URL_MAX = URL_LENGTH  # the column of an mxc:// address (real ones are about 60 characters)
ROOM_FILE_RETENTION = timedelta(days=180)  # a file may be added as a tool up to six months after it was posted
TITLE_MAX = 120
DESCRIPTION_MAX = 500
TAG_MAX = 40
TAGS_MAX = 12
_TAG = re.compile(r"^[\w][\w\-]*$")
_LINK = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.I)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.I)
LINK_MAX = 1000
MAX_ID = 2**31 - 1   # INTEGER columns (PostgreSQL int4): a larger number names no record

# -- search weights ------------------------------------------------------------------------------
FIELD_WEIGHTS = {"title": 8, "tags": 4, "type": 2, "description": 1}
QUALITY_WEIGHTS = {"exact": 3, "prefix": 2, "fuzzy": 1}
WHOLE_TITLE_BONUS = 100
FUZZY_CUTOFF = 0.8
STOPWORDS = frozenset({"de", "du", "des", "d", "la", "le", "les", "l", "un", "une", "et", "en", "pour", "a", "au",
                       "aux", "sur", "par", "avec", "ou"})
_WORD = re.compile(r"[^\W_]+")


class ToolError(Exception):
    """A rule refused the request; ``message`` is French and meant for the person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(ToolError):
    pass


class Forbidden(ToolError):
    pass


class Invalid(ToolError):
    pass


# -- inputs and views ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FileRef:
    """A file as Matrix knows it: ``url`` (mxc://) or ``file`` (encrypted attachment), and its info."""

    name: str
    url: str | None = None
    file: dict | None = None
    size: int | None = None
    mimetype: str | None = None
    msgtype: str = "m.file"
    event_id: str | None = None


@dataclass(frozen=True)
class SeenFile:
    """A file message seen in a room (recorded so that ``!outil ajouter`` may be sent as a reply)."""

    event_id: str
    room_id: str
    sender: str
    ts: datetime
    ref: FileRef


@dataclass(frozen=True)
class NewTool:
    title: str
    type: str = "autre"                  # TOOL_TYPES key
    link: str | None = None
    tags: tuple[str, ...] = ()           # as typed, without "#"
    phase: str | None = None             # PHASES key
    description: str | None = None
    file: FileRef | None = None


CLEAR = ""  # in ToolChanges: an empty string clears an optional field (phase, description, link)


@dataclass(frozen=True)
class ToolChanges:
    """Fields to change; None leaves a field as it is, CLEAR ("") empties an optional one.

    Tags: ``add_tags`` are added and ``remove_tags`` removed; ``tags`` (not None) replaces them all
    (``()`` clears them) before the additions and removals are applied."""

    title: str | None = None
    type: str | None = None
    link: str | None = None
    phase: str | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return (all(v is None for v in (self.title, self.type, self.link, self.phase, self.description, self.tags))
                and not self.add_tags and not self.remove_tags)


@dataclass(frozen=True)
class ToolView:
    id: int
    title: str
    type: str
    partner: str
    created_by: str
    created_at: datetime
    phase: str | None = None
    description: str | None = None
    link: str | None = None
    file: FileRef | None = None
    tags: tuple[str, ...] = ()
    served: int = 0

    @property
    def type_label(self) -> str:
        return TOOL_TYPES.label(self.type)

    @property
    def phase_label(self) -> str | None:
        return PHASES.label(self.phase) if self.phase else None


@dataclass(frozen=True)
class SearchHit:
    tool: ToolView
    score: int
    matched: int          # how many of the query's words matched something
    exact_title: bool = False


@dataclass(frozen=True)
class SearchResult:
    words: tuple[str, ...]
    hits: list[SearchHit] = field(default_factory=list)
    complete: bool = True  # every word matched (False: the closest partial matches)
    dropped: int = 0       # words of a long query left out (beyond SEARCH_WORDS_MAX)

    @property
    def single(self) -> ToolView | None:
        """The one tool the query designates: the only complete match, or the exact title."""
        if not self.complete or not self.hits:
            return None
        if len(self.hits) == 1:
            return self.hits[0].tool
        if self.hits[0].exact_title and not self.hits[1].exact_title:
            return self.hits[0].tool
        return None


@dataclass(frozen=True)
class Change:
    """One field that changed, with raw values (keys, tuples, datetimes, None for "none"); the chat
    layer words them. ``field`` is an English name: ``title``, ``type``, ``phase``, ``link``,
    ``description``, ``tags`` (tools); ``title``, ``when``, ``location``, ``link``, ``audience``, ``tags``,
    ``organiser`` (events)."""

    field: str
    old: object
    new: object


# -- pure helpers -------------------------------------------------------------------------------

def words_of(text: str) -> list[str]:
    """Folded words: ``"Modèle d'atelier"`` → ``["modele", "d", "atelier"]``."""
    return _WORD.findall(fold(text or ""))


def tag_key(tag: str) -> str:
    return fold(tag.strip().lstrip("#"))


SEARCH_WORDS_MAX = 12   # a search uses its first distinct words (a 10 kB query would cost seconds of CPU)
SEARCH_WORD_LENGTH = 40


def query_words(query: str) -> list[str]:
    """The meaningful words of a search (stop words dropped unless nothing else is left), each once,
    at most :data:`SEARCH_WORDS_MAX` of them, each cut at :data:`SEARCH_WORD_LENGTH` characters."""
    return _all_query_words(query)[:SEARCH_WORDS_MAX]


def _all_query_words(query: str) -> list[str]:
    ws = list(dict.fromkeys(w[:SEARCH_WORD_LENGTH] for w in words_of(query)))
    kept = [w for w in ws if w not in STOPWORDS]
    return kept or ws


def _quality(q: str, word: str) -> str | None:
    if q == word:
        return "exact"
    if len(q) >= 2 and word.startswith(q):
        return "prefix"
    if len(q) >= 4 and len(word) >= 3 and difflib.SequenceMatcher(None, q, word).ratio() >= FUZZY_CUTOFF:
        return "fuzzy"
    return None


def _fields(tool: ToolView) -> dict[str, list[str]]:
    tags: list[str] = []
    for t in tool.tags:
        key = tag_key(t)
        tags += [re.sub(r"[\W_]+", "", key), *words_of(key)]
    return {
        "title": words_of(tool.title),
        "tags": tags,
        "type": words_of(TOOL_TYPES.label(tool.type)) + [tool.type.replace("_", "")],
        "description": words_of(tool.description or ""),
    }


def score_word(q: str, fields: dict[str, list[str]]) -> int:
    """The best score one query word gets in a tool: field weight × match quality (0: no match)."""
    best = 0
    for name, ws in fields.items():
        for w in ws:
            quality = _quality(q, w)
            if quality is not None:
                best = max(best, FIELD_WEIGHTS[name] * QUALITY_WEIGHTS[quality])
    return best


def rank_tools(query: str, tools: list[ToolView], limit: int | None = None) -> SearchResult:
    """Rank ``tools`` for ``query``. Tools matching every word come first (``complete``); when none
    does, the tools matching some words are returned with ``complete=False``."""
    every = _all_query_words(query)
    qs = every[:SEARCH_WORDS_MAX]
    if not qs:
        return SearchResult(words=(), hits=[])
    whole = " ".join(words_of(query))
    hits: list[SearchHit] = []
    for tool in tools:
        fields = _fields(tool)
        scores = [score_word(q, fields) for q in qs]
        matched = sum(1 for s in scores if s)
        if not matched:
            continue
        exact_title = " ".join(words_of(tool.title)) == whole
        hits.append(SearchHit(tool=tool, score=sum(scores) + (WHOLE_TITLE_BONUS if exact_title else 0),
                              matched=matched, exact_title=exact_title))
    complete = [h for h in hits if h.matched == len(qs)]
    chosen = complete or hits
    chosen.sort(key=lambda h: (-h.matched, -h.score, -h.tool.served, fold(h.tool.title), h.tool.id))
    return SearchResult(words=tuple(qs), hits=chosen[:limit] if limit else chosen, complete=bool(complete),
                        dropped=len(every) - len(qs))


def clean_tags(tags: tuple[str, ...] | list[str], error: type[Exception] = Invalid) -> tuple[str, ...]:
    """Validated, de-duplicated tags (as typed, without "#"). Raises ``error`` (Invalid by default)."""
    out: list[str] = []
    keys: set[str] = set()
    for raw in tags:
        tag = raw.strip().lstrip("#")
        if not tag or not _TAG.match(tag) or len(tag) > TAG_MAX:
            raise error(f"Mot-clé invalide : {md_quote('#' + tag)} (lettres, chiffres et tirets, "
                        f"{TAG_MAX} caractères au plus).")
        if tag_key(tag) not in keys:
            keys.add(tag_key(tag))
            out.append(tag)
    if len(out) > TAGS_MAX:
        raise error(f"Trop de mots-clés ({len(out)}) : {TAGS_MAX} au plus.")
    return tuple(out)


def merge_tags(current: tuple[str, ...], *, replace: tuple[str, ...] | None = None, add: tuple[str, ...] = (),
               remove: tuple[str, ...] = (), error: type[Exception] = Invalid) -> tuple[str, ...]:
    """``current`` replaced by ``replace`` (when not None), then ``add`` appended and ``remove`` taken
    out (accents and case ignored). Removing a tag that is not there raises ``error``."""
    base = list(clean_tags(replace, error) if replace is not None else current)
    for tag in clean_tags(add, error):
        if tag_key(tag) not in {tag_key(t) for t in base}:
            base.append(tag)
    for tag in clean_tags(remove, error):
        kept = [t for t in base if tag_key(t) != tag_key(tag)]
        if len(kept) == len(base):
            shown = md_escape(" ".join(f"#{t}" for t in base)) or "aucun"
            raise error(f"Le mot-clé {md_quote('#' + tag)} n'est pas sur la fiche (mots-clés actuels : {shown}).")
        base = kept
    return clean_tags(base, error)


def check_link(link: str, error: type[Exception] = Invalid) -> str:
    """An http(s) address (``<…>`` removed): nothing else may become a link in a message (``javascript:``,
    ``data:``…), and a ``mailto:`` would be a personal contact (RGPD). Raises ``error`` (Invalid by default)."""
    typed = link.strip()
    link = typed[1:-1].strip() if typed.startswith("<") and typed.endswith(">") else typed
    scheme = _SCHEME.match(link)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        raise error(f"Lien refusé : {md_quote(typed[:200])} n'est pas une adresse web — seuls les liens "
                    "commençant par https:// (ou http://) sont acceptés.")
    if len(link) > LINK_MAX:
        raise error(f"Lien trop long ({len(link)} caractères) : {LINK_MAX} au plus.")
    if not _LINK.match(link):
        raise error(f"Lien invalide : {md_quote(typed[:200])}. Donnez une adresse complète commençant par https://.")
    return link


def check_private(text: str | None, field: str, error: type[Exception] = Invalid) -> None:
    """RGPD: refuse ``text`` (a title, a place, a description…) holding an e-mail address, a phone number
    or health data; ``field`` names it in the message (``le titre``). Raises ``error``."""
    if not text:
        return
    try:
        check_personal_data(text, field)
    except PersonalDataError as exc:
        raise error(exc.message) from None


def check_title(title: str) -> str:
    title = re.sub(r"\s+", " ", without_controls(title or "")).strip()
    if not title:
        raise Invalid("Il manque le titre de l'outil.")
    if len(title) > TITLE_MAX:
        raise Invalid(f"Titre trop long ({len(title)} caractères) : {TITLE_MAX} au plus.")
    check_private(title, "le titre")
    return title


def check_description(text: str | None) -> str | None:
    if text is None:
        return None
    text = re.sub(r"\s+", " ", without_controls(text)).strip()
    if len(text) > DESCRIPTION_MAX:
        raise Invalid(f"Description trop longue ({len(text)} caractères) : {DESCRIPTION_MAX} au plus.")
    check_private(text, "la description")
    return text or None


def file_ref_from_content(content: dict, msgtype: str | None = None, event_id: str | None = None) -> FileRef | None:
    """The FileRef of a raw ``m.file``/``m.image``… content, or None if it is not a usable file."""
    mt = content.get("msgtype") or msgtype
    if mt not in FILE_MSGTYPES:
        return None
    url = content.get("url")
    url = url if isinstance(url, str) and url.startswith("mxc://") and len(url) <= FILE_URL_MAX else None
    enc = content.get("file")
    enc = enc if isinstance(enc, dict) and isinstance(enc.get("url"), str) else None
    if url is None and enc is None:
        return None
    info = content.get("info") if isinstance(content.get("info"), dict) else {}
    # no control character (PostgreSQL refuses a NUL in a text), spaces collapsed, within the column
    name = " ".join(without_controls(str(content.get("filename") or content.get("body") or "")).split())[:255]
    size = info.get("size")
    mimetype = info.get("mimetype")
    mimetype = without_controls(mimetype).strip()[:255] if isinstance(mimetype, str) else ""
    return FileRef(name=name or "fichier", url=url, file=enc,
                   size=size if isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= FILE_SIZE_MAX
                   else None,
                   mimetype=mimetype or None, msgtype=mt, event_id=event_id)


# -- the service --------------------------------------------------------------------------------

class ToolService:
    def __init__(self, config: Config, clock: Clock):
        self.config = config
        self.clock = clock

    # -- files seen in rooms ---------------------------------------------------------------------
    async def record_file(self, session: AsyncSession, seen: SeenFile) -> None:
        """Remember a file (idempotent); files older than ROOM_FILE_RETENTION are forgotten."""
        await session.execute(delete(RoomFile).where(RoomFile.ts < self.clock.now() - ROOM_FILE_RETENTION))
        if await session.get(RoomFile, seen.event_id) is not None:
            return
        ref = seen.ref
        session.add(RoomFile(event_id=seen.event_id, room_id=seen.room_id, sender=seen.sender, msgtype=ref.msgtype,
                             url=ref.url, file=ref.file, name=ref.name, size=ref.size, mimetype=ref.mimetype,
                             ts=seen.ts))

    async def room_file(self, session: AsyncSession, event_id: str, room_id: str) -> FileRef | None:
        """The file message ``event_id`` if it was posted in ``room_id`` (a file seen in another room is
        never handed out here: its room may be private, or encrypted with keys this room must not see)."""
        row = await session.get(RoomFile, event_id)
        if row is None or row.room_id != room_id:
            return None
        return FileRef(name=row.name, url=row.url, file=row.file, size=row.size, mimetype=row.mimetype,
                       msgtype=row.msgtype, event_id=row.event_id)

    # -- writing ---------------------------------------------------------------------------------
    async def add(self, session: AsyncSession, actor: Member, new: NewTool) -> ToolView:
        title = check_title(new.title)
        link = check_link(new.link) if new.link else None
        if link is None and new.file is None:
            raise Invalid("Il faut un lien (https://…) ou un fichier pour partager un outil.")
        self._check_type(new.type)
        self._check_phase(new.phase)
        tags = clean_tags(new.tags)
        description = check_description(new.description)
        if link:
            other = await session.scalar(select(Tool).where(Tool.link == link).where(Tool.removed_at.is_(None)))
            if other is not None:
                raise Invalid(f"Ce lien est déjà partagé : outil n°{other.id} {md_quote(other.title)}.")
        if new.file and new.file.event_id:
            other = await session.scalar(select(Tool).where(Tool.source_event_id == new.file.event_id)
                                         .where(Tool.removed_at.is_(None)))
            if other is not None:
                raise Invalid(f"Ce fichier est déjà partagé : outil n°{other.id} {md_quote(other.title)}.")
        f = new.file
        tool = Tool(title=title, title_key=fold(title), type=new.type, phase=new.phase, description=description,
                    link=link, file_url=f.url if f else None, file_info=f.file if f else None,
                    file_name=f.name if f else None, file_size=f.size if f else None,
                    file_mimetype=f.mimetype if f else None, file_msgtype=f.msgtype if f else None,
                    source_event_id=f.event_id if f else None, partner=actor.partner, created_by=actor.user_id,
                    created_at=self.clock.now())
        session.add(tool)
        await session.flush()
        for tag in tags:
            session.add(ToolTag(tool_id=tool.id, tag=tag_key(tag), label=tag))
        await session.flush()
        return await self.get(session, tool.id)

    async def update(self, session: AsyncSession, actor: Member, tool_id: int,
                     changes: ToolChanges) -> tuple[ToolView, list[Change]]:
        tool = await self._tool(session, tool_id)
        self._check_may_manage(actor, tool, "modifier")
        if changes.is_empty():
            raise Invalid("Rien à modifier.")
        before = await self.get(session, tool_id)
        done: list[Change] = []
        if changes.title is not None:
            title = check_title(changes.title)
            if title != tool.title:
                done.append(Change("title", tool.title, title))
                tool.title, tool.title_key = title, fold(title)
        if changes.type is not None:
            self._check_type(changes.type)
            if changes.type != tool.type:
                done.append(Change("type", tool.type, changes.type))
                tool.type = changes.type
        if changes.phase is not None:
            phase = changes.phase or None
            self._check_phase(phase)
            if phase != tool.phase:
                done.append(Change("phase", tool.phase, phase))
                tool.phase = phase
        if changes.link is not None:
            link = check_link(changes.link) if changes.link else None
            if link is None and tool.file_url is None and tool.file_info is None:
                raise Invalid("Cet outil n'a pas de fichier : son lien ne peut pas être retiré.")
            if link != tool.link:
                if link:
                    other = await session.scalar(select(Tool.id).where(Tool.link == link).where(Tool.id != tool.id)
                                                 .where(Tool.removed_at.is_(None)))
                    if other is not None:
                        raise Invalid(f"Ce lien est déjà partagé : outil n°{other}.")
                done.append(Change("link", tool.link, link))
                tool.link = link
        if changes.description is not None:
            description = check_description(changes.description)
            if description != tool.description:
                done.append(Change("description", tool.description, description))
                tool.description = description
        if changes.tags is not None or changes.add_tags or changes.remove_tags:
            tags = merge_tags(before.tags, replace=changes.tags, add=changes.add_tags, remove=changes.remove_tags)
            if {tag_key(t) for t in tags} != {tag_key(t) for t in before.tags}:
                done.append(Change("tags", before.tags, tuple(sorted(tags, key=tag_key))))
                await session.execute(delete(ToolTag).where(ToolTag.tool_id == tool.id))
                await session.flush()
                for tag in tags:
                    session.add(ToolTag(tool_id=tool.id, tag=tag_key(tag), label=tag))
        if done:
            tool.updated_at, tool.updated_by = self.clock.now(), actor.user_id
        await session.flush()
        return await self.get(session, tool_id), done

    async def remove(self, session: AsyncSession, actor: Member, tool_id: int) -> ToolView:
        tool = await self._tool(session, tool_id)
        self._check_may_manage(actor, tool, "retirer")
        view = await self.get(session, tool_id)
        tool.removed_at, tool.removed_by = self.clock.now(), actor.user_id
        return view

    async def served(self, session: AsyncSession, tool_id: int, room_id: str) -> None:
        """Count one handing-out of a tool."""
        session.add(ToolServing(tool_id=tool_id, served_at=self.clock.now(), room_id=room_id))

    # -- reading ---------------------------------------------------------------------------------
    async def get(self, session: AsyncSession, tool_id: int) -> ToolView:
        tool = await self._tool(session, tool_id)
        return (await self._views(session, [tool]))[0]

    async def all(self, session: AsyncSession) -> list[ToolView]:
        rows = (await session.scalars(select(Tool).where(Tool.removed_at.is_(None))
                                      .order_by(Tool.title_key, Tool.id))).all()
        return await self._views(session, list(rows))

    async def search(self, session: AsyncSession, query: str, limit: int | None = None) -> SearchResult:
        return rank_tools(query, await self.all(session), limit)

    async def filtered(self, session: AsyncSession, *, tag: str | None = None, type: str | None = None,
                       phase: str | None = None) -> list[ToolView]:
        stmt = select(Tool).where(Tool.removed_at.is_(None))
        if tag is not None:
            stmt = stmt.where(Tool.id.in_(select(ToolTag.tool_id).where(ToolTag.tag == tag_key(tag))))
        if type is not None:
            stmt = stmt.where(Tool.type == type)
        if phase is not None:
            stmt = stmt.where(Tool.phase == phase)
        rows = (await session.scalars(stmt.order_by(Tool.title_key, Tool.id))).all()
        return await self._views(session, list(rows))

    async def popular(self, session: AsyncSession, limit: int = 10) -> list[ToolView]:
        """The most served tools (at least once), most served first."""
        count = func.count(ToolServing.id).label("n")
        rows = (await session.execute(
            select(Tool, count).join(ToolServing, ToolServing.tool_id == Tool.id).where(Tool.removed_at.is_(None))
            .group_by(Tool.id).order_by(count.desc(), Tool.title_key, Tool.id).limit(limit))).all()
        return await self._views(session, [r[0] for r in rows])

    async def known_tags(self, session: AsyncSession) -> list[str]:
        rows = (await session.execute(
            select(ToolTag.tag, func.min(ToolTag.label)).join(Tool, Tool.id == ToolTag.tool_id)
            .where(Tool.removed_at.is_(None)).group_by(ToolTag.tag).order_by(ToolTag.tag))).all()
        return [r[1] for r in rows]

    # -- internals -------------------------------------------------------------------------------
    async def _tool(self, session: AsyncSession, tool_id: int) -> Tool:
        tool = await session.get(Tool, tool_id) if 1 <= tool_id <= MAX_ID else None
        if tool is None or tool.removed_at is not None:
            raise NotFound(f"Je ne trouve pas d'outil n°{tool_id}.")
        return tool

    async def _views(self, session: AsyncSession, tools: list[Tool]) -> list[ToolView]:
        if not tools:
            return []
        ids = [t.id for t in tools]
        tags: dict[int, list[str]] = {}
        for tool_id, label in (await session.execute(select(ToolTag.tool_id, ToolTag.label)
                                                     .where(ToolTag.tool_id.in_(ids))
                                                     .order_by(ToolTag.tool_id, ToolTag.tag))).all():
            tags.setdefault(tool_id, []).append(label)
        served = dict((await session.execute(select(ToolServing.tool_id, func.count(ToolServing.id))
                                             .where(ToolServing.tool_id.in_(ids))
                                             .group_by(ToolServing.tool_id))).all())
        return [self._view(t, tuple(tags.get(t.id, ())), int(served.get(t.id, 0))) for t in tools]

    def _view(self, t: Tool, tags: tuple[str, ...], served: int) -> ToolView:
        file = None
        if t.file_url or t.file_info:
            file = FileRef(name=t.file_name or "fichier", url=t.file_url, file=t.file_info, size=t.file_size,
                           mimetype=t.file_mimetype, msgtype=t.file_msgtype or "m.file", event_id=t.source_event_id)
        created = t.created_at.astimezone(self.clock.tz)
        return ToolView(id=t.id, title=t.title, type=t.type, partner=t.partner, created_by=t.created_by,
                        created_at=created, phase=t.phase, description=t.description, link=t.link, file=file,
                        tags=tags, served=served)

    def _check_may_manage(self, actor: Member, tool: Tool, verb: str) -> None:
        if role_allows(actor.role, "coordinator") or actor.partner == tool.partner:
            return
        partner = self.config.partner(tool.partner)
        raise Forbidden(f"Seuls les membres de la structure qui a partagé cet outil "
                        f"({md_escape(partner.name if partner else tool.partner)}) ou un·e coordinateur·rice peuvent le "
                        f"{verb}.")

    @staticmethod
    def _check_type(key: str) -> None:
        if key not in TOOL_TYPES.keys():
            raise Invalid(f"Type d'outil inconnu : {md_quote(key)}.")

    @staticmethod
    def _check_phase(key: str | None) -> None:
        if key is not None and key not in PHASES.keys():
            raise Invalid(f"Phase inconnue : {md_quote(key)}.")
