"""Optional sentence embeddings for the FAQ ranker (the ``embeddings`` extra: ``pip install -e ".[embeddings]"``).

The vectors are WordLlama's static token embeddings (``l2_supercat``, 256 dimensions, MIT), which the ``wordllama``
wheel ships inside the package: a sentence is the mean of its tokens' vectors, so embedding a message is a table
lookup (microseconds), not a neural network. This module reads the weights and the tokenizer file from the
installed package's folder itself; it never imports ``wordllama`` (whose loader would fall back to downloading
from a model hub), so nothing here can touch the network. It needs NumPy and ``tokenizers`` (both installed with
``wordllama``). When any of that is missing the bot runs on the lexical matcher alone and says why once
(``availability``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.cachedir import cache_folder
from bot.core.text import normalize

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

PACKAGE = "wordllama"
WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
TENSOR = "embedding.weight"
#: an entry's similarity is also read as the mean of its best few phrasings (one odd phrasing proves little)
TOP_PHRASINGS = 3
#: embedded phrasings kept on disk (``cache_folder``): the newest few knowledge versions
CACHE_KEEP = 8
CACHE_VERSION = 1
#: words whose token vectors are kept summed (a message's words are looked up, not tokenized again)
WORD_CACHE = 50_000


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether the embeddings can be used here, and if not, why (one line for logs and ``runbot check``)."""

    ok: bool
    reason: str


