"""Find faces by description under attribute filters: a face index on disk and filtered
nearest-neighbour search over it (`flip index`, `flip search`).

    model, processor = flip.load()
    index = FaceIndex.create("my.index", model, processor)     # or FaceIndex.open("my.index")
    index.add_files(model, processor, ["photos/a.jpg", ...])   # incremental; a rerun resumes
    query = encode_query(model, processor, text="a smiling woman with glasses")
    hits = index.search(query, k=10, where={"hair_color": ["grey"]})

Design choices
- SQLite is the source of truth (`faces.sqlite` in the index folder): one row per face with its
  source path, box, embedding (float32 blob) and the prediction of every task by description
  (one TEXT column per task: the synthetic world's attributes, `flip.data.records.ATTRIBUTES`).
  Each batch of images is one transaction, so an interrupted run loses at most one batch, and the
  same command run again skips the faces already indexed; new paths are added (incremental).
- The FAISS index (`vectors.faiss`) is a cache derived from the table, written atomically. Rows are
  never deleted, so row id i is FAISS id i; on open the cache is topped up with the rows it lacks,
  or rebuilt when the kind the row count calls for has changed.
- Exact inner product (`IndexFlatIP`) below `SearchConfig.approx_min_rows` rows, IVF-Flat above:
  the cross-over is where one exact query stops being fast on one core (measured by
  `benchmarks/bench_search.py`; the README has the figures). IVF rather than HNSW: an IVF scan applies an ID filter per list entry at no extra cost
  and degrades to an exact scan of the allowed rows, while a filtered HNSW walk loses its graph
  when few nodes pass.
- Filters (`where`) are equalities on task columns; they become a boolean mask over the rows
  (from the columns held in memory), passed to FAISS as an `IDSelectorBitmap` that the scan
  checks before scoring a row (pre-filtering). The rule by selectivity s, the fraction of rows that
  pass: the exact index scans all rows, exact whatever s. IVF probes `ceil(nprobe / s)` lists,
  capped at all of them, so that a filtered query meets as many allowed candidates as an
  unfiltered one; from s <= nprobe / nlist on it is an exact scan of the allowed rows. Gathering
  the allowed rows through a direct map and scoring only them was tried and dropped: it was
  slower than the selector's scan but for very narrow filters, and needs an extra map. Post-filtering (search k/s, then
  drop) is not used: it returns short lists when s is small.
- The index records the model's fingerprint (config, every weight, processor settings) and
  refuses a query embedded by another model.
- One face per image for now (the box is the whole image) until the face stage detects faces.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Version of the on-disk layout; `FaceIndex.open` refuses others.
INDEX_FORMAT = 1
TABLE_FILE = "faces.sqlite"
VECTORS_FILE = "vectors.faiss"
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError('face search needs FAISS: pip install "flip-face[search]"') from None
    return faiss


# -- the vector index -----------------------------------------------------------------------------
@dataclass
class SearchConfig:
    """How the vector index is built and searched."""

    approx_min_rows: int = 100_000  # from this many rows on, IVF-Flat instead of the exact index
    nlist: int | None = None  # IVF lists (default: sqrt(rows), between 16 and 65536)
    nprobe: int = 32  # lists an unfiltered IVF query probes
    train_rows: int = 64  # k-means training rows per IVF list (sampled from the vectors)
    search_threads: int = 1  # OpenMP threads per query: one query is fastest on one core (see README)
    seed: int = 0  # of the training sample

    def __post_init__(self):
        for name in ("approx_min_rows", "nprobe", "train_rows", "search_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SearchConfig.{name} must be an integer >= 1, got {value!r}")
        if self.nlist is not None and (not isinstance(self.nlist, int) or self.nlist < 1):
            raise ValueError(f"SearchConfig.nlist must be None or an integer >= 1, got {self.nlist!r}")

    def lists_for(self, rows: int) -> int:
        return self.nlist or int(min(65536, max(16, round(math.sqrt(rows)))))


@contextlib.contextmanager
def _omp_threads(n: int):
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class VectorIndex:
    """L2-normalised vectors (N, D) under FAISS, searched by inner product with an optional row mask.

    Ids are row numbers 0..N-1 in the order added. `kind` is "exact" or "ivf".
    """

    def __init__(self, index, config: SearchConfig | None = None):
        self.index = index
        self.config = config or SearchConfig()

    @classmethod
    def build(cls, vectors: np.ndarray, config: SearchConfig | None = None, kind: str | None = None) -> "VectorIndex":
        """The index `config` calls for at this many rows (or `kind`), holding `vectors`."""
        faiss = _faiss()
        config = config or SearchConfig()
        vectors = _as_matrix(vectors)
        n, dim = vectors.shape
        kind = kind or ("ivf" if n >= config.approx_min_rows else "exact")
        if kind == "exact":
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            nlist = min(config.lists_for(n), max(1, n // 8))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(config.seed)
            sample = vectors if n <= nlist * config.train_rows else \
                vectors[np.sort(rng.choice(n, nlist * config.train_rows, replace=False))]
            index.train(sample)
        else:
            raise ValueError(f"kind={kind!r}; choose 'exact' or 'ivf'")
        out = cls(index, config)
        out.add(vectors)
        return out

    @property
    def kind(self) -> str:
        return "ivf" if hasattr(self.index, "nlist") else "exact"

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def add(self, vectors: np.ndarray) -> None:
        vectors = _as_matrix(vectors)
        if len(vectors):
            self.index.add(vectors)

    def nprobe_for(self, allowed: int) -> int:
        """IVF lists to probe when `allowed` of the rows pass the filter (the rule in the docstring)."""
        nlist = int(self.index.nlist)
        if allowed >= self.ntotal:
            return min(nlist, self.config.nprobe)
        return min(nlist, math.ceil(self.config.nprobe * self.ntotal / max(allowed, 1)))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: scores and ids, both (Q, k), best first; -1 ids pad short lists.

        allowed: a boolean mask (N,) of the rows that may be returned (None: all).
        """
        faiss = _faiss()
        queries = _as_matrix(queries)
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries: expected dimension {self.dim}, got {queries.shape[1]}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        n_allowed = self.ntotal
        params = None
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (self.ntotal,):
                raise ValueError(f"allowed: expected a mask of shape ({self.ntotal},), got {allowed.shape}")
            n_allowed = int(allowed.sum())
        if n_allowed == 0 or self.ntotal == 0:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        if allowed is not None and n_allowed < self.ntotal:
            bits = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(self.ntotal, faiss.swig_ptr(bits))
            if self.kind == "ivf":
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self.nprobe_for(n_allowed))
            else:
                params = faiss.SearchParameters(sel=selector)
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.nprobe_for(n_allowed))
        with _omp_threads(self.config.search_threads):
            scores, ids = self.index.search(queries, k, params=params)
        return scores, ids

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (a temporary file renamed over `path`)."""
        faiss = _faiss()
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, config: SearchConfig | None = None) -> "VectorIndex":
        return cls(_faiss().read_index(str(path)), config)


def brute_force_search(vectors: np.ndarray, queries: np.ndarray, k: int,
                       allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The reference: exact top-k by inner product over the allowed rows, in numpy, by a full sort."""
    vectors, queries = _as_matrix(vectors), _as_matrix(queries)
    ids = np.arange(len(vectors)) if allowed is None else np.flatnonzero(allowed)
    scores = queries @ vectors[ids].T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return _padded(np.take_along_axis(scores, order, axis=1), ids[order], k)


