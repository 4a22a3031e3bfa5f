"""Unit tests for assay.ingest: section titles per format, bad files skipped and counted,
chunk windows, deterministic ids (tiny inline seed folders under tmp_path)."""

import json
import logging
import re
from collections import Counter

import pytest

from assay.config import Ingest
from assay.errors import AssayError
from assay.ingest import chunk_pieces, ingest
from assay.loaders import load_docs, load_html, load_jsonl, load_markdown
from assay.prompts import spans

CFG = Ingest(min_chunk_chars=1)
SENTENCE = "The Lumo Hearth H2 keeps the room at the target temperature all day."


def _seed(tmp_path, files: dict[str, str | bytes]):
    for name, data in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
    return tmp_path


def test_markdown_sections_are_heading_paths():
    text = ("Preamble before any heading.\n# Setup\nIntro.\n## Wiring ##\nUse the C wire.\n"
            "### Colours\nRed is R.\n## Power\nUse 24 V.\n# Empty\n\n   \n# FAQ\nAsk us.\n")
    pieces = load_markdown(text, "guide")
    assert [(s, t) for s, t, _ in pieces] == [
        ("guide", "Preamble before any heading."),
        ("Setup", "Intro."),
        ("Setup > Wiring", "Use the C wire."),
        ("Setup > Wiring > Colours", "Red is R."),
        ("Setup > Power", "Use 24 V."),
        ("FAQ", "Ask us."),  # a heading with only whitespace under it makes no piece
    ]


def test_markdown_whitespace_only_and_hash_without_space():
    assert load_markdown("  \n\t\n", "x") == []
    assert [s for s, _, _ in load_markdown("#hashtag is text\n", "x")] == ["x"]


HTML = """<html><head><title>Hearth Help</title><style>.x { color: red }</style>
<script>var secret = "SCRIPT_TEXT";</script></head>
<body><nav><a href="/">NAV_TEXT</a></nav>
<p>Welcome to the help page.</p>
<h1>Guide</h1><p>Overview paragraph.</p>
<h2>Install</h2><p>Mount the base plate.</p><ul><li>Drill two holes.</li></ul>
<h2>Reset</h2><p>Hold Home for 10 seconds.</p><pre>reset --all</pre>
<footer>FOOTER_TEXT &copy; 2024</footer><noscript>NOSCRIPT_TEXT</noscript></body></html>"""


def test_html_drops_script_style_nav_footer_and_splits_at_h2():
    pieces = load_html(HTML, "help")
    sections = [s for s, _, _ in pieces]
    assert sections == ["Hearth Help", "Guide", "Guide > Install", "Guide > Reset"]
    text = "\n".join(t for _, t, _ in pieces)
    for hidden in ("SCRIPT_TEXT", "NAV_TEXT", "FOOTER_TEXT", "NOSCRIPT_TEXT", "color: red"):
        assert hidden not in text
    install = dict((s, t) for s, t, _ in pieces)["Guide > Install"]
    assert "Mount the base plate." in install and "Drill two holes." in install
    assert "reset --all" in dict((s, t) for s, t, _ in pieces)["Guide > Reset"]


def test_html_without_title_uses_the_file_stem():
    assert [s for s, _, _ in load_html("<p>Just one paragraph.</p>", "page")] == ["page"]


def test_html_keeps_visible_text_outside_paragraphs():
    html = ("<body><h2>Limits</h2><div>DIV_TEXT the maximum is 32 C.</div><h4>H4_TEXT</h4>"
            "<blockquote>QUOTE_TEXT</blockquote></body>")
    text = "\n".join(t for _, t, _ in load_html(html, "x"))
    assert "DIV_TEXT" in text and "H4_TEXT" in text and "QUOTE_TEXT" in text


def test_html_nested_blocks_are_not_duplicated():
    text = load_html("<ul><li><p>ONCE only please</p></li></ul>", "x")[0][1]
    assert text.count("ONCE only please") == 1


TICKET = {"ticket_id": "T-17", "customer_message": "My screen shows E04.",
          "agent_reply": "Install the C-wire adapter.", "resolution": "solved"}
