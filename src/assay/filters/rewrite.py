"""Tone rewriting: an LLM rewrites the last assistant answer of each candidate sample into the
production voice of params' style guide; the rewrite is re-checked (PII, toxicity, facts) before
the decision applies it. The original answer stays in the record (`filter.rewrite.original`).

LLM calls go through assay.llm only (cached responses). Which rows are candidates, and whether a
rewrite may replace the answer, is decided in assay.filters.decide (rewrite_candidates,
_rewrite_problems): every rewrite and its re-check scores exist before `decide` runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from assay.config import Filter
from assay.llm import ChatModel, ChatRequest, run_batch
from assay.records import messages_text

VERSION = "rewrite-1"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 2000}},
          "required": ["answer"], "additionalProperties": False}
EQUIV_SCHEMA = {"type": "object", "properties": {"same_facts": {"type": "boolean"}},
                "required": ["same_facts"], "additionalProperties": False}
SYSTEM = ("You edit answers of a customer-support assistant into the company's voice. Keep every "
          "fact, number, name, unit and condition exactly; add no new facts. Style guide:\n{style}")
USER = "Question:\n{question}\n\nAnswer to rewrite:\n{answer}\n\nReply with JSON only: {{\"answer\": \"...\"}}"
EQUIV = ("Do these two answers state exactly the same facts (numbers, names, conditions)?\n\nA:\n{a}\n\n"
         "B:\n{b}\n\nReply with JSON only: {{\"same_facts\": true}} or {{\"same_facts\": false}}")

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][A-Za-z0-9]*(?:[-\s][A-Z0-9][A-Za-z0-9]*)*")


def _last_answer(messages: list[dict]) -> tuple[int, str, str]:
    """(index of the last assistant message, its content, the user message before it)."""
    idx = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    question = next((m["content"] for m in reversed(messages[:idx]) if m["role"] == "user"), "")
    return idx, str(messages[idx]["content"]), str(question)


def request(messages: list[dict], cfg: Filter) -> ChatRequest:
    """The rewrite request for one sample: style guide as system prompt, question + answer in."""
    _, answer, question = _last_answer(messages)
    r = cfg.rewrite
    return ChatRequest(messages=[{"role": "system", "content": SYSTEM.format(style=r.style_guide.strip())},
                                 {"role": "user", "content": USER.format(question=question, answer=answer)}],
                       temperature=r.temperature, max_tokens=r.max_tokens, schema=SCHEMA,
                       schema_name="rewrite", seed=0, tag="rewrite")


def facts(text: str) -> tuple[set[str], set[str]]:
    """(numbers, capitalised names not starting a sentence) of a text: what a rewrite must keep."""
    numbers = {n.replace(",", "") for n in _NUMBER.findall(text)}
    return numbers, {m.group(0) for m in _NAME.finditer(text.strip())}


def meaning_problems(original: str, rewritten: str) -> list[str]:
    """Why `rewritten` may not say what `original` says: numbers lost or added, names lost."""
    (n0, names), (n1, _) = facts(original), facts(rewritten)
    problems = [f"number_lost:{n}" for n in sorted(n0 - n1)] + [f"number_added:{n}" for n in sorted(n1 - n0)]
    lowered = rewritten.casefold()
    return problems + [f"name_lost:{e}" for e in sorted(names) if e.casefold() not in lowered]


def with_answer(messages: list[dict], answer: str) -> list[dict]:
    """A copy of `messages` whose last assistant message says `answer`."""
    idx, _, _ = _last_answer(messages)
    return [{**m, "content": answer} if i == idx else dict(m) for i, m in enumerate(messages)]


def rewrite(samples: pd.DataFrame, rows: list[int], cfg: Filter, model: ChatModel, analyze: Callable,
            toxic: Callable) -> list[dict | None]:
    """Per row: None (not in `rows`, the candidates) or {answer, original, error, pii, toxicity,
    same_facts}. Failed calls are rows with `error` (the original is then kept). Scores the
    rewritten texts."""
    msgs = [list(samples["messages"].iloc[i]) for i in rows]
    results = run_batch(model, [request(m, cfg) for m in msgs], desc="rewrite")
    out: list[dict | None] = [None] * len(samples)
    for i, m, res in zip(rows, msgs, results, strict=True):
        answer = (res.data or {}).get("answer")
        ok = isinstance(answer, str) and answer.strip()
        out[i] = {"original": _last_answer(m)[1], "answer": answer.strip() if ok else None,
                  "error": None if ok else (res.error or "no answer in reply"), "same_facts": None}
    done = [i for i in rows if out[i]["answer"]]
    texts = [messages_text(with_answer(list(samples["messages"].iloc[i]), out[i]["answer"])) for i in done]
    for i, found, tox in zip(done, analyze(texts), toxic(texts), strict=True):
        out[i] |= {"pii": found, "toxicity": tox, "text": texts[done.index(i)]}
    if cfg.rewrite.llm_equivalence and done:
        _equivalence(out, done, model, cfg)
    return out


def _equivalence(out: list[Any], done: list[int], model: ChatModel, cfg: Filter) -> None:
    """Ask the model whether original and rewrite state the same facts (None: no usable reply)."""
    reqs = [ChatRequest(messages=[{"role": "user", "content": EQUIV.format(a=out[i]["original"], b=out[i]["answer"])}],
                        temperature=cfg.rewrite.equivalence_temperature,
                        max_tokens=cfg.rewrite.equivalence_max_tokens, schema=EQUIV_SCHEMA, schema_name="equivalence",
                        seed=0, tag="rewrite_check") for i in done]
    for i, res in zip(done, run_batch(model, reqs, desc="rewrite check"), strict=True):
        value = (res.data or {}).get("same_facts")
        out[i]["same_facts"] = value if isinstance(value, bool) else None
