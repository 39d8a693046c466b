"""Parallel-text preparation: formats, vocabularies and every bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from attn_cli import run
from attn_cli.errors import AttnError
from data_prep.nmt import build_vocab, reorder_pair

DE = ["Ein Hund läuft .", "Zwei Männer sitzen .", "Ein Hund schläft ."]
EN = ["A dog runs.", "Two men sit.", "A dog sleeps."]


def write(path: Path, lines: list[str], *, gz: bool = False, bom: bool = False, newline_at_end: bool = True) -> Path:
    text = "\n".join(lines) + ("\n" if newline_at_end else "")
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def multi30k_fixture(root: Path, **kw: bool) -> Path:
    for split in ("train", "val", "test_2016_flickr"):
        write(root / f"{split}.de.gz", DE, gz=True, **kw)
        write(root / f"{split}.en.gz", EN, gz=True)
    return root


def test_multi30k_layout_and_manifest(tmp_path: Path) -> None:
    out = run.prepare(
        "nmt",
        dataset="multi30k",
        source=multi30k_fixture(tmp_path / "raw"),
        data_dir=tmp_path / "data",
        overrides=["min_freq=1"],
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["direction"] == "de→en" and manifest["counts"] == {"train": 3, "val": 3, "test": 3}
    assert (out / "train.src").read_text().splitlines()[1] == "zwei männer sitzen ."
    assert (out / "test.ref").read_text().splitlines()[0] == "A dog runs."  # raw, original case
    assert manifest["files"]["vocab.src"] and manifest["source"]
    again = run.prepare(
        "nmt", dataset="multi30k", source=tmp_path / "raw", data_dir=tmp_path / "data", overrides=["min_freq=1"]
    )
    assert (
        again == out and json.loads((out / "manifest.json").read_text())["prepared"] == manifest["prepared"]
    )  # idempotent


def test_bom_is_stripped_and_reported_missing_final_newline_ok(tmp_path: Path) -> None:
    src = write(tmp_path / "train.src", DE, bom=True, newline_at_end=False)
    tgt = write(tmp_path / "train.tgt", EN)
    out = run.prepare(
        "parallel",
        data_dir=tmp_path / "data",
        options={
            "src": str(src),
            "tgt": str(tgt),
            "dev_src": str(src),
            "dev_tgt": str(tgt),
            "test_src": str(src),
            "test_tgt": str(tgt),
        },
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert any("byte-order mark" in fix for fix in manifest["fixes"])
    assert (out / "train.src").read_text().startswith("ein hund")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("mismatch", "has 3 lines but"),
        ("empty", "is empty"),
        ("latin1", "is not valid UTF-8"),
        ("truncated", "truncated or corrupt gzip"),
    ],
)
def test_bad_parallel_input(tmp_path: Path, breakage: str, message: str) -> None:
    raw = multi30k_fixture(tmp_path / "raw")
    target = raw / "train.en.gz"
    if breakage == "mismatch":
        write(target, EN[:2], gz=True)
    elif breakage == "empty":
        write(raw / "train.de.gz", [], gz=True, newline_at_end=False)
    elif breakage == "latin1":
        target.write_bytes(gzip.compress("Ein Hund läuft.\n".encode("latin-1") * 3))
    else:
        target.write_bytes(target.read_bytes()[:-12])
    with pytest.raises(AttnError, match=message):
        run.prepare("nmt", dataset="multi30k", source=raw, data_dir=tmp_path / "data")
    assert not (tmp_path / "data" / "multi30k-de-en").exists(), "a failed preparation left files behind"


def test_stanford_layout(tmp_path: Path) -> None:
    raw = tmp_path / "iwslt"
    for stem in ("train", "tst2012", "tst2013"):
        write(raw / f"{stem}.en", ["Thank you so much , Chris .", "It 's great ."])
        write(raw / f"{stem}.vi", ["Cảm ơn rất nhiều , Chris .", "Thật tuyệt ."])
    out = run.prepare("iwslt15-en-vi", source=raw, data_dir=tmp_path / "data")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["direction"] == "en→vi" and manifest["tokenizer"] == "space"
    assert (out / "train.src").read_text().splitlines()[0] == "Thank you so much , Chris ."
    with pytest.raises(AttnError, match="this corpus is en-vi"):
        run.prepare("iwslt15-en-vi", source=raw, data_dir=tmp_path / "data", overrides=["src_lang=de"])


def test_parallel_needs_every_file(tmp_path: Path) -> None:
    with pytest.raises(AttnError, match="needs --src --tgt"):
        run.prepare("parallel", data_dir=tmp_path, options={"src": "a"})


def test_sentencepiece_option(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    lines_de = [f"das ist satz nummer {i} über hunde und katzen ." for i in range(60)]
    lines_en = [f"this is sentence number {i} about dogs and cats ." for i in range(60)]
    for split in ("train", "val", "test_2016_flickr"):
        write(raw / f"{split}.de.gz", lines_de, gz=True)
        write(raw / f"{split}.en.gz", lines_en, gz=True)
    out = run.prepare(
        "nmt",
        dataset="multi30k",
        source=raw,
        data_dir=tmp_path / "data",
        overrides=["subword=sentencepiece", "sp_vocab_size=40"],
    )
    assert out.name == "multi30k-de-en-spm" and (out / "spm.src.model").is_file()
    assert "▁" in (out / "train.src").read_text()


def test_vocabulary_limits() -> None:
    sents = [["a", "b", "a"], ["a", "c"], ["b"]]
    assert [t for t, _ in build_vocab(sents, 2, 0)] == ["<pad>", "<unk>", "<s>", "</s>", "a", "b"]
    assert [t for t, _ in build_vocab(sents, 1, 5)] == ["<pad>", "<unk>", "<s>", "</s>", "a"]


def test_reorder_task_is_non_monotonic_and_deterministic() -> None:
    import random

    from data_prep.nmt import _ADJS, _DETS, _NOUNS, _VERBS, _lexicon

    lex = _lexicon(_DETS + _NOUNS + _ADJS + _VERBS, 1)
    a = [reorder_pair(random.Random(3), lex) for _ in range(2)]
    b = [reorder_pair(random.Random(3), lex) for _ in range(2)]
    assert a == b
    src, tgt = a[0]
    assert (
        tgt.split()[-1] == lex[src.split()[len(src.split()) - [w in _VERBS for w in src.split()][::-1].index(True) - 1]]
    )


@pytest.mark.data
def test_real_multi30k(shared_data: Path, tmp_path: Path) -> None:
    out = run.prepare("nmt", dataset="multi30k", source=shared_data / "multi30k" / "task1", data_dir=tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 29000, "val": 1014, "test": 1000}
    assert 7000 < manifest["vocab"]["src"] < 9000 and 5000 < manifest["vocab"]["tgt"] < 7000


def _token_sampler(tokens: int = 120, seed: int = 3):
    from attn_cli.data.common import TrainBatches

    gen = __import__("random").Random(seed)
    lengths = [gen.randint(2, 40) for _ in range(1000)]
    return TrainBatches(len(lengths), 16, seed, lengths=lengths, pool=4, tokens=tokens), lengths


def test_token_batches_cover_the_epoch_within_the_budget() -> None:
    """Every example once per epoch; each batch's padded grid (examples × its longest) is within the budget
    unless the batch is one example; lengths inside a batch are close (sorted pools); len() is the count."""
    sampler, lengths = _token_sampler()
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert len(sampler) == len(batches)
    for b in batches:
        widest = max(lengths[i] for i in b)
        assert len(b) * widest <= 120 or len(b) == 1
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 4  # random batches of 2..40 would spread ~30
    # more short sentences than long ones per batch: the tokens, not the sentences, are fixed
    short = [len(b) for b in batches if max(lengths[i] for i in b) <= 8]
    long = [len(b) for b in batches if min(lengths[i] for i in b) >= 30]
    assert min(short) > max(long)


def test_token_batches_depend_on_seed_and_epoch_only_and_resume() -> None:
    a, _ = _token_sampler()
    b, _ = _token_sampler()
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert second != first and sorted(map(sorted, second)) != sorted(map(sorted, first))
    # killed after 5 batches of epoch 1: the resumed sampler hands out the rest, in order
    c, _ = _token_sampler()
    c.load_state_dict({"epoch": 1, "consumed": 5})
    assert list(c) == second[5:]


def test_every_epoch_of_token_batches_has_the_first_epochs_count_and_lightning_sees_it_whole() -> None:
    """Lightning counts a loader's batches once and ends every epoch there: an epoch cut into more token batches
    than the first would lose its last ones (it did, before the counts were evened). Every epoch now has the
    first epoch's count, and a real Trainer sees each example once per epoch."""
    import random

    from attn_cli.data.common import TrainBatches
    from tests.test_training import epochs_seen

    gen = random.Random(0)
    lengths = [gen.randint(2, 40) for _ in range(3000)]
    sampler = TrainBatches(3000, 1, 0, lengths=lengths, tokens=120)  # pools of 50 examples: uneven raw cuts
    counts = []
    for epoch in range(8):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        counts.append(len(batches))
        assert sorted(i for b in batches for i in b) == list(range(3000)) and all(batches)
    assert len(set(counts)) == 1

    seen = epochs_seen(3000, 8, batch_size=1, lengths=lengths, tokens=120)
    assert [sorted(seen[e]) for e in range(8)] == [list(range(3000))] * 8


