"""A scripted ChatModel behind assay's own seam (assay.llm.ChatModel), for orchestration tests."""

from __future__ import annotations

import json
from collections.abc import Callable

from assay.llm import ChatRequest, ChatResult

Answer = dict | str | ChatResult | Callable[[ChatRequest], "dict | str | ChatResult"]


class FakeChat:
    """Answers requests from a script: a callable (request -> answer), a list used as a queue,
    or one fixed answer.

    A dict answer is returned as parsed JSON, a str as raw text (parsed like a server reply),
    a ChatResult as is (use it to script errors). Every request is recorded in `requests`."""

    def __init__(self, answers: Answer | list[Answer], name: str = "fake", model_id: str = "fake-model"):
        self.name, self.model_id, self.concurrency = name, model_id, 2
        self.answers = answers
        self.requests: list[ChatRequest] = []

    def _next(self, request: ChatRequest):
        if callable(self.answers):
            return self.answers(request)
        if isinstance(self.answers, list):
            return self.answers.pop(0)
        return self.answers  # one fixed answer for every request

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        answer = self._next(request)
        if isinstance(answer, ChatResult):
            return answer
        if isinstance(answer, dict):
            return ChatResult(text=json.dumps(answer), data=answer, finish_reason="stop", model=self.model_id,
                              prompt_tokens=10, completion_tokens=5)
        from assay.llm.parse import parse_json_object

        data, reason = parse_json_object(answer)
        return ChatResult(text=answer, data=data, error=None if data else f"unparsable output ({reason})",
                          finish_reason="stop", model=self.model_id, prompt_tokens=10, completion_tokens=5)
