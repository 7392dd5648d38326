"""Clusters of support cases: which open cluster a new case joins, and whether its signature
is new. Pure: every instant is an argument.

A new case joins the open cluster it matches best (same category and component, the same
error codes, a similarity of at least `ClusterRules.threshold`, the cluster's last case
within the sliding `join_window`), or starts one. A signature no cluster (open or closed)
matched within `novelty_window` (30 days) is new.

How two signatures are compared (`compare`, `similarity`), each rule measured on the
labelled corpus in tests/corpus.py (bench/clusters.py prints the figures):

- **The same key and the same error codes, exactly.** A fuzzy score cannot see that E1042
  and E1043 differ; a report without a code is not compared with one that has one either
  (an uncoded cluster taking both codes would merge the two problems through it).
- **Content words only.** `Signature.text` minus placeholders, one-letter tokens and a
  fixed list of function words, greetings and sign-offs in English, German, Spanish and
  French (`STOPWORDS`): in reports of five to ten words, "Hi team," and "Thanks, Maria"
  otherwise weigh as much as the problem.
- **Named things must agree** (`FACETS`): the crypto asset, the network and the channel a
  report names. "BTC withdrawal stuck" and "USDT withdrawal stuck" are different problems
  that any text score finds alike (without this rule pairwise precision falls to 0.78);
  so are bridges to Polygon and to Arbitrum, and 2FA codes by SMS and by e-mail. Two
  signatures conflict on a facet when each names a value the other does not ({btc} and
  {usdt}); one naming more ({btc, eth} and {btc}) does not conflict. A name one typo away
  from a known one of 6+ letters counts ("arbitrrum").
- **At least one content word in common**, and then the score: the share of both sides'
  content words that the other side has, as written or mistyped (two words are one
  mistyped when rapidfuzz's `fuzz.ratio` of them is >= `TYPO_RATIO`: "withdrwal", "stuk").
  Chosen by measuring rapidfuzz's scorers on the content words first: token_set_ratio was
  the best of them (token_sort_ratio, ratio and WRatio split problems more at the same
  precision), with pairwise precision 0.99 and recall 0.97 at 45, but it scores letters,
  and unrelated words share letters: a question of three words sharing one with another
  scores 58, so only 39 % of the corpus's unrelated one-offs and 88 % of the first reports
  of its problems were flagged new. Words matched as words (rapidfuzz for the typos) give
  precision 0.998 and recall 0.96 at 25, with 52 % and 98 % flagged new.

A cluster is compared by its first case's words until it has `CONSENSUS_AFTER` cases, then
by its **consensus**: the content words at least `CONSENSUS_SHARE` of its cases used (and
at least two). The first report of a problem is often a noisy one (typos, a colleague's
name, an extra sentence); comparing every later report with it splits the problem into
several clusters (pairwise recall 0.89 without the consensus). The consensus drops the
noise as cases join ("btc withdrawal stuck pending txid"), and moves only by majority, so
a wrong join does not drag a cluster towards another problem the way keeping several
exemplars did (chains of joins merged whole problems). A cluster remembers the words of
its cases in `ClusterEntry.words`, at most `WORD_MEMORY` of them.

What no rule here can see: words every report of some kind carries without naming a
problem (a macro's "Could not find it in the help center"). Unrelated reports sharing such
a sentence read alike, and once a cluster's consensus is that sentence, it takes every
report that has it. Masking macros upstream, or words weighted by how many clusters use
them, would; neither is done yet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from incident.domain.signatures import Signature

# Cases before a cluster is compared by its consensus rather than its first case's words.
CONSENSUS_AFTER = 3
# Share of a cluster's cases that must have used a word for it to be in the consensus.
CONSENSUS_SHARE = 0.4
# A consensus shorter than this is too easily contained in anything: the first case's
# words are used instead.
CONSENSUS_MIN_WORDS = 3
# Two words are one word mistyped at this rapidfuzz ratio (0-100) or more: "withdrwal",
# "stuk", "pendng". Only words this long are matched so: "bct" is not "btc" but a word.
TYPO_RATIO = 80.0
TYPO_MIN_LENGTH = 4
# Words a cluster remembers (with how many of its cases used each). Past this, words used
# once are forgotten: names, typos and one-off details, which could never reach consensus.
WORD_MEMORY = 64

# Function words, greetings and sign-offs, and the words of every escalation ("customer"),
# by language. Negations ("not", "nicht", "no", "pas") are kept: they are the problem.
_EN = """
    a an the and or but if then so of to in on at by for from with without into onto over
    under about after before since until while as than too very just also again already yet
    only even whether because although though however via per i me my mine myself we us
    our ours you your yours he him his she her hers it its they them their theirs this that
    these those is am are was were be been being have has had having do does did doing will
    would shall should can could may might must what which who whom whose when where why how
    there here all any both each few more most other some such own same hi hello hey dear
    team support thanks thank regards best please help asap urgent cheers kind greetings
    good morning afternoon evening customer customers cust
