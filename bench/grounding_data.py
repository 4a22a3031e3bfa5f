"""Rebuild bench/data/grounding/{dev,test}.jsonl: labelled (source, answer) pairs from public data
that is not ours, for tuning and measuring the critique stage's grounded/ungrounded decision.

    python bench/grounding_data.py [--mirrors /work/.mirror] [--out bench/data/grounding]

Each repo in COMMITS is read from a bare git mirror at <mirrors>/<owner>+<name>/repo (what the
`fetch` tool makes) or a clone at <mirrors>/<name>; the commit it was built from is checked.
Prints counts and the content-word-overlap baseline on test. Not run in CI.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from grounding_help import help_items

COMMITS = {
    "ryokamoi/wice": "ddeb6c183665e2a20c5f03c5aa07f03888b9870f",
    "salesforce/factualNLG": "0da1dfa62c783218d26208c1796d3a2605bec745",
    "google/BEGIN-dataset": "6e65f0d5a1ed1b9574643a7640ff1678d4e979b5",
    "MicrosoftDocs/terminal": "c341a6362f9f0346a17ecc5e1e74d2cd9372c8f9",
    "MicrosoftDocs/WSL": "8842def77a852af26318b9ebec78063a94b068ed",
}
MAX_SOURCE_CHARS = 6000  # longer passages are dropped, not trimmed: a summary may rest on any sentence
SUMMEDITS_DOMAINS = ("news", "podcast", "sales_call", "sales_email", "samsum", "scitldr", "qmsumm", "ectsum")
SUMMEDITS_PER_LABEL = 40  # per domain and label
BEGIN_FILES = {"wow/begin_test_wow.tsv": 260, "wow/begin_dev_wow.tsv": 60, "cmu-dog/begin_dev_cmu.tsv": 59}  # per label
STOP = frozenset(re.split(r"\s+", """a an the and or but if then else of to in on at by for with from as is are was were be been being it its
this that these those there here you your we our they their he she his her i me my not no do does did can could will would
should may might must has have had so such than too very just also only into about over under after before when where which
who whom what how why all any each both few more most other some own same"""))


def git_show(mirror: Path, path: str) -> str:
    return subprocess.run(["git", "--git-dir", str(mirror), "show", f"HEAD:{path}"],
                          capture_output=True, text=True, check=True).stdout


def find_mirror(root: Path, repo: str) -> Path:
    """The git dir for `repo` under `root`; exits with code 2 naming the repo if it is missing or at another commit."""
    owner, name = repo.split("/")
    for cand in (root / f"{owner}+{name}" / "repo", root / name / ".git"):
        if cand.exists():
            head = subprocess.run(["git", "--git-dir", str(cand), "rev-parse", "HEAD"],
                                  capture_output=True, text=True).stdout.strip()
            if head != COMMITS[repo]:
                sys.exit(f"{cand}: HEAD is {head}, expected {COMMITS[repo]} for {repo}: check out that commit")
            return cand
    sys.exit(f"no mirror of {repo} under {root}: clone https://github.com/{repo} there (commit {COMMITS[repo]})")


def wice_items(mirror: Path) -> list[dict]:
    """WiCE oracle chunks: a Wikipedia claim vs sentences of the web page it cites; one chunk per claim."""
    items, seen = [], set()
    for split in ("dev", "test"):
        path = f"code_and_resources/entailment_inputs/oracle_chunks/claim/{split}.jsonl"
        for row in map(json.loads, git_show(mirror, path).splitlines()):
            source = " ".join(row["evidence"])
            if row["meta"]["id"] in seen or len(source) > MAX_SOURCE_CHARS:
                continue
            seen.add(row["meta"]["id"])
            items.append({"origin": "wice", "genre": "fact_verification", "source": source, "question": "",
                          "answer": row["claim"], "label": "grounded" if row["label"] == "supported" else "ungrounded",
                          "kind": row["label"], "ref": row["meta"]["id"]})
    return items


def _balanced_sample(rows: list[dict], per_label: int, salt: str) -> list[dict]:
    """Up to `per_label` rows of each label, chosen by a seeded shuffle."""
    out = []
    for label in ("grounded", "ungrounded"):
        group = [r for r in rows if r["label"] == label]
        out += random.Random(f"{salt}|{label}").sample(group, min(per_label, len(group)))
    return out


def summedits_items(mirror: Path) -> list[dict]:
    """SummEdits: seed summaries and their human-checked edits, consistent (1) or not (0) with the document."""
    items = []
    for domain in SUMMEDITS_DOMAINS:
        rows = json.loads(git_show(mirror, f"data/summedits/summedits_{domain}.json"))
        rows = [{"origin": "summedits", "genre": "summary", "source": r["doc"].strip(), "question": "",
                 "answer": r["summary"].strip(), "label": "grounded" if r["label"] == 1 else "ungrounded",
                 "kind": f"{'consistent' if r['label'] == 1 else 'inconsistent'}:{domain}", "ref": r["id"]}
                for r in rows if r["label"] in (0, 1) and len(r["doc"]) <= MAX_SOURCE_CHARS]
        items += _balanced_sample(rows, SUMMEDITS_PER_LABEL, domain)
    return items


def begin_items(mirror: Path) -> list[dict]:
    """BEGIN: knowledge-grounded dialogue replies judged fully attributable or not (Generic dropped)."""
    labels = {"Fully attributable": "grounded", "Not fully attributable": "ungrounded"}
    items = []
    for path, per_label in BEGIN_FILES.items():
        rows = [{"origin": "begin", "genre": "dialogue", "source": r["knowledge"].strip(), "question": r["message"].strip(),
                 "answer": r["response"].strip(), "label": labels[r["begin_label"]], "kind": r["begin_label"],
                 "ref": f"{path}:{r['model_name']}"}
                for r in csv.DictReader(io.StringIO(git_show(mirror, path)), delimiter="\t", quoting=csv.QUOTE_NONE)
                if r["begin_label"] in labels and r["response"].strip()]
        items += _balanced_sample(rows, per_label, path)
    return items


def dedupe(items: list[dict]) -> list[dict]:
    """One item per (source, answer); a pair seen with both labels is dropped entirely. Adds content-hash ids."""
    labels: dict[tuple[str, str], set[str]] = {}
    for it in items:
        labels.setdefault((it["source"], it["answer"]), set()).add(it["label"])
    out, seen = [], set()
    for it in items:
        key = (it["source"], it["answer"])
        if len(labels[key]) == 1 and key not in seen:
            seen.add(key)
            digest = hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:16]
            out.append({"id": f"{it['origin']}-{digest}", **it})
    return out


def split_by_source(items: list[dict]) -> dict[str, list[dict]]:
    """dev/test ~50/50 by source passage, per origin: sources sorted by hash, alternately assigned."""
    splits: dict[str, list[dict]] = {"dev": [], "test": []}
    for origin in sorted({it["origin"] for it in items}):
        mine = [it for it in items if it["origin"] == origin]
        sources = sorted({it["source"] for it in mine}, key=lambda s: hashlib.sha256(s.encode()).hexdigest())
        where = {s: ("dev", "test")[i % 2] for i, s in enumerate(sources)}
        for it in mine:
            splits[where[it["source"]]].append(it)
    return splits


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if w not in STOP}


def overlap_baseline(items: list[dict]) -> dict[str, float]:
    """Balanced accuracy, per origin and overall, of 'grounded iff every content word of the answer is in the source'."""
    def bacc(rows: list[dict]) -> float:
        recall = []
        for label in ("grounded", "ungrounded"):
            group = [r for r in rows if r["label"] == label]
            pred = [(content_words(r["answer"]) <= content_words(r["source"])) == (label == "grounded") for r in group]
            recall.append(sum(pred) / len(pred) if pred else float("nan"))
        return sum(recall) / 2
    result = {o: bacc([r for r in items if r["origin"] == o]) for o in sorted({r["origin"] for r in items})}
    return {**result, "overall": bacc(items)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--out", type=Path, default=Path("bench/data/grounding"))
    args = ap.parse_args()
    m = {repo: find_mirror(args.mirrors, repo) for repo in COMMITS}
    items = dedupe(wice_items(m["ryokamoi/wice"]) + summedits_items(m["salesforce/factualNLG"])
                   + begin_items(m["google/BEGIN-dataset"]) + help_items(m))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in split_by_source(items).items():
        with open(args.out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({k: v for k, v in r.items() if k != "ref"}, ensure_ascii=False) + "\n" for r in rows)
        counts = Counter((r["origin"], r["label"]) for r in rows)
        print(name, len(rows), dict(sorted(counts.items())))
        if name == "test":
            print("overlap baseline (balanced accuracy):", {k: round(v, 3) for k, v in overlap_baseline(rows).items()})


if __name__ == "__main__":
    main()
