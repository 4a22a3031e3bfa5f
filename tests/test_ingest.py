"""Loaders, chunking, kinds and bad-file handling of assay.ingest (pure, tiny inline data)."""

import json

import pytest

from assay.config import Ingest
from assay.errors import AssayError
from assay.ingest import chunk_pieces, ingest
from assay.loaders import load_csv, load_markdown, load_openapi, section_kind
from assay.records import CHUNK_COLUMNS

CFG = Ingest(min_chunk_chars=10)

SPEC = """openapi: 3.0.3
info: {title: Demo API, description: "Rate limit: 60 requests per minute per token."}
servers: [{url: "https://api.example.com/v2"}]
components:
  securitySchemes: {bearerAuth: {type: http, scheme: bearer}}
  parameters:
    Id: {name: device_id, in: path, required: true, schema: {type: string, example: dev_1}}
paths:
  /devices/{device_id}/target:
    parameters: [{$ref: "#/components/parameters/Id"}]
    put:
      operationId: setTarget
      summary: Set the target temperature
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [celsius]
              properties:
                celsius: {type: number, minimum: 5, maximum: 32}
                mode: {type: string, enum: [heat, off]}
      responses:
        "200": {description: Accepted.}
        "409": {description: Device is offline.}
    get:
      summary: Read it
      responses: {"200": {description: OK}}
"""


