"""How well the critique panel in params.yaml tells good samples from subtly wrong, off-topic
and unsafe ones (bench/data/calibration.jsonl), with and without the grounding verifier.

    python bench/calibration.py [--params params.yaml] [--no-verifier-too]
"""

from __future__ import annotations

import argparse
import json

from assay.config import load_params
from assay.critique import Models
from assay.critique.calibrate import evaluate, load
from assay.critique.reward import make_reward
from assay.llm import Ledger, open_models


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="bench/data/calibration.jsonl")
    args = ap.parse_args()
    params = load_params(args.params)
    cfg, items = params.critique, load(args.data)
    with open_models(params, cfg.endpoints(params.generate.endpoint), Ledger()) as m:
        models = Models(judges=[m[j] for j in cfg.judges], reviser=m[cfg.reviser or params.generate.endpoint],
                        reward=make_reward(cfg.reward, m, cfg.judges[0]))
        rows = {
            "panel + verifier + reward": evaluate(items, models, cfg),
            "judges only (raw)": evaluate(items, Models(models.judges, models.reviser, make_reward(
                cfg.reward.model_copy(update={"kind": "none"}), m, cfg.judges[0])),
                cfg.model_copy(update={"verifier_weight": 0.0})),
        }
    for name, result in rows.items():
        print(f"{name:28} pair accuracy {result['pair_accuracy']:.2f} ({result['pairs']} pairs)  "
              f"verdict accuracy {result['verdict_accuracy']:.2f} ({result['items']} items)")
    print(json.dumps(rows["panel + verifier + reward"]["per_item"], indent=1))


if __name__ == "__main__":
    main()
