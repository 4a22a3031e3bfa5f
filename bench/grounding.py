"""Grounding decision: fit it on the dev split, measure it on data it was not tuned on.

    python bench/grounding.py fit                      # dev.jsonl -> src/assay/critique/grounding_model.json
    python bench/grounding.py eval                     # test.jsonl, per origin and overall
    python bench/grounding.py eval --data other.jsonl  # any labelled set: {source, question, answer, label}
    python bench/grounding.py judge --data bench/data/grounding/dev.jsonl   # an embedded judge's P(Yes), for fit --judged
    python bench/grounding.py seeds --out mine.jsonl   # perturbations of your own chunks, for fit --extra mine.jsonl

Labels: `grounded` (or `good`) vs anything else (`ungrounded`, `wrong`, ...). Reported for the
decision "accept = P(grounded) >= threshold": accuracy, balanced accuracy, precision and recall of
"ungrounded" (the rejects), and yield (share of grounded items accepted). The threshold is chosen
on dev as the lowest one whose class-balanced precision of accepted items reaches the target, so
the figure does not depend on the dev set's label mix.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from assay.critique import grounding

DATA = Path(__file__).parent / "data" / "grounding"


def load(path: Path) -> list[dict]:
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for i, it in enumerate(items):
        missing = [k for k in ("source", "answer", "label") if k not in it]
        if missing:
            sys.exit(f"{path}:{i + 1}: missing field(s) {missing}; each line needs source, answer, label")
    return items


def grounded(item: dict) -> bool:
    return str(item["label"]).casefold() in ("grounded", "good", "supported", "1", "true")


def matrix(items: list[dict], features: tuple[str, ...] | list[str]) -> np.ndarray:
    rows = []
    for it in items:
        values = grounding.signals(it["source"], it.get("question") or "", it["answer"])
        rows.append([values[f] for f in features])
    return np.array(rows, dtype=float)


def report(y: np.ndarray, accept: np.ndarray) -> dict[str, float]:
    """y: 1 = grounded. The decision's figures, 'ungrounded' as the positive class of rejection."""
    tp = int(((~accept) & (y == 0)).sum())  # rejected ungrounded
    fp = int(((~accept) & (y == 1)).sum())  # rejected grounded
    fn = int((accept & (y == 0)).sum())     # accepted ungrounded
    tn = int((accept & (y == 1)).sum())
    rec_u = tp / (tp + fn) if tp + fn else float("nan")
    yield_ = tn / (tn + fp) if tn + fp else float("nan")
    return {"n": len(y), "grounded": int(y.sum()), "accuracy": round((tp + tn) / len(y), 4),
            "balanced_accuracy": round(np.nanmean([rec_u, yield_]), 4),
            "precision_ungrounded": round(tp / (tp + fp), 4) if tp + fp else float("nan"),
            "recall_ungrounded": round(rec_u, 4), "yield": round(yield_, 4),
            "precision_accepted": round(tn / (tn + fn), 4) if tn + fn else float("nan")}


def balanced_precision(y: np.ndarray, p: np.ndarray, t: float) -> tuple[float, float]:
    """(precision of accepted with both classes weighted equally, yield) at threshold t."""
    acc = p >= t
    tpr = (acc & (y == 1)).sum() / max(1, (y == 1).sum())
    fpr = (acc & (y == 0)).sum() / max(1, (y == 0).sum())
    return (tpr / (tpr + fpr) if tpr + fpr else 1.0), tpr


def origin_weights(items: list[dict], y: np.ndarray) -> np.ndarray:
    """Every (origin, label) cell weighs the same: no genre or label mix dominates the fit."""
    cells = [(it.get("origin", ""), int(label)) for it, label in zip(items, y, strict=True)]
    counts = {c: cells.count(c) for c in set(cells)}
    w = np.array([1.0 / counts[c] for c in cells])
    return w * len(w) / w.sum()