def minimal_pdf(text: str, encrypt: bool = False) -> bytes:
    """A one-page PDF with one line of Helvetica text (correct xref offsets)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    if encrypt:
        import io

        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(bytes(out))))
        writer.encrypt("secret")
        buf = io.BytesIO()
        writer.write(buf)
        return buf.getvalue()
    return bytes(out)


def test_markdown_sections_are_heading_paths():
    pieces = load_markdown("# Guide\nIntro text.\n## Wiring\nUse the C wire.\n", "guide")
    assert [(s, k) for s, _, k in pieces] == [("Guide", "prose"), ("Guide > Wiring", "prose")]


def test_numbered_steps_make_a_workflow_but_prohibitions_do_not():
    steps = "How to return:\n1. Start the return.\n2. Pack the box.\n3. Ship within 14 days."
    assert section_kind(steps) == "workflow"
    assert section_kind("Agents must not tell a customer to:\n1. Bypass it.\n2. Jumper it.\n3. Open it.") == "prose"
    assert section_kind("1. One.\n2. Two.") == "prose"


def test_workflow_stays_one_chunk_beyond_chunk_tokens_and_splits_between_steps():
    steps = "\n".join(f"{i}. Step {i} " + "word " * 30 for i in range(1, 10))  # ~360 tokens
    cfg = Ingest(chunk_tokens=100, overlap_tokens=10, workflow_max_tokens=800, min_chunk_chars=10)
    rows = chunk_pieces("w.md", [("Proc", steps, "workflow")], cfg)
    assert len(rows) == 1 and rows[0]["kind"] == "workflow" and "9. Step 9" in rows[0]["text"]
    small = Ingest(chunk_tokens=100, overlap_tokens=10, workflow_max_tokens=120, min_chunk_chars=10)
    split = chunk_pieces("w.md", [("Proc", steps, "workflow")], small)
    assert len(split) > 1
    for row in split:  # every chunk starts at a step, and no step is cut
        assert row["text"].split(" ", 1)[0].rstrip(".").isdigit()
        assert row["text"].count("word") % 30 == 0


def test_prose_chunks_respect_the_token_budget_with_overlap():
    text = "\n\n".join(f"Paragraph {i} " + "alpha " * 40 for i in range(8))
    rows = chunk_pieces("a.md", [("S", text, "prose")], Ingest(chunk_tokens=120, overlap_tokens=20))
    assert len(rows) > 2 and all(r["n_tokens"] <= 120 * 1.5 for r in rows)
    assert [r["position"] for r in rows] == list(range(len(rows)))
    assert len({r["chunk_id"] for r in rows}) == len(rows)


def test_openapi_one_chunk_per_operation_with_refs_resolved():
    pieces = load_openapi(SPEC, "api")
    kinds = [k for _, _, k in pieces]
    assert kinds == ["prose", "api_operation", "api_operation"]
    put = pieces[1][1]
    assert put.splitlines()[0] == "PUT /devices/{device_id}/target (operationId: setTarget)"
    for needle in ("Base URL: https://api.example.com/v2", "Authorization: Bearer <token>",
                   "device_id (in path, required): string, example dev_1",
                   "celsius: number, minimum 5, maximum 32, required", "one of heat, off",
                   "- 409: Device is offline."):
        assert needle in put
    assert pieces[2][1].startswith("GET /devices/{device_id}/target")


def test_openapi_json_and_non_spec_yaml(tmp_path):
    import yaml

    spec = yaml.safe_load(SPEC)
    (tmp_path / "api.json").write_text(json.dumps(spec))
    (tmp_path / "config.yaml").write_text("name: not a spec\nvalues: [1, 2]\n")
    (tmp_path / "broken.yml").write_text("paths: [unclosed\n")
    rows, metrics = ingest(tmp_path, CFG)
    assert metrics["kind.api_operation"] == 2
    assert metrics["skipped.not_openapi"] == 1 and metrics["skipped.invalid_spec"] == 1


def test_csv_tickets_and_long_format_chats():
    tickets = load_csv("ticket_id,customer_message,agent_reply\nT1,My screen shows E04,Install the PK-24 kit\n", "t")
    assert tickets == [("T1", "Customer: My screen shows E04\nAgent: Install the PK-24 kit", "ticket")]
    chats = load_csv("conversation_id,role,text\nC1,customer,Hi there\nC1,agent,Hello!\nC2,customer,E08?\n", "c")
    assert [(n, k) for n, _, k in chats] == [("C1", "chat"), ("C2", "chat")]
    assert chats[0][1] == "Customer: Hi there\nAgent: Hello!"


def test_jsonl_kinds_and_bad_lines():
    text = ('{"ticket_id": "T1", "customer_message": "Refund please", "agent_reply": "Sure"}\n'
            'not json\n{"conversation_id": "C1", "turns": [{"role": "customer", "text": "Hi"}]}\n')
    from assay.loaders import load_jsonl

    assert [(n, k) for n, _, k in load_jsonl(text, "x")] == [("T1", "ticket"), ("C1", "chat")]


def test_pdf_pages_are_read(tmp_path):
    (tmp_path / "manual.pdf").write_bytes(minimal_pdf("The breaker trips at 2 A and resets after 60 seconds."))
    rows, metrics = ingest(tmp_path, CFG)
    assert metrics["files_used"] == 1 and rows[0]["section"] == "manual p.1"
    assert "trips at 2 A" in rows[0]["text"] and rows[0]["kind"] == "prose"


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("empty.md", b"", "empty"),
    ("bin.txt", b"\x00\x01\x02binary" * 10, "binary"),
    ("latin.md", "caf\u00e9 cr\u00e8me ".encode("latin-1") * 10, "undecodable"),
    ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "invalid_pdf"),
    ("scan.pdf", None, "no_text"),
    ("locked.pdf", "encrypted", "encrypted_pdf"),
    ("header_only.csv", b"ticket_id,customer_message\n", "invalid_csv"),
    ("ragged.csv", b"a,b\n1,2,3,4\n", "invalid_csv"),
    ("other.json", b'{"name": "x"}', "not_openapi"),
    ("image.png", b"\x89PNG....", "unsupported_type"),
])
def test_bad_files_are_skipped_with_a_counted_reason(tmp_path, name, data, reason):
    if data is None:
        data = minimal_pdf("").replace(b"() Tj", b"")
    elif data == "encrypted":
        data = minimal_pdf("Secret text in a locked file.", encrypt=True)
    (tmp_path / name).write_bytes(data)
    (tmp_path / "good.md").write_text("# Good\nThe warranty lasts 24 months from purchase.\n")
    rows, metrics = ingest(tmp_path, CFG)
    assert metrics[f"skipped.{reason}"] == 1 and metrics["skipped"] == 1
    assert len(rows) == 1 and rows[0]["source"] == "good.md"


def test_oversized_file_is_skipped(tmp_path):
    (tmp_path / "big.md").write_text("word " * 100_000)
    (tmp_path / "ok.md").write_text("Short but long enough to keep as a chunk here.")
    _, metrics = ingest(tmp_path, Ingest(max_file_mb=0.1, min_chunk_chars=10))
    assert metrics["skipped.oversized"] == 1


def test_empty_seed_folder_is_a_clear_error(tmp_path):
    with pytest.raises(AssayError, match="no seed files found"):
        ingest(tmp_path, CFG)
    (tmp_path / "empty.md").write_text("")
    with pytest.raises(AssayError, match="no usable text"):
        ingest(tmp_path, CFG)


def test_sample_seeds_give_every_kind_and_full_columns():
    rows, metrics = ingest("data/seeds", Ingest())
    assert all(set(CHUNK_COLUMNS) == set(r) for r in rows)
    assert metrics["skipped"] == 0
    for kind in ("prose", "ticket", "chat", "api_operation", "workflow"):
        assert metrics[f"kind.{kind}"] > 0, kind
    rows_again, _ = ingest("data/seeds", Ingest())
    assert [r["chunk_id"] for r in rows] == [r["chunk_id"] for r in rows_again]


def test_html_keeps_all_visible_text_once_and_splits_at_h1_to_h3():
    from assay.loaders import load_html

    html = ("<html><head><title>FAQ</title><style>p {}</style></head><body><nav>Menu</nav>"
            "<h2>Limits</h2><div>The maximum is 32 C.</div><ul><li><p>Listed once.</p></li></ul>"
            "<h4>Detail</h4><blockquote>Quoted text here.</blockquote><script>x()</script></body></html>")
    pieces = load_html(html, "faq")
    assert [s for s, _, _ in pieces] == ["Limits"]
    text = pieces[0][1]
    assert "maximum is 32 C" in text and "\nDetail\n" in text and text.count("Listed once.") == 1 and "Quoted text here." in text
    assert "Menu" not in text and "x()" not in text
