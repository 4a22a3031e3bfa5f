"""PII precision and recall on a labelled set generated offline by presidio-evaluator's sentence
faker (seeded: the same set every run, so its presidio scores come from the score cache and a
threshold change re-measures without running a model)."""

from __future__ import annotations

import contextlib
import io
import json
import random
import warnings
from collections.abc import Callable
from pathlib import Path

from assay.config import Pii
from assay.errors import AssayError
from assay.filters.decide import pii_hits

Gold = list[tuple[str, int, int]]  # (entity, start, end)


def labelled_set_cached(n: int, seed: int, cache_dir: str | Path) -> list[tuple[str, Gold]]:
    """`labelled_set`, kept as JSON in `cache_dir` under the generator's versions, `n` and `seed`:
    building it imports presidio-evaluator and fakes ~2n sentences (~17 CPU-s for 500), on every
    filter run otherwise, while its presidio scores come from the score cache."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        versions = f"{version('presidio-evaluator')}-{version('faker')}"
    except PackageNotFoundError:
        versions = "unknown"
    path = Path(cache_dir) / f"pii_eval-{versions}-{n}-{seed}.json"
    if path.is_file():
        with contextlib.suppress(ValueError, OSError):
            return [(t, [tuple(g) for g in gold]) for t, gold in json.loads(path.read_text(encoding="utf-8"))]
    data = labelled_set(n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)  # atomic: a killed run leaves no half file
    return data


def labelled_set(n: int, seed: int = 42) -> list[tuple[str, Gold]]:
    """`n` fake sentences with their PII spans (presidio-evaluator templates, Faker values)."""
    try:
        from presidio_evaluator.data_generator import PresidioSentenceFaker
    except ImportError as err:
        raise AssayError("filter.pii.eval_samples needs presidio-evaluator: `pip install "
                         "presidio-evaluator`, or set filter.pii.eval_samples: 0") from err
    state = random.getstate()  # the faker also draws from the global RNG: seed it, then restore
    random.seed(seed)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # "Can't download hospitals data": offline, as intended
            faker = PresidioSentenceFaker("en_US", lower_case_ratio=0.05, random_seed=seed)
            sentences = faker.generate_new_fake_sentences(num_samples=2 * n + 10)
    finally:
        random.setstate(state)
    # DATE_TIME values are drawn relative to now: such texts would differ (and miss the score
    # cache) on every run. No checked entity is a date, so they are left out.
    data = [(s.full_text, [(sp.entity_type, sp.start_position, sp.end_position) for sp in s.spans])
            for s in sentences if not any(sp.entity_type == "DATE_TIME" for sp in s.spans)]
    return data[:n]


def _overlaps(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def _ratio(num: int, den: int) -> float:
    return round(num / den, 4) if den else 1.0


def evaluate(data: list[tuple[str, Gold]], analyze: Callable[[list[str]], list[list[dict]]],
             cfg: Pii) -> dict[str, float]:
    """Span P/R per entity and overall (a prediction is right when it overlaps a gold span of the
    same entity), and sample-level P/R of the drop decision, at the thresholds in `cfg`. Gold
    spans of entities outside `cfg.entities` (cities, organisations...) are not counted."""
    texts = [t for t, _ in data]
    out: dict[str, float] = {"pii_eval.samples": len(data)}
    tp = fp = fn = 0
    flagged_right = flagged_total = gold_rows = 0
    per: dict[str, list[int]] = {e: [0, 0, 0] for e in cfg.entities}
    for (text, gold), found in zip(data, analyze(texts), strict=True):
        gold = [g for g in gold if g[0] in per]
        pred = [(f["entity"], f["start"], f["end"])
                for f in pii_hits(text, found, cfg)]
        for p in pred:
            hit = any(_overlaps(p, g) for g in gold)
            per[p[0]][0 if hit else 1] += 1
        for g in gold:
            if not any(_overlaps(p, g) for p in pred):
                per[g[0]][2] += 1
        gold_rows += bool(gold)
        flagged_total += bool(pred)
        flagged_right += bool(pred) and bool(gold)
    for entity, (t, f, n) in per.items():
        tp, fp, fn = tp + t, fp + f, fn + n
        if t + f + n:
            out[f"pii_eval.{entity}.precision"] = _ratio(t, t + f)
            out[f"pii_eval.{entity}.recall"] = _ratio(t, t + n)
    out |= {"pii_eval.span_precision": _ratio(tp, tp + fp), "pii_eval.span_recall": _ratio(tp, tp + fn),
            "pii_eval.sample_precision": _ratio(flagged_right, flagged_total),
            "pii_eval.sample_recall": _ratio(flagged_right, gold_rows)}
    return out
