"""Using a trained run on your own input (issue 19): translate sentences, caption and classify images.

Nothing here preprocesses or decodes on its own: the sentences go through the prepared dataset's
:class:`attn_cli.data.preprocess.Preprocessor` (tokenizer, lowercasing, sentencepiece, as ``attn prepare``
cut the training text) and the run's vocabulary, and come back through the NMT task's beam search,
unk replacement and detokeniser; images are resized to the run's input and go through the caption
task's decoding and attention panels, or the vision models' ``predict`` and their pictures.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import yaml

from attn_cli.errors import AttnError
from attn_cli.runs import check_run_dir, find_checkpoint
from attn_cli.tasks.base import AttnModule, load_checkpoint, read_checkpoint

COMMAND_OF = {"nmt": "translate", "caption": "caption", "vision": "classify"}


def load_run(run: Path, task: str, checkpoint: Path | None = None) -> tuple[Path, AttnModule, Any]:
    """The run's directory, its model in eval mode and its recipe: the best checkpoint unless one is named.
    A run or checkpoint of another task is refused with the command that uses it."""
    run_dir = check_run_dir(Path(run))
    data = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
    command = f"attn {COMMAND_OF[task]}"
    other = data.get("task")
    if other != task:
        use = f"; use `attn {COMMAND_OF[other]}`" if other in COMMAND_OF else ""
        raise AttnError(f"run {run_dir} is a {other} run; `{command}` needs a {task} run{use}")
    ckpt = Path(checkpoint) if checkpoint else find_checkpoint(run_dir, "best")
    found = read_checkpoint(ckpt)["attn"]["task"]
    if found != task:
        raise AttnError(f"checkpoint {ckpt} is from a {found} run; `{command}` needs a {task} checkpoint")
    module, recipe = load_checkpoint(ckpt, task)
    module.eval()
    return run_dir, module, recipe


# ---------------------------------------------------------------------------------------------
# translate


@dataclass(frozen=True)
class TranslateOptions:
    beam: int | None = None  # None: the recipe's eval.beam
    n_best: int = 0  # > 0: JSON lines with the n best hypotheses and their scores
    alignments: bool = False  # JSON lines with each hypothesis's attention matrix (output × source tokens)
    unk_replace: bool = False  # Luong et al. §4, with the recipe's eval.dictionary if it names one
    batch_size: int = 0  # sentences per decoding batch; 0: the recipe's data.eval_batch_size
    ensemble: tuple[Path, ...] = ()  # more checkpoints whose probabilities are averaged with the run's (§4.1)


class Translator:
    """A trained NMT run as a function from lines of text to translations (1-best text, or JSON rows)."""

    def __init__(self, run: Path, data_dir: Path, checkpoint: Path | None, options: TranslateOptions) -> None:
        from attn_cli.registry import TASKS
        from attn_cli.tasks.nmt import read_dictionary

        self.run_dir, self.module, recipe = load_run(run, "nmt", checkpoint)
        dm = TASKS.get("nmt").datamodule(recipe, data_dir)
        if dm.meta["vocab"] != self.module.meta["vocab"]:
            raise AttnError(
                f"dataset {recipe.data.dataset!r} in {data_dir} has other vocabularies than run {self.run_dir} "
                "was trained with; point --data-dir at the data the run was trained on"
            )
        self.beam = options.beam if options.beam is not None else recipe.eval.beam
        if self.beam < 1:
            raise AttnError(f"--beam must be at least 1, got {self.beam}")
        if options.n_best > self.beam:
            raise AttnError(f"--n-best {options.n_best} needs a beam at least as wide (--beam {options.n_best})")
        if options.batch_size < 0:
            raise AttnError(f"--batch-size must be 0 (the recipe's) or more, got {options.batch_size}")
        self.options = options
        self.module.load_members(options.ensemble)
        self.preprocess, self.src_vocab, self.detok = dm.preprocessor("src"), dm.src_vocab, dm.detok
        self.dictionary = (
            read_dictionary(recipe.eval.dictionary) if options.unk_replace and recipe.eval.dictionary else {}
        )
        self.batch_size = options.batch_size or recipe.data.eval_batch_size

    @property
    def as_json(self) -> bool:
        return self.options.n_best > 0 or self.options.alignments

    def translate(self, lines: list[str]) -> list[str]:
        """One output line per input line (text, or a JSON object), in input order; batches are formed
        by source length, so that little of each is padding."""
        from attn_cli.data.text import collate
        from attn_cli.tasks.base import PredictWorkers

        sources = [self.preprocess(line) for line in lines]
        out: list[str] = [""] * len(lines)
        order = sorted((i for i in range(len(lines)) if sources[i]), key=lambda i: len(sources[i]))
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        # on a CPU, several batches searched at once by single-threaded workers, as `attn eval` does (eval.workers)
        workers, each = self.module.predict_workers(len(batches))
        pool = PredictWorkers(workers, each) if workers > 1 else None
        results: list[list[Any]] = []
        with torch.no_grad():
            for ids in batches:
                items = [
                    (i, torch.tensor(self.src_vocab.encode(sources[i]), dtype=torch.long), torch.zeros(0)) for i in ids
                ]
                batch = collate(items)
                if pool is None:
                    results.append(self.module.decode_nbest(batch, self.beam))
                else:
                    pool.submit(lambda b=batch: [self.module.decode_nbest(b, self.beam)])
            if pool is not None:
                results = pool.finish()
        for ids, nbest in zip(batches, results, strict=True):
            for row, i in enumerate(ids):
                out[i] = self._render(i, lines[i], sources[i], nbest[row])
        for i, line in enumerate(lines):
            if not sources[i] and self.as_json:  # a blank line stays a line, with no hypothesis
                out[i] = json.dumps({"line": i + 1, "src": line, "src_tokens": [], "nbest": []}, ensure_ascii=False)
        return out

    def _render(self, i: int, line: str, src: list[str], hyps: list[Any]) -> str:
        from attn_cli.tasks.nmt import replace_unks

        entries = []
        for hyp in hyps[: max(1, self.options.n_best)]:
            tokens = [self.module.tgt_itos[t] for t in hyp.tokens]
            if self.options.unk_replace:
                tokens = replace_unks(tokens, hyp.attn, src, self.dictionary)
            entry: dict[str, Any] = {"hyp": self.detok(tokens), "tokens": tokens, "score": round(hyp.score, 4)}
            entry["log_prob"] = round(hyp.log_prob, 4)
            if self.options.alignments and hyp.attn is not None:
                # (output tokens, source tokens): the weights each output token was produced with
                entry["alignment"] = [[round(float(a), 4) for a in row[: len(src)]] for row in hyp.attn]
            entries.append(entry)
        if not self.as_json:
            return entries[0]["hyp"]
        return json.dumps({"line": i + 1, "src": line, "src_tokens": src, "nbest": entries}, ensure_ascii=False)


def read_lines(stream: TextIO, where: str) -> Iterator[str]:
    """Lines of a text stream without their newlines; bytes that are not UTF-8 are a user error."""
    try:
        for line in stream:
            yield line.rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise AttnError(f"{where} is not UTF-8 text ({err.reason}); re-encode it as UTF-8") from err


def translate_stream(
    translator: Translator, lines: Iterable[str], out: TextIO, *, interactive: bool, chunk: int = 0
) -> int:
    """Translate ``lines`` onto ``out``, flushing as it goes: one line at a time when ``interactive`` (a line
    typed, a line back), else chunks of ``chunk`` lines (default: 8 batches) sorted by length inside.
    Returns the number of lines; none at all is an error (nothing was written)."""
    size = 1 if interactive else chunk or 8 * translator.batch_size
    count, pending = 0, []
    for line in lines:
        pending.append(line)
        if len(pending) >= size:
            count += _emit(translator, pending, out)
            pending = []
    count += _emit(translator, pending, out) if pending else 0
    if count == 0:
        raise AttnError("no input: give one sentence per line on stdin or with --input FILE")
    return count


def _emit(translator: Translator, lines: list[str], out: TextIO) -> int:
    for text in translator.translate(lines):
        out.write(text + "\n")
    out.flush()
    return len(lines)


def input_is_interactive(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


# ---------------------------------------------------------------------------------------------
# images: caption and classify

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def image_paths(inputs: list[Path]) -> list[Path]:
    """The images named, a folder standing for the image files in it (sorted)."""
    if not inputs:
        raise AttnError("no images: give one or more image files or a folder of them")
    out: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise AttnError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise AttnError(f"{path} does not exist")
    return out


def load_images(paths: list[Path], shape: list[int]) -> np.ndarray:
    """uint8 pixels (N, C, H, W) of the run's input ``shape`` (C, H, W): each image converted to grey (C = 1)
    or RGB (C = 3) and resized, bilinearly, to H × W, as the run's prepared images are stored."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    if c not in (1, 3):
        raise AttnError(f"this run's model reads {c}-channel inputs, not pictures; use `attn eval` on its data")
    out = np.zeros((len(paths), c, h, w), dtype=np.uint8)
    for n, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                pixels = np.asarray(img.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR))
        except (UnidentifiedImageError, OSError) as err:
            raise AttnError(
                f"{path} is not an image that can be read ({type(err).__name__}); give a PNG or JPEG"
            ) from err
        out[n] = pixels[None] if c == 1 else pixels.transpose(2, 0, 1)
    return out


