"""The keyword voter: the lexical signal of the ranker, built once per catalogue, then read-only.

Every term the catalogue knows (topic synonyms and offer keywords, in all ten languages) is
split into normalised words. A question's words meet those words exactly, as a stem (one is the
start of the other: "kurs" / "kursu"), or within one or two typing errors (rapidfuzz checks the
candidates a deletion index proposes). Matched terms vote for their topic or offer with a weight
that falls with how many topics share the term; a question in Arabic therefore finds an offer
whose only match is its German keyword "Kita".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from bot.catalogue import Catalogue
from bot.matching.normalise import tokens, variants

# How much a kind of word match is worth, relative to an exact one.
PREFIX_OF_QUESTION_WORD = 0.9  # "kurs" is the start of "kursu"
QUESTION_WORD_IS_PREFIX = 0.6  # "ausbild" is the start of "ausbildung"
SHARED_STEM = 0.65  # same beginning, different ending
TYPO_1, TYPO_2 = 0.65, 0.55
# A term in the language of the question, or German (whose words everybody here borrows),
# counts fully; a term of another language counts less, since it is more likely a false friend.
OTHER_LANGUAGE = 0.6
TRANSLIT = 0.85  # a Latin transliteration of Arabic, Persian or Cyrillic words
PHRASE_BONUS = 0.3  # per extra word in a multi-word term
# An offer's own keywords rank it within its topic, and count less than the topic's words
# for choosing the topic: keywords are often everyday words ("jugendliche", "termin").
OFFER_KEYWORDS = 0.6
MIN_STEM, MIN_FUZZY, MIN_TRUNCATED = 4, 5, 6
WEAK_ONLY_SCORE = 100 * (1 - math.exp(-1.0 / 2))  # the bar (a raw 1.0) for an answer of half-matches only
STRONG = 0.85  # the match quality of a word as written or as a clear stem (not typo, not truncation)
# Below this score nothing fits: one exact word of one topic is enough; one typo, one shared
# stem alone is not.
DEFAULT_THRESHOLD = 0.7

NON_LATIN = frozenset({"ar", "fa", "ru", "uk", "bg"})
Target = tuple[str, str]  # ("t", topic) or ("o", offer id)


@dataclass(frozen=True, slots=True)
class Term:
    words: tuple[str, ...]
    lang: str
    targets: tuple[tuple[Target, float], ...]
    translit: bool = False  # Latin transliteration of a language written in another script


@dataclass(frozen=True, slots=True)
class Votes:
    """What the catalogue's words say about one question."""

    offers: Mapping[str, float]  # offer id -> topic words + OFFER_KEYWORDS x its own keywords
    own: Mapping[str, float]  # offer id -> its own keywords only
    topics: Mapping[str, float]  # topic id -> the topic's words only
    strong: bool  # some word matched as written or as a clear stem (not only typos, truncations)

    def best(self) -> float:
        return max(self.offers.values(), default=0.0)