"""
_DE = """
    der die das den dem des ein eine einer eines einem einen und oder aber wenn dann von zu
    im am an auf bei für mit ohne seit nach vor über unter um aus ich mich mir mein meine
    meinen meinem meiner wir uns unser unsere du dein sie ihr ihre es er ist sind war waren
    bin bist sein hat habe haben hatte wird werden wurde wurden kann können noch schon auch
    nur sehr hallo guten tag danke viele grüsse gruesse mfg bitte schnell helfen geehrte
    damen herren zusammen kunde kundin
"""
_ES = """
    el la los las un una unos unas y o pero si de del al en con sin por para desde hasta que
    mi mis tu tus su sus nuestro yo me nos es son está están estoy era fue ha he han hay ya
    también muy lo le les se hola buenos días equipo gracias saludos ayuda favor cliente
"""
_FR = """
    le la les un une des et ou mais si de du au aux à en dans sur sous avec sans pour par
    depuis que qui je me moi mon ma mes nous notre nos vous votre vos il elle ils elles est
    sont suis était ai as ont avons très aussi déjà encore bonjour merci cordialement avance
    madame monsieur équipe
"""
STOPWORDS = frozenset(word for words in (_EN, _DE, _ES, _FR) for word in words.split())

# What a report names, by facet: asset, network, channel. Spellings map to one name.
_ASSETS = {
    **dict.fromkeys(("btc", "bitcoin", "bitcoins", "xbt"), "btc"),
    **dict.fromkeys(("eth", "ether"), "eth"),
    **dict.fromkeys(("usdt", "tether"), "usdt"),
    **dict.fromkeys(("xrp", "ripple"), "xrp"),
    **dict.fromkeys(("doge", "dogecoin"), "doge"),
    **dict.fromkeys(("ltc", "litecoin"), "ltc"),
    **dict.fromkeys(("ada", "cardano"), "ada"),
    **{name: name for name in ("usdc", "sol", "trx", "bnb", "avax", "dai", "matic", "eurc")},
}
_NETWORKS = {
    **dict.fromkeys(("ethereum", "erc20"), "ethereum"),
    **dict.fromkeys(("tron", "trc20"), "tron"),
    **dict.fromkeys(("bsc", "bep20"), "bsc"),
    **dict.fromkeys(("solana", "spl"), "solana"),
    **{name: name for name in ("polygon", "arbitrum", "optimism", "lightning", "avalanche")},
}
_CHANNELS = {
    "sms": "sms",
    **dict.fromkeys(("email", "emails", "mail"), "email"),
    **dict.fromkeys(("authenticator", "totp"), "totp"),
    "push": "push",
}
FACETS: tuple[dict[str, str], ...] = (_ASSETS, _NETWORKS, _CHANNELS)
_NAMED = {word: (index, name) for index, facet in enumerate(FACETS) for word, name in facet.items()}
# Only long names are matched with a typo: one edit from "sol" or "eth" is another word.
_TYPO_NAMES = sorted(word for word in _NAMED if len(word) >= 6)

_WORD = re.compile(r"<\w+>|\w+")

Facets = tuple[frozenset[str], ...]


@dataclass(frozen=True)
class ClusterRules:
    """When a case joins a cluster, and how long a signature counts as seen."""

    threshold: float = 25.0  # `compare` score (0-100) a case needs to join a cluster
    join_window: timedelta = timedelta(hours=72)  # since the cluster's last case: sliding
    novelty_window: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 100:
            raise ValueError("threshold must be in (0, 100]")
        if self.join_window <= timedelta(0) or self.novelty_window <= timedelta(0):
            raise ValueError("windows must be positive")

    @property
    def memory(self) -> timedelta:
        """How long a cluster matters after its last case: to join it, or for novelty."""
        return max(self.join_window, self.novelty_window)


@dataclass(frozen=True)
class Comparable:
    """A signature as `compare` reads it, worked out once."""

    key: tuple[str, str]
    codes: tuple[str, ...]
    words: frozenset[str]
    facets: Facets


def content_words(text: str) -> list[str]:
    """The words of a masked text that say what the problem is, in order (see above)."""
    words = _WORD.findall(text.replace("e-mail", "email"))
    return [w for w in words if len(w) > 1 and w[0] != "<" and w not in STOPWORDS]


def _facets(words: Iterable[str]) -> Facets:
    found: tuple[set[str], ...] = tuple(set() for _ in FACETS)
    for word in words:
        named = _NAMED.get(word)
        if named is None and len(word) >= 6:
            near = process.extractOne(
                word, _TYPO_NAMES, scorer=Levenshtein.distance, score_cutoff=1
            )
            named = _NAMED[near[0]] if near is not None else None
        if named is not None:
            found[named[0]].add(named[1])
    return tuple(frozenset(names) for names in found)


def _comparable(signature: Signature, words: Iterable[str]) -> Comparable:
    unique = frozenset(words)
    return Comparable(signature.key(), signature.error_codes, unique, _facets(unique))


def comparable(signature: Signature) -> Comparable:
    """`signature` prepared for `compare`."""
    return _comparable(signature, content_words(signature.text))


def _conflict(one: Facets, other: Facets) -> bool:
    """Each names something the other does not, on some facet ({btc} and {usdt})."""
    return any(a - b and b - a for a, b in zip(one, other, strict=True))


def _typos(words: list[str], others: list[str]) -> int:
    """How many of `words` are one of `others` mistyped."""
    return sum(
        process.extractOne(word, others, scorer=fuzz.ratio, score_cutoff=TYPO_RATIO) is not None
        for word in words
    )


def compare(one: Comparable, other: Comparable, cutoff: float = 0.0) -> float:
    """How alike two signatures are, 0-100: 0 unless key, codes and named things agree and
    a content word is shared; then the share of both sides' content words the other side
    has, as written or mistyped (rapidfuzz's ratio of the two words >= `TYPO_RATIO`).
    Below `cutoff`, 0 (worked out only as far as needed to know it)."""
    if one.key != other.key or one.codes != other.codes:
        return 0.0
    shared = len(one.words & other.words)
    if not shared or _conflict(one.facets, other.facets):
        return 0.0
    total = len(one.words) + len(other.words)
    mine = [w for w in one.words - other.words if len(w) >= TYPO_MIN_LENGTH]
    theirs = [w for w in other.words - one.words if len(w) >= TYPO_MIN_LENGTH]
    if 100.0 * (2 * shared + len(mine) + len(theirs)) / total < cutoff:
        return 0.0
    found = 2 * shared
    if mine and theirs:
        found += _typos(mine, theirs) + _typos(theirs, mine)
    score = 100.0 * found / total
    return score if score >= cutoff else 0.0


def similarity(a: Signature, b: Signature) -> float:
    """THE similarity of two signatures (`compare` of their comparables)."""
    return compare(comparable(a), comparable(b))


# --- Clusters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterEntry:
    """A cluster as the index knows it: what it reads like and when it was last seen.

    `signature` is its first case's (its key and error codes are every case's); `words`
    counts the content words of its cases (how many cases used each), from which the
    consensus is worked out; `cases` is how many joined. Empty `words` means the first
    case's words once each."""

    id: int
    signature: Signature
    first_seen: datetime
    last_seen: datetime
    open: bool = True
    cases: int = 1
    words: tuple[tuple[str, int], ...] = ()

    @cached_property
    def consensus(self) -> tuple[str, ...] | None:
        """The words most of its cases used, once it has enough cases and they agree."""
        if self.cases < CONSENSUS_AFTER or not self.words:
            return None
        needed = max(2.0, CONSENSUS_SHARE * self.cases)
        consensus = tuple(word for word, count in self.words if count >= needed)
        return consensus if len(consensus) >= CONSENSUS_MIN_WORDS else None

    @cached_property
    def representative(self) -> Comparable:
        """What cases are compared with: the consensus, else the first case's words."""
        words = self.consensus
        return _comparable(
            self.signature, content_words(self.signature.text) if words is None else words
        )


