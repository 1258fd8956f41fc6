"""Layer 3, personal data (when the step sets ``redact_pii``): Microsoft Presidio's analyzer with
its pattern recognizers, run offline on a blank spaCy English pipeline (a tokenizer, no trained
model, nothing downloaded). What it finds: e-mail addresses, phone numbers, payment card numbers
(Luhn-checked), IBANs (checksum), IP and MAC addresses, US social security, ITIN, passport and
bank numbers, UK NHS numbers, medical licence numbers and crypto wallet addresses. What it does
NOT find: names of people, places and organisations, and postal addresses — those need a trained
NER model, which a blank pipeline lacks (docs/ai-controls.md has the measured rates).

Presidio's e-mail recognizer calls ``tldextract``, whose default extractor fetches the Public
Suffix List over the network on first use; ``offline_tldextract`` replaces it, before any call,
with one that reads the snapshot bundled in the package and never the network.

The analyzer only ever sees one piece of at most ``WINDOW`` characters (linear work)."""

from __future__ import annotations

from functools import lru_cache

from workflows.executions.guardrails.base import Finding, windows

LAYER = "personal_data"
WINDOW, OVERLAP = 2_000, 200
# Entities masked, and the lowest score counted (Presidio's phone numbers score 0.4).
ENTITIES = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "MAC_ADDRESS",
    "US_SSN", "US_ITIN", "US_PASSPORT", "US_BANK_NUMBER", "UK_NHS", "MEDICAL_LICENSE", "CRYPTO",
)  # fmt: skip
MIN_SCORE = 0.4


def offline_tldextract() -> None:
    """Make ``tldextract.extract`` use the bundled Public Suffix List snapshot: no URL to fetch,
    no cache directory to read or write."""
    import tldextract.tldextract as extractor_module

    current = extractor_module.TLD_EXTRACTOR
    if current.suffix_list_urls or current._cache.enabled:
        extractor_module.TLD_EXTRACTOR = extractor_module.TLDExtract(
            cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True
        )


@lru_cache(maxsize=1)
def analyzer():
    """Presidio's analyzer over a blank spaCy English pipeline and the predefined recognizers."""
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    offline_tldextract()

    class BlankSpacyNlpEngine(SpacyNlpEngine):
        """spaCy's blank English pipeline: a tokenizer, no model to load or download."""

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    engine = BlankSpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=engine)
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])


@lru_cache(maxsize=1)
def anonymizer():
    from presidio_anonymizer import AnonymizerEngine

    return AnonymizerEngine()


def analyze_piece(piece: str) -> list[tuple[int, int, str]]:
    """(start, end, entity) of the personal data in one piece of at most ``WINDOW`` characters."""
    results = analyzer().analyze(piece, language="en", entities=list(ENTITIES), score_threshold=MIN_SCORE)
    return [(result.start, result.end, result.entity_type) for result in results]


def personal_data_spans(text: str) -> list[tuple[int, int, str]]:
    spans = []
    for offset, piece in windows(text, size=WINDOW, overlap=OVERLAP):
        spans.extend((offset + start, offset + end, entity) for start, end, entity in analyze_piece(piece))
    return spans


def mask_personal_data(text: str) -> tuple[str, list[Finding]]:
    """``text`` with each piece of personal data replaced by ``[ENTITY]`` (e.g. ``[EMAIL_ADDRESS]``),
    and a finding per entity type with its count."""
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    spans = sorted(set(personal_data_spans(text)))  # pieces overlap: one entity may come twice
    if not spans:
        return text, []
    counts: dict[str, int] = {}
    for _, _, entity in spans:
        counts[entity] = counts.get(entity, 0) + 1
    # The anonymizer merges what still overlaps (an entity cut at a piece's edge and found whole).
    results = [RecognizerResult(entity, start, end, 1.0) for start, end, entity in spans]
    operators = {entity: OperatorConfig("replace", {"new_value": f"[{entity}]"}) for entity in counts}
    masked = anonymizer().anonymize(text=text, analyzer_results=results, operators=operators).text
    return masked, [Finding(LAYER, entity, f"{n} masked") for entity, n in sorted(counts.items())]