def monotone_logistic(z: np.ndarray, y: np.ndarray, w: np.ndarray, c: float, free: list[bool]) -> tuple[float, np.ndarray]:
    """Weighted, L2-regularised logistic regression whose coefficients are <= 0 except where
    `free`: every signal measures something wrong, so it may only lower P(grounded). Without the
    bound, correlated signals trade signs and the fit stops transferring across genres."""
    from scipy.optimize import minimize

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, coef = theta[0], theta[1:]
        logits = z @ coef + b
        p = 1.0 / (1.0 + np.exp(-logits))
        value = np.sum(w * (np.logaddexp(0, logits) - y * logits)) + 0.5 / c * np.sum(coef**2)
        return value, np.concatenate([[np.sum(w * (p - y))], z.T @ (w * (p - y)) + coef / c])

    bounds = [(None, None)] + [(None, None) if f else (None, 0.0) for f in free]
    theta = minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds).x
    return float(theta[0]), theta[1:]


def pick_threshold(y: np.ndarray, p: np.ndarray, target: float) -> float:
    """The lowest threshold whose class-balanced precision of accepted items reaches `target`."""
    return float(next((t for t in sorted(set(np.round(p, 4))) if balanced_precision(y, p, t)[0] >= target), 0.5))


def read_judged(path: Path | None) -> dict[str, float]:
    """{item id: the judge's P(Yes)} from a `judge` run's file (empty without one)."""
    if path is None:
        return {}
    return {r["id"]: r["p_yes"] for r in map(json.loads, path.read_text().splitlines()) if r["p_yes"] is not None}


