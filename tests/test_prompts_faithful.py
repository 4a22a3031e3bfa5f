"""Parse-time faithfulness checks: an answer built from its evidence, controls that never reach the
assistant's text, and conversations without speaker labels, empty, repeated or unanswered turns.
Clean, noisy and degenerate replies (the degenerate ones are those the 1.5B model produced on an
unseen help centre); every reason has a stable metric class."""

import pandas as pd
import pytest

from assay.config import Generate
from assay.generate import generate
from assay.llm.client import error_kind
from assay.prompts import (
    leaked_control,
    multi_turn,
    qa,
    refusal,
    speaker_label,
    task_demo,
    unsupported,
)
from tests.fakes import FakeChat

TRASH = ("By default, deleted files stay in the trash bin for 30 days. The Nextcloud server administrator "
         "can adjust this value in the config.php file.")
EVIDENCE = ["By default, deleted files stay in the trash bin for 30 days."]
PERSONA = "a landlord managing thermostats in several rental flats"
CONTROLS = {"persona": PERSONA, "difficulty": "basic", "style": "a terse chat message with no greeting"}


def test_speaker_label_at_the_start_of_any_line_only():
    assert speaker_label("Files stay 30 days.") is None
    assert speaker_label("The customer: asked twice.") is None  # prose, not a label
    assert speaker_label("Customer: how long?") == "Customer"
    assert speaker_label("**Assistant:** 30 days.") == "Assistant"
    assert speaker_label("30 days.\nuser: and then?") == "user"
    assert speaker_label("Support agent : 30 days") == "Support agent"


def test_unsupported_terms_clean_noisy_invented():
    assert unsupported("Deleted files stay in the trash bin for 30 days.", TRASH) == ([], 6)
    assert unsupported("Sure, happy to help: a file you delete stays 30 days.", TRASH)[0] == []  # courtesy, inflection
    assert unsupported("", TRASH) == ([], 0)
    missing, total = unsupported("Upgrade to the Premium tier at https://cloud.example.com/trash?keep=90 "
                                 "to keep them 90 days.", TRASH)
    assert missing == ["keep", "premium", "tier", "upgrade", "90", "https://cloud.example.com/trash?keep=90"]
    assert total == 7  # and "days", which the source has
    assert unsupported("Set retention=60 in config.php.", TRASH)[0] == ["retention=60"]  # one term, not three


def test_leaked_control_finds_the_persona_or_style_but_not_quoted_evidence():
    assert leaked_control("Files stay 30 days.", CONTROLS) is None
    assert leaked_control("Files stay 30 days.", None) is None
    leak = leaked_control("As a landlord managing thermostats in several flats, note files stay 30 days.", CONTROLS)
    assert leak == "persona text in an assistant turn: 'a landlord managing thermostats'"
    assert leaked_control("Here is a terse chat message with no greeting.", CONTROLS).startswith("style text")
    quoted = "Landlords managing thermostats in several rental flats get one bill."
    assert leaked_control("landlords managing thermostats in several rental flats get one bill", CONTROLS, quoted) is None


def _qa(answer: str, question: str = "How long do deleted files stay in the trash?") -> dict:
    return {"evidence": EVIDENCE, "question": question, "answer": answer}


@pytest.mark.parametrize("answer", [
    "By default, deleted files stay in the trash bin for 30 days.",  # the sentence itself
    "They stay in the trash bin for 30 days by default.",  # a restatement
    "Deleted files are kept for 30 days in the trash, by default.",  # one stray word ("kept")
])
def test_qa_faithful_answers_parse(answer):
    parsed, err = qa.parse(_qa(answer), CONTROLS)
    assert err is None and parsed["answer"] == answer


@pytest.mark.parametrize(("answer", "kind"), [
    ("Upgrade to the Business plan to keep deleted files for a year.", "answer_not_from_its_evidence"),
    ("Open https://cloud.example.com/apps/files?view=trashbin&keep=90 to extend it.", "answer_not_from_its_evidence"),
    ("Agent: deleted files stay in the trash bin for 30 days.", "speaker_label_in_the_text"),
    ("As a landlord managing thermostats in several flats, files stay 30 days.", "persona_text_in_an_assistant_turn"),
    ("Deleted files stay in the trash bin for 30 days " + "and then " * 60, "answer_cut_at_its_length_bound"),
    ("Once that is on, deleted files stay in the trash bin for 30 days.", "answer_starts_mid_conversation"),
    ("Then deleted files stay in the trash bin for 30 days.", "answer_starts_mid_conversation"),
])
def test_qa_degenerate_or_unfaithful_answers_are_named_errors(answer, kind):
    parsed, err = qa.parse(_qa(answer[: qa.ANSWER_MAX]), CONTROLS)
    assert parsed is None and error_kind(err) == kind, err


def test_qa_unsupported_reason_lists_the_invented_terms():
    _, err = qa.parse(_qa("Upgrade to the Business plan to keep deleted files for a year."))
    assert err.startswith("answer not from its evidence: ") and "(business, keep, plan, upgrade, year)" in err
    assert qa.parse(_qa("Yes."))[1] is None  # no content word: nothing to check, nothing invented
    assert qa.parse(_qa("User: 30 days?"))[1] == "speaker label in the text: 'User:'"  # a label in the question too
    assert qa.schema()["properties"]["answer"]["maxLength"] == qa.ANSWER_MAX


