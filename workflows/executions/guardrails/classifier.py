"""The injection classifier: logistic regression over hashed character n-grams (3 to 5) and word
uni- and bigrams of the lower-cased text — no network, no GPU, no model download: its weights are
a small file in this package (``injection_classifier.bin``, float16), checked against the SHA-256
and version in ``injection_classifier.json`` when first loaded. It is trained by
scripts/train_injection_classifier.py on the train split of bench/ai_guardrails.py's corpora
(docs/ai-controls.md says why this and not an embedding model).

A long text is scored in overlapping windows of ``WINDOW`` characters and gets its highest
window's probability: an injection hidden after pages of padding is still read, and the work is
linear in the text."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from workflows.executions.guardrails.base import windows

HERE = Path(__file__).resolve().parent
WEIGHTS, META = HERE / "injection_classifier.bin", HERE / "injection_classifier.json"
BUCKETS = 1 << 17
CHAR_NGRAMS = (3, 4, 5)
WINDOW, OVERLAP = 3_000, 500
SPACES = re.compile(r"\s+")
WORD = re.compile(r"[a-z0-9']{1,40}")


def features(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(bucket indices, values) of one text: each hashed n-gram present counts once, and the
    vector has unit length."""
    lowered = " " + SPACES.sub(" ", text.lower()).strip() + " "
    grams = {lowered[i : i + n] for n in CHAR_NGRAMS for i in range(len(lowered) - n + 1)}
    words = WORD.findall(lowered)
    grams.update("w:" + word for word in words)
    grams.update(f"b:{first} {second}" for first, second in itertools.pairwise(words))
    if not grams:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    indices = np.unique(np.fromiter((zlib.crc32(g.encode()) % BUCKETS for g in grams), dtype=np.int64))
    return indices, np.full(len(indices), 1 / math.sqrt(len(indices)), dtype=np.float32)


@dataclass(frozen=True)
class Model:
    weights: np.ndarray
    bias: float
    version: str

    def probability(self, text: str) -> float:
        """The probability that ``text`` (one window) is an injection."""
        indices, values = features(text)
        margin = float(self.weights[indices] @ values) + self.bias if len(indices) else self.bias
        return 1 / (1 + math.exp(-max(min(margin, 50.0), -50.0)))


class ModelFileError(RuntimeError):
    """The weights file does not match its recorded SHA-256 (or size)."""


@lru_cache(maxsize=1)
def model() -> Model:
    """The committed model, its integrity checked."""
    meta = json.loads(META.read_text())
    raw = WEIGHTS.read_bytes()
    if hashlib.sha256(raw).hexdigest() != meta["sha256"] or meta["buckets"] != BUCKETS:
        raise ModelFileError(f"{WEIGHTS.name} does not match the SHA-256 in {META.name}.")
    weights = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    return Model(weights=weights, bias=float(meta["bias"]), version=meta["version"])


def classifier_probability(text: str) -> float:
    """The highest injection probability over ``text``'s windows."""
    current = model()
    return max(
        (current.probability(piece) for _, piece in windows(text, size=WINDOW, overlap=OVERLAP)), default=0.0
    )
