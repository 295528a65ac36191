"""Every README example, replayed through the terminal, says today exactly what was recorded (issue 13).

A difference fails with the input that produced it and the expected and actual outputs. When a change
*should* be seen by users, re-record: ``python -m tests.golden.readme_session --record``.
"""

from __future__ import annotations

import json

import pytest

from tests.golden import readme_session


@pytest.fixture(scope="module")
def session_lines() -> list[str]:
    return readme_session.run_session()


def test_readme_session_replies_are_unchanged(session_lines):
    diff = readme_session.compare(readme_session.read_recording(), session_lines)
    assert not diff, diff


def test_a_changed_byte_fails_with_the_input_and_both_outputs(session_lines):
    expected = list(session_lines)
    # the reply to the README's `!ping`: one character changed
    at = next(i for i, line in enumerate(expected) if line.startswith('{"input": "!ping"')) + 1
    expected[at] = expected[at].replace("Pong", "Pang", 1)
    assert expected[at] != session_lines[at]

    diff = readme_session.compare(expected, session_lines)

    assert "after input '!ping' (README example; as @karim:example.org in bge-fc; README line 62)" in diff
    assert '-[1] body: "🏓 Pang ! ess-bot' in diff
    assert '+[1] body: "🏓 Pong ! ess-bot' in diff
    assert diff.count("after input") == 1  # only that input differs


def test_every_readme_example_is_run_or_has_a_reason():
    examples = readme_session.readme_examples(readme_session.README.read_text(encoding="utf-8"))
    run = readme_session.examples_to_run(examples)
    recorded_inputs = [json.loads(line) for line in readme_session.read_recording() if line.startswith('{"input": ')]
    recorded_readme = [r.get("readme", r["input"]) for r in recorded_inputs if not r["setup"]]

    assert recorded_readme == [ex.text for ex in run]
    assert all(ex.skipped or ex.text in recorded_readme for ex in examples)
    # the tables' examples are all there, placeholders replaced by what the session created
    assert "!projet accepter P-7K3Q" in recorded_readme
    assert "!projet accepter P-7K3Q" not in [r["input"] for r in recorded_inputs]