def caption(
    run: Path, images: list[Path], *, checkpoint: Path | None = None, beam: int | None = None, viz: Path | None = None
) -> list[dict[str, Any]]:
    """Free-running captions of ``images`` (Xu et al. 2015 decoding, the recipe's beam unless given); with
    ``viz`` a folder, the per-word attention panels of each (Xu et al. Fig. 2-3) are drawn there."""
    from attn_cli.data.caption import to_input
    from attn_cli.viz.caption import image_panels

    _, module, recipe = load_run(run, "caption", checkpoint)
    if module.meta.get("input_kind") != "image":
        raise AttnError(
            f"run {run} was trained on {module.meta.get('input_kind')} (not pixels); caption images with a run "
            "trained on pixel images"
        )
    paths = image_paths(images)
    pixels = load_images(paths, list(module.meta["input_shape"]))
    width = beam if beam is not None else recipe.eval.beam
    if width < 1:
        raise AttnError(f"--beam must be at least 1, got {width}")
    model = module.model
    x = torch.stack([to_input(p) for p in pixels])  # (N, C, H, W) in [0, 1], as the datamodule feeds it
    with torch.no_grad():
        hyps = module.decode(model.encode(x), len(paths), width)
    rows = []
    for i, (path, hyp) in enumerate(zip(paths, hyps)):
        words = module.words(hyp.tokens)
        row: dict[str, Any] = {"image": str(path), "caption": " ".join(words)}
        if viz is not None:
            if hyp.attn is None or model.grid is None:
                raise AttnError(f"{recipe.name} ({model.attention_kind()} context) has no attention map to draw")
            if words:
                Path(viz).mkdir(parents=True, exist_ok=True)
                row["picture"] = str(image_panels(x[i], hyp.attn, words, model.grid, Path(viz) / f"{path.stem}.png"))
        rows.append(row)
    return rows


