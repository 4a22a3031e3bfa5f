"""The only package that talks to language models (and the only importer of `openai`)."""

from assay.llm.batch import run_batch, run_batches
from assay.llm.client import ChatModel, ChatRequest, ChatResult, Ledger, enforces_schema
from assay.llm.endpoints import describe, open_models

__all__ = ["ChatModel", "ChatRequest", "ChatResult", "Ledger", "describe", "enforces_schema", "open_models",
           "run_batch", "run_batches"]