CHAT = {"conversation_id": "C-9", "turns": [{"role": "customer", "text": "Is 5 °C safe?"},
                                            {"role": "agent", "text": "Yes, frost protection."}]}


def test_jsonl_tickets_and_chats_are_rendered_with_their_ids(tmp_path, caplog):
    lines = [json.dumps(TICKET), '{"ticket_id": "T-18", "customer_message": "cut', "",
             json.dumps(CHAT, ensure_ascii=False)]
    _seed(tmp_path, {"tickets.jsonl": "\n".join(lines) + "\n"})
    with caplog.at_level(logging.WARNING, logger="assay.loaders"):
        rows, metrics = ingest(tmp_path, CFG)
    assert [(r["section"], r["kind"]) for r in rows] == [("T-17", "ticket"), ("C-9", "chat")]
    assert metrics["skipped_records"] == 1 and metrics["skipped_records.invalid_json_line"] == 1
    assert rows[0]["text"] == ("Customer: My screen shows E04.\nAgent: Install the C-wire adapter.\n"
                               "Resolution: solved")
    assert rows[1]["text"] == "Customer: Is 5 °C safe?\nAgent: Yes, frost protection."
    assert "tickets:2" in caplog.text and "invalid JSON" in caplog.text
    assert metrics["files_used"] == 1 and metrics["skipped"] == 0
    assert metrics["kind.ticket"] == 1 and metrics["kind.chat"] == 1


def test_jsonl_without_agent_reply_and_fallback_names():
    problems = Counter()
    pieces = load_jsonl('{"customer_message": "Hello?"}\n{"turns": []}\n[1, 2]\n"str"\n{bad\n', "t", problems)
    assert pieces == [("record 1", "Customer: Hello?", "ticket")]
    assert problems == {"not_an_object_line": 2, "invalid_json_line": 1}


def test_jsonl_chat_turn_without_role_or_text():
    pieces = load_jsonl(json.dumps({"id": 3, "turns": [{"text": "hi"}, {"role": "agent"}]}), "t")
    assert pieces == [("3", "?: hi\nAgent:", "chat")]


BAD_FILES = [
    ("empty.md", b"", "empty"),
    ("blank.txt", b"   \n\n\t\n", None),  # readable but no text: no chunk, never an error
    ("nul.txt", b"text\x00with a NUL byte " * 4, "binary"),
    ("latin1.md", "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e".encode("latin-1"), "undecodable"),
    ("tool.exe", b"MZ\x90\x00", "unsupported_type"),
    ("notes.docx", b"PK\x03\x04", "unsupported_type"),
    ("Makefile", b"all:\n\techo hi\n", "unsupported_type"),
]


@pytest.mark.parametrize(("name", "data", "reason"), BAD_FILES)
def test_a_bad_file_is_skipped_and_counted_never_raised(tmp_path, name, data, reason):
    _seed(tmp_path, {name: data, "good.md": f"# Good\n{SENTENCE}\n"})
    rows, metrics = ingest(tmp_path, CFG)
    assert [r["source"] for r in rows] == ["good.md"]
    assert metrics["files"] == 2
    if reason:
        assert metrics[f"skipped.{reason}"] == 1 and metrics["skipped"] == 1
        assert metrics["files_used"] == 1


def test_oversized_file_is_skipped_with_a_tiny_limit(tmp_path):
    _seed(tmp_path, {"big.md": SENTENCE * 3, "small.md": "ok"})
    rows, metrics = ingest(tmp_path, Ingest(min_chunk_chars=1, max_file_mb=100 / 2**20))  # 100 bytes
    assert metrics["skipped.oversized"] == 1 and [r["source"] for r in rows] == ["small.md"]


def test_an_extension_not_in_params_is_unsupported(tmp_path):
    _seed(tmp_path, {"a.md": SENTENCE, "b.txt": SENTENCE})
    rows, metrics = ingest(tmp_path, Ingest(min_chunk_chars=1, extensions=[".md"]))
    assert metrics["skipped.unsupported_type"] == 1 and [r["source"] for r in rows] == ["a.md"]