def _padded(top_scores: np.ndarray, top_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    pad = k - top_ids.shape[1]
    if pad > 0:
        top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        top_ids = np.pad(top_ids, ((0, 0), (0, pad)), constant_values=-1)
    return top_scores.astype(np.float32), top_ids.astype(np.int64)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found ∩ truth| / |truth| (ids (Q, k); -1 entries ignored)."""
    total, hit = 0, 0
    for f, t in zip(found, truth):
        t = set(t[t >= 0].tolist())
        total += len(t)
        hit += len(t & set(f[f >= 0].tolist()))
    return hit / total if total else 1.0


def _as_matrix(x) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"expected vectors of shape (N, D), got {x.shape}")
    return x


# -- the model fingerprint and queries ------------------------------------------------------------
def model_fingerprint(model, processor) -> str:
    """A hash of everything that decides an embedding: the config, every weight and buffer, and the
    processor's settings. Two models share it only if they embed alike."""
    import torch

    from flip.zeroshot import _tokenizer_settings

    h = hashlib.blake2b(digest_size=16)
    config = getattr(model, "config", None)
    h.update((config.to_json_string(use_diff=False) if hasattr(config, "to_json_string") else repr(config)).encode())
    h.update(_tokenizer_settings(processor).encode())
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def encode_query(model, processor, text: str | None = None, image=None) -> np.ndarray:
    """One query embedding (D,), float32 and L2-normalised, from a text or a face image (a path,
    bytes, PIL image or array; the whole image is the face for now)."""
    import torch

    if (text is None) == (image is None):
        raise ValueError("give exactly one of text or image")
    device = next(model.parameters()).device
    with torch.inference_mode():
        if text is not None:
            if not text.strip():
                raise ValueError("the query text is empty")
            batch = {k: v.to(device) for k, v in processor.texts([text]).items()}
            emb = model.encode_text(batch)
        else:
            emb = model.encode_image(processor.images([image]).to(device))
    return emb[0].float().cpu().numpy()


# -- the face index -------------------------------------------------------------------------------
@dataclass
class Hit:
    """One search result: the face's row id, its score (cosine similarity), and its table row."""

    id: int
    score: float
    path: str
    face: int
    box: tuple[float, float, float, float]
    predictions: dict[str, str]

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "path": self.path, "face": self.face,
                "box": list(self.box), **self.predictions}


