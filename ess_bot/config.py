"""Configuration: a TOML file validated into typed dataclasses.

Every error names the file and the key (``partners[2].slug``) so an administrator can fix it.
Environment variables win over the file for secrets and the database URL.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROLES = ("advisor", "coordinator", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
ROLE_LABELS = {"advisor": "conseiller·ère", "coordinator": "coordinateur·rice", "admin": "administrateur·rice"}
ROLE_LABELS_PLURAL = {"advisor": "conseiller·ère·s", "coordinator": "coordinateur·rice·s",
                      "admin": "administrateur·rice·s"}


def role_allows(role: str | None, required: str) -> bool:
    """True when ``role`` (None for a stranger) is at least ``required``."""
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[required]


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEPARTMENTS = ("21", "25", "39", "58", "70", "71", "89", "90")

PACKAGE_DIR = Path(__file__).resolve().parent
EXAMPLE_CONFIG = PACKAGE_DIR / "data" / "config.example.toml"


class ConfigError(Exception):
    """A configuration problem, with the file and the key at fault."""

    def __init__(self, path: str | Path | None, key: str, message: str):
        self.path = str(path) if path else "<configuration>"
        self.key = key
        self.message = message
        super().__init__(f"{self.path}: [{key}] {message}")


@dataclass(frozen=True)
class BotSettings:
    command_prefix: str = "!"
    timezone: str = "Europe/Paris"
    display_name: str = "ess-bot"
    admin_contact: str = ""  # shown to non-members: whom to ask

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class MatrixSettings:
    homeserver: str = ""
    user_id: str = ""
    password: str = field(default="", repr=False)      # secrets never in a repr (logs, tracebacks)
    access_token: str = field(default="", repr=False)
    store_key: str = field(default="", repr=False)           # encrypts the E2EE store at rest
    previous_store_key: str = field(default="", repr=False)  # the key the store had, when it changes
    device_name: str = "ess-bot"
    store_path: str = "data/store"
    encryption: bool = True
    sync_timeout_ms: int = 30000
    timeline_limit: int = 100
    join_on_invite: bool = True
    broadcast_interval_ms: int = 1000


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///data/ess-bot.db"

    def __repr__(self) -> str:  # the URL may hold the database password
        return f"DatabaseSettings(url={_hide_password(self.url)!r})"


@dataclass(frozen=True)
class RoomSettings:
    coordination: str = ""
    announcements: tuple[str, ...] = ()


@dataclass(frozen=True)
class Partner:
    slug: str
    name: str
    lead: bool = False
    departments: tuple[str, ...] = ()
    room: str = ""


@dataclass(frozen=True)
class Member:
    user_id: str
    partner: str
    role: str = "advisor"
    name: str = ""

    @property
    def display(self) -> str:
        return self.name or self.user_id.split(":", 1)[0].lstrip("@")


@dataclass(frozen=True)
class Permanence:
    partner: str
    town: str
    weekday: str
    hours: str
    address: str = ""
    slots: tuple[tuple[time, time], ...] = ()


@dataclass(frozen=True)
class MeetingSettings:
    per_year: int = 4                      # network gatherings a year (spacing of proposals)
    reminder_days: tuple[int, ...] = (7, 1)  # reminders J-7 and J-1 before a fixed meeting
    poll_reminder_days: int = 2            # remind non-voters this many days before the deadline
    native_poll: bool = True               # also post a native Matrix poll (MSC3381)
    default_duration_minutes: int = 180
    default_location: str = "Besançon"
    default_deadline_days: int = 14        # poll deadline when none is given
    candidates: int = 4                    # dates proposed when n= is not given


@dataclass(frozen=True)
class EventSettings:
    reminder_days: tuple[int, ...] = (7, 1)
    announce_in_partner_rooms: bool = True  # besides the announcement rooms
    members_may_add: bool = True            # any member may announce their own partner's events


@dataclass(frozen=True)
class HttpSettings:
    listen: str = ""                        # "127.0.0.1:8080"; empty = no HTTP endpoint
    token: str = field(default="", repr=False)  # required to read /agenda.ics
    request_timeout_seconds: int = 10       # to receive a whole request (headers, body) and to answer it
    max_connections: int = 64               # open at once; beyond, a new connection gets a 503 and is closed

    @property
    def enabled(self) -> bool:
        return bool(self.listen)


@dataclass(frozen=True)
class Config:
    bot: BotSettings = field(default_factory=BotSettings)
    matrix: MatrixSettings = field(default_factory=MatrixSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    rooms: RoomSettings = field(default_factory=RoomSettings)
    partners: tuple[Partner, ...] = ()
    members: tuple[Member, ...] = ()
    permanences: tuple[Permanence, ...] = ()
    meetings: MeetingSettings = field(default_factory=MeetingSettings)
    events: EventSettings = field(default_factory=EventSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    source: str = ""
    base_dir: Path = field(default_factory=Path.cwd)

    # -- lookups -------------------------------------------------------------------------------
    def member(self, user_id: str) -> Member | None:
        for m in self.members:
            if m.user_id == user_id:
                return m
        return None

    def partner(self, slug: str) -> Partner | None:
        for p in self.partners:
            if p.slug == slug:
                return p
        return None

    def partner_by_room(self, room_id: str) -> Partner | None:
        for p in self.partners:
            if p.room and p.room == room_id:
                return p
        return None

    def find_member(self, text: str) -> Member | None:
        """A member by full id, or by a localpart (``karim`` or ``@karim``) when only one matches."""
        if self.member(text):
            return self.member(text)
        local = text.lstrip("@").split(":", 1)[0].lower()
        found = [m for m in self.members if m.user_id.lstrip("@").split(":", 1)[0].lower() == local]
        return found[0] if len(found) == 1 else None

    def members_with_role(self, role: str) -> list[Member]:
        return [m for m in self.members if m.role == role]

    def contacts_for_access(self) -> list[Member]:
        """Whom a stranger should ask to be added: admins first, then coordinators."""
        return self.members_with_role("admin") or self.members_with_role("coordinator")

    def room_keys(self) -> dict[str, str]:
        """Human keys for the configured rooms (used by the console's --room)."""
        keys: dict[str, str] = {}
        if self.rooms.coordination:
            keys["coordination"] = self.rooms.coordination
        for i, room in enumerate(self.rooms.announcements):
            keys["annonces" if i == 0 else f"annonces{i + 1}"] = room
        for p in self.partners:
            if p.room:
                keys[p.slug] = p.room
        return keys

    def resolve_room(self, key_or_id: str) -> str | None:
        keys = {k.lower(): v for k, v in self.room_keys().items()}
        if key_or_id.lower() in keys:
            return keys[key_or_id.lower()]
        if key_or_id in keys.values() or key_or_id.startswith("!"):
            return key_or_id
        return None

    def database_path(self) -> Path | None:
        """The SQLite file behind the URL, if any (so its folder can be created)."""
        m = re.match(r"sqlite(\+\w+)?:///(.+)$", self.database.url)
        if not m or m.group(2).startswith(":memory:"):
            return None
        return Path(m.group(2))


# -- loading ----------------------------------------------------------------------------------

_TYPE_NAMES = {int: "un nombre entier", float: "un nombre", str: "un texte entre guillemets",
               bool: "true ou false", list: "une liste [ … ]", dict: "une table [section]"}


_SECRET_KEY = re.compile(r"(password|token|secret|key)$")  # values never echoed in an error message


class _Reader:
    def __init__(self, path: str | None):
        self.path = path

    def err(self, key: str, msg: str) -> ConfigError:
        return ConfigError(self.path, key, msg)

    def table(self, data: dict, key: str) -> dict:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.err(key, "doit être une table [section]")
        return value

    def get(self, table: dict, prefix: str, key: str, kind: type | tuple, default: Any) -> Any:
        if key not in table:
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = " ou ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            shown = "(valeur masquée)" if _SECRET_KEY.search(key) else repr(value)
            raise self.err(f"{prefix}{key}", f"{names} attendu, reçu : {shown}")
        return value

    def strings(self, table: dict, prefix: str, key: str) -> tuple[str, ...]:
        value = self.get(table, prefix, key, list, [])
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.err(f"{prefix}{key}[{i}]", f"doit être une chaîne, reçu : {item!r}")
        return tuple(value)

    def unknown(self, table: dict, prefix: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.err(f"{prefix}{key}", f"clé inconnue (clés possibles : {', '.join(sorted(allowed))})")


_HOURS = re.compile(r"^\s*(\d{1,2})[:h](\d{2})\s*-\s*(\d{1,2})[:h](\d{2})\s*$")


def parse_hours(text: str) -> tuple[tuple[time, time], ...]:
    """``"09:00-12:00, 14:00-17:00"`` → ((9:00, 12:00), (14:00, 17:00)); ValueError if malformed."""
    slots = []
    for part in text.split(","):
        m = _HOURS.match(part)
        if not m:
            raise ValueError(part.strip())
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start, end = time(h1, m1), time(h2, m2)
        if end <= start:
            raise ValueError(part.strip())
        slots.append((start, end))
    return tuple(slots)


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Load and validate a configuration file (the embedded example when ``path`` is None)."""
    env = dict(os.environ) if env is None else env
    cfg_path = Path(path) if path else EXAMPLE_CONFIG
    r = _Reader(str(cfg_path))
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(cfg_path, "-", "fichier introuvable") from None
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        place = f"ligne {where[1]}, colonne {where[2]}" if where else "emplacement inconnu"
        raise ConfigError(cfg_path, "-", f"syntaxe TOML incorrecte ({place}) : vérifiez les crochets, les "
                                         f"guillemets et les signes = de cette ligne (détail technique : {exc})") from None
    return parse_config(raw, source=str(cfg_path), env=env,
                        base_dir=Path.cwd() if path is None else cfg_path.resolve().parent)


def parse_config(raw: dict, source: str = "", env: dict[str, str] | None = None,
                 base_dir: Path | None = None) -> Config:
    env = {} if env is None else env
    r = _Reader(source or None)
    r.unknown(raw, "", {"bot", "matrix", "database", "rooms", "partners", "members", "permanences",
                        "meetings", "events", "http"})

    b = r.table(raw, "bot")
    r.unknown(b, "bot.", {"command_prefix", "timezone", "display_name", "admin_contact"})
    bot = BotSettings(
        command_prefix=r.get(b, "bot.", "command_prefix", str, "!"),
        timezone=r.get(b, "bot.", "timezone", str, "Europe/Paris"),
        display_name=r.get(b, "bot.", "display_name", str, "ess-bot"),
        admin_contact=r.get(b, "bot.", "admin_contact", str, ""),
    )
    if not bot.command_prefix or " " in bot.command_prefix:
        raise r.err("bot.command_prefix", "doit être un ou quelques caractères sans espace, par exemple \"!\"")
    try:
        ZoneInfo(bot.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise r.err("bot.timezone", f"fuseau horaire inconnu : {bot.timezone!r} (exemple : \"Europe/Paris\")") from None

    m = r.table(raw, "matrix")
    r.unknown(m, "matrix.", {"homeserver", "user_id", "password", "access_token", "store_key", "previous_store_key",
                             "device_name", "store_path",
                             "encryption", "sync_timeout_ms", "timeline_limit", "join_on_invite",
                             "broadcast_interval_ms"})
    matrix = MatrixSettings(
        homeserver=r.get(m, "matrix.", "homeserver", str, ""),
        user_id=r.get(m, "matrix.", "user_id", str, ""),
        password=env.get("ESS_BOT_MATRIX_PASSWORD") or r.get(m, "matrix.", "password", str, ""),
        access_token=env.get("ESS_BOT_MATRIX_ACCESS_TOKEN") or r.get(m, "matrix.", "access_token", str, ""),
        store_key=env.get("ESS_BOT_STORE_KEY") or r.get(m, "matrix.", "store_key", str, ""),
        previous_store_key=env.get("ESS_BOT_PREVIOUS_STORE_KEY") or r.get(m, "matrix.", "previous_store_key", str, ""),
        device_name=r.get(m, "matrix.", "device_name", str, "ess-bot"),
        store_path=r.get(m, "matrix.", "store_path", str, "data/store"),
        encryption=r.get(m, "matrix.", "encryption", bool, True),
        sync_timeout_ms=r.get(m, "matrix.", "sync_timeout_ms", int, 30000),
        timeline_limit=r.get(m, "matrix.", "timeline_limit", int, 100),
        join_on_invite=r.get(m, "matrix.", "join_on_invite", bool, True),
        broadcast_interval_ms=r.get(m, "matrix.", "broadcast_interval_ms", int, 1000),
    )
    for key_name in ("store_key", "previous_store_key"):
        if getattr(matrix, key_name) and len(getattr(matrix, key_name)) < 16:
            raise r.err(f"matrix.{key_name}", "trop courte : au moins 16 caractères (par exemple la sortie de "
                        "« openssl rand -base64 32 »)")
    if matrix.homeserver and not re.match(r"^https?://", matrix.homeserver):
        raise r.err("matrix.homeserver", f"doit commencer par https:// (reçu : {matrix.homeserver!r})")
    if matrix.user_id and not re.match(r"^@[^:\s]+:\S+$", matrix.user_id):
        raise r.err("matrix.user_id", f"identifiant Matrix invalide : {matrix.user_id!r} (exemple : \"@ess-bot:example.org\")")
    if not 1 <= matrix.timeline_limit <= 5000:
        raise r.err("matrix.timeline_limit", "doit être compris entre 1 et 5000")

    d = r.table(raw, "database")
    r.unknown(d, "database.", {"url"})
    database = DatabaseSettings(url=env.get("ESS_BOT_DATABASE_URL") or r.get(d, "database.", "url", str,
                                                                            DatabaseSettings.url))
    if not re.match(r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", database.url):
        raise r.err("database.url", "doit commencer par sqlite+aiosqlite:// ou postgresql+asyncpg://")

    ro = r.table(raw, "rooms")
    r.unknown(ro, "rooms.", {"coordination", "announcements"})
    rooms = RoomSettings(
        coordination=r.get(ro, "rooms.", "coordination", str, ""),
        announcements=r.strings(ro, "rooms.", "announcements"),
    )
    for key, value in [("rooms.coordination", rooms.coordination)] + [
            (f"rooms.announcements[{i}]", v) for i, v in enumerate(rooms.announcements)]:
        if value and not value.startswith("!"):
            raise r.err(key, f"identifiant de salon invalide : {value!r} (exemple : \"!abc123:example.org\")")

    partners: list[Partner] = []
    raw_partners = r.get(raw, "", "partners", list, [])
    for i, p in enumerate(raw_partners):
        prefix = f"partners[{i}]."
        if not isinstance(p, dict):
            raise r.err(f"partners[{i}]", "doit être une table [[partners]]")
        r.unknown(p, prefix, {"slug", "name", "lead", "departments", "room"})
        slug = r.get(p, prefix, "slug", str, "")
        if not re.match(r"^[a-z0-9][a-z0-9-]*$", slug):
            raise r.err(f"{prefix}slug", f"obligatoire, en minuscules sans espace (exemple : \"bge-fc\"), reçu : {slug!r}")
        if any(q.slug == slug for q in partners):
            raise r.err(f"{prefix}slug", f"le partenaire {slug!r} est déclaré deux fois")
        name = r.get(p, prefix, "name", str, "")
        if not name:
            raise r.err(f"{prefix}name", "obligatoire (exemple : \"BGE Franche-Comté\")")
        departments = r.strings(p, prefix, "departments")
        for j, dep in enumerate(departments):
            if dep not in DEPARTMENTS:
                raise r.err(f"{prefix}departments[{j}]",
                            f"département inconnu : {dep!r} (possibles : {', '.join(DEPARTMENTS)})")
        room = r.get(p, prefix, "room", str, "")
        if room and not room.startswith("!"):
            raise r.err(f"{prefix}room", f"identifiant de salon invalide : {room!r}")
        partners.append(Partner(slug=slug, name=name, lead=r.get(p, prefix, "lead", bool, False),
                                departments=departments, room=room))

    members: list[Member] = []
    for i, mm in enumerate(r.get(raw, "", "members", list, [])):
        prefix = f"members[{i}]."
        if not isinstance(mm, dict):
            raise r.err(f"members[{i}]", "doit être une table [[members]]")
        r.unknown(mm, prefix, {"user_id", "partner", "role", "name"})
        uid = r.get(mm, prefix, "user_id", str, "")
        if not re.match(r"^@[^:\s]+:\S+$", uid):
            raise r.err(f"{prefix}user_id", f"identifiant Matrix invalide : {uid!r} (exemple : \"@claire:example.org\")")
        if any(x.user_id == uid for x in members):
            raise r.err(f"{prefix}user_id", f"{uid} est déclaré deux fois")
        partner = r.get(mm, prefix, "partner", str, "")
        if not any(p.slug == partner for p in partners):
            raise r.err(f"{prefix}partner", f"partenaire inconnu : {partner!r} (déclarez-le dans [[partners]])")
        role = r.get(mm, prefix, "role", str, "advisor")
        if role not in ROLES:
            raise r.err(f"{prefix}role", f"rôle inconnu : {role!r} (possibles : {', '.join(ROLES)})")
        members.append(Member(user_id=uid, partner=partner, role=role, name=r.get(mm, prefix, "name", str, "")))

    permanences: list[Permanence] = []
    for i, pp in enumerate(r.get(raw, "", "permanences", list, [])):
        prefix = f"permanences[{i}]."
        if not isinstance(pp, dict):
            raise r.err(f"permanences[{i}]", "doit être une table [[permanences]]")
        r.unknown(pp, prefix, {"partner", "town", "weekday", "hours", "address"})
        partner = r.get(pp, prefix, "partner", str, "")
        if not any(p.slug == partner for p in partners):
            raise r.err(f"{prefix}partner", f"partenaire inconnu : {partner!r}")
        town = r.get(pp, prefix, "town", str, "")
        if not town:
            raise r.err(f"{prefix}town", "obligatoire (exemple : \"Vesoul\")")
        weekday = r.get(pp, prefix, "weekday", str, "").lower()
        if weekday not in WEEKDAYS:
            raise r.err(f"{prefix}weekday", f"jour inconnu : {weekday!r} (possibles : {', '.join(WEEKDAYS)})")
        hours = r.get(pp, prefix, "hours", str, "")
        try:
            slots = parse_hours(hours)
        except ValueError as exc:
            raise r.err(f"{prefix}hours", f"plage horaire illisible : {str(exc)!r} (exemple : \"09:00-12:00, 14:00-17:00\")") from None
        permanences.append(Permanence(partner=partner, town=town, weekday=weekday, hours=hours,
                                      address=r.get(pp, prefix, "address", str, ""), slots=slots))

    meetings, events, http = _parse_meetings(r, raw), _parse_events(r, raw), _parse_http(r, raw, env)

    base = base_dir or Path.cwd()
    # relative paths (SQLite file, nio store) are relative to the configuration file's folder
    database = DatabaseSettings(url=_absolute_sqlite(database.url, base))
    if not Path(matrix.store_path).is_absolute():
        matrix = replace(matrix, store_path=str(base / matrix.store_path))
    return Config(bot=bot, matrix=matrix, database=database, rooms=rooms, partners=tuple(partners),
                  members=tuple(members), permanences=tuple(permanences), meetings=meetings, events=events,
                  http=http, source=source, base_dir=base)


def _days(r: _Reader, table: dict, prefix: str, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
    values = r.get(table, prefix, key, list, list(default))
    for i, v in enumerate(values):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 365:
            raise r.err(f"{prefix}{key}[{i}]", f"nombre de jours attendu (0 à 365), reçu : {v!r} (exemple : [7, 1])")
    return tuple(sorted(set(values), reverse=True))


def _positive(r: _Reader, table: dict, prefix: str, key: str, default: int, low: int = 1, high: int = 10_000) -> int:
    value = r.get(table, prefix, key, int, default)
    if not low <= value <= high:
        raise r.err(f"{prefix}{key}", f"doit être compris entre {low} et {high}, reçu : {value}")
    return value


def _parse_meetings(r: _Reader, raw: dict) -> MeetingSettings:
    t, p = r.table(raw, "meetings"), "meetings."
    r.unknown(t, p, {"per_year", "reminder_days", "poll_reminder_days", "native_poll", "default_duration_minutes",
                     "default_location", "default_deadline_days", "candidates"})
    d = MeetingSettings()
    return MeetingSettings(
        per_year=_positive(r, t, p, "per_year", d.per_year, 1, 24),
        reminder_days=_days(r, t, p, "reminder_days", d.reminder_days),
        poll_reminder_days=_positive(r, t, p, "poll_reminder_days", d.poll_reminder_days, 0, 60),
        native_poll=r.get(t, p, "native_poll", bool, d.native_poll),
        default_duration_minutes=_positive(r, t, p, "default_duration_minutes", d.default_duration_minutes, 15, 24 * 60),
        default_location=r.get(t, p, "default_location", str, d.default_location),
        default_deadline_days=_positive(r, t, p, "default_deadline_days", d.default_deadline_days, 1, 180),
        candidates=_positive(r, t, p, "candidates", d.candidates, 1, 20),
    )


def _parse_events(r: _Reader, raw: dict) -> EventSettings:
    t, p = r.table(raw, "events"), "events."
    r.unknown(t, p, {"reminder_days", "announce_in_partner_rooms", "members_may_add"})
    d = EventSettings()
    return EventSettings(
        reminder_days=_days(r, t, p, "reminder_days", d.reminder_days),
        announce_in_partner_rooms=r.get(t, p, "announce_in_partner_rooms", bool, d.announce_in_partner_rooms),
        members_may_add=r.get(t, p, "members_may_add", bool, d.members_may_add),
    )


def _parse_http(r: _Reader, raw: dict, env: dict[str, str]) -> HttpSettings:
    t, p = r.table(raw, "http"), "http."
    r.unknown(t, p, {"listen", "token", "request_timeout_seconds", "max_connections"})
    d = HttpSettings()
    listen = r.get(t, p, "listen", str, "")
    token = env.get("ESS_BOT_HTTP_TOKEN") or r.get(t, p, "token", str, "")
    if listen:
        m = re.match(r"^(\[[0-9a-fA-F:]+\]|[\w.\-]+):(\d{1,5})$", listen)
        if not m or not 0 < int(m.group(2)) < 65536:
            raise r.err(f"{p}listen", f"adresse illisible : {listen!r} (exemple : \"127.0.0.1:8080\")")
        if len(token) < 16:
            raise r.err(f"{p}token", "un jeton d'au moins 16 caractères est obligatoire quand http.listen est "
                                     "renseigné (ou la variable ESS_BOT_HTTP_TOKEN)")
    return HttpSettings(
        listen=listen, token=token,
        request_timeout_seconds=_positive(r, t, p, "request_timeout_seconds", d.request_timeout_seconds, 1, 300),
        max_connections=_positive(r, t, p, "max_connections", d.max_connections, 1, 10_000),
    )


def _absolute_sqlite(url: str, base: Path) -> str:
    m = re.match(r"^(sqlite(?:\+\w+)?:///)(.+)$", url)
    if not m or m.group(2).startswith(":memory:") or Path(m.group(2)).is_absolute():
        return url
    return m.group(1) + str(base / m.group(2))


def require_matrix(config: Config) -> None:
    """Check what ``ess-bot run`` needs on top of the general validation."""
    src = config.source
    if not config.matrix.homeserver:
        raise ConfigError(src, "matrix.homeserver", "obligatoire pour se connecter (exemple : \"https://matrix.example.org\")")
    if not config.matrix.user_id:
        raise ConfigError(src, "matrix.user_id", "obligatoire (exemple : \"@ess-bot:example.org\")")
    if not (config.matrix.password or config.matrix.access_token):
        raise ConfigError(src, "matrix.password",
                          "un mot de passe ou un access_token est nécessaire (ou les variables "
                          "ESS_BOT_MATRIX_PASSWORD / ESS_BOT_MATRIX_ACCESS_TOKEN)")


def summary(config: Config) -> str:
    """A short French summary for ``ess-bot check-config``."""
    lines = [f"Configuration valide : {config.source}",
             f"  Préfixe des commandes : {config.bot.command_prefix}   Fuseau : {config.bot.timezone}",
             f"  Serveur Matrix : {config.matrix.homeserver or '(non renseigné)'}   Compte : {config.matrix.user_id or '(non renseigné)'}",
             f"  Base de données : {_hide_password(config.database.url)}",
             f"  Salon de coordination : {config.rooms.coordination or '(aucun)'}   Salons d'annonces : {len(config.rooms.announcements)}",
             f"  Partenaires ({len(config.partners)}) : " + ", ".join(
                 p.name + (" (chef de file)" if p.lead else "") for p in config.partners)]
    by_role = {role: len(config.members_with_role(role)) for role in ROLES}
    lines.append(f"  Membres ({len(config.members)}) : {by_role['advisor']} conseiller·ère·s, "
                 f"{by_role['coordinator']} coordinateur·rice·s, {by_role['admin']} administrateur·rice·s")
    lines.append(f"  Permanences : {len(config.permanences)}")
    h = config.http
    lines.append(f"  Flux HTTP : http://{h.listen} (délai {h.request_timeout_seconds} s, {h.max_connections} connexions "
                 f"simultanées au plus)" if h.enabled else "  Flux HTTP : désactivé")
    return "\n".join(lines)


def _hide_password(url: str) -> str:
    url = re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)
