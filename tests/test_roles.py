"""Unit tests for assay.roles.endpoint_roles: role defaults resolved once, on the repo's params
with small edits (no model is started)."""

from pathlib import Path

import yaml

from assay.config import Params
from assay.roles import Roles
from assay.roles import endpoint_roles as resolve


def endpoint_roles(params: Params) -> Roles:
    return resolve(params.critique, params.generate.endpoint, params.filter.rewrite)


BASE = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text(encoding="utf-8"))


def _params(critique: dict | None = None, rewrite: dict | None = None, generator: str = "qwen-1.5b") -> Params:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["generate"]["endpoint"] = generator
    raw["critique"] |= critique or {}
    raw["filter"]["rewrite"] |= rewrite or {}
    return Params.model_validate(raw)


def test_defaults_reviser_is_the_generator_and_llm_reward_the_first_judge():
    roles = endpoint_roles(_params({"judges": ["qwen-0.5b", "qwen-1.5b"], "reviser": None,
                                    "reward": {"kind": "llm", "endpoint": None}}, generator="qwen-0.5b"))
    assert (roles.reviser, roles.reward, roles.orchestrator, roles.rewriter) == ("qwen-0.5b", "qwen-0.5b", None, None)
    assert roles.critique() == ["qwen-0.5b", "qwen-1.5b"]


def test_no_judges_no_reward_model_and_explicit_roles():
    roles = endpoint_roles(_params({"judges": [], "reviser": "qwen-0.5b", "reward": {"kind": "none"},
                                    "orchestrator": "llm", "orchestrator_endpoint": "qwen-1.5b"}))
    assert roles.judges == () and roles.reward is None
    assert roles.critique() == ["qwen-0.5b", "qwen-1.5b"]  # reviser, then orchestrator


def test_an_orchestrator_endpoint_without_the_llm_orchestrator_plays_no_role():
    roles = endpoint_roles(_params({"orchestrator": "rules", "orchestrator_endpoint": "qwen-0.5b", "judges": []}))
    assert roles.orchestrator is None and "qwen-0.5b" not in roles.used()


def test_the_card_lists_the_rewriter_only_when_rewriting_is_on():
    on = endpoint_roles(_params({"judges": []}, {"enabled": True, "endpoint": "qwen-0.5b", "style_guide": "Be brief."}))
    off = endpoint_roles(_params({"judges": []}, {"enabled": False, "endpoint": "qwen-0.5b"}))
    assert on.used() == ["qwen-1.5b", "qwen-0.5b"] and off.used() == ["qwen-1.5b"]
