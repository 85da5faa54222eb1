"""Multilingual matching of questions to offers."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

import yaml

from bot.matching.detect import Detection, LanguageDetector
from bot.matching.matcher import Match, Matcher, Result
from bot.matching.normalise import normalise, tokens

STOPWORDS_FILE = Path(__file__).with_name("stopwords.yaml")


@cache
def load_stopwords(path: Path = STOPWORDS_FILE) -> Mapping[str, frozenset[str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return MappingProxyType({
        lang: frozenset(w for word in words for w in tokens(str(word)))
        for lang, words in data.items()
    })


__all__ = ["Detection", "LanguageDetector", "Match", "Matcher", "Result", "load_stopwords",
           "normalise", "tokens"]
