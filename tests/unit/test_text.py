import pytest
from hypothesis import given, strategies as st

from ess_bot.framework.dispatcher import parse_command
from ess_bot.text import TokenizeError, closest, fold, normalize, tokenize


def test_normalize_typography():
    assert normalize("!projet nouveau « Café Pixel »") == '!projet nouveau "Café Pixel"'
    assert normalize("!suivi “Pixel” l’atelier") == "!suivi \"Pixel\" l'atelier"
    assert normalize("!ping\u00a0 ") == "!ping"
    assert normalize("1\u202fh\u00a030") == "1 h 30"


def test_fold_is_case_and_accent_insensitive():
    assert fold("Réunion") == fold("REUNION") == "reunion"
    assert fold("Émergence") == "emergence"


def test_tokenize_keeps_quoted_parts():
    assert tokenize('nouveau "Café culturel Pixel" dep=25') == ["nouveau", "Café culturel Pixel", "dep=25"]
    assert tokenize('lieu="Le Pixel, Besançon" x') == ["lieu=Le Pixel, Besançon", "x"]
    assert tokenize('  a   b ') == ["a", "b"]
    assert tokenize('""') == [""]
    with pytest.raises(TokenizeError):
        tokenize('"open')


def test_closest():
    assert closest("pnig", ["ping", "aide", "suivi"]) == "ping"
    assert closest("suiv", ["ping", "aide", "suivi"]) == "suivi"
    assert closest("zzzzzz", ["ping", "aide"]) is None


def test_parse_command():
    cmd = parse_command("!Réunion  etat «3»", "!")
    assert cmd.name == "Réunion" and cmd.args == ["etat", "3"]
    assert parse_command("bonjour", "!") is None
    assert parse_command("!!!", "!") is None
    assert parse_command("! ping", "!") is None


@given(st.text(max_size=200))
def test_parse_command_never_fails_unexpectedly(text):
    try:
        parse_command(text, "!")
    except TokenizeError:
        pass


def test_tokenize_quoted_remembers_quotes():
    from ess_bot.text import Token, tokenize_quoted
    assert tokenize_quoted('"Café culturel" ante 2h "note" x="a b"') == [
        Token("Café culturel", True), Token("ante"), Token("2h"), Token("note", True), Token("x=a b")]


def test_quoted_first_word_is_not_a_subcommand():
    cmd = parse_command('!suivi "liste" émergence', "!")
    assert cmd.tokens[0].quoted and cmd.args == ["liste", "émergence"]


def test_old_style_reply_fallback_is_skipped():
    cmd = parse_command("> <@alice:hs> trame.docx\n\n!outil ajouter \"Trame\" #bp", "!")
    assert cmd.name == "outil" and cmd.args == ["ajouter", "Trame", "#bp"]


def test_control_characters_become_spaces():
    """A NUL (refused by PostgreSQL in text), DEL, C1 controls and lone surrogates never reach a command."""
    assert normalize("!outil a\x00b\x7fc\x85d\ud800e") == "!outil a b c d e"
    assert normalize("a\tb\nc") == "a\tb\nc"          # tabs and line breaks are text
    assert parse_command('!outil ajouter "T\x00x"', "!").args == ["ajouter", "T x"]