def test_all_skip_reasons_are_counted_together(tmp_path):
    _seed(tmp_path, {name: data for name, data, _ in BAD_FILES} | {"ok.md": SENTENCE})
    _, metrics = ingest(tmp_path, CFG)
    assert metrics["skipped"] == 6 and metrics["skipped.unsupported_type"] == 3
    assert metrics["files"] == 8 and metrics["files_used"] == 2


def test_uppercase_extension_nested_folder_and_hidden_files(tmp_path):
    _seed(tmp_path, {"sub/DOC.MD": SENTENCE, ".hidden.md": "secret " * 20, "sub/.DS_Store": b"\x00"})
    rows, metrics = ingest(tmp_path, CFG)
    assert [r["source"] for r in rows] == ["sub/DOC.MD"] and metrics["files"] == 1


def test_an_empty_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(AssayError, match="no seed files found") as info:
        ingest(tmp_path, CFG)
    assert str(tmp_path) in str(info.value)


def test_a_folder_of_only_bad_files_is_an_error_naming_it(tmp_path):
    _seed(tmp_path, {"empty.md": b"", "nul.txt": b"\x00\x01", "x.exe": b"MZ"})
    with pytest.raises(AssayError, match="no usable text") as info:
        ingest(tmp_path, CFG)
    message = str(info.value)
    assert str(tmp_path) in message and "3 files" in message
    for reason in ("empty", "binary", "unsupported_type"):
        assert reason in message


def test_a_missing_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(AssayError) as info:
        ingest(tmp_path / "nope", CFG)
    assert "nope" in str(info.value)


def _prose(n_paragraphs: int, words: int = 20) -> str:
    return "\n\n".join(" ".join(f"p{p}w{w}" for w in range(words)) for p in range(n_paragraphs))


def test_chunk_windows_respect_the_token_budget():
    cfg = Ingest(chunk_tokens=60, overlap_tokens=0, min_chunk_chars=1)
    rows = chunk_pieces("a.md", [("S", _prose(10), "prose")], cfg)
    assert len(rows) == 5  # 20 words = 26 tokens per paragraph: two fit in 60, three do not
    assert all(r["n_tokens"] <= 60 for r in rows)
    words = [w for r in rows for w in r["text"].split()]
    assert words == _prose(10).split()  # nothing lost, nothing repeated without overlap


def test_a_paragraph_larger_than_a_chunk_is_cut():
    cfg = Ingest(chunk_tokens=40, overlap_tokens=0, min_chunk_chars=1)
    rows = chunk_pieces("a.md", [("S", _prose(1, words=200), "prose")], cfg)
    assert len(rows) > 3 and all(r["n_tokens"] <= 40 * 1.5 for r in rows)


def test_overlap_carries_the_last_words_into_the_next_chunk():
    cfg = Ingest(chunk_tokens=60, overlap_tokens=13, min_chunk_chars=1)  # 13 / 1.3 = 10 words
    rows = chunk_pieces("a.md", [("S", _prose(6), "prose")], cfg)
    assert len(rows) >= 2
    for prev, nxt in zip(rows, rows[1:], strict=False):
        carried = prev["text"].split()[-9:]
        assert nxt["text"].split()[: len(carried)] == carried
    plain = chunk_pieces("a.md", [("S", _prose(6), "prose")], Ingest(chunk_tokens=60, overlap_tokens=0,
                                                                  min_chunk_chars=1))
    assert sum(len(r["text"].split()) for r in rows) > sum(len(r["text"].split()) for r in plain)


def test_short_chunks_are_dropped_below_min_chunk_chars():
    cfg = Ingest(min_chunk_chars=80)
    assert chunk_pieces("a.md", [("S", "Too short.", "prose")], cfg) == []
    assert len(chunk_pieces("a.md", [("S", SENTENCE * 2, "prose")], cfg)) == 1


