"""Toxicity scorers, for real: profanity from its wheel, detoxify through a tiny self-built checkpoint."""

import hashlib
import re
from pathlib import Path
from types import SimpleNamespace

import detoxify
import huggingface_hub.constants
import pytest
import torch
import transformers

from assay.errors import AssayError
from assay.filters.toxicity import make_scorer

# detoxify's Jigsaw classes, and the names it reports them under
CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
LABELS = ["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"]
TOXIC = [
    "You are a fucking idiot.",
    "Shut up, you stupid bitch.",
    "This shit is garbage, screw you.",
    "Go to hell, asshole.",
]
BENIGN = [
    "How do I reset my password?",
    "Thanks, the invoice arrived on time.",
    "Please restart the router and try again.",
    "Refunds take five business days.",
]
# Empty, whitespace, unicode, a duplicate, and one text longer than the tiny model's 64 positions
ODD = ["", "   ", "café ☕ naïve", "you are an idiot", "you are an idiot", "thanks " * 200]
# A word-level vocab over the test texts: enough for a tokenizer, tiny enough for a fast model
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(
    set(re.findall(r"[a-z]+", " ".join(TOXIC + BENIGN + ODD).lower()))
)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test touches the network: Hub lookups fail at once and a GitHub download fails loudly."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def no_download(url, *args, **kwargs):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)


