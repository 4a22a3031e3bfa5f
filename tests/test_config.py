"""Unit tests for assay.config.load_params: the repo's params load; typos, bad values and broken
files fail with an AssayError that names the file, the dotted key and the value."""

import copy
from pathlib import Path

import pytest
import yaml

from assay.config import Params, load_params
from assay.errors import AssayError

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
BASE = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))


def _write(tmp_path: Path, mutate) -> Path:
    raw = copy.deepcopy(BASE)
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _error(tmp_path: Path, mutate) -> str:
    path = _write(tmp_path, mutate)
    with pytest.raises(AssayError) as info:
        load_params(path)
    message = str(info.value)
    assert str(path) in message  # every params error names the file
    assert info.value.exit_code == 2
    return message


def test_repo_params_load_and_match_the_file():
    params = load_params(REPO_PARAMS)
    assert isinstance(params, Params)
    assert params.seed == BASE["seed"]
    assert set(params.llm.endpoints) == set(BASE["llm"]["endpoints"])
    assert params.ingest.chunk_tokens == BASE["ingest"]["chunk_tokens"]
    assert list(params.critique.judges) == BASE["critique"]["judges"]


def test_an_unmutated_round_trip_loads(tmp_path):
    assert load_params(_write(tmp_path, lambda raw: None)).seed == BASE["seed"]


@pytest.mark.parametrize(("mutate", "key"), [
    (lambda r: r.update(sed=1), "sed"),
    (lambda r: r["filter"]["pii"].update(treshold=0.5), "filter.pii.treshold"),
    (lambda r: r["ingest"].update(chunk_token=300), "ingest.chunk_token"),
    (lambda r: r["llm"]["endpoints"]["qwen-1.5b"].update(thread=2), "llm.endpoints.qwen-1.5b.thread"),
    (lambda r: r["export"]["splits"].update(tarin=0.8), "export.splits.tarin"),
])
def test_unknown_keys_fail_with_the_dotted_key(tmp_path, mutate, key):
    message = _error(tmp_path, mutate)
    assert f"{key}: unknown key" in message


@pytest.mark.parametrize(("mutate", "key", "value"), [
    (lambda r: r["filter"]["pii"].update(threshold=1.5), "filter.pii.threshold", "1.5"),
    (lambda r: r["filter"]["dedup"].update(threshold=-0.1), "filter.dedup.threshold", "-0.1"),
    (lambda r: r["llm"]["endpoints"]["qwen-1.5b"].update(concurrency=-3),
     "llm.endpoints.qwen-1.5b.concurrency", "-3"),
    (lambda r: r["ingest"].update(chunk_tokens="many"), "ingest.chunk_tokens", "'many'"),
    (lambda r: r["generate"].update(max_error_rate=[0.1]), "generate.max_error_rate", "[0.1]"),
    (lambda r: r["critique"].update(orchestrator="agentic"), "critique.orchestrator", "'agentic'"),
])
def test_bad_values_name_the_key_and_the_value(tmp_path, mutate, key, value):
    message = _error(tmp_path, mutate)
    assert f"{key}:" in message
    assert f"(got {value})" in message


def test_a_missing_required_section_is_named(tmp_path):
    message = _error(tmp_path, lambda r: r.pop("generate"))
    assert "generate: required key is missing" in message


def test_several_errors_are_all_reported(tmp_path):
    def mutate(raw):
        raw["filter"]["pii"]["treshold"] = 0.5
        raw["ingest"]["chunk_tokens"] = 0
    message = _error(tmp_path, mutate)
    assert "filter.pii.treshold" in message and "ingest.chunk_tokens" in message


def test_a_judge_that_is_not_an_endpoint_is_named(tmp_path):
    message = _error(tmp_path, lambda r: r["critique"]["judges"].append("gpt-9"))
    assert "critique.judges[1]" in message and "'gpt-9'" in message
    assert "qwen-0.5b, qwen-1.5b" in message  # says what is defined


def test_a_generator_that_is_not_an_endpoint_is_named(tmp_path):
    message = _error(tmp_path, lambda r: r["generate"].update(endpoint="qwen-7b"))
    assert "generate.endpoint" in message and "'qwen-7b'" in message


def test_a_cross_section_error_does_not_dump_the_whole_params(tmp_path):
    message = _error(tmp_path, lambda r: r["critique"]["judges"].append("gpt-9"))
    assert "dataset_name" not in message  # an unrelated section's contents
    assert len(message) < 600


@pytest.mark.parametrize(("endpoint", "rule"), [
    ({"embedded": "qwen2.5-coder-0.5b", "base_url": "http://localhost:8000/v1", "model": "m"},
     "exactly one of `embedded`"),
    ({"concurrency": 2}, "exactly one of `embedded`"),
    ({"base_url": "http://localhost:8000/v1"}, "`model` is required with `base_url`"),
    ({"embedded": "qwen2.5-coder-0.5b", "batch": True}, "`batch: true` needs a hosted endpoint"),
    ({"base_url": "http://h/v1", "model": "m", "batch": True, "batch_poll_s": 60, "batch_poll_max_s": 10},
     "batch_poll_max_s must be at least batch_poll_s"),
])
def test_endpoint_kind_rules(tmp_path, endpoint, rule):
    message = _error(tmp_path, lambda r: r["llm"]["endpoints"].update(extra=endpoint))
    assert "llm.endpoints.extra:" in message and rule in message


def test_a_hosted_endpoint_with_model_loads(tmp_path):
    hosted = {"base_url": "http://localhost:8000/v1", "model": "m", "api_key_env": "KEY"}
    params = load_params(_write(tmp_path, lambda r: r["llm"]["endpoints"].update(hosted=hosted)))
    assert params.llm.endpoints["hosted"].model == "m"


@pytest.mark.parametrize("overlap", [300, 301])
def test_overlap_must_be_smaller_than_chunk_tokens(tmp_path, overlap):
    message = _error(tmp_path, lambda r: r["ingest"].update(chunk_tokens=300, overlap_tokens=overlap))
    assert "ingest:" in message and "overlap_tokens must be smaller than chunk_tokens" in message


def test_overlap_just_below_chunk_tokens_loads(tmp_path):
    path = _write(tmp_path, lambda r: r["ingest"].update(chunk_tokens=300, overlap_tokens=299))
    assert load_params(path).ingest.overlap_tokens == 299


def test_missing_file(tmp_path):
    path = tmp_path / "nope" / "params.yaml"
    with pytest.raises(AssayError, match="params file not found") as info:
        load_params(path)
    assert str(path) in str(info.value)


def test_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 42\nllm: [unclosed\n", encoding="utf-8")
    with pytest.raises(AssayError, match="not valid YAML") as info:
        load_params(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text", ["- seed\n- llm\n", "", "   \n", "just a string\n"])
def test_top_level_must_be_a_mapping(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AssayError, match="expected a mapping") as info:
        load_params(path)
    assert str(path) in str(info.value)


def test_unicode_values_survive(tmp_path):
    path = _write(tmp_path, lambda r: r["export"].update(description="Données — 温度 🔥"))
    assert load_params(path).export.description == "Données — 温度 🔥"