class KeywordVoter:
    def __init__(self, catalogue: Catalogue, stopwords: Mapping[str, frozenset[str]]) -> None:
        self.catalogue = catalogue
        self._stopwords = stopwords
        self._terms: list[Term] = _build_terms(catalogue, stopwords)
        self._starts: dict[str, list[int]] = defaultdict(list)
        vocab: set[str] = set()
        for i, term in enumerate(self._terms):
            self._starts[term.words[0]].append(i)
            vocab.update(term.words)
        self._vocab = frozenset(vocab)
        self._districts = _district_names(catalogue)
        self._false_friends: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for phrases in catalogue.false_friends.values():
            for phrase in phrases:
                words = tuple(tokens(phrase))
                if words:
                    self._false_friends[words[0]].append(words)
        prefixes: dict[str, set[str]] = defaultdict(set)
        deletes: dict[str, set[str]] = defaultdict(set)
        for word in vocab:
            for end in range(MIN_TRUNCATED, len(word)):
                prefixes[word[:end]].add(word)
            if len(word) >= MIN_FUZZY - 1:
                for form in _deletions(word):
                    deletes[form].add(word)
        # Kept as tuples: about 130,000 mostly one-word sets cost 20 MB more than tuples.
        self._prefixes = {form: tuple(sorted(words)) for form, words in prefixes.items()}
        self._deletes = {form: tuple(sorted(words)) for form, words in deletes.items()}

    # -- words ---------------------------------------------------------------------------
    def _word_matches(self, word: str) -> tuple[dict[str, float], dict[str, float]]:
        """Vocabulary words that `word` may stand for, with the quality of each match; and the
        stems a known word has, which count inside phrases only ("cursul de integrare" is
        "curs de integrare", but "kitap" alone is no "kita")."""
        found: dict[str, float] = {}
        stems_only: dict[str, float] = {}

        def keep(candidate: str, quality: float) -> None:
            if quality > found.get(candidate, 0.0):
                found[candidate] = quality

        for form_index, form in enumerate(variants(word)):
            strip = 1.0 if form_index == 0 else 0.9
            exact = form in self._vocab
            if exact:
                keep(form, strip)
            if len(form) < MIN_STEM:
                continue
            # Stems and the first part of compounds: "kursu" -> "kurs", "kitaplatz" -> "kita".
            for end in range(len(form) - 1, max(MIN_STEM, len(form) // 2) - 1, -1):
                if form[:end] in self._vocab:
                    if exact:
                        stems_only[form[:end]] = PREFIX_OF_QUESTION_WORD * strip
                    else:
                        keep(form[:end], PREFIX_OF_QUESTION_WORD * strip)
            if exact:
                continue
            if len(form) >= MIN_TRUNCATED:
                for candidate in self._prefixes.get(form, ()):
                    keep(candidate, QUESTION_WORD_IS_PREFIX * strip)
                # Inflected forms share a long stem: "собеседованю" / "собеседование".
                for end in range(len(form) - 1, max(MIN_TRUNCATED, int(0.75 * len(form))) - 1, -1):
                    stems = self._prefixes.get(form[:end])
                    if stems:
                        for candidate in stems:
                            if len(candidate) - end <= 3:
                                keep(candidate, SHARED_STEM * strip)
                        break
            if form_index == 0 and not found and len(form) >= MIN_FUZZY:
                self._typos(form, keep)
        return found, {**stems_only, **found}

    def _typos(self, word: str, keep) -> None:
        candidates: set[str] = set(self._deletes.get(word, ()))
        for form in _deletions(word):
            if form in self._vocab:
                candidates.add(form)
            candidates.update(self._deletes.get(form, ()))
        limit = 1 if len(word) < 8 else 2
        for candidate in candidates:
            if abs(len(candidate) - len(word)) > limit or len(candidate) < MIN_FUZZY - 1:
                continue
            distance = OSA.distance(word, candidate, score_cutoff=limit)
            if distance <= limit:
                keep(candidate, TYPO_1 if distance <= 1 else TYPO_2)

    def _without_false_friends(self, words: list[str]) -> list[str]:
        kept, index = [], 0
        while index < len(words):
            for phrase in self._false_friends.get(words[index], ()):
                if tuple(words[index:index + len(phrase)]) == phrase:
                    index += len(phrase)
                    break
            else:
                kept.append(words[index])
                index += 1
        return kept

    # -- questions -----------------------------------------------------------------------
    def votes(self, text: str, language: str | None) -> Votes:
        evidence, strong = self._evidence(text, language)
        totals = {target: sum(value for value, _ in slots.values()) for target, slots in evidence.items()}
        topics = {ident: value for (kind, ident), value in totals.items() if kind == "t"}
        # Only the offers of a voted topic or with a voted keyword of their own can score: the
        # rest of a large catalogue is never looked at.
        candidates = dict.fromkeys(i for topic in topics for i in self.catalogue.by_topic.get(topic, ()))
        candidates.update(dict.fromkeys(ident for kind, ident in totals if kind == "o"))
        offers, own = {}, {}
        for ident in candidates:
            mine = totals.get(("o", ident), 0.0)
            score = topics.get(self.catalogue.offers[ident].topic, 0.0) + OFFER_KEYWORDS * mine
            if score > 0:
                offers[ident] = score
                own[ident] = mine
        return Votes(offers, own, topics, strong)

    @staticmethod
    def answerable(votes: Votes, threshold: float = DEFAULT_THRESHOLD) -> bool:
        """The voter's own opinion: a word of a topic as written, or enough half-matches."""
        best = votes.best()
        return best >= threshold and (votes.strong or squash(best) >= WEAK_ONLY_SCORE)

    def districts_in(self, text: str) -> tuple[str, ...]:
        """Official districts a text names, by name, joined spelling or alias ("Nordstadt")."""
        words = tokens(text)
        found = []
        for size in (3, 2, 1):
            for start in range(len(words) - size + 1):
                district = self._districts.get("".join(words[start:start + size]))
                if district:
                    found.extend(district)
        return tuple(dict.fromkeys(found))

    def explain(self, text: str, language: str | None) -> dict[Target, list[tuple[str, float]]]:
        """Which words of the catalogue voted for which topic or offer, and how much."""
        return {
            target: sorted(((" ".join(term.words), round(value, 3)) for value, term in slots.values()),
                           key=lambda item: -item[1])
            for target, slots in self._evidence(text, language)[0].items()
        }

    def _evidence(self, text: str, language: str | None) -> tuple[dict[Target, dict[str, tuple[float, Term]]], bool]:
        """Per target, the best term each question word matched; and whether any word matched
        as written or as a clear stem (else the answer rests on half-matches only)."""
        stop = self._stopwords.get(language or "", frozenset())
        words = [w for w in self._without_false_friends(tokens(text)) if w not in stop]
        known: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
        matched = [known.setdefault(w, self._word_matches(w)) for w in words]
        in_phrases = [both for _, both in matched]
        # Evidence is kept per question word (a repeated word counts once), by its best term.
        evidence: dict[Target, dict[str, tuple[float, Term]]] = defaultdict(dict)
        strong = False
        for position, (alone, both) in enumerate(matched):
            for word, quality in both.items():
                for term_index in self._starts.get(word, ()):
                    term = self._terms[term_index]
                    if len(term.words) == 1:
                        if word not in alone:
                            continue
                        q = quality
                    else:
                        q = _phrase(term.words, in_phrases, position, quality)
                    if not q:
                        continue
                    factor = (1.0 if term.lang in (language, "de")
                              else TRANSLIT if term.translit else OTHER_LANGUAGE)
                    value = q * factor * (1 + PHRASE_BONUS * (len(term.words) - 1))
                    strong = strong or q >= STRONG
                    for target, weight in term.targets:
                        slot = evidence[target]
                        if value * weight > slot.get(words[position], (0.0, term))[0]:
                            slot[words[position]] = (value * weight, term)
        return evidence, strong


def _phrase(words: tuple[str, ...], per_position: list[dict[str, float]], start: int,
            quality: float) -> float:
    """Quality of a multi-word term found from `start` on (one stray word allowed between)."""
    position = start
    for word in words[1:]:
        for step in (1, 2):
            q = per_position[position + step].get(word) if position + step < len(per_position) else None
            if q:
                quality = min(quality, q)
                position += step
                break
        else:
            return 0.0
    return quality


def squash(score: float) -> float:
    """A raw vote total as 0..100, the scale people read in `ask --explain`."""
    return round(100 * (1 - math.exp(-score / 2)), 2)


def _district_names(catalogue: Catalogue) -> dict[str, tuple[str, ...]]:
    names: dict[str, tuple[str, ...]] = {}
    for district in catalogue.districts:
        names["".join(tokens(district))] = (district,)
    for alias, districts in catalogue.district_aliases.items():
        names.setdefault("".join(tokens(alias)), districts)
    return names


def _deletions(word: str) -> Iterable[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _build_terms(catalogue: Catalogue, stopwords: Mapping[str, frozenset[str]]) -> list[Term]:
    """All terms with the targets they vote for; weight 1/sqrt(k) for a term shared by k topics."""
    votes: dict[tuple[tuple[str, ...], str], set[Target]] = defaultdict(set)
    places = set(_district_names(catalogue))  # a district names where, not what: see districts_in

    def add(text: str, lang: str, target: Target) -> None:
        # Function words inside a phrase are dropped, as they are from questions:
        # "curs de integrare" must meet "cursul de integrare".
        stop = stopwords.get(lang, frozenset())
        raw = tokens(text)
        words = tuple(w for w in raw if w not in stop)
        # A phrase that shrinks to one word ("după școală" -> "școală"), a bare number and a
        # district name would vote for far more than the phrase meant.
        if (not words or (len(raw) > 1 and len(words) == 1) or all(w.isdigit() for w in words)
                or "".join(words) in places):
            return
        votes[(words, lang)].add(target)
        # Arabic script: the same term without its article, as questions are stripped of it.
        bare = tuple(w[2:] if w.startswith("ال") and len(w) > 4 else w for w in words)
        if bare != words:
            votes[(bare, lang)].add(target)

    for topic in catalogue.topics.values():
        for lang, terms in topic.synonyms.items():
            for term in terms:
                add(term, lang, ("t", topic.id))
        for lang, name in topic.names.items():
            add(name, lang, ("t", topic.id))
    for offer in catalogue.offers.values():
        for lang, text in offer.texts.items():
            for keyword in text.keywords:
                add(keyword, lang, ("o", offer.id))
    # Topics a word sequence points to, over all languages: the fewer, the more telling.
    topics_of: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for (words, _), targets in votes.items():
        for kind, ident in targets:
            topics_of[words].add(ident if kind == "t" else catalogue.offers[ident].topic)
    terms = []
    for (words, lang), targets in votes.items():
        weight = 1.0 / math.sqrt(len(topics_of[words]))
        offers_per_topic: dict[str, int] = defaultdict(int)
        for kind, ident in targets:
            if kind == "o":
                offers_per_topic[catalogue.offers[ident].topic] += 1
        weighted = tuple(
            (target, weight if target[0] == "t"
             else weight / math.sqrt(offers_per_topic[catalogue.offers[target[1]].topic]))
            for target in sorted(targets)
        )
        translit = lang in NON_LATIN and all(w.isascii() for w in words)
        terms.append(Term(words, lang, weighted, translit))
    return terms