def _counted(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """Most used first (then alphabetically, so that equal clusters are equal); words used
    once forgotten past `WORD_MEMORY`, and the least used after them."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if len(ordered) > WORD_MEMORY:
        ordered = [item for item in ordered if item[1] > 1][:WORD_MEMORY]
    return tuple(ordered)


def new_cluster(id_: int, signature: Signature, at: datetime) -> ClusterEntry:
    """A cluster started by a case with `signature` at `at`."""
    words = dict.fromkeys(content_words(signature.text), 1)
    return ClusterEntry(id_, signature, at, at, words=_counted(words))


def joined(entry: ClusterEntry, signature: Signature, at: datetime) -> ClusterEntry:
    """`entry` after a case with `signature` joined it at `at`."""
    counts = dict(entry.words) or dict.fromkeys(content_words(entry.signature.text), 1)
    for word in set(content_words(signature.text)):
        counts[word] = counts.get(word, 0) + 1
    return replace(
        entry, last_seen=max(entry.last_seen, at), cases=entry.cases + 1, words=_counted(counts)
    )


def _joinable(entry: ClusterEntry, at: datetime, rules: ClusterRules) -> bool:
    return entry.open and entry.last_seen >= at - rules.join_window


def _remembered(entry: ClusterEntry, at: datetime, rules: ClusterRules) -> bool:
    return entry.last_seen >= at - rules.novelty_window


def _better(score: float, id_: int, best: tuple[float, int] | None) -> bool:
    """Most similar first; among equals the oldest cluster (lowest id)."""
    return best is None or score > best[0] or (score == best[0] and id_ < best[1])


def match_plain(
    entries: Iterable[ClusterEntry], signature: Signature, at: datetime, rules: ClusterRules
) -> int | None:
    """The plain path: `signature` compared with every entry. What `ClusterIndex.match`
    must answer, and the baseline it is measured against."""
    query = comparable(signature)
    best: tuple[float, int] | None = None
    for entry in entries:
        if _joinable(entry, at, rules):
            score = compare(query, entry.representative, rules.threshold)
            if score > 0 and _better(score, entry.id, best):
                best = (score, entry.id)
    return None if best is None else best[1]


def seen_before_plain(
    entries: Iterable[ClusterEntry], signature: Signature, at: datetime, rules: ClusterRules
) -> bool:
    """The plain path of `ClusterIndex.seen_before`."""
    query = comparable(signature)
    return any(
        _remembered(entry, at, rules) and compare(query, entry.representative, rules.threshold) > 0
        for entry in entries
    )


@dataclass(frozen=True)
class Assignment:
    """Where a case went: the cluster after it joined or started it, and whether its
    signature was new (no cluster matched it within the novelty window)."""

    entry: ClusterEntry
    joined: bool
    new_signature: bool


def _carried(entry: ClusterEntry, moved: ClusterEntry) -> ClusterEntry:
    """`moved` (`entry` with its times or state changed) with what `entry` reads like
    carried over (its cached consensus and representative), not worked out again."""
    for cached in ("consensus", "representative"):
        if cached in entry.__dict__:
            moved.__dict__[cached] = entry.__dict__[cached]
    return moved


Bucket = tuple[tuple[str, str], tuple[str, ...]]


def _bucket(entry: ClusterEntry) -> Bucket:
    return (entry.signature.key(), entry.signature.error_codes)


class ClusterIndex:
    """The clusters of some keys, indexed so that a case is compared with the few that
    could match it, with the same answers as the plain path (`match_plain`).

    Clusters are bucketed by key and error codes (`compare` is 0 across buckets), and in a
    bucket an inverted index maps each content word of a cluster's representative to the
    clusters using it: `compare` is 0 without a shared word, so the clusters sharing none
    of the query's words are skipped, and the index is exact, not an approximation. The
    candidates are then filtered (open, in the window) and scored with `compare`.

    Not thread-safe; an in-process cache of what the database holds: `reload` a key's
    clusters, `add` or `join` as cases come, `prune` what no rule looks at any more."""

    def __init__(self, rules: ClusterRules) -> None:
        self.rules = rules
        self._entries: dict[int, ClusterEntry] = {}
        # (key, codes) -> content word -> ids of the clusters whose representative uses it
        self._buckets: dict[Bucket, dict[str, set[int]]] = {}
        self._keys: dict[tuple[str, str], set[int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._entries

    def __iter__(self) -> Iterator[ClusterEntry]:
        return iter(self._entries.values())

    def get(self, id_: int) -> ClusterEntry:
        return self._entries[id_]

    # --- changes ---

    def add(self, entry: ClusterEntry) -> None:
        """Add `entry`, or replace the cluster with its id."""
        if entry.id in self._entries:
            self.remove(entry.id)
        self._entries[entry.id] = entry
        postings = self._buckets.setdefault(_bucket(entry), {})
        for word in entry.representative.words:
            postings.setdefault(word, set()).add(entry.id)
        self._keys.setdefault(entry.signature.key(), set()).add(entry.id)

    def load(self, entries: Iterable[ClusterEntry]) -> None:
        for entry in entries:
            self.add(entry)

    def reload(self, key: tuple[str, str], entries: Iterable[ClusterEntry]) -> None:
        """Replace the clusters of `key` (category, component) with `entries`."""
        entries = list(entries)
        for entry in entries:
            if entry.signature.key() != key:
                raise ValueError(f"cluster {entry.id} is not of {key}")
        for id_ in list(self._keys.get(key, ())):
            self.remove(id_)
        self.load(entries)

    def remove(self, id_: int) -> None:
        entry = self._entries.pop(id_)
        postings = self._buckets[_bucket(entry)]
        for word in entry.representative.words:
            ids = postings[word]
            ids.discard(id_)
            if not ids:
                del postings[word]
        if not postings:
            del self._buckets[_bucket(entry)]
        ids = self._keys[entry.signature.key()]
        ids.discard(id_)
        if not ids:
            del self._keys[entry.signature.key()]

    def touch(self, id_: int, at: datetime) -> ClusterEntry:
        """The cluster seen again at `at` (its window slides); what it reads like stays."""
        entry = self._entries[id_]
        moved = replace(entry, last_seen=max(entry.last_seen, at))
        self._entries[id_] = _carried(entry, moved)
        return moved

    def close(self, id_: int) -> ClusterEntry:
        """No case joins it any more; it still counts for novelty."""
        entry = self._entries[id_]
        self._entries[id_] = _carried(entry, replace(entry, open=False))
        return self._entries[id_]

    def join(self, id_: int, signature: Signature, at: datetime) -> ClusterEntry:
        """A case with `signature` joined cluster `id_` at `at`: the cluster as it is now
        (to be stored: its consensus may have moved)."""
        entry = joined(self._entries[id_], signature, at)
        self.add(entry)
        return entry

    def prune(self, at: datetime) -> list[int]:
        """Forget the clusters no case can join and no signature can be matched with any
        more (last seen before the longer window); their ids."""
        horizon = at - self.rules.memory
        gone = [id_ for id_, entry in self._entries.items() if entry.last_seen < horizon]
        for id_ in gone:
            self.remove(id_)
        return gone

    # --- questions ---

    def _candidates(self, query: Comparable) -> list[ClusterEntry]:
        """The clusters of the query's bucket sharing a content word with it."""
        postings = self._buckets.get((query.key, query.codes))
        if postings is None:
            return []
        ids: set[int] = set()
        for word in query.words:
            found = postings.get(word)
            if found is not None:
                ids |= found
        return [self._entries[id_] for id_ in ids]

    def _scan(self, query: Comparable, at: datetime) -> tuple[tuple[float, int] | None, bool]:
        """The best cluster to join (score, id), and whether any cluster remembered for
        novelty matches: one pass over the candidates."""
        best: tuple[float, int] | None = None
        seen = False
        for entry in self._candidates(query):
            joinable = _joinable(entry, at, self.rules)
            if joinable or (not seen and _remembered(entry, at, self.rules)):
                score = compare(query, entry.representative, self.rules.threshold)
                if score > 0:
                    seen = seen or _remembered(entry, at, self.rules)
                    if joinable and _better(score, entry.id, best):
                        best = (score, entry.id)
        return best, seen

    def match(self, signature: Signature, at: datetime) -> int | None:
        """The open cluster a case with `signature` at `at` joins, if any: the most similar
        (>= threshold) whose last case is within the join window; ties to the oldest."""
        best, _ = self._scan(comparable(signature), at)
        return None if best is None else best[1]

    def seen_before(self, signature: Signature, at: datetime) -> bool:
        """Whether any cluster, open or closed, last seen within the novelty window is
        similar enough: a signature not seen before is new."""
        return self._scan(comparable(signature), at)[1]

    def assign(self, signature: Signature, at: datetime, new_id: int) -> Assignment:
        """A case with `signature` at `at` joins its cluster, or starts cluster `new_id`."""
        if new_id in self._entries:
            raise ValueError(f"cluster {new_id} exists")
        best, seen = self._scan(comparable(signature), at)
        new_signature = not seen
        if best is None:
            entry = new_cluster(new_id, signature, at)
            self.add(entry)
            return Assignment(entry, joined=False, new_signature=new_signature)
        return Assignment(self.join(best[1], signature, at), True, new_signature)
