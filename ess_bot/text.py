"""Text helpers shared by the command framework and the parsers: normalisation and folding."""

from __future__ import annotations

import difflib
import re
import unicodedata

_TYPO = str.maketrans({
    "«": '"', "»": '"', "“": '"', "”": '"', "„": '"', "‟": '"',
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'",
    "\u00a0": " ", "\u202f": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ", "\u2002": " ",
    "\u2003": " ", "\u3000": " ", "\u200b": "", "\ufeff": "",
    "–": "-", "—": "-", "‐": "-", "‑": "-",
})


def normalize(text: str) -> str:
    """Typographic quotes → ASCII quotes, exotic spaces → spaces, NFC; trims."""
    text = unicodedata.normalize("NFC", text).translate(_TYPO)
    # « texte » gives '" texte "' : drop the spaces French typography puts inside guillemets
    text = re.sub(r'"\s+([^"]*?)\s+"', r'"\1"', text)
    return text.strip()


def fold(text: str) -> str:
    """Case- and accent-insensitive key: 'Réunion' → 'reunion'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class TokenizeError(ValueError):
    pass


def tokenize(text: str) -> list[str]:
    """Split on spaces, keeping "quoted parts" together (quotes removed).

    ``key="a b"`` stays one token ``key=a b``. An unclosed quote raises TokenizeError.
    """
    tokens: list[str] = []
    buf: list[str] = []
    quote: str | None = None
    in_token = False
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
            else:
                buf.append(ch)
            continue
        if ch == '"':
            quote = ch
            in_token = True
        elif ch.isspace():
            if in_token:
                tokens.append("".join(buf))
                buf, in_token = [], False
        else:
            buf.append(ch)
            in_token = True
    if quote:
        raise TokenizeError(text)
    if in_token:
        tokens.append("".join(buf))
    return tokens


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


def escape_html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))