def _package_folder() -> Path | None:
    """The installed ``wordllama`` package's folder, found without importing it."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


class Embedder:
    """Static token vectors and their tokenizer, read from files; ``embed`` returns unit-length rows.

    The tokenizer marks word starts and never merges across them, so a text's tokens are its words' tokens in a
    row: each word is tokenized once (its token ids are kept, and can be handed over from a cache with ``know``) and
    its vectors' sum is kept for ``WORD_CACHE`` words, so a message costs a few dictionary look-ups and additions.
    The tokenizer itself is loaded only when a word is new.
    """

    def __init__(self, weights: Path, tokenizer: Path) -> None:
        import numpy as np

        with weights.open("rb") as f:  # safetensors: an 8-byte header size, a JSON header, then the raw tensors
            (size,) = struct.unpack("<Q", f.read(8))
            header: dict[str, Any] = json.loads(f.read(size))
        info = header[TENSOR]
        if info["dtype"] != "F16" or len(info["shape"]) != 2:
            raise ValueError(f"{weights.name}: expected a 2-D F16 tensor '{TENSOR}', got {info['dtype']}")
        start, end = info["data_offsets"]
        rows, dim = info["shape"]
        if end - start != rows * dim * 2 or weights.stat().st_size < 8 + size + end:
            raise ValueError(f"{weights.name}: tensor size does not match its shape")
        self._np = np
        # mapped, not read: only the rows of the words in use are paged in
        self._vectors = np.memmap(weights, dtype=np.float16, mode="r", offset=8 + size + start, shape=(rows, dim))
        self._tokenizer_file = tokenizer
        self._tokenizer: Any = None
        self._ids: dict[str, tuple[int, ...]] = {}
        stat_w, stat_t = weights.stat(), tokenizer.stat()
        #: what a cache of this embedder's output must match
        self.identity = f"{weights.name}:{stat_w.st_size}:{stat_w.st_mtime_ns}:{stat_t.st_size}:{stat_t.st_mtime_ns}"
        self.dim = dim
        self._zero = np.zeros(dim, dtype=np.float32)
        self._word = lru_cache(maxsize=WORD_CACHE)(self._word_uncached)

    def tokenizer(self) -> Any:
        """The tokenizer, loaded on first use (about 50 ms)."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(self._tokenizer_file))
        return self._tokenizer

    def know(self, ids: Mapping[str, Sequence[int]]) -> None:
        """Token ids of words, from a cache: these words need no tokenizer."""
        self._ids.update((w, tuple(i)) for w, i in ids.items())

    def token_ids(self, words: Sequence[str]) -> dict[str, tuple[int, ...]]:
        """The token ids of each word (the new ones tokenized in one batch)."""
        found = {w: self._ids[w] for w in dict.fromkeys(words) if w in self._ids}
        new = [w for w in dict.fromkeys(words) if w not in found]
        if new:
            encoded = self.tokenizer().encode_batch(new, add_special_tokens=False)
            fresh = {w: tuple(e.ids) for w, e in zip(new, encoded, strict=True)}
            if len(self._ids) + len(fresh) > WORD_CACHE:
                self._ids.clear()  # a bound on memory: words are tokenized again when they come back
            self._ids.update(fresh)
            found.update(fresh)
        return found

    def known_words(self) -> dict[str, tuple[int, ...]]:
        """Every word tokenized so far (for a cache)."""
        return dict(self._ids)

    def _word_uncached(self, word: str) -> tuple[np.ndarray, int]:
        ids = self.token_ids([word])[word]
        if not ids:
            return self._zero, 0
        return self._vectors[list(ids)].astype(self._np.float32).sum(axis=0), len(ids)

    def embed_one(self, text: str) -> np.ndarray:
        """The unit vector of one text (words separated by single spaces, as ``normalize`` leaves them)."""
        total = self._zero
        count = 0
        for word in text.split():
            vector, n = self._word(word)
            if n:
                total = total + vector
                count += n
        if not count:
            return self._zero
        norm = float(self._np.sqrt(total @ total))
        return total / norm if norm > 0 else self._zero

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text (a text with no token gets zeros): the distinct words tokenized in one batch,
        each text the sum of its words' vectors."""
        np = self._np
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        words = list(dict.fromkeys(w for t in texts for w in t.split()))
        if not words:
            return out
        sums = np.zeros((len(words), self.dim), dtype=np.float32)
        found = self.token_ids(words)
        ids = [found[w] for w in words]
        tokenized = [i for i, got in enumerate(ids) if got]
        if tokenized:
            flat = np.array([t for i in tokenized for t in ids[i]], dtype=np.intp)
            sums[tokenized] = _segment_sums(np, self._vectors[flat], [len(ids[i]) for i in tokenized])
        index = {w: i for i, w in enumerate(words)}
        split = [t.split() for t in texts]
        filled = [i for i, ws in enumerate(split) if ws]
        cols = np.array([index[w] for i in filled for w in split[i]], dtype=np.intp)
        out[filled] = _segment_sums(np, sums[cols], [len(split[i]) for i in filled])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


def _segment_sums(np: Any, rows: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
    """The sums of consecutive groups of ``rows`` (``lengths``: each group's size, all above 0). Summed along the
    rows of the transposed copy, which numpy does far faster than down the columns."""
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.intp)
    columns = np.ascontiguousarray(rows.T, dtype=np.float32)
    return np.add.reduceat(columns, starts, axis=1).T


@cache
def _load() -> tuple[Embedder | None, Availability]:
    folder = _package_folder()
    if folder is None:
        return None, Availability(False, "the embeddings extra is not installed (pip install -e '.[embeddings]')")
    weights, tokenizer = folder / WEIGHTS, folder / TOKENIZER
    if not weights.is_file() or not tokenizer.is_file():
        return None, Availability(False, f"the {PACKAGE} package has no bundled {WEIGHTS} or {TOKENIZER}")
    if importlib.util.find_spec("tokenizers") is None:
        return None, Availability(False, "the embeddings need the tokenizers package")
    try:
        embedder = Embedder(weights, tokenizer)
    except ImportError as exc:
        return None, Availability(False, f"the embeddings need NumPy ({exc})")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        return None, Availability(False, f"the bundled embeddings could not be read ({exc})")
    return embedder, Availability(True, f"{PACKAGE} {WEIGHTS} ({embedder.dim} dimensions)")