def classify(
    run: Path, images: list[Path], *, checkpoint: Path | None = None, top: int = 5, viz: Path | None = None
) -> list[dict[str, Any]]:
    """Top-``top`` classes of ``images`` with their probabilities, from the model's own ``predict`` (RAM:
    the policy's mean glimpse locations); with ``viz``, the glimpse / warp / read-box picture of each."""
    from attn_cli.viz.vision import viz_draw, viz_glimpses, viz_stn

    _, module, recipe = load_run(run, "vision", checkpoint)
    model = module.model
    if model.kind != "classify":
        raise AttnError(f"{recipe.name} is a {model.kind} model; `attn classify` needs a classifier run")
    if top < 1:
        raise AttnError(f"--top must be at least 1, got {top}")
    paths = image_paths(images)
    pixels = load_images(paths, list(module.meta["image_shape"]))
    k = int(module.meta["classes"])
    x = torch.from_numpy(pixels).float() / 255.0  # (N, C, H, W), as the vision collate scales
    with torch.no_grad():
        # each image paired with every class: predict's loss is -log p(class | image), one pass for all
        loss = model.predict(x.repeat_interleave(k, 0), torch.arange(k).repeat(len(paths)))["loss"]
    probs = torch.exp(-loss.view(len(paths), k))  # (N, K)
    best_p, best_c = probs.topk(min(top, k), dim=1)
    rows = [
        {"image": str(p), "top": [{"class": int(c), "p": round(float(q), 4)} for c, q in zip(best_c[i], best_p[i])]}
        for i, p in enumerate(paths)
    ]
    fn = {"ram": viz_glimpses, "stn": viz_stn, "draw": viz_draw}.get(recipe.model_name)
    if viz is not None:
        if fn is None:
            raise AttnError(f"{recipe.model_name} ({recipe.name}) has no attention to draw; drop --viz")
        out = Path(viz)
        out.mkdir(parents=True, exist_ok=True)
        batch = {"ids": torch.arange(len(paths)), "x": x, "y": best_c[:, 0]}  # y: the predicted class
        with torch.no_grad():
            drawn = fn(model, batch, out, f"{recipe.name} (your images; label = prediction)")
        for row, picture in zip(rows, drawn):
            row["picture"] = str(picture)
    return rows


def stdin_lines() -> Iterator[str]:
    return read_lines(sys.stdin, "stdin")