@dataclass
class AddReport:
    """What `FaceIndex.add_files` did: faces added, paths already there, and unreadable files."""

    added: int = 0
    already: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def default_tasks() -> list[str]:
    """The tasks an index predicts by default: the synthetic world's attributes that have prompt files."""
    from flip.data.records import ATTRIBUTES
    from flip.prompts import available_tasks

    known = set(available_tasks())
    return [t for t in ATTRIBUTES if t in known]


class FaceIndex:
    """An index folder: the face table (SQLite) and the vector index derived from it."""

    def __init__(self, path: Path, conn: sqlite3.Connection, meta: dict[str, Any], config: SearchConfig):
        self.path, self.conn, self.meta, self.config = path, conn, meta, config
        self._vectors: VectorIndex | None = None
        self._columns: dict[str, np.ndarray] | None = None

    # -- opening ----------------------------------------------------------------------------------
    @staticmethod
    def is_index(path: str | os.PathLike) -> bool:
        return (Path(path) / TABLE_FILE).is_file()

    @classmethod
    def create(cls, path: str | os.PathLike, model, processor, tasks: Sequence[str] | None = None,
               model_name: str | None = None, config: SearchConfig | None = None) -> "FaceIndex":
        """A new, empty index folder (refuses one that exists and is not empty)."""
        from flip.prompts import load_prompts

        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FileExistsError(f"{path}: exists and is not an empty folder; give a new path or an existing index")
        tasks = list(default_tasks() if tasks is None else tasks)
        classes = {}
        for task in tasks:
            if not _COLUMN.match(task) or task in _FIXED_COLUMNS:
                raise ValueError(f"tasks: {task!r} cannot be a column name (letters, digits and _ only)")
            classes[task] = list(load_prompts(task).classes)
        dim = int(model.config.projection_dim) if hasattr(model.config, "projection_dim") else None
        meta = {"format": INDEX_FORMAT, "model": model_name, "fingerprint": model_fingerprint(model, processor),
                "dim": dim, "tasks": tasks, "classes": classes}
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / f".{TABLE_FILE}.{os.getpid()}.tmp"
        conn = sqlite3.connect(tmp)
        task_columns = "".join(f", {t} TEXT" for t in tasks)
        conn.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE faces (id INTEGER PRIMARY KEY, path TEXT NOT NULL, face INTEGER NOT NULL, "
            f"x0 REAL, y0 REAL, x1 REAL, y1 REAL, embedding BLOB NOT NULL{task_columns}, UNIQUE (path, face));")
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        conn.commit()
        conn.close()
        os.replace(tmp, path / TABLE_FILE)  # a folder holds a table only once it is whole
        return cls.open(path, config)

    @classmethod
    def open(cls, path: str | os.PathLike, config: SearchConfig | None = None) -> "FaceIndex":
        path = Path(path)
        if not cls.is_index(path):
            raise FileNotFoundError(f"{path}: not a flip index (no {TABLE_FILE}); build one with `flip index`")
        try:
            conn = sqlite3.connect(path / TABLE_FILE)
            meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        except sqlite3.DatabaseError as err:
            raise ValueError(f"{path / TABLE_FILE}: not a readable flip index ({err})") from None
        if meta.get("format") != INDEX_FORMAT:
            raise ValueError(f"{path}: index format {meta.get('format')!r}; this flip reads format {INDEX_FORMAT}")
        return cls(path, conn, meta, config or SearchConfig())

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def tasks(self) -> list[str]:
        return list(self.meta["tasks"])

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def check_model(self, model, processor, fingerprint: str | None = None) -> None:
        """Raise if `model` is not the one the index was built with (`fingerprint`: the model's
        `model_fingerprint`, when the caller has it already)."""
        fingerprint = fingerprint or model_fingerprint(model, processor)
        if fingerprint != self.meta["fingerprint"]:
            raise ValueError(
                f"{self.path}: built with model {self.meta.get('model') or '(unnamed)'} (fingerprint "
                f"{self.meta['fingerprint'][:12]}), but the query model's fingerprint is {fingerprint[:12]}: "
                "search with the index's model, or build a new index with this one")

    # -- adding -----------------------------------------------------------------------------------
    def add_files(self, model, processor, paths: Sequence[str | os.PathLike], batch_size: int = 64,
                  num_workers: int | None = None, cache=None,
                  progress: Callable[[int], None] | None = None) -> AddReport:
        """Embed and classify the images not yet in the index and add them, one transaction per batch.
        Unreadable files are reported, not fatal. `progress(n)` is called with each batch's size."""
        from flip.zeroshot import FLIPClassifier, image_file_loader

        self.check_model(model, processor)
        report = AddReport()
        resolved = list(dict.fromkeys(str(Path(p).expanduser().resolve()) for p in paths))
        done = {row[0] for row in self.conn.execute("SELECT DISTINCT path FROM faces")}
        todo = [p for p in resolved if p not in done]
        report.already = len(resolved) - len(todo)
        if todo:
            clf = FLIPClassifier(model, processor, self.tasks, cache=cache)
            loader = image_file_loader(todo, processor, batch_size, num_workers,
                                       pin_memory=next(model.parameters()).is_cuda)
            tasks = self.tasks
            insert = (f"INSERT INTO faces (id, path, face, x0, y0, x1, y1, embedding{''.join(', ' + t for t in tasks)}) "
                      f"VALUES ({', '.join('?' * (8 + len(tasks)))})")
            for batch in loader:
                report.failed += [(todo[i], why) for i, why in batch["failed"]]
                if batch["index"]:
                    embeds = clf.encode_images(batch["pixels"])
                    results = clf.classify_embeddings(embeds, to_cpu=True)
                    embeds = embeds.float().cpu().numpy()
                    rows, next_id = [], len(self)  # row id = FAISS id, 0..N-1
                    for j, i in enumerate(batch["index"]):
                        box = _whole_image_box(todo[i])
                        rows.append((next_id + j, todo[i], 0, *box, embeds[j].tobytes(),
                                     *(results[t].predictions[j] for t in tasks)))
                    with self.conn:  # one transaction: the batch is in, or not at all
                        self.conn.executemany(insert, rows)
                    report.added += len(rows)
                if progress is not None:
                    progress(len(batch["index"]) + len(batch["failed"]))
        self._columns = None
        self.sync_vectors(save=True)
        return report

    # -- the vector cache -------------------------------------------------------------------------
    def vectors(self) -> VectorIndex:
        """The vector index, in step with the table (loaded, topped up or rebuilt as needed)."""
        if self._vectors is None or self._vectors.ntotal != len(self):
            self.sync_vectors(save=False)
        return self._vectors

    def sync_vectors(self, save: bool = True) -> VectorIndex:
        rows = len(self)
        want = "ivf" if rows >= self.config.approx_min_rows else "exact"
        file = self.path / VECTORS_FILE
        current = self._vectors
        if current is None and file.is_file():
            try:
                current = VectorIndex.load(file, self.config)
            except Exception:  # a damaged cache is rebuilt from the table
                current = None
        if current is not None and (current.kind != want or current.ntotal > rows):
            current = None
        if current is None:
            current = VectorIndex.build(self._embeddings(0, rows), self.config, kind=want)
        elif current.ntotal < rows:
            current.add(self._embeddings(current.ntotal, rows))
        else:
            save = save and not file.is_file()
        self._vectors = current
        if save:
            current.save(file)
        return current

    def _embeddings(self, start: int, stop: int) -> np.ndarray:
        dim = self.meta.get("dim")
        blobs = [b for (b,) in self.conn.execute(
            "SELECT embedding FROM faces WHERE id >= ? AND id < ? ORDER BY id", (start, stop))]
        if not blobs:
            return np.zeros((0, dim or 1), np.float32)
        return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)

    # -- filtering and searching ------------------------------------------------------------------
    def mask(self, where: Mapping[str, str | Sequence[str]] | None) -> np.ndarray | None:
        """A boolean mask (N,) of the rows meeting every condition (a value or a list of values per
        task column), or None for no conditions. Unknown columns or values raise ValueError."""
        if not where:
            return None
        columns = self._task_columns()
        mask = np.ones(len(self), dtype=bool)
        for task, values in where.items():
            if task not in self.meta["classes"]:
                raise ValueError(f"--where {task}: not a column of this index; the columns are: "
                                 f"{', '.join(self.tasks)}")
            values = [values] if isinstance(values, str) else list(values)
            classes = self.meta["classes"][task]
            for v in values:
                if v not in classes:
                    raise ValueError(f"--where {task}={v}: {v!r} is not a class of {task}; "
                                     f"the classes are: {', '.join(classes)}")
            codes = [classes.index(v) for v in values]
            mask &= np.isin(columns[task], codes)
        return mask

    def _task_columns(self) -> dict[str, np.ndarray]:
        """Each task column as class codes (N,), int16, in row order (kept in memory)."""
        if self._columns is None or len(next(iter(self._columns.values()), [])) != len(self):
            tasks = self.tasks
            rows = self.conn.execute(f"SELECT {', '.join(tasks) or 'id'} FROM faces ORDER BY id").fetchall()
            self._columns = {}
            for j, task in enumerate(tasks):
                lookup = {c: i for i, c in enumerate(self.meta["classes"][task])}
                self._columns[task] = np.fromiter((lookup.get(r[j], -1) for r in rows), np.int16, len(rows))
        return self._columns

    def search(self, query: np.ndarray, k: int = 10, where: Mapping[str, str | Sequence[str]] | None = None) -> list[Hit]:
        """The k faces most similar to `query` (D,) among those meeting `where`, best first."""
        query = np.asarray(query, np.float32).reshape(-1)
        if self.meta.get("dim") and query.shape[0] != self.meta["dim"]:
            raise ValueError(f"query: dimension {query.shape[0]}, but the index holds dimension {self.meta['dim']}")
        mask = self.mask(where)
        if len(self) == 0:
            return []
        scores, ids = self.vectors().search(query[None], k, mask)
        found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        return [self._hit(i, s) for i, s in found]

    def export_parquet(self, path: str | os.PathLike, overwrite: bool = False, chunk_rows: int = 50_000) -> Path:
        """Write every face as one Parquet row: id, path, face, box, embedding (a float32 list) and the
        task columns, the shape a vector database (or a sharded FAISS build) ingests. Written to a
        temporary file and renamed; an existing file is kept unless `overwrite`."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
        tasks = self.tasks
        dim = self.meta.get("dim") or 0
        schema = pa.schema([("id", pa.int64()), ("path", pa.string()), ("face", pa.int32()),
                            ("box", pa.list_(pa.float32(), 4)), ("embedding", pa.list_(pa.float32(), dim))]
                           + [(t, pa.string()) for t in tasks])
        schema = schema.with_metadata({"flip_index": json.dumps(self.meta)})
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        cursor = self.conn.execute(f"SELECT id, path, face, x0, y0, x1, y1, embedding{''.join(', ' + t for t in tasks)} "
                                   "FROM faces ORDER BY id")
        try:
            with pq.ParquetWriter(tmp, schema) as writer:
                while rows := cursor.fetchmany(chunk_rows):
                    embeds = np.frombuffer(b"".join(r[7] for r in rows), np.float32)
                    boxes = np.array([r[3:7] for r in rows], np.float32).reshape(-1)
                    columns = [pa.array([r[0] for r in rows], pa.int64()), pa.array([r[1] for r in rows]),
                               pa.array([r[2] for r in rows], pa.int32()),
                               pa.FixedSizeListArray.from_arrays(pa.array(boxes), 4),
                               pa.FixedSizeListArray.from_arrays(pa.array(embeds), dim)]
                    columns += [pa.array([r[8 + j] for r in rows], pa.string()) for j in range(len(tasks))]
                    writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def _hit(self, row: int, score: float) -> Hit:
        tasks = self.tasks
        r = self.conn.execute(f"SELECT path, face, x0, y0, x1, y1{''.join(', ' + t for t in tasks)} "
                              "FROM faces WHERE id = ?", (row,)).fetchone()
        return Hit(row, score, r[0], r[1], tuple(r[2:6]), dict(zip(tasks, r[6:])))


_FIXED_COLUMNS = ("id", "path", "face", "x0", "y0", "x1", "y1", "embedding")


def _whole_image_box(path: str) -> tuple[float, float, float, float]:
    """(0, 0, width, height) of the upright image, read from its header."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated a quarter turn
            width, height = height, width
    return 0.0, 0.0, float(width), float(height)


def parse_where(items: Iterable[str]) -> dict[str, list[str]]:
    """["hair_color=grey", "emotion=happy,neutral"] -> {"hair_color": ["grey"], "emotion": ["happy", "neutral"]}.
    A repeated column keeps the values of both (either may match)."""
    where: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        values = [v.strip() for v in value.split(",") if v.strip()]
        if not sep or not name or not values:
            raise ValueError(f"--where {item!r}: expected attr=value (or attr=value1,value2)")
        where.setdefault(name, []).extend(values)
    return where
