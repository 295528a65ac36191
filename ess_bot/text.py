"""Text helpers shared by the command framework and the parsers: normalisation and folding."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

_TYPO = str.maketrans({
    "«": '"', "»": '"', "“": '"', "”": '"', "„": '"', "‟": '"',
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'",
    "\u00a0": " ", "\u202f": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ", "\u2002": " ",
    "\u2003": " ", "\u3000": " ", "\u200b": "", "\ufeff": "",
    "–": "-", "—": "-", "‐": "-", "‑": "-",
})


# control characters (a NUL, which PostgreSQL refuses in text; DEL; the C1 range) and lone surrogates
# (which no UTF-8 encoder accepts): never part of what someone meant to type
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def without_controls(text: str) -> str:
    """``text`` with every control character (but tab and line breaks) and lone surrogate as a space."""
    return _CONTROLS.sub(" ", text)


def normalize(text: str) -> str:
    """Typographic quotes → ASCII quotes, exotic spaces → spaces, control characters → spaces, NFC; trims."""
    text = unicodedata.normalize("NFC", without_controls(text))
    # « texte » → "texte": drop the spaces French typography puts inside guillemets — only there, as
    # a pattern on ASCII quotes would also eat the spaces *between* two quoted parts ("a" x "b").
    text = re.sub(r"«\s*", "«", text)
    text = re.sub(r"\s*»", "»", text)
    return text.translate(_TYPO).strip()


def shorten(text: str, limit: int = 200) -> str:
    """``text`` cut at ``limit`` characters (…): how a typed value is echoed (in ``md_code`` too), so that
    a 10 kB line never makes a reply larger than a Matrix event may be."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def fold(text: str) -> str:
    """Case- and accent-insensitive key: 'Réunion' → 'reunion'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class TokenizeError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    """One argument. ``quoted`` when it was written between quotes ("Café culturel Pixel")."""

    text: str
    quoted: bool = False


def tokenize_quoted(text: str) -> list[Token]:
    """Split on spaces, keeping "quoted parts" together (quotes removed), remembering which tokens
    began with a quote. ``key="a b"`` stays one unquoted token ``key=a b``. An unclosed quote raises
    TokenizeError."""
    tokens: list[Token] = []
    buf: list[str] = []
    in_quote = False
    in_token = False
    starts_quoted = False
    for ch in text:
        if in_quote:
            if ch == '"':
                in_quote = False
            else:
                buf.append(ch)
            continue
        if ch == '"':
            starts_quoted = starts_quoted or not in_token
            in_quote = in_token = True
        elif ch.isspace():
            if in_token:
                tokens.append(Token("".join(buf), starts_quoted))
                buf, in_token, starts_quoted = [], False, False
        else:
            buf.append(ch)
            in_token = True
    if in_quote:
        raise TokenizeError(text)
    if in_token:
        tokens.append(Token("".join(buf), starts_quoted))
    return tokens


def tokenize(text: str) -> list[str]:
    """The texts of :func:`tokenize_quoted`."""
    return [t.text for t in tokenize_quoted(text)]


def closest(word: str, candidates: list[str], cutoff: float = 0.6) -> str | None:
    """The candidate nearest to ``word``: a prefix match first, then difflib's similarity."""
    w = fold(word)
    if not w:
        return None
    by_key = {fold(c): c for c in candidates}
    prefixed = [c for k, c in by_key.items() if k.startswith(w) or w.startswith(k)]
    if prefixed:
        return min(prefixed, key=lambda c: abs(len(c) - len(w)))
    match = difflib.get_close_matches(w, list(by_key), n=1, cutoff=cutoff)
    return by_key[match[0]] if match else None
