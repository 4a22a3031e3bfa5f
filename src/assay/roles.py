"""Which endpoint plays which role: the one place where role defaults are resolved (the reviser
defaults to the generator, the LLM reward scorer to the first judge; the orchestrator and the
rewriter exist only when switched on). Stages, the reward factory and the dataset card ask here
instead of reading `params.yaml` keys and repeating the defaults."""

from __future__ import annotations

from dataclasses import dataclass

from assay.config import Critique, Rewrite


@dataclass(frozen=True)
class Roles:
    """Endpoint names (keys of `llm.endpoints`) per role; None: the role makes no LLM call."""

    generator: str
    judges: tuple[str, ...]
    reviser: str
    reward: str | None
    orchestrator: str | None
    rewriter: str | None

    def critique(self) -> list[str]:
        """The distinct endpoints the critique stage calls, judges first."""
        return list(dict.fromkeys(n for n in (*self.judges, self.reviser, self.reward, self.orchestrator) if n))

    def used(self) -> list[str]:
        """The distinct endpoints the pipeline calls, in stage order (for the dataset card)."""
        return list(dict.fromkeys(n for n in (self.generator, *self.critique(), self.rewriter) if n))


def rewriter(rewrite: Rewrite) -> str | None:
    """The filter's rewriter endpoint, None when rewriting is off."""
    return rewrite.endpoint if rewrite.enabled else None


def endpoint_roles(critique: Critique, generator: str, rewrite: Rewrite | None = None) -> Roles:
    """The endpoints of every role after defaults, from the sections that define them (params
    are validated: every name exists, and an LLM reward has an endpoint or a judge to fall back
    on). Without `rewrite` (the critique stage, which must not depend on filter params) the
    rewriter is None."""
    c = critique
    reward = (c.reward.endpoint or c.judges[0]) if c.reward.kind == "llm" else None
    return Roles(generator=generator, judges=tuple(c.judges), reviser=c.reviser or generator, reward=reward,
                 orchestrator=c.orchestrator_endpoint if c.orchestrator == "llm" else None,
                 rewriter=rewriter(rewrite) if rewrite else None)
