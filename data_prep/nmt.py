"""Parallel text for NMT: Multi30k, Stanford's WMT'14 En-De and IWSLT'15 En-Vi, any parallel files,
and the embedded synthetic reordering task.

Output (in the prepared directory):

* ``{train,val,test}.src`` / ``.tgt`` — tokenised, one sentence per line, aligned;
* ``{val,test}.ref`` — the *raw* target side (detokenised, original case), what BLEU is scored against;
* ``vocab.src`` / ``vocab.tgt`` — ``token<TAB>count`` by frequency (specials first);
* ``spm.src.model`` / ``spm.tgt.model`` when ``subword: sentencepiece``.

Word vocabularies keep tokens seen at least ``min_freq`` times, at most ``vocab_size``
of them (0 = all); every other token maps to ``<unk>``, as in Luong et al. (2015), whose
unk replacement needs it. The manifest states the direction (``de→en``), the counts,
what was filtered and every fix applied (BOMs stripped).

Bad input fails with one line: line-count mismatch between sides, an empty file, bytes
that are not UTF-8, a truncated gzip. Byte-order marks are stripped (and reported).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from attn_cli.data.preprocess import Tokenizer, read_parallel, segment
from attn_cli.data.vocab import SPECIALS
from attn_cli.errors import AttnError
from attn_cli.io import atomic_write
from data_prep.base import DATASETS, DatasetSpec, RawFile

MULTI30K_URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/"
STANFORD_URL = "https://nlp.stanford.edu/projects/nmt/data/"


@dataclass(frozen=True)
class TextPrepConfig:
    """Options shared by every parallel-text dataset (``--set key=value``)."""

    src_lang: str = "de"
    tgt_lang: str = "en"
    lowercase: bool = True
    tokenizer: Literal["moses", "space"] = "moses"  # space: the files are already tokenised
    subword: Literal["none", "sentencepiece"] = "none"
    sp_vocab_size: int = 8000
    vocab_size: int = 0  # 0: no limit
    min_freq: int = 2
    max_len: int = 0  # drop training pairs longer than this (tokens, either side); 0: keep all
    test_set: str = ""  # dataset-specific default when empty
    # parallel text (`attn prepare parallel --src ... --tgt ...`)
    src: str | None = None
    tgt: str | None = None
    dev_src: str | None = None
    dev_tgt: str | None = None
    test_src: str | None = None
    test_tgt: str | None = None
    # the synthetic reordering task
    size: int = 6000
    seed: int = 1


def build_vocab(sentences: list[list[str]], min_freq: int, size: int) -> list[tuple[str, int]]:
    counts = Counter(tok for sent in sentences for tok in sent)
    kept = sorted(
        ((t, c) for t, c in counts.items() if c >= min_freq and t not in SPECIALS), key=lambda tc: (-tc[1], tc[0])
    )
    if size:
        kept = kept[: max(0, size - len(SPECIALS))]
    return [(s, 0) for s in SPECIALS] + kept


def _train_spm(lines: list[str], out_prefix: Path, vocab_size: int) -> Any:
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=-1,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    atomic_write(out_prefix.parent / f"{out_prefix.name}.model", model.getvalue())
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def write_prepared(
    cfg: TextPrepConfig, splits: dict[str, tuple[list[str], list[str]]], out: Path, fixes: list[str]
) -> dict[str, Any]:
    """Tokenise, filter, build vocabularies and write every file; returns the manifest facts."""
    src_tok = Tokenizer(cfg.tokenizer, cfg.src_lang, cfg.lowercase)
    tgt_tok = Tokenizer(cfg.tokenizer, cfg.tgt_lang, cfg.lowercase)
    tokenised = {s: ([src_tok(x) for x in src], [tgt_tok(y) for y in tgt]) for s, (src, tgt) in splits.items()}
    if cfg.subword == "sentencepiece":
        sps = []
        for side, suffix in ((0, "src"), (1, "tgt")):
            train_text = [" ".join(t) for t in tokenised["train"][side]]
            sps.append(_train_spm(train_text, out / f"spm.{suffix}", cfg.sp_vocab_size))
        tokenised = {
            s: ([segment(t, sps[0]) for t in a], [segment(t, sps[1]) for t in b]) for s, (a, b) in tokenised.items()
        }
    counts: dict[str, Any] = {}
    filtered = 0
    train_src, train_tgt = tokenised["train"]
    if cfg.max_len:
        pairs = [
            (a, b) for a, b in zip(train_src, train_tgt) if 0 < len(a) <= cfg.max_len and 0 < len(b) <= cfg.max_len
        ]
    else:
        pairs = [(a, b) for a, b in zip(train_src, train_tgt) if a and b]
    filtered = len(train_src) - len(pairs)
    tokenised["train"] = ([a for a, _ in pairs], [b for _, b in pairs])
    for split, (src, tgt) in tokenised.items():
        atomic_write(out / f"{split}.src", "".join(" ".join(t) + "\n" for t in src))
        atomic_write(out / f"{split}.tgt", "".join(" ".join(t) + "\n" for t in tgt))
        counts[split] = len(src)
        if split != "train":
            atomic_write(out / f"{split}.ref", "".join(line.strip() + "\n" for line in splits[split][1]))
    vocab = {}
    for side, suffix in ((0, "src"), (1, "tgt")):
        min_freq = 1 if cfg.subword == "sentencepiece" else cfg.min_freq
        entries = build_vocab(tokenised["train"][side], min_freq, cfg.vocab_size)
        atomic_write(out / f"vocab.{suffix}", "".join(f"{t}\t{c}\n" for t, c in entries))
        vocab[suffix] = len(entries)
    return {
        "direction": f"{cfg.src_lang}→{cfg.tgt_lang}",
        "counts": counts,
        "vocab": vocab,
        "filtered_train_pairs": filtered,
        "fixes": fixes,
        "tokenizer": cfg.tokenizer,
        "lowercase": cfg.lowercase,
        "subword": cfg.subword,
    }


def _find(source: Path, names: list[str]) -> Path:
    for name in names:
        for cand in (source / name, source / "raw" / name, source / "task1" / "raw" / name):
            if cand.is_file():
                return cand
    raise AttnError(f"--source {source} has no {names[0]} (looked for {', '.join(names)}); is it the right folder?")


# ----------------------------------------------------------------------------------------- Multi30k


def build_multi30k(cfg: TextPrepConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None
    test = cfg.test_set or "test_2016_flickr"
    fixes: list[str] = []
    splits = {}
    for split, stem in (("train", "train"), ("val", "val"), ("test", test)):
        src = _find(source, [f"{stem}.{cfg.src_lang}.gz", f"{stem}.{cfg.src_lang}"])
        tgt = _find(source, [f"{stem}.{cfg.tgt_lang}.gz", f"{stem}.{cfg.tgt_lang}"])
        splits[split] = read_parallel(src, tgt, fixes)
    facts = write_prepared(cfg, splits, out, fixes)
    facts["test_set"] = test
    return facts


def _multi30k_files() -> list[RawFile]:
    names = [f"{s}.{lang}.gz" for s in ("train", "val", "test_2016_flickr") for lang in ("de", "en", "fr", "cs")]
    return [RawFile(n, MULTI30K_URL + n, MULTI30K_SHA256.get(n)) for n in names]


MULTI30K_SHA256 = {
    "test_2016_flickr.cs.gz": "200a4a74cc9560f051924abb9803be008d1908d77f747e9141aeb86dfd2797f1",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "train.cs.gz": "a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "val.cs.gz": "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
}


def _default_name(prefix: str) -> Any:
    def name(cfg: TextPrepConfig) -> str:
        sub = "-spm" if cfg.subword == "sentencepiece" else ""
        return f"{prefix}-{cfg.src_lang}-{cfg.tgt_lang}{sub}"

    return name


DATASETS.add(
    "multi30k",
    DatasetSpec(
        name="multi30k",
        task="nmt",
        summary="Multi30k task 1 (Elliott et al. 2016): 29k/1,014/1,000 sentence pairs, en/de/fr/cs",
        Config=TextPrepConfig,
        build=build_multi30k,
        default_name=_default_name("multi30k"),
        raw_files=_multi30k_files(),
    ),
)


# ------------------------------------------------------------------- Stanford WMT'14 / IWSLT'15 files


def _build_stanford(pair: tuple[str, str], dev: str, test: str) -> Any:
    def build(cfg: TextPrepConfig, source: Path | None, out: Path) -> dict[str, Any]:
        assert source is not None
        if {cfg.src_lang, cfg.tgt_lang} != set(pair):
            raise AttnError(
                f"this corpus is {pair[0]}-{pair[1]}; set src_lang/tgt_lang to those (got {cfg.src_lang}, {cfg.tgt_lang})"
            )
        fixes: list[str] = []
        splits = {}
        for split, stem in (("train", "train"), ("val", dev), ("test", cfg.test_set or test)):
            splits[split] = read_parallel(
                _find(source, [f"{stem}.{cfg.src_lang}"]), _find(source, [f"{stem}.{cfg.tgt_lang}"]), fixes
            )
        return write_prepared(cfg, splits, out, fixes)

    return build


def _stanford_files(folder: str, pair: tuple[str, str], stems: list[str]) -> list[RawFile]:
    return [RawFile(f"{s}.{lang}", f"{STANFORD_URL}{folder}/{s}.{lang}") for s in stems for lang in pair]


for _name, _folder, _pair, _dev, _test, _src, _tgt in (
    ("wmt14-en-de", "wmt14.en-de", ("en", "de"), "newstest2013", "newstest2014", "en", "de"),
    ("iwslt15-en-vi", "iwslt15.en-vi", ("en", "vi"), "tst2012", "tst2013", "en", "vi"),
):

    @dataclass(frozen=True)
    class _Cfg(TextPrepConfig):
        src_lang: str = _src
        tgt_lang: str = _tgt
        tokenizer: Literal["moses", "space"] = "space"  # Stanford's files are tokenised already
        lowercase: bool = False
        vocab_size: int = 50000 if _name.startswith("wmt") else 17000
        min_freq: int = 1
        max_len: int = 50

    DATASETS.add(
        _name,
        DatasetSpec(
            name=_name,
            task="nmt",
            summary=f"Stanford-preprocessed {_folder} (Luong et al. 2015), tokenised text, dev {_dev}, test {_test}",
            Config=_Cfg,
            build=_build_stanford(_pair, _dev, _test),
            default_name=_default_name(_name.split("-")[0]),
            raw_files=_stanford_files(_folder, _pair, ["train", _dev, _test]),
        ),
    )


# ------------------------------------------------------------------------------- any parallel files


def build_parallel(cfg: TextPrepConfig, source: Path | None, out: Path) -> dict[str, Any]:
    missing = [k for k in ("src", "tgt", "dev_src", "dev_tgt", "test_src", "test_tgt") if not getattr(cfg, k)]
    if missing:
        raise AttnError(
            f"attn prepare parallel needs --src --tgt --dev-src --dev-tgt --test-src --test-tgt (missing --{missing[0].replace('_', '-')})"
        )
    fixes: list[str] = []
    splits = {}
    for split, (a, b) in (
        ("train", (cfg.src, cfg.tgt)),
        ("val", (cfg.dev_src, cfg.dev_tgt)),
        ("test", (cfg.test_src, cfg.test_tgt)),
    ):
        pa, pb = Path(a), Path(b)  # type: ignore[arg-type]
        for p in (pa, pb):
            if not p.is_file():
                raise AttnError(f"{p} does not exist")
        splits[split] = read_parallel(pa, pb, fixes)
    return write_prepared(cfg, splits, out, fixes)


DATASETS.add(
    "parallel",
    DatasetSpec(
        name="parallel",
        task="nmt",
        summary="any parallel text: --src/--tgt (train), --dev-src/--dev-tgt, --test-src/--test-tgt",
        Config=TextPrepConfig,
        build=build_parallel,
        default_name=_default_name("parallel"),
        needs_source=False,
    ),
)


# --------------------------------------------------------------------- embedded: synthetic reordering

_NOUNS = ["cat", "dog", "bird", "man", "woman", "child", "horse", "fish", "girl", "boy", "king", "car"]
_ADJS = ["red", "small", "big", "old", "young", "happy", "black", "white"]
_VERBS = ["sees", "likes", "follows", "finds", "helps", "carries", "watches", "calls"]
_DETS = ["the", "a"]


def _lexicon(words: list[str], seed: int) -> dict[str, str]:
    """A made-up target word for each source word (deterministic)."""
    rng = random.Random(seed)
    syll = ["ka", "lo", "mi", "ru", "te", "sa", "no", "vi", "pe", "zu", "da", "fo"]
    out, used = {}, set()
    for w in words:
        while True:
            cand = "".join(rng.choice(syll) for _ in range(rng.randint(2, 3)))
            if cand not in used:
                used.add(cand)
                out[w] = cand
                break
    return out


def reorder_pair(rng: random.Random, lex: dict[str, str]) -> tuple[str, str]:
    """An SVO source with adjectives before nouns -> an SOV target with adjectives after nouns.

    "the small cat sees a red dog" -> "ka-the cat-small dog-red ka-a sees" (in made-up words):
    noun phrases swap adjective and noun, the verb moves to the end, and the object's
    determiner follows its noun phrase, so the alignment crosses in three places.
    """

    def np_(role: str) -> tuple[list[str], list[str]]:
        det, noun = rng.choice(_DETS), rng.choice(_NOUNS)
        adjs = rng.sample(_ADJS, rng.randint(0, 2))
        src = [det, *adjs, noun]
        tgt = (
            [lex[det], lex[noun], *[lex[a] for a in reversed(adjs)]]
            if role == "subj"
            else [lex[noun], *[lex[a] for a in reversed(adjs)], lex[det]]
        )
        return src, tgt

    s_src, s_tgt = np_("subj")
    o_src, o_tgt = np_("obj")
    verb = rng.choice(_VERBS)
    return " ".join([*s_src, verb, *o_src]), " ".join([*s_tgt, *o_tgt, lex[verb]])


def build_reorder(cfg: TextPrepConfig, source: Path | None, out: Path) -> dict[str, Any]:
    lex = _lexicon(_DETS + _NOUNS + _ADJS + _VERBS, cfg.seed)
    rng = random.Random(cfg.seed)
    n_val = n_test = max(50, cfg.size // 20)
    pairs = [reorder_pair(rng, lex) for _ in range(cfg.size + n_val + n_test)]
    splits = {
        "train": ([p[0] for p in pairs[: cfg.size]], [p[1] for p in pairs[: cfg.size]]),
        "val": ([p[0] for p in pairs[cfg.size : cfg.size + n_val]], [p[1] for p in pairs[cfg.size : cfg.size + n_val]]),
        "test": ([p[0] for p in pairs[cfg.size + n_val :]], [p[1] for p in pairs[cfg.size + n_val :]]),
    }
    facts = write_prepared(cfg, splits, out, [])
    facts["note"] = "synthetic SVO→SOV reordering with adjective/noun swap (generated, no download)"
    return facts


@dataclass(frozen=True)
class ReorderConfig(TextPrepConfig):
    src_lang: str = "src"
    tgt_lang: str = "tgt"
    tokenizer: Literal["moses", "space"] = "space"
    lowercase: bool = False
    min_freq: int = 1


DATASETS.add(
    "toy-reorder",
    DatasetSpec(
        name="toy-reorder",
        task="nmt",
        summary="embedded: synthetic translation with crossing alignments (SVO→SOV, adjective after noun)",
        Config=ReorderConfig,
        build=build_reorder,
        default_name=lambda cfg: "toy-reorder",
        needs_source=False,
    ),
)
