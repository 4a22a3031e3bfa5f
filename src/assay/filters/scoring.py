"""The filter's scoring step: every scorer (PII, toxicity, embeddings, injection, the tone
rewrite and its re-checks) runs in `score`, through ScoreCache; assay.filters.decide is pure given
the scores, so changing any threshold reruns no model.

The stage's columns in: CRITIQUE_COLUMNS (+ chunks: chunk_id, text); out (written by decide):
+ filter (JSON: pii findings, toxicity and domain scores, duplicate_of, contamination, redaction,
rewrite, injection) and reasons (list of str; empty when kept; the names are listed in assay.filters.decide).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from assay.config import Filter
from assay.filters import embed, injection, pii
from assay.filters.scores import ScoreCache, scorer_key
from assay.filters.toxicity import make_scorer
from assay.records import exported_parts, messages_text


@dataclass
class Scores:
    """Everything the decision needs, one entry per sample row unless noted."""

    pii: list[list[dict]]
    toxicity: list[dict[str, float]]
    toxicity_backend: str
    rechecks: dict[str, list[dict]] = field(default_factory=dict)  # redacted text -> PII findings
    vectors: np.ndarray | None = None  # sample embeddings (domain, semantic dedup)
    chunk_vectors: np.ndarray | None = None
    rewrites: list[dict | None] = field(default_factory=list)  # see assay.filters.rewrite
    injection: list[dict] = field(default_factory=list)  # see injection.score_texts; empty: check off
    seed_instructions: dict[str, list[dict]] = field(default_factory=dict)  # cited chunk id -> instructions
    vocabulary: frozenset[str] = frozenset()  # words the seed chunks write in lower case (pii.common_words)


def pii_scorer(cfg: Filter, cache: ScoreCache):
    """A cached PII scoring function: texts -> findings; presidio loads on the first miss."""
    key = scorer_key("pii", pii.SCORER_VERSION, model=cfg.pii.spacy_model, entities=sorted(cfg.pii.entities))
    holder: list[pii.PiiScorer] = []

    def analyze(texts: list[str]) -> list[list[dict]]:
        if not holder:
            holder.append(pii.PiiScorer(cfg.pii.entities, cfg.pii.spacy_model))
        return holder[0].analyze(texts)

    return lambda texts: cache.scores(key, texts, analyze)


def toxicity_scorer(cfg: Filter, cache: ScoreCache):
    """(cached toxicity scoring function, backend name)."""
    tox = cfg.toxicity
    scorer = make_scorer(tox.backend, model_type=tox.model_type, checkpoint=tox.checkpoint,
                         huggingface_config_path=tox.huggingface_config_path)
    key = scorer_key("toxicity", scorer.version)
    return (lambda texts: cache.scores(key, texts, scorer.score)), scorer.name


def embedder(cache: ScoreCache):
    """A cached embedding function: texts -> (n, 384) unit vectors."""
    key = scorer_key("embed", embed.SCORER_VERSION, model=embed.MODEL)
    return lambda texts: np.array(cache.scores(key, texts, embed.embed), dtype=np.float64).reshape(len(texts), -1)


def injection_scorer(cfg: Filter, cache: ScoreCache):
    """A cached injection scoring function: texts -> injection.score_texts entries. Thresholds are
    not in the key: every sentence scoring >= injection.FLOOR is kept with its score."""
    use = cfg.injection.embeddings
    key = scorer_key("injection", injection.SCORER_VERSION, model=embed.MODEL if use else None)
    return lambda texts: cache.scores(key, texts, lambda todo: injection.score_texts(todo, embed.embed if use else None))


def _seed_instructions(samples: pd.DataFrame, chunks: pd.DataFrame, scorer) -> dict[str, list[dict]]:
    """Instruction sentences of every chunk a sample cites (chunks nobody cites are not scored)."""
    cited = {str(c) for ids in samples["seed_ids"] for c in (ids if ids is not None else [])}
    texts = {str(c): str(t) for c, t in zip(chunks["chunk_id"], chunks["text"], strict=True) if str(c) in cited}
    found = scorer(list(texts.values()))
    return {c: entry["instructions"] for c, entry in zip(texts, found, strict=True) if entry["instructions"]}


def _redaction_texts(samples: pd.DataFrame, findings: list[list[dict]], cfg: Filter) -> list[str]:
    """Redacted texts of every row under every threshold choice (see pii.redaction_sets)."""
    entities = {e for e in cfg.pii.entities if cfg.pii.policy.get(e, cfg.pii.default_policy) == "redact"}
    if not entities:
        return []
    out = []
    for parts, found in zip(_parts(samples), findings, strict=True):
        text = messages_text(parts)
        for chosen in pii.redaction_sets(text, found, entities, cfg.pii.allow):
            out.append(messages_text(pii.redact_messages(parts, chosen)))
    return list(dict.fromkeys(out))


def _parts(samples: pd.DataFrame) -> list[list[dict]]:
    return [exported_parts(m, e) for m, e in zip(samples["messages"], samples["evidence"], strict=True)]


def score(samples: pd.DataFrame, chunks: pd.DataFrame, cfg: Filter, cache: ScoreCache,
          rewriter=None) -> Scores:
    """Run every scorer on every row (cache misses only). `rewriter(samples, analyze, toxic)`
    is assay.filters.rewrite's scoring step bound to an endpoint, given when rewriting is on."""
    texts = [messages_text(p) for p in _parts(samples)]  # messages + evidence: all that is exported
    analyze = pii_scorer(cfg, cache)
    toxic, backend = toxicity_scorer(cfg, cache)
    scores = Scores(pii=analyze(texts), toxicity=toxic(texts), toxicity_backend=backend,
                    vocabulary=pii.common_words([str(t) for t in chunks["text"]]) if cfg.pii.common_words else frozenset())
    if cfg.injection.enabled:
        inject = injection_scorer(cfg, cache)
        scores.injection = inject(texts)
        scores.seed_instructions = _seed_instructions(samples, chunks, inject) if cfg.injection.obeys else {}
    redacted = _redaction_texts(samples, scores.pii, cfg)
    scores.rechecks = dict(zip(redacted, analyze(redacted), strict=True))
    if cfg.domain.enabled or cfg.dedup.semantic.enabled:
        vectors = embedder(cache)
        scores.vectors = vectors([messages_text(m) for m in samples["messages"]])  # the sample's own words
        scores.chunk_vectors = vectors([str(t) for t in chunks["text"]]) if cfg.domain.enabled else None
    if rewriter is not None:
        scores.rewrites = rewriter(samples, analyze, toxic)
    return scores