def _conv(*pairs: tuple[str, str]) -> dict:
    return {"evidence": EVIDENCE, "turns": [{"user": u, "assistant": a} for u, a in pairs]}


CLEAN = [("How long do deleted files stay in the trash?", "By default they stay in the trash bin for 30 days."),
         ("Can that be changed?", "Yes."),
         ("And after the 30 days?", "Files older than the 30 days are deleted from the trash bin.")]


def test_multi_turn_clean_and_noisy_conversations_parse():
    parsed, err = multi_turn.parse(_conv(*CLEAN), 3, CONTROLS)
    assert err is None and len(parsed["turns"]) == 3
    noisy = _conv(*[("  " + u + " ", a + "\n") for u, a in CLEAN])
    assert multi_turn.parse(noisy, 3, CONTROLS)[0]["turns"][0]["user"] == CLEAN[0][0]


@pytest.mark.parametrize(("turn", "kind", "where"), [
    (("What about after that?", "Customer: what about after that?"), "speaker_label_in_a_turn", "assistant message of turn 3"),
    (("User: and after 30 days?", "They are deleted."), "speaker_label_in_a_turn", "user message of turn 3"),
    (("And then?", "They are deleted.\nCustomer: thanks!"), "speaker_label_in_a_turn", "assistant message of turn 3"),
    (("", "They are deleted."), "empty_turn", "user message of turn 3"),
    (("And after the 30 days?", "   "), "empty_turn", "assistant message of turn 3"),
    (("Can that be changed?", "No."), "repeated_turn", "user message of turn 3"),
    (("Are they deleted after the 30 days?", "Are they deleted after the 30 days?"), "repeated_turn", "assistant"),
    (("Thanks, that's all!", "You're welcome! Let me know if you need anything else."), "unanswered_question",
     "(turn 3)"),
    (("Is there a limit?", "Which Nextcloud version do you run?"), "unanswered_question", "asks back"),
    (("Any advice?", "Since you are a landlord managing thermostats, files stay 30 days."),
     "persona_text_in_an_assistant_turn", "(turn 3)"),
])
def test_multi_turn_degenerate_conversations_are_named_errors(turn, kind, where):
    parsed, err = multi_turn.parse(_conv(*CLEAN[:2], turn), 3, CONTROLS)
    assert parsed is None and error_kind(err) == kind and where in err, err


def test_multi_turn_answer_that_only_asks_back_vs_one_that_also_answers():
    assert multi_turn.unanswered({"user": "Is there a limit?", "assistant": "Which version?"}, "")
    assert multi_turn.unanswered({"user": "How long?", "assistant": "30 days. Anything else?"}, EVIDENCE[0]) is None
    assert multi_turn.schema(3)["properties"]["turns"]["items"]["properties"]["assistant"]["maxLength"] == 400


def test_task_demo_and_refusal_reject_labels_and_leaks():
    steps = {"evidence": EVIDENCE, "request": "How do I empty the trash?",
             "steps": [{"action": "Open Deleted files.", "call": ""}]}
    assert task_demo.parse(steps, CONTROLS)[1] is None
    assert task_demo.parse(dict(steps, request="Customer: empty it"), CONTROLS)[1] == "speaker label in the text: 'Customer:'"
    leak = dict(steps, steps=[{"action": "As a landlord managing thermostats in several flats, open it.", "call": ""}])
    assert error_kind(task_demo.parse(leak, CONTROLS)[1]) == "persona_text_in_an_assistant_turn"
    rule = {"policy": "You must never lose your Nextcloud password.", "evidence": [],
            "request": "Can I lose my password and still read my files?",
            "reply": "Your password must never be lost: without it you lose access."}
    assert refusal.parse(rule, CONTROLS)[1] is None
    assert refusal.parse(dict(rule, reply="Agent: your password must never be lost."))[1].startswith("speaker label")
    leaky = dict(rule, reply="A terse chat message with no greeting: the password must never be lost.")
    assert error_kind(refusal.parse(leaky, CONTROLS)[1]) == "style_text_in_an_assistant_turn"


def test_generate_passes_the_controls_and_counts_errors_by_class():
    chunks = pd.DataFrame([{"chunk_id": f"c{i}", "source": "trash.md", "section": "Trash", "position": i,
                            "text": TRASH, "n_tokens": 30, "content_hash": f"h{i}"} for i in range(4)])
    cfg = Generate(endpoint="f", personas=[PERSONA])
    script = [_qa("As a landlord managing thermostats in several flats: 30 days."), _qa("Agent: 30 days."),
              _qa("They stay 30 days."), _qa("Upgrade to the Business plan for a year.")]
    rows, metrics = generate(chunks, FakeChat(script), cfg, seed=1)
    assert metrics["errors"] == 3 and metrics["per_kind.qa.errors"] == 3
    assert metrics["error.persona_text_in_an_assistant_turn"] == 1
    assert metrics["per_kind.qa.error.speaker_label_in_the_text"] == 1
    assert metrics["error.answer_not_from_its_evidence"] == 1
    assert sum(r["error"] is None for r in rows) == 1