def test_token_batches_need_lengths() -> None:
    from attn_cli.data.common import TrainBatches

    with pytest.raises(ValueError, match="lengths"):
        TrainBatches(10, 2, 0, tokens=50)


@pytest.mark.parametrize(
    "overrides", [["data.batching=tokens"], ["data.batch_tokens=900"], ["data.batching=bucket", "data.batch_tokens=9"]]
)
def test_token_batching_needs_both_keys(overrides: list[str]) -> None:
    from attn_cli.config import load_recipe

    with pytest.raises(AttnError, match="token batches need both data.batching=tokens and a positive"):
        load_recipe("nmt", "tiny/seq2seq", overrides)


def test_token_batches_train_and_record_through_the_cli(dirs: dict[str, Path]) -> None:
    """A tiny recipe trains on token batches; its resolved recipe and its record say so (the tables' budget cell
    reads ``budget.batch_tokens``); a half-given pair exits 2 on one line."""
    import yaml

    from tests.conftest import run_cli

    code, _, err = run_cli("train", "nmt", "--recipe", "tiny/seq2seq", "--set", "data.batching=tokens")
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "data.batch_tokens" in lines[0], err
    assert run_cli("prepare", "toy-reorder")[0] == 0
    tokens = ["--set", "data.batching=tokens", "--set", "data.batch_tokens=60", "--set", "train.max_steps=6"]
    code, _, err = run_cli("train", "nmt", "--recipe", "tiny/seq2seq", *tokens, "--set", "train.threads=1")
    assert code == 0, err
    run_dir = next(p.parent for p in (dirs["runs"] / "nmt").rglob("train_done.json"))
    resolved = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert resolved["data"]["batching"] == "tokens" and resolved["data"]["batch_tokens"] == 60
    code, _, err = run_cli("eval", "nmt", "--run", str(run_dir), "--record")
    assert code == 0, err
    rec = json.loads(next(dirs["results"].rglob("result.json")).read_text())
    assert rec["steps"] == 6 and rec["budget"]["batch_tokens"] == 60
