"""Regression guard: how well the critique in params.yaml tells good samples from subtly wrong,
off-topic and unsafe ones on our own calibration sets (bench/data/calibration*.jsonl), with the
judges' verdicts alone beside it. Written knowing our rules: a guard, not evidence (that is
bench/grounding.py on public data).

    python bench/calibration.py [--params params.yaml] [--data FILE]
"""

from __future__ import annotations

import argparse
import json

from assay.config import load_params
from assay.critique import Models
from assay.critique.calibrate import evaluate, judges_only, load
from assay.critique.reward import make_reward
from assay.llm import Ledger, open_models
from assay.roles import endpoint_roles


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="bench/data/calibration.jsonl")
    args = ap.parse_args()
    params = load_params(args.params)
    cfg, items, roles = params.critique, load(args.data), endpoint_roles(params.critique, params.generate.endpoint)
    with open_models(params, roles.critique(), Ledger()) as m:
        models = Models(judges=[m[j] for j in roles.judges], reviser=m[roles.reviser],
                        reward=make_reward(cfg.reward, m, roles.reward))
        rows = {"decision (signals + judges + reward)": evaluate(items, models, cfg)}
    rows["judges only (P(Yes) >= 0.5)"] = judges_only(rows["decision (signals + judges + reward)"], items)
    for name, result in rows.items():
        print(f"{name:28} pair accuracy {result['pair_accuracy']:.2f} ({result['pairs']} pairs)  "
              f"verdict accuracy {result['verdict_accuracy']:.2f} ({result['items']} items)")
    print(json.dumps(rows["decision (signals + judges + reward)"]["per_item"], indent=1))


if __name__ == "__main__":
    main()