def test_chunk_ids_are_deterministic_and_follow_the_text(tmp_path):
    files = {"a.md": f"# A\n{SENTENCE}\n\n# B\nSecond section text.\n", "b.md": SENTENCE}
    first, _ = ingest(_seed(tmp_path / "one", files), CFG)
    again, _ = ingest(_seed(tmp_path / "two", files), CFG)
    assert [r["chunk_id"] for r in first] == [r["chunk_id"] for r in again]
    assert len({r["chunk_id"] for r in first}) == len(first)
    assert all(re.fullmatch(r"[0-9a-f]{16}", r["chunk_id"]) for r in first)
    changed, _ = ingest(_seed(tmp_path / "three", {**files, "b.md": SENTENCE + " Now 22 °C."}), CFG)
    assert [r["chunk_id"] for r in changed][:2] == [r["chunk_id"] for r in first][:2]
    assert changed[2]["chunk_id"] != first[2]["chunk_id"]
    assert changed[2]["content_hash"] != first[2]["content_hash"]


def test_same_text_in_two_files_gets_two_ids_and_one_content_hash(tmp_path):
    rows, _ = ingest(_seed(tmp_path, {"a.md": SENTENCE, "b.md": SENTENCE}), CFG)
    assert rows[0]["chunk_id"] != rows[1]["chunk_id"]
    assert rows[0]["content_hash"] == rows[1]["content_hash"]


def test_unicode_text_survives(tmp_path):
    text = "Température de consigne : 21 °C — naïve café, 温度设定, emoji 🔥, RTL שלום.\u00a0Fin."
    rows, _ = ingest(_seed(tmp_path, {"fr.md": f"# Réglages\n{text}\n"}), CFG)
    assert rows[0]["section"] == "Réglages"
    assert rows[0]["text"] == text.replace("\u00a0", " ")


def test_a_utf8_bom_is_removed(tmp_path):
    rows, _ = ingest(_seed(tmp_path, {"bom.md": "\ufeff# Title\nBody text here.".encode()}), CFG)
    assert [(r["section"], r["text"]) for r in rows] == [("Title", "Body text here.")]


def test_position_counts_per_file(tmp_path):
    many = "\n".join(f"# S{i}\n{SENTENCE}" for i in range(3))
    rows, metrics = ingest(_seed(tmp_path, {"a.md": many, "b.md": many}), CFG)
    assert [(r["source"], r["position"]) for r in rows] == [
        ("a.md", 0), ("a.md", 1), ("a.md", 2), ("b.md", 0), ("b.md", 1), ("b.md", 2)]
    assert metrics["chunks"] == 6 and metrics["tokens"] == sum(r["n_tokens"] for r in rows)


DOCUSAURUS = """---
id: pairing
title: Pair the Hearth app
sidebar_position: 3
tags: [setup, app]
---

import Tabs from '@theme/Tabs';
import TabItem from '@theme/TabItem';
import {Highlight} from "@site/src/components/Highlight";

export const minVersion = {
  ios: "16.0",
  android: "12",
};

# Pair the Hearth app {#pair}

The Hearth app pairs with the H2 over Bluetooth before it joins your <Highlight color="#25c2a0">home
Wi-Fi</Highlight> network.

:::tip[Before you start]
Keep the phone within two metres of the thermostat while it pairs.
:::

<Tabs groupId="os">
  <TabItem value="ios" label="iOS">
    Open **Settings > Bluetooth** and allow the Hearth app to use Bluetooth.
  </TabItem>
  <TabItem value="android" label="Android">
    Allow the *Nearby devices* permission when the app asks for it.
  </TabItem>
</Tabs>

## Troubleshooting

:::warning
Do not factory-reset the thermostat during a firmware update, or it may stop responding.
:::

{/* keep in sync with the support article */}
See [the reset guide](/docs/reset#hard) for the full procedure.<br/>
"""

MKDOCS = """---
title: Filters
description: How and when to replace the air filter.
---

# Air filter

The filter catches dust before it reaches the heat exchanger.

!!! warning "Turn the power off first"
    Switch the breaker off before you open the filter door.

    The blower can start without warning while the door is open.

??? note
    Filters rated MERV 8 to MERV 11 suit most homes.

=== "Monthly"
    Check the filter once a month in heating season.

Replace the filter every three months.{ .annotate }

```bash
# this is a shell comment, not a heading
hearthctl filter --reset
```
"""