def installed() -> bool:
    """Whether the package and its bundled files are there (nothing imported or read: cheap)."""
    folder = _package_folder()
    return folder is not None and (folder / WEIGHTS).is_file() and (folder / TOKENIZER).is_file()


def shipped_embedder() -> Embedder | None:
    """The packaged embedder, read once per process (the weights are immutable), or None when unavailable."""
    return _load()[0]


def availability() -> Availability:
    """Whether the embeddings are installed and readable here, with the reason when not."""
    return _load()[1]


class EntryVectors:
    """The FAQ's phrasings and keywords, embedded on first use (or at ``prepare``); ``similarities`` compares a
    message with every entry. Built per knowledge load; the embedder is read once per process. Any failure of the
    optional extra turns it off (logged once): the FAQ then answers with the words alone, never an error."""

    def __init__(
        self, phrasings: Mapping[str, Sequence[str]], loader: Callable[[], Embedder | None], *, cache: bool = True
    ) -> None:
        self.ids: tuple[str, ...] = tuple(i for i, texts in phrasings.items() if texts)
        self._phrasings = {i: tuple(phrasings[i]) for i in self.ids}
        self._loader = loader
        self._cache = cache
        self._ready: _Ready | None = None
        self._failed = False

    @classmethod
    def of(cls, entries: Iterable[Any], loader: Callable[[], Embedder | None]) -> EntryVectors:
        """The vectors of entries that have ``id``, ``questions`` and ``keywords`` (their texts normalized as the
        matcher reads them)."""
        return cls({e.id: [normalize(t) for t in (*e.questions, *e.keywords)] for e in entries}, loader)

    def prepare(self) -> bool:
        """Load the embedder and embed the phrasings now (instead of at the first message); False when unavailable."""
        if self._ready is None and not self._failed:
            try:
                embedder = self._loader()
                if embedder is None:
                    raise RuntimeError(availability().reason)
                self._ready = self._cached(embedder) if self._cache else None
                if self._ready is None:
                    self._ready = _Ready(embedder, self.ids, self._phrasings)
                    if self._cache:
                        self._store(embedder, self._ready)
            except Exception as exc:  # the optional extra never breaks the FAQ path
                self._failed = True
                log.warning("FAQ embeddings off, the lexical matcher decides alone: %s", exc)
        return self._ready is not None

    def similarities(self, texts: Sequence[str], only: Iterable[str] | None = None) -> dict[str, tuple[float, float]]:
        """Per entry (every one, or those in ``only``), the best cosine similarity of any of ``texts`` with one of
        its phrasings, and the mean of its best ``TOP_PHRASINGS`` (fewer when it has fewer); empty when the
        embeddings are unavailable."""
        if not self.prepare() or not self.ids or not texts:
            return {}
        assert self._ready is not None
        try:
            return self._ready.similarities(self.ids, texts, only)
        except Exception as exc:  # e.g. the tokenizer file is unreadable: said once, then the words alone
            self._failed, self._ready = True, None
            log.warning("FAQ embeddings off, the lexical matcher decides alone: %s", exc)
            return {}

    def _key(self, embedder: Embedder) -> str:
        h = hashlib.sha256(f"{CACHE_VERSION}\0{embedder.identity}".encode())
        for entry_id in self.ids:
            h.update(b"\1" + entry_id.encode() + b"\0" + "\0".join(self._phrasings[entry_id]).encode())
        return h.hexdigest()[:24]

    def _cached(self, embedder: Embedder) -> _Ready | None:
        path = cache_folder() / f"faq-vectors-{self._key(embedder)}.npz"
        np = embedder._np
        try:
            with np.load(path, allow_pickle=False) as data:
                matrix, words, lengths, flat = data["matrix"], data["words"], data["lengths"], data["ids"]
            bounds = np.concatenate(([0], np.cumsum(lengths))).tolist()
            if matrix.shape != (embedder.dim, sum(len(self._phrasings[i]) for i in self.ids)):
                return None
            ids = flat.tolist()
            embedder.know({str(w): ids[bounds[n] : bounds[n + 1]] for n, w in enumerate(words.tolist())})
            return _Ready(embedder, self.ids, self._phrasings, matrix=matrix.astype(np.float32))
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            return None  # none yet, or broken: computed again

    def _store(self, embedder: Embedder, ready: _Ready) -> None:
        np = embedder._np
        folder = cache_folder()
        path = folder / f"faq-vectors-{self._key(embedder)}.npz"
        known = embedder.known_words()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".faq-vectors-", suffix=".npz", delete=False) as f:
                np.savez(
                    f,
                    matrix=ready.matrix,
                    words=np.array(list(known), dtype=str),
                    lengths=np.array([len(v) for v in known.values()], dtype=np.int64),
                    ids=np.array([i for v in known.values() for i in v], dtype=np.int64),
                )
            os.replace(f.name, path)
            old = sorted(folder.glob("faq-vectors-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
            for stale in old[CACHE_KEEP:]:
                stale.unlink(missing_ok=True)
        except OSError as exc:
            log.info("FAQ embeddings not cached (%s): computed again next time", exc)


class _Ready:
    """The embedded phrasings as a matrix, with each entry's rows."""

    def __init__(
        self,
        embedder: Embedder,
        ids: tuple[str, ...],
        phrasings: Mapping[str, Sequence[str]],
        matrix: np.ndarray | None = None,
    ) -> None:
        np = embedder._np
        self.embedder = embedder
        texts = [t for entry_id in ids for t in phrasings[entry_id]]
        self.matrix = embedder.embed(texts).T.copy() if matrix is None else matrix  # dim x phrasings
        # each entry's phrasings as a row of indices into the similarities, padded with a slot that holds -1
        width = max((len(phrasings[i]) for i in ids), default=1)
        self._slots = np.full((len(ids), width), len(texts), dtype=np.intp)
        self._counts = np.zeros(len(ids), dtype=np.float32)
        #: each entry's phrasing vectors as rows, for a few entries at a time
        self._blocks: dict[str, np.ndarray] = {}
        at = 0
        for row, entry_id in enumerate(ids):
            n = len(phrasings[entry_id])
            self._slots[row, :n] = np.arange(at, at + n)
            self._counts[row] = min(n, TOP_PHRASINGS)
            self._blocks[entry_id] = np.ascontiguousarray(self.matrix[:, at : at + n].T)
            at += n

    def similarities(
        self, ids: tuple[str, ...], texts: Sequence[str], only: Iterable[str] | None = None
    ) -> dict[str, tuple[float, float]]:
        np = self.embedder._np
        if only is not None:
            queries = [self.embedder.embed_one(t) for t in texts]
            out: dict[str, tuple[float, float]] = {}
            for entry_id in only:
                block = self._blocks.get(entry_id)
                if block is None:
                    continue
                sims = block @ queries[0] if len(queries) == 1 else np.max([block @ q for q in queries], axis=0)
                values = sorted(sims.tolist(), reverse=True)
                top = values[:TOP_PHRASINGS]
                out[entry_id] = (values[0], sum(top) / len(top))
            return out
        if len(texts) == 1:
            sims = self.embedder.embed_one(texts[0]) @ self.matrix
        else:
            sims = (np.stack([self.embedder.embed_one(t) for t in texts]) @ self.matrix).max(axis=0)
        table = np.append(sims, np.float32(-1.0))[self._slots]  # entries x phrasings, padding -1
        width = table.shape[1]
        k = min(TOP_PHRASINGS, width)
        top = np.partition(table, width - k, axis=1)[:, width - k :]
        top = np.where(top > -1.0, top, 0.0)
        best = table.max(axis=1)
        mean = top.sum(axis=1) / self._counts
        return {entry_id: (b, m) for entry_id, b, m in zip(ids, best.tolist(), mean.tolist(), strict=True)}
