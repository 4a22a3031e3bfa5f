"""Toxicity scorers behind one seam: texts in, per-text label -> probability out.

Scorers only score; the filter stage applies thresholds, so changing one never reruns a model.
- `profanity`: alt-profanity-check, whose sklearn model ships in the wheel: works offline.
- `detoxify`: weights from GitHub releases, or offline from a local `checkpoint` plus
  `huggingface_config_path` (config.json and tokenizer files). detoxify still resolves the base
  model named inside the checkpoint ("bert-base-uncased" in the releases): HF cache or local dir.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from huggingface_hub import is_offline_mode

from assay.errors import AssayError

BACKENDS = ("profanity", "detoxify")


class ToxicityScorer(Protocol):
    name: str  # backend name, recorded in metrics and the dataset card
    version: str  # names the backend and its weights: part of cache keys

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        """One dict per text, in order: label -> probability in [0, 1]."""
        ...


def make_scorer(
    backend: str,
    *,
    model_type: str = "original",
    checkpoint: str | None = None,
    huggingface_config_path: str | None = None,
    batch_size: int = 32,
    device: str = "cpu",
) -> ToxicityScorer:
    """Build the scorer for `backend`; models load on the first non-empty `score` call.

    `model_type`, `checkpoint`, `huggingface_config_path` and `device` only apply to detoxify.
    Raises ValueError for an unknown backend or model type or a batch size below 1, and
    AssayError for a `checkpoint` that is not a file; detoxify's `score` raises AssayError when
    its weights cannot be loaded (offline without local files), before any network attempt
    when offline mode is on.
    """
    if batch_size < 1:
        raise ValueError(f"toxicity batch_size must be >= 1, got {batch_size}")
    if backend == "profanity":
        return ProfanityScorer(max(batch_size, 4096))  # sklearn checks ~30 ms per call, not per text
    if backend == "detoxify":
        return DetoxifyScorer(model_type, checkpoint, huggingface_config_path, batch_size, device)
    raise ValueError(f"unknown toxicity backend {backend!r}; allowed: {', '.join(BACKENDS)}")


def _batches(texts: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


@dataclass
class ProfanityScorer:
    """alt-profanity-check: one label, "profanity"."""

    batch_size: int
    name: str = field(default="profanity", init=False)
    version: str = field(
        default_factory=lambda: f"profanity-{version('alt-profanity-check')}", init=False
    )

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        # Importing unpickles the sklearn model (~1 s): pay it only when scoring.
        from profanity_check import predict_prob

        batches = _batches(texts, self.batch_size)
        return [{"profanity": float(p)} for batch in batches for p in predict_prob(batch)]


@dataclass
class DetoxifyScorer:
    """detoxify: labels come from the checkpoint (toxicity, severe_toxicity, obscene, ...)."""

    model_type: str
    checkpoint: str | None
    hf_config: str | None
    batch_size: int
    device: str
    name: str = field(default="detoxify", init=False)
    version: str = field(init=False)
    _model: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.version = f"detoxify-{self.model_type}-{self._weights_id()}"

    def _weights_id(self) -> str:
        """sha256 prefix of the weights, as torch.hub puts in release file names."""
        if self.checkpoint is None:
            return _release_file(self.model_type).stem.rsplit("-", 1)[1]
        path = Path(self.checkpoint)
        if not path.is_file():
            raise AssayError(_weights_help(f"checkpoint {path} is not a file"))
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()[:8]

    def _load(self) -> Any:
        import detoxify
        import torch

        if self.checkpoint is None and is_offline_mode():
            # torch.hub ignores HF_HUB_OFFLINE: without this check it would try GitHub anyway
            cached = Path(torch.hub.get_dir()) / "checkpoints" / _release_file(self.model_type)
            if not cached.is_file():
                raise AssayError(_weights_help(f"offline mode is on and {cached} does not exist"))
        try:
            return detoxify.Detoxify(
                self.model_type,
                checkpoint=self.checkpoint,
                device=self.device,
                huggingface_config_path=self.hf_config,
            )
        except OSError as err:  # URLError from torch.hub, or transformers' Hub lookups
            raise AssayError(_weights_help(str(err))) from err

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        if self._model is None:
            self._model = self._load()
        rows: list[dict[str, float]] = []
        for batch in _batches(texts, self.batch_size):
            rows.extend(_per_text(self._model.predict(batch), len(batch)))
        return rows


def _per_text(predicted: dict[str, Any], n: int) -> list[dict[str, float]]:
    """One dict per text from detoxify's label -> scores of a batch of `n` texts.

    A batch of one comes back as bare floats, not lists: detoxify squeezes its output.
    """
    columns = {label: v if isinstance(v, list) else [v] for label, v in predicted.items()}
    return [{label: float(col[i]) for label, col in columns.items()} for i in range(n)]


def _release_file(model_type: str) -> Path:
    """File name of detoxify's release weights for `model_type`; ValueError if there are none."""
    from detoxify.detoxify import MODEL_URLS

    if model_type not in MODEL_URLS:
        raise ValueError(
            f"unknown detoxify model_type {model_type!r}; allowed: {', '.join(MODEL_URLS)}"
        )
    return Path(Path(urlparse(MODEL_URLS[model_type]).path).name)


def _weights_help(problem: str) -> str:
    return (
        f"detoxify weights could not be loaded ({problem}). They need network (GitHub releases "
        "and the Hugging Face Hub) or local files: set filter.toxicity.checkpoint (a detoxify "
        ".ckpt) and filter.toxicity.huggingface_config_path (dir with config.json and tokenizer "
        "files). Backend `profanity` works offline: set filter.toxicity.backend: profanity."
    )