HUGO = """+++
title = "Schedules"
weight = 20
draft = false
+++

# Schedules

{{< hint info >}}
Schedules run on the thermostat itself, so they keep working when the internet is down.
{{< /hint >}}

{{% notice warning "Daylight saving" %}}
The H2 changes its clock for daylight saving time on its own.
{{% /notice %}}

A schedule has up to six periods per day.{{< figure src="/img/schedule.png" alt="The schedule screen" >}}
"""


def _docs_pieces(tmp_path, name, text):
    cfg = Ingest(min_chunk_chars=1, extensions=[".md", ".mdx"])
    rows, _ = ingest(_seed(tmp_path, {name: text}), cfg)
    return rows


@pytest.mark.parametrize("name,text", [("pairing.mdx", DOCUSAURUS), ("filters.md", MKDOCS),
                                       ("schedules.md", HUGO)])
def test_docs_site_markup_never_reaches_chunks_or_spans(tmp_path, name, text):
    rows = _docs_pieces(tmp_path, name, text)
    assert rows, "no chunks"
    for row in rows:
        candidates = spans(row["text"])
        for piece in [row["text"], row["section"], *candidates]:
            for mark in ("<", "{{", "}}", ":::", "!!!", "???", "===", "---", "+++", "](", "**", "{#",
                         "import ", "export ", "title:", "title =", "sidebar_position"):
                assert mark not in piece, (mark, piece)


def test_docusaurus_page_keeps_headings_admonitions_and_tag_text(tmp_path):
    rows = _docs_pieces(tmp_path, "pairing.mdx", DOCUSAURUS)
    by_section = {r["section"]: r["text"] for r in rows}
    assert list(by_section) == ["Pair the Hearth app", "Pair the Hearth app > Troubleshooting"]
    intro = by_section["Pair the Hearth app"]
    assert "joins your home\nWi-Fi network" in intro  # JSX text content stays, the tag goes
    assert "Before you start" in intro  # the admonition's title and body stay
    assert "Keep the phone within two metres of the thermostat while it pairs." in spans(intro)
    assert "Open Settings > Bluetooth and allow the Hearth app to use Bluetooth." in spans(intro)  # prose '>'
    assert "Allow the Nearby devices permission when the app asks for it." in spans(intro)
    trouble = by_section["Pair the Hearth app > Troubleshooting"]
    assert "Do not factory-reset the thermostat during a firmware update" in trouble
    assert "See the reset guide for the full procedure." in spans(trouble)
    assert "keep in sync" not in trouble


def test_mkdocs_admonition_bodies_are_dedented_and_kept(tmp_path):
    rows = _docs_pieces(tmp_path, "filters.md", MKDOCS)
    assert {r["section"] for r in rows} == {"Air filter"}  # the shell comment is no heading
    text = rows[0]["text"]
    for sentence in ("Switch the breaker off before you open the filter door.",
                     "The blower can start without warning while the door is open.",
                     "Filters rated MERV 8 to MERV 11 suit most homes.",
                     "Check the filter once a month in heating season.",
                     "Replace the filter every three months."):
        assert sentence in spans(text)
    assert "Turn the power off first" in text and "Monthly" in text
    assert "description" not in text and "hearthctl filter --reset" in text


def test_hugo_page_loses_toml_front_matter_and_shortcodes(tmp_path):
    rows = _docs_pieces(tmp_path, "schedules.md", HUGO)
    assert [r["section"] for r in rows] == ["Schedules"]
    found = spans(rows[0]["text"])
    assert found[:3] == ["Schedules run on the thermostat itself, so they keep working when the internet is down.",
                         "The H2 changes its clock for daylight saving time on its own.",
                         "A schedule has up to six periods per day."]
    assert "weight" not in rows[0]["text"] and "schedule.png" not in rows[0]["text"]


def test_a_leading_horizontal_rule_is_not_front_matter():
    text = "---\nThe H2 needs a C wire.\n---\nMore text here."
    assert [t for _, t, _ in load_docs(text, "doc")] == ["---\nThe H2 needs a C wire.\n---\nMore text here."]


def test_spans_leave_out_markup_from_any_source():
    text = "Press the <b>Reset</b> button now.\n\nHold the dial for five seconds.\n\n{{< hint >}} Do it twice today."
    assert spans(text) == ["Hold the dial for five seconds."]