def _save_checkpoint(path: Path, model_type: str, model: torch.nn.Module) -> None:
    """Write the two keys detoxify's load_checkpoint reads: the training config and the weights."""
    arch = {
        "model_type": model_type,  # detoxify builds a config from this name even when given a dir
        "model_name": "BertForSequenceClassification",
        "tokenizer_name": "BertTokenizer",
        "num_classes": len(CLASSES),
    }
    config = {"arch": {"args": arch}, "dataset": {"args": {"classes": CLASSES}}}
    torch.save({"config": config, "state_dict": model.state_dict()}, path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2-layer, 32-wide random BERT in detoxify's format, plus its HF config/tokenizer dir."""
    root = tmp_path_factory.mktemp("detoxify")
    hf_dir = root / "hf"
    hf_dir.mkdir()
    (hf_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    # model_max_length makes detoxify's truncation fit the 64 positions below
    tokenizer = transformers.BertTokenizer(
        vocab_file=str(hf_dir / "vocab.txt"), model_max_length=64
    )
    tokenizer.save_pretrained(hf_dir)
    config = transformers.BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(CLASSES),
    )
    config.save_pretrained(hf_dir)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    _save_checkpoint(root / "tiny.ckpt", str(hf_dir), model)
    return SimpleNamespace(
        root=root,
        checkpoint=str(root / "tiny.ckpt"),
        hf_dir=str(hf_dir),
        model=model,
        tokenizer=tokenizer,
    )


def _detoxify(tiny, **kwargs):
    return make_scorer(
        "detoxify", checkpoint=tiny.checkpoint, huggingface_config_path=tiny.hf_dir, **kwargs
    )


@torch.no_grad()
def _reference(tiny, text: str) -> list[float]:
    inputs = tiny.tokenizer(text, return_tensors="pt", truncation=True)
    return torch.sigmoid(tiny.model(**inputs).logits)[0].tolist()


def test_profanity_separates_toxic_from_benign():
    scorer = make_scorer("profanity", batch_size=3)
    scores = scorer.score(TOXIC + BENIGN + ODD)
    assert scorer.name == "profanity" and scorer.version.startswith("profanity-1.")
    assert len(scores) == len(TOXIC + BENIGN + ODD)
    assert all(set(s) == {"profanity"} and 0 <= s["profanity"] <= 1 for s in scores)
    assert all(s["profanity"] > 0.5 for s in scores[: len(TOXIC)])
    assert all(s["profanity"] < 0.5 for s in scores[len(TOXIC) : len(TOXIC + BENIGN)])


def test_detoxify_scores_with_the_checkpoint_weights(tiny):
    # batch_size 4 over 6 texts leaves a last batch of 2; batch_size 5 one of 1 (detoxify squeezes)
    for batch_size in (4, 5):
        scores = _detoxify(tiny, batch_size=batch_size).score(ODD)
        assert len(scores) == len(ODD)
        for text, row in zip(ODD, scores, strict=True):
            assert list(row) == LABELS
            assert all(isinstance(v, float) and 0 <= v <= 1 for v in row.values())
            assert list(row.values()) == pytest.approx(_reference(tiny, text), abs=1e-5)


def test_detoxify_is_deterministic_loads_once_and_names_its_weights(tiny, monkeypatch):
    loads = []
    real = detoxify.Detoxify

    def counting(*args, **kwargs):
        loads.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(detoxify, "Detoxify", counting)
    scorer = _detoxify(tiny, batch_size=2)
    assert scorer.score([]) == [] and loads == []
    assert scorer.score(TOXIC + BENIGN) == scorer.score(TOXIC + BENIGN)
    assert len(loads) == 1
    sha8 = hashlib.sha256(Path(tiny.checkpoint).read_bytes()).hexdigest()[:8]
    assert scorer.name == "detoxify" and scorer.version == f"detoxify-original-{sha8}"


def test_detoxify_release_weights_need_no_load_until_scoring():
    scorer = make_scorer("detoxify")
    assert scorer.version == "detoxify-original-c1212f89"  # the release file's sha256 prefix
    assert scorer.score([]) == []


def test_detoxify_without_weights_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached release weights
    with pytest.raises(AssayError, match="need network.*`profanity` works offline"):
        make_scorer("detoxify").score(["hello"])


def test_detoxify_missing_checkpoint_file_is_named(tmp_path):
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(
        AssayError, match=re.escape(str(missing)) + " is not a file.*huggingface_config_path"
    ):
        make_scorer("detoxify", checkpoint=str(missing))


def test_detoxify_base_model_name_must_resolve_offline(tiny):
    # Real detoxify checkpoints name "bert-base-uncased": looked up on the Hub even with a local dir
    checkpoint = tiny.root / "hub-named.ckpt"
    _save_checkpoint(checkpoint, "bert-base-uncased", tiny.model)
    scorer = make_scorer(
        "detoxify", checkpoint=str(checkpoint), huggingface_config_path=tiny.hf_dir
    )
    with pytest.raises(AssayError, match="huggingface.co") as raised:
        scorer.score(["hello"])
    assert isinstance(raised.value.__cause__, OSError)


def test_unknown_backend_and_model_type_are_rejected():
    with pytest.raises(ValueError, match="allowed: profanity, detoxify"):
        make_scorer("perspective")
    with pytest.raises(ValueError, match="allowed: original, unbiased"):
        make_scorer("detoxify", model_type="huge")
    with pytest.raises(ValueError, match="batch_size"):
        make_scorer("profanity", batch_size=0)


# A small labelled set for the profanity backend in a support domain: (text, toxic?). Benign
# texts include words that look rude out of context ("kill the process", "dummy load").
LABELLED = [
    ("You are a fucking idiot and your thermostat is garbage.", True),
    ("Shut up and fix my heating, you useless moron.", True),
    ("This piece of shit stopped working again.", True),
    ("Go to hell, your support team are a bunch of clowns.", True),
    ("What a bullshit answer, are you stupid?", True),
    ("Your agents are dumb as rocks.", True),
    ("I hope your company burns down, assholes.", True),
    ("Screw you and your crappy app.", True),
    ("You people are pathetic losers.", True),
    ("This damn bitch of a device keeps rebooting.", True),
    ("I swear to god I will smash this fucking thing.", True),
    ("Stop being such a jerk and answer the question.", True),
    ("I know where your office is and I will find you.", True),  # a threat without a rude word
    ("People like you should not be allowed to have jobs.", True),  # contempt without a rude word
    ("How do I reset the thermostat to factory settings?", False),
    ("Kill the sync process in the app, then restart it.", False),
    ("The heat pump shoots hot air when the fan starts.", False),
    ("Use a dummy load to test the relay output.", False),
    ("My boiler is dead after the power cut.", False),
    ("The display went blank and the unit is hot to the touch.", False),
    ("Please attack the problem step by step: wiring first, then Wi-Fi.", False),
    ("The firmware update bombed out at 80 percent.", False),
    ("Thanks, that fixed it. You saved my evening!", False),
    ("I am frustrated: this is the third replacement in a month.", False),
    ("Can I return the unit if the box was opened?", False),
    ("The C-wire adapter is not included in the package.", False),
    ("Error E42 means the sensor lost contact with the hub.", False),
    ("This is really annoying, the schedule keeps resetting.", False),
    ("The screen is stuck on a cold start loop.", False),
    ("It was a hell of a week, but the heating works now.", False),
]


def test_profanity_backend_on_a_labelled_support_set_with_per_label_thresholds():
    scores = make_scorer("profanity").score([t for t, _ in LABELLED])
    truth = [y for _, y in LABELLED]

    def accuracy(threshold):
        predicted = [s["profanity"] >= threshold for s in scores]
        tp = sum(p and y for p, y in zip(predicted, truth, strict=True))
        return (sum(p == y for p, y in zip(predicted, truth, strict=True)) / len(truth),
                tp / max(1, sum(predicted)), tp / sum(truth))

    acc, precision, recall = accuracy(0.5)
    print(f"profanity @0.5 on {len(LABELLED)}: accuracy {acc:.2f} precision {precision:.2f} recall {recall:.2f}")
    assert acc >= 0.75 and precision >= 0.8