def fit_stack(items: list[dict], y: np.ndarray, p: np.ndarray, judged: dict[str, float], path: Path,
              target: float) -> dict:
    """The judge stage: logistic regression of the label on (logit P_signals, logit P_judge), both
    weights >= 0, fitted on the dev items that were judged."""
    rows = [i for i, it in enumerate(items) if it["id"] in judged]
    z = np.array([[grounding.logit(p[i]), grounding.logit(judged[items[i]["id"]])] for i in rows])
    ys, sub = y[rows], [items[i] for i in rows]
    intercept, coef = monotone_logistic(-z, ys, origin_weights(sub, ys), 10.0, [False, False])
    coef = -coef  # fitted as <= 0 on the negated inputs: both weights are >= 0
    q = 1.0 / (1.0 + np.exp(-(z @ coef + intercept)))
    threshold = pick_threshold(ys, q, target)
    return {"judge_model": path.stem.split("--", 1)[-1], "coef_signals": round(float(coef[0]), 6),
            "coef_judge": round(float(coef[1]), 6), "intercept": round(intercept, 6), "threshold": threshold,
            "fitted_on": {"file": path.name, "items": len(rows), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
            "dev": report(ys, q >= threshold), "dev_signals_alone": report(ys, p[rows] >= pick_threshold(ys, p[rows], target))}


def fit(args: argparse.Namespace) -> None:
    path = args.data or DATA / "dev.jsonl"
    items = load(path) + [it for extra in args.extra for it in load(extra)]
    x, y = matrix(items, grounding.FEATURES), np.array([grounded(it) for it in items], dtype=int)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    intercept, coef = monotone_logistic(z, y, origin_weights(items, y), args.c,
                                        [f in grounding.UNSIGNED for f in grounding.FEATURES])
    p = 1.0 / (1.0 + np.exp(-(z @ coef + intercept)))
    threshold = pick_threshold(y, p, args.target_precision)
    spec = {"version": "grounding-lr-3", "features": list(grounding.FEATURES),
            "coef": [round(float(v), 6) for v in coef], "intercept": round(intercept, 6),
            "mean": [round(float(m), 6) for m in mean], "scale": [round(float(s), 6) for s in scale],
            "threshold": threshold, "target_precision": args.target_precision, "C": args.c,
            "fitted_on": {"file": path.name, "items": len(items), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                          "extra": {e.name: hashlib.sha256(e.read_bytes()).hexdigest() for e in args.extra}},
            "dev": report(y, p >= threshold)}
    if args.judged:
        spec["stack"] = fit_stack(items, y, p, read_judged(args.judged), args.judged, args.target_precision)
    out = Path(args.out or grounding.ARTIFACT)
    out.write_text(json.dumps(spec, indent=1) + "\n")
    print(json.dumps({k: spec.get(k) for k in ("threshold", "dev", "stack")}, indent=1))
    print("coefficients:", dict(zip(spec["features"], spec["coef"], strict=True)))
    print(f"wrote {out}")


def decide(model: grounding.Model, items: list[dict], judged: dict[str, float]) -> np.ndarray:
    """Accept (True) or not per item, as the critique stage decides: with the judge stage for the
    items that have a judge verdict, the signals alone for the others."""
    x = matrix(items, model.features)
    out = []
    for it, row in zip(items, x, strict=True):
        p_signals = model.probability(dict(zip(model.features, row, strict=True)))
        p, threshold, _ = model.combined(p_signals, judged.get(it["id"]))
        out.append(p >= threshold)
    return np.array(out)


def table(items: list[dict], y: np.ndarray, accept: np.ndarray) -> dict[str, dict]:
    by_origin: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_origin[it.get("origin", "all")].append(i)
    rows = {o: report(y[ix], accept[ix]) for o, ix in sorted(by_origin.items())}
    rows["ALL"] = report(y, accept)
    cols = ["n", "grounded", "accuracy", "balanced_accuracy", "precision_ungrounded", "recall_ungrounded", "yield"]
    print(f"{'origin':24s}" + "".join(f"{c[:12]:>13s}" for c in cols))
    for name, r in rows.items():
        print(f"{name[:24]:24s}" + "".join(f"{r[c]:>13}" for c in cols))
    return rows


def evaluate(args: argparse.Namespace) -> None:
    model = grounding.load(str(args.model) if args.model else None)
    items = load(args.data or DATA / "test.jsonl")
    judged = read_judged(args.judged)
    print(f"{model.spec['version']}: signals threshold {model.threshold}, fitted on {model.spec['fitted_on']}")
    result = {"signals": table(items, np.array([grounded(it) for it in items], dtype=int), decide(model, items, {}))}
    if judged:
        sub = [it for it in items if it["id"] in judged]
        y = np.array([grounded(it) for it in sub], dtype=int)
        print(f"\njudged subsample ({len(sub)} items, {args.judged.name}): signals alone")
        result["judged_signals"] = table(sub, y, decide(model, sub, {}))
        print(f"judged subsample: signals + judge (threshold {model.stack['threshold'] if model.stack else '-'})")
        result["judged_combined"] = table(sub, y, decide(model, sub, judged))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


def judge(args: argparse.Namespace) -> None:
    """P(Yes) of an embedded judge for `--per-origin` items of each origin whose source is short
    (the cost is prompt processing on a CPU), written one JSON line per item."""
    import random

    import yaml

    from assay.config import Params
    from assay.critique import panel
    from assay.llm import Ledger, describe, open_models

    items = [it for it in load(args.data) if len(it["source"]) < args.max_source_chars]
    random.Random(0).shuffle(items)
    picked: dict[str, list[dict]] = defaultdict(list)
    for it in items:
        if len(picked[it.get("origin", "")]) < args.per_origin:
            picked[it.get("origin", "")].append(it)
    sub = [it for group in picked.values() for it in group]
    base = yaml.safe_load(Path("params.yaml").read_text())
    if args.endpoint:  # any endpoint of params.yaml (OpenAI, vLLM, ...): its API key comes from the environment
        name, model = args.endpoint, describe(args.endpoint, Params.model_validate(base).llm.endpoints[args.endpoint])["model"]
    else:
        name, model = "judge", args.model
        base["llm"] = {"cache_dir": args.cache, "endpoints": {"judge": {"embedded": args.model, "n_parallel": 2,
                                                                        "n_ctx": 8192, "concurrency": 2}}}
        base["generate"]["endpoint"], base["critique"]["judges"] = "judge", ["judge"]
        base["filter"]["rewrite"]["endpoint"] = "judge"
    with open_models(Params.model_validate(base), [name], Ledger()) as models:
        turns = [([{"role": "user", "content": it["question"]}] if it.get("question") else [])
                 + [{"role": "assistant", "content": it["answer"]}] for it in sub]
        verdicts = panel.judge_all(models[name], turns, [it["source"] for it in sub], 1)
    out = args.out or DATA / f"judged-{args.data.stem}--{model.replace('/', '_')}.jsonl"
    out.write_text("".join(json.dumps({"id": it["id"], "p_yes": v["p_yes"]}) + "\n" for it, v in zip(sub, verdicts, strict=True)))
    print(f"wrote {out}: {len(sub)} items, {sum(v['error'] is not None for v in verdicts)} errors")


def seeds(args: argparse.Namespace) -> None:
    """Labelled perturbations of the user's own chunks (ingest's output), to fit on with --extra."""
    import pandas as pd
    from grounding_help import seed_items

    chunks = pd.read_parquet(args.chunks, columns=["chunk_id", "text"]).to_dict("records")
    items = seed_items(chunks, args.per_chunk)
    args.out.write_text("".join(json.dumps(it) + "\n" for it in items))
    labels = sum(grounded(it) for it in items)
    print(f"wrote {args.out}: {len(items)} items ({labels} grounded) from {len(chunks)} chunks")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit the decision on a dev set")
    f.add_argument("--data", type=Path, help="labelled jsonl (default: bench/data/grounding/dev.jsonl)")
    f.add_argument("--judged", type=Path, help="a `judge` run on dev items: also fit the judge stage")
    f.add_argument("--extra", type=Path, action="append", default=[],
                   help="more labelled jsonl to fit on, e.g. `seeds` output from your own documents")
    f.add_argument("--out", type=Path, help="artifact to write (default: the one assay ships)")
    f.add_argument("--target-precision", type=float, default=0.75, help="class-balanced precision of accepted items")
    f.add_argument("--c", type=float, default=1.0, help="inverse L2 regularisation strength")
    e = sub.add_parser("eval", help="measure the decision on a labelled set")
    e.add_argument("--data", type=Path, help="labelled jsonl (default: bench/data/grounding/test.jsonl)")
    e.add_argument("--judged", type=Path, help="a `judge` run on these items: also measure signals + judge")
    e.add_argument("--model", type=Path, help="artifact (default: the one assay ships)")
    e.add_argument("--json", help="also write the tables as JSON here")
    j = sub.add_parser("judge", help="P(Yes) of an embedded judge model on a subsample (slow: an LLM call each)")
    j.add_argument("--data", type=Path, required=True, help="labelled jsonl")
    j.add_argument("--model", default="qwen2.5-coder-0.5b", help="embedded model key (assay models)")
    j.add_argument("--endpoint", help="instead: an endpoint name of params.yaml (a stronger hosted or vLLM judge)")
    j.add_argument("--per-origin", type=int, default=30, help="items per origin")
    j.add_argument("--max-source-chars", type=int, default=1400, help="only items whose source is shorter than this")
    j.add_argument("--cache", default=".assay/cache", help="response cache directory")
    j.add_argument("--out", type=Path, help="default: bench/data/grounding/judged-<data>--<model>.jsonl")
    s = sub.add_parser("seeds", help="labelled perturbations of your own chunks (to fit on with --extra)")
    s.add_argument("--chunks", type=Path, default=Path("data/ingested/chunks.parquet"), help="ingest's chunks")
    s.add_argument("--per-chunk", type=int, default=2, help="sentences per chunk")
    s.add_argument("--out", type=Path, required=True, help="jsonl to write")
    args = ap.parse_args()
    {"fit": fit, "eval": evaluate, "judge": judge, "seeds": seeds}[args.cmd](args)


if __name__ == "__main__":
    main()
