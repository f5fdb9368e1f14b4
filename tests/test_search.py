"""Face search: filtered search equals brute force, the index folder (incremental, resumable,
model-checked) and the `flip index` / `flip search` commands, on tiny random models."""

from __future__ import annotations

import json

import numpy as np
import pytest

faiss = pytest.importorskip("faiss", reason='face search needs FAISS: pip install "flip-face[search]"')

from flip.tasks.search import (  # noqa: E402
    FaceIndex,
    SearchConfig,
    VectorIndex,
    brute_force_search,
    encode_query,
    parse_where,
    recall_at_k,
)

TASKS = ["emotion", "hair_color", "eyewear"]


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clustered(rng, n, d, centers=20, spread=0.3):
    c = _unit(rng, centers, d)
    x = c[rng.integers(0, centers, n)] + spread * rng.standard_normal((n, d)).astype(np.float32) / np.sqrt(d)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _mask(rng, n, fraction):
    keep = max(1, round(fraction * n))
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, keep, replace=False)] = True
    return mask


# -- the vector index -----------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.001, 0.003, 0.01, 0.1, 0.5, 0.9, 1.0])
def test_exact_filtered_search_equals_brute_force(fraction):
    rng = np.random.default_rng(1)
    vectors, queries = _unit(rng, 5000, 32), _unit(rng, 25, 32)
    mask = _mask(rng, len(vectors), fraction)
    index = VectorIndex.build(vectors)
    assert index.kind == "exact"
    scores, ids = index.search(queries, 10, mask)
    want_scores, want_ids = brute_force_search(vectors, queries, 10, mask)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores[ids >= 0], want_scores[want_ids >= 0], rtol=1e-5, atol=1e-5)
    assert mask[ids[ids >= 0]].all()
    assert (ids >= 0).sum(axis=1).tolist() == [min(10, int(mask.sum()))] * len(queries)


def test_ivf_filtered_search_is_exact_when_few_rows_pass_and_keeps_recall_otherwise(tmp_path):
    rng = np.random.default_rng(2)
    vectors, queries = _clustered(rng, 6000, 32), _clustered(rng, 30, 32)
    index = VectorIndex.build(vectors, SearchConfig(nlist=32, nprobe=4), kind="ivf")
    assert index.kind == "ivf" and index.ntotal == 6000
    # the rule: ceil(nprobe / selectivity) lists, capped at nlist
    assert index.nprobe_for(6000) == 4 and index.nprobe_for(3000) == 8 and index.nprobe_for(600) == 32
    few = _mask(rng, 6000, 0.01)
    want = brute_force_search(vectors, queries, 10, few)[1]
    np.testing.assert_array_equal(index.search(queries, 10, few)[1], want)  # 4 / 0.01 > 32 lists: scans all
    index.save(tmp_path / "ivf.faiss")
    loaded = VectorIndex.load(tmp_path / "ivf.faiss", index.config)
    assert loaded.kind == "ivf" and loaded.ntotal == 6000
    np.testing.assert_array_equal(loaded.search(queries, 10, few)[1], want)
    for fraction in (0.5, 1.0):
        mask = _mask(rng, 6000, fraction)
        found = index.search(queries, 10, mask)[1]
        assert mask[found[found >= 0]].all()
        assert recall_at_k(found, brute_force_search(vectors, queries, 10, mask)[1]) >= 0.9


def test_vector_index_edges(tmp_path):
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 50, 8)
    index = VectorIndex.build(vectors)
    scores, ids = index.search(vectors[:2], 5, np.zeros(50, bool))
    assert (ids == -1).all() and np.isneginf(scores).all()
    with pytest.raises(ValueError, match="mask of shape"):
        index.search(vectors[:1], 5, np.ones(49, bool))
    with pytest.raises(ValueError, match="dimension 8"):
        index.search(np.ones((1, 7), np.float32), 5)
    index.save(tmp_path / "v.faiss")
    again = VectorIndex.load(tmp_path / "v.faiss")
    np.testing.assert_array_equal(again.search(vectors[:3], 4)[1], index.search(vectors[:3], 4)[1])
    assert recall_at_k(np.array([[1, 2, -1]]), np.array([[2, 3, -1]])) == 0.5
    with pytest.raises(ValueError, match="SearchConfig.nprobe"):
        SearchConfig(nprobe=0)


