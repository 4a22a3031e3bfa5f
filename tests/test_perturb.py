"""The sentence edits that build labelled grounding data: each applies where it should, returns
None where it cannot, keeps or breaks the meaning as its family promises, and is deterministic."""

import random

import pytest

from assay import perturb as p

CONTEXT = ("The Command Palette lists every command. Open the Settings UI to change the default profile. "
           "Windows Terminal reads settings.json when it starts and uses the defaultProfile setting.")


def test_every_edit_is_deterministic_for_a_seed():
    s = "You can open the Command Palette before the Settings UI loads, such as on startup, in 2 seconds."
    for kind in [*p.POSITIVE, *p.NEGATIVE]:
        assert p.perturb(s, kind, 7, CONTEXT) == p.perturb(s, kind, 7, CONTEXT), kind


def test_verbatim_and_unknown_kind():
    assert p.perturb("Tabs can be renamed.", "verbatim") == "Tabs can be renamed."
    with pytest.raises(KeyError):
        p.perturb("Tabs can be renamed.", "nonsense")


def test_drop_clause_drops_examples_but_never_a_condition():
    assert p.drop_clause("Profiles hold many settings, such as fonts.", random.Random(0)) == "Profiles hold many settings."
    assert p.drop_clause("Panes split the window (horizontally).", random.Random(0)) == "Panes split the window."
    assert p.drop_clause("Panes work (only on Windows 11).", random.Random(0)) is None
    assert p.drop_clause("Panes work unless the tab is pinned.", random.Random(0)) is None


def test_reword_keeps_the_facts_and_needs_a_known_phrase():
    out = p.reword("The menu allows you to select a profile.", random.Random(1))
    assert out and out != "The menu allows you to select a profile." and "profile" in out
    assert p.reword("Tabs are blue.", random.Random(1)) is None


def test_change_number_changes_one_number_and_skips_versions():
    out = p.change_number("Wait 30 seconds.", random.Random(0))
    assert out and out != "Wait 30 seconds." and "30" not in out
    assert p.change_number("Install version 1.2.3 now.", random.Random(0)) is None
    assert p.change_number("No digits here.", random.Random(0)) is None


def test_swap_entity_uses_a_name_from_the_same_page():
    out = p.swap_entity("Press Ctrl+Shift+P to open the Command Palette.", random.Random(0), CONTEXT)
    assert out and "Command Palette" not in out and ("Settings UI" in out or "Windows Terminal" in out)
    assert "Ctrl" in out  # key chords are not names
    assert p.swap_entity("Press the button.", random.Random(0), CONTEXT) is None


def test_flip_negation_adds_or_removes_one_negation():
    assert p.flip_negation("Tabs can be renamed.", random.Random(0)) == "Tabs cannot be renamed."
    assert p.flip_negation("Tabs cannot be renamed.", random.Random(0)) == "Tabs can be renamed."
    assert p.flip_negation("Tabs are not pinned.", random.Random(0)) == "Tabs are pinned."
    assert p.flip_negation("Tabs close fast.", random.Random(0)) is None


def test_swap_condition_flips_a_comparison_and_keeps_capitals():
    assert p.swap_condition("Save before you quit.", random.Random(0)) == "Save after you quit."
    assert p.swap_condition("Only admins can edit.", random.Random(0)) == "All users can edit."
    assert p.swap_condition("Either left or right works.", random.Random(0)) is None
    assert p.swap_condition("Tabs are blue.", random.Random(0)) is None


def test_add_detail_is_absent_from_the_context():
    out = p.add_detail("Tabs can be renamed.", random.Random(0), "Tabs can be renamed offline within the hour.")
    assert out and out.startswith("Tabs can be renamed") and "offline" not in out and "hour" not in out
    assert p.add_detail("No final period", random.Random(0)) is None


def test_a_negative_that_the_context_still_contains_is_refused():
    context = "Tabs can be renamed. Tabs cannot be renamed in kiosk mode."
    assert p.perturb("Tabs can be renamed", "negation", 0, context) is None