@pytest.mark.parametrize("items, want", [
    (["hair_color=grey"], {"hair_color": ["grey"]}),
    (["emotion=happy,neutral", "eyewear=none"], {"emotion": ["happy", "neutral"], "eyewear": ["none"]}),
    (["emotion=happy", "emotion=sad"], {"emotion": ["happy", "sad"]}),
])
def test_parse_where(items, want):
    assert parse_where(items) == want


@pytest.mark.parametrize("item", ["hair_color", "=grey", "hair_color=", "hair_color=,"])
def test_parse_where_refuses(item):
    with pytest.raises(ValueError, match="attr=value"):
        parse_where([item])


# -- the face index -------------------------------------------------------------------------------
def _images(folder, n, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        base = rng.integers(0, 256, 3)
        pixels = np.clip(base + rng.integers(-60, 60, (40, 36, 3)), 0, 255).astype(np.uint8)
        path = folder / f"face_{i:02d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def loaded(checkpoint):
    from flip.hub import load

    return load(checkpoint)


def test_face_index_search_equals_brute_force_under_filters(tmp_path, loaded, checkpoint):
    model, processor = loaded
    paths = _images(tmp_path / "img", 16)
    index = FaceIndex.create(tmp_path / "idx", model, processor, tasks=TASKS, model_name=checkpoint)
    report = index.add_files(model, processor, paths[:10], batch_size=4, num_workers=0)
    assert (report.added, report.already, report.failed) == (10, 0, [])
    report = index.add_files(model, processor, paths, batch_size=4, num_workers=0)  # incremental
    assert (report.added, report.already) == (6, 10) and len(index) == 16
    vectors = index._embeddings(0, 16)
    query = encode_query(model, processor, text="a happy person with grey hair")
    emotions = [index._hit(i, 0.0).predictions["emotion"] for i in range(16)]
    for value in sorted(set(emotions)):
        hits = index.search(query, k=5, where={"emotion": [value]})
        mask = np.array([e == value for e in emotions])
        want = brute_force_search(vectors, query, 5, mask)[1][0]
        assert [h.id for h in hits] == [i for i in want.tolist() if i >= 0]
        assert all(h.predictions["emotion"] == value for h in hits)
    hits = index.search(query, k=16)
    assert [h.id for h in hits] == brute_force_search(vectors, query, 16)[1][0].tolist()
    assert hits[0].box == (0.0, 0.0, 36.0, 40.0) and hits[0].path in paths
    assert np.isclose(hits[0].score, float(vectors[hits[0].id] @ query), atol=1e-5)
    image_hits = index.search(encode_query(model, processor, image=paths[3]), k=1)
    assert image_hits[0].path == paths[3]
    index.close()
    with FaceIndex.open(tmp_path / "idx") as reopened:  # the vector cache on disk is in step
        assert reopened.vectors().ntotal == 16
        with pytest.raises(ValueError, match="not a class of emotion"):
            reopened.search(query, where={"emotion": ["ecstatic"]})
        with pytest.raises(ValueError, match="not a column of this index"):
            reopened.search(query, where={"hat": ["true"]})


def test_interrupted_run_resumes_to_the_same_index(tmp_path, loaded, monkeypatch):
    import flip.tasks.search as search

    model, processor = loaded
    paths = _images(tmp_path / "img", 10)
    whole = FaceIndex.create(tmp_path / "whole", model, processor, tasks=TASKS)
    whole.add_files(model, processor, paths, batch_size=4, num_workers=0)

    real, calls = search._whole_image_box, []

    def dies_in_the_second_batch(path):
        calls.append(path)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(path)

    index = FaceIndex.create(tmp_path / "cut", model, processor, tasks=TASKS)
    monkeypatch.setattr(search, "_whole_image_box", dies_in_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        index.add_files(model, processor, paths, batch_size=4, num_workers=0)
    index.close()
    monkeypatch.setattr(search, "_whole_image_box", real)
    resumed = FaceIndex.open(tmp_path / "cut")
    assert len(resumed) == 4  # the first batch, whole; nothing of the second
    report = resumed.add_files(model, processor, paths, batch_size=4, num_workers=0)
    assert (report.added, report.already) == (6, 4)
    rows = lambda ix: ix.conn.execute("SELECT id, path, embedding, emotion FROM faces ORDER BY id").fetchall()  # noqa: E731
    assert rows(resumed) == rows(whole)


def test_index_refuses_another_model(tmp_path, loaded):
    import torch

    from conftest import tiny_config
    from flip.model import FLIPModel

    model, processor = loaded
    index = FaceIndex.create(tmp_path / "idx", model, processor, tasks=TASKS, model_name="mine")
    torch.manual_seed(1)
    other = FLIPModel(tiny_config()).eval()
    with pytest.raises(ValueError, match="built with model mine"):
        index.check_model(other, processor)
    with pytest.raises(ValueError, match="built with model mine"):
        index.add_files(other, processor, _images(tmp_path / "img", 2), num_workers=0)
    index.check_model(model, processor)


# -- the commands ---------------------------------------------------------------------------------
def test_index_and_search_commands(tmp_path, checkpoint, capsys):
    from flip.cli import main

    folder = tmp_path / "img"
    paths = _images(folder, 8)
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "faces.index"
    assert main(["index", str(folder), "--out", str(out), "--model", checkpoint, "--task", "emotion,eyewear",
                 "--workers", "0"]) == 1  # broken.png was skipped: a partial failure
    err = capsys.readouterr().err
    assert "added 8 face(s)" in err and "skipped " + str(folder / "broken.png") in err and "exact search" in err
    assert main(["index", str(folder), "--out", str(out), "--workers", "0", "--skip-bad"]) == 0  # names its model
    assert "added 0 face(s), 8 image(s) already indexed" in capsys.readouterr().err

    table_file = tmp_path / "faces.parquet"
    assert main(["index", "--out", str(out), "--export", str(table_file)]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(table_file)
    assert table.num_rows == 8 and table.column_names[:5] == ["id", "path", "face", "box", "embedding"]
    with FaceIndex.open(out) as index:
        np.testing.assert_array_equal(np.array(table.column("embedding").to_pylist(), np.float32),
                                      index._embeddings(0, 8))
        assert table.column("emotion").to_pylist() == [index._hit(i, 0).predictions["emotion"] for i in range(8)]
    capsys.readouterr()
    assert main(["search", str(out), "a smiling person", "--k", "3", "--json"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 3 and hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    assert {h["path"] for h in hits} <= {str(p) for p in map(__import__("pathlib").Path, paths)}
    value = hits[0]["emotion"]
    assert main(["search", str(out), "--image", paths[0], "--where", f"emotion={value}", "--json"]) == 0
    filtered = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert filtered and all(h["emotion"] == value for h in filtered)

    for argv, message in [
        (["search", str(out), "x", "--where", "hat=true"], "hat: not a column of this index"),
        (["search", str(out), "x", "--where", "emotion=ecstatic"], "not a class of emotion"),
        (["search", str(out), "x", "--where", "emotion"], "expected attr=value"),
        (["search", str(tmp_path / "nowhere"), "x"], "not a flip index"),
        (["search", str(out), "x", "--model", "flip-tiny"], "fingerprint"),
        (["index", str(folder), "--out", str(folder)], "exists and is not an empty folder"),
        (["index", "--out", str(out), "--export", str(table_file)], "exists; pass --overwrite to replace it"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)


def test_bench_search_runs_small():
    from benchmarks import bench_search

    args = bench_search.parse_args(["--n", "3000", "--queries", "5", "--filters", "1", "0.01", "--sizes", "1000",
                                    "--nlist", "16", "--nprobe", "4"])
    figures = bench_search.run(args)
    assert [row["filter"] for row in figures["filters"]] == [1.0, 0.01]
    # 4 / 0.01 > 16 lists: the filtered IVF query scans every list, so it is exact
    assert figures["filters"][1]["route"] == "ivf nprobe=16" and figures["filters"][1]["recall@10"] == 1.0
    assert 0 < figures["filters"][0]["recall@10"] <= 1 and figures["exact_build_s"] > 0
