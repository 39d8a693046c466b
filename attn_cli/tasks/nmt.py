"""The NMT task: teacher-forced training, free-running (greedy/beam) evaluation with sacreBLEU,
perplexity, unk replacement, ensembles; alignment heatmaps in :mod:`attn_cli.viz.nmt`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from attn_cli.config import Recipe
from attn_cli.data.text import NmtDataConfig, TextDataModule
from attn_cli.data.vocab import BOS, EOS, PAD
from attn_cli.errors import AttnError
from attn_cli.io import atomic_write, write_jsonl
from attn_cli.metrics.text import corpus_bleu
from attn_cli.nn.search import Ensemble, Hypothesis, beam_search, beam_search_nbest, greedy
from attn_cli.registry import TASKS
from attn_cli.tasks.base import AttnModule, Task, load_checkpoint, perplexity


@dataclass(frozen=True)
class NmtEvalConfig:
    beam: int = 5  # 1 = greedy
    val_beam: int = 1  # decoding used for validation BLEU during training
    alpha: float = 1.0  # length penalty ((5+|Y|)/6)^α; 0 = none
    max_len_ratio: float = 1.5  # output limit per sentence: ratio × its source length + offset
    max_len_offset: int = 5
    unk_replace: bool = False  # Luong et al. §4: copy (or translate) the most-attended source word
    dictionary: str | None = None  # "source<TAB>target" lines used by unk replacement
    ensemble: tuple[str, ...] = ()  # extra checkpoints whose probabilities are averaged with this one
    bleu_lowercase: bool | None = None  # None: case-insensitive iff the data was lowercased
    perplexity: bool = True  # false: skip the teacher-forced pass (decoding alone, as the speed bench times it)
    # batches searched at once on a CPU, each by one worker with threads/workers torch threads (AttnModule
    # .predict_workers): 0 = auto, one single-threaded worker per thread; 1 = one batch at a time, every thread on it
    workers: int = 0


class _TokenNLL(torch.autograd.Function):
    """−log softmax(z)_y per row, fused: the cross-entropy of the output layer (Luong eq. 6) in fewer passes
    over the (N, V) logits than ``F.cross_entropy``.

    Forward: row maximum m, e = exp(z − m) (the one new (N, V) tensor, kept), S = Σ_v e_v, and
    NLL = log S + m − z_y. Backward: ∂NLL/∂z = softmax(z) − onehot(y) = e / S − onehot(y), so the gradient
    is e scaled per row plus a scatter at the targets. ``F.cross_entropy`` writes the log-softmax in the
    forward and, in the backward, a zero (N, V) tensor for the NLL's scatter and then the log-softmax's
    gradient from both: at V ≈ 6k the vocabulary passes, not arithmetic, were what it cost (about 8% of a
    training update). Computed in float32 (as autocast runs cross-entropy); the gradient comes back in
    the logits' dtype. Double backward is not supported."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ctx.dtype = logits.dtype
        z = logits.float()  # (N, V)
        row_max = z.amax(1, keepdim=True)  # (N, 1)
        e = torch.sub(z, row_max).exp_()  # (N, V)
        total = e.sum(1, keepdim=True)  # (N, 1)
        ctx.save_for_backward(e, total, target)
        return (total.log() + row_max - z.gather(1, target[:, None])).squeeze(1)  # (N,)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        e, total, target = ctx.saved_tensors
        g = grad.float()[:, None]  # (N, 1)
        out = e * (g / total)  # (N, V) softmax scaled by each row's incoming gradient
        out.scatter_add_(1, target[:, None], -g)
        return out.to(ctx.dtype), None


def token_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-token NLL (N,) of logits (N, V) at target (N,): ``F.cross_entropy(..., reduction="none")``'s value
    and gradient, fused (:class:`_TokenNLL`)."""
    nll: torch.Tensor = _TokenNLL.apply(logits, target)  # type: ignore[no-untyped-call]
    return nll


def replace_unks(
    tokens: list[str], attn: torch.Tensor | None, src_tokens: list[str], dictionary: dict[str, str]
) -> list[str]:
    """Luong et al. (2015) §4 / Jean et al. (2015): each <unk> becomes the source word it attends to most."""
    if attn is None:
        return tokens
    out = []
    for t, tok in enumerate(tokens):
        if tok == "<unk>" and src_tokens:
            pos = min(int(attn[t, : len(src_tokens)].argmax()), len(src_tokens) - 1)
            word = src_tokens[pos]
            out.append(dictionary.get(word, word))
        else:
            out.append(tok)
    return out


def read_dictionary(path: str) -> dict[str, str]:
    p = Path(path)
    if not p.is_file():
        raise AttnError(f"unk-replacement dictionary {path} does not exist")
    out = {}
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if len(parts) < 2:
            raise AttnError(f"{path}:{n} must be 'source<TAB>target'")
        out.setdefault(parts[0], parts[1])
    return out


@runtime_checkable
class NmtModel(Protocol):
    """What this task, beam search and ensembles call on a registered NMT model (tests/test_models.py
    checks every one): a teacher-forced pass for the loss and perplexity, and the step-decoder protocol
    of :mod:`attn_cli.nn.search` for decoding."""

    def __call__(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, Any]: ...

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> Any: ...

    def init_state(self, memory: Any) -> Any: ...

    def step(self, y_prev: torch.Tensor, state: Any, memory: Any) -> tuple[torch.Tensor, Any, torch.Tensor | None]: ...

    def project(self, hidden: torch.Tensor) -> torch.Tensor: ...


class NmtModule(AttnModule):
    parallel_predict = True  # greedy / beam search and the teacher-forced perplexity: no random draws

    def build_model(self, recipe: Recipe, meta: dict[str, Any]) -> torch.nn.Module:
        from attn_cli.registry import MODELS

        return MODELS.get(recipe.model_name)(
            recipe.model, src_vocab=meta["src_vocab"], tgt_vocab=meta["tgt_vocab"], pad_id=meta["pad_id"]
        )

    def __init__(self, recipe: Recipe, meta: dict[str, Any]) -> None:
        super().__init__(recipe, meta)
        self.tgt_itos = meta["vocab"]["tgt"]
        self.src_itos = meta["vocab"]["src"]
        self.members: list[torch.nn.Module] = []  # extra ensemble members (evaluation only)
        self.dictionary: dict[str, str] = {}

    def setup(self, stage: str) -> None:
        if stage == "test":
            ev = self.recipe.eval
            self.dictionary = read_dictionary(ev.dictionary) if ev.dictionary else {}
            self.load_members(ev.ensemble)

    def load_members(self, paths: Iterable[str | Path]) -> None:
        """Ensemble members (Luong et al. §4.1): the models of these checkpoints, which must share this
        model's vocabularies; decoding and perplexity then average the members' probabilities."""
        self.members = []
        for path in paths:
            other, _ = load_checkpoint(Path(path), "nmt")
            if other.meta["vocab"] != self.meta["vocab"]:
                raise AttnError(f"ensemble member {path} was trained with other vocabularies; members must share them")
            self.members.append(other.model.eval().to(self.device))

    def on_test_start(self) -> None:
        """The members are no submodules (they are not saved with this model): follow it onto its device,
        which Lightning chooses after ``setup``."""
        self.members = [m.to(self.device) for m in self.members]

    # -- training ---------------------------------------------------------------------------
    def _nll(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sentence summed NLL (B,) and token counts (B,), teacher-forced (EOS included).

        With ensemble members (evaluation only) the probabilities are the members' average, as in
        decoding, so the perplexity is the ensemble's."""
        keep = batch["tgt_out"] != PAD  # (B, Tq)
        target = batch["tgt_out"][keep]  # (N,)
        # the output layer and softmax only on real tokens: with random batches half the grid is padding
        logits = [m.project(m(batch["src"], batch["src_len"], batch["tgt_in"])["hidden"][keep]) for m in self._models()]
        if len(logits) == 1:
            nll = token_nll(logits[0], target)  # (N,)
        else:
            lp = torch.stack([F.log_softmax(x, dim=-1) for x in logits])  # (M, N, V)
            lp = torch.logsumexp(lp, 0) - math.log(len(logits))  # (N, V) log of the mean probability
            nll = -lp.gather(1, target[:, None]).squeeze(1)  # (N,)
        rows = keep.nonzero()[:, 0]  # (N,) sentence of each token
        per_sentence = torch.zeros(keep.size(0), dtype=nll.dtype, device=nll.device).index_add_(0, rows, nll)
        return per_sentence, keep.sum(1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        nll, ntok = self._nll(batch)
        loss = nll.sum() / ntok.sum()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(ntok))
        return loss

    # -- evaluation -------------------------------------------------------------------------
    def _models(self) -> list[torch.nn.Module]:
        return [self.model, *self.members]

    def decode(self, batch: dict[str, torch.Tensor], beam: int) -> list[Hypothesis]:
        decoder, memory, b, max_len = self._search_inputs(batch)
        if beam == 1:
            return greedy(decoder, memory, b, BOS, EOS, max_len)
        return beam_search(decoder, memory, b, BOS, EOS, beam, max_len, self.recipe.eval.alpha)

    def decode_nbest(self, batch: dict[str, torch.Tensor], beam: int) -> list[list[Hypothesis]]:
        """Every finished hypothesis of each sentence, best first (``attn translate --n-best``)."""
        decoder, memory, b, max_len = self._search_inputs(batch)
        if beam == 1:
            return [[h] for h in greedy(decoder, memory, b, BOS, EOS, max_len)]
        return beam_search_nbest(decoder, memory, b, BOS, EOS, beam, max_len, self.recipe.eval.alpha)

    def _search_inputs(self, batch: dict[str, torch.Tensor]) -> tuple[Any, Any, int, torch.Tensor]:
        ev = self.recipe.eval
        models = self._models()
        mems = tuple(m.encode(batch["src"], batch["src_len"]) for m in models)
        max_len = (ev.max_len_ratio * batch["src_len"].float()).long() + ev.max_len_offset  # (B,) per sentence
        decoder = Ensemble(models) if len(models) > 1 else models[0]
        memory = mems if len(models) > 1 else mems[0]
        return decoder, memory, batch["src"].size(0), max_len

    def predict_rows(self, batch: dict[str, torch.Tensor], split: str, *, final: bool = True) -> list[dict[str, Any]]:
        ev = self.recipe.eval
        with_ppl = ev.perplexity or not final
        nll, ntok = self._nll(batch) if with_ppl else (None, None)
        hyps = self.decode(batch, ev.beam if final else ev.val_beam)
        ds, detok = self.data.dataset(split), self.data.detok
        rows = []
        for i, hyp in enumerate(hyps):
            idx = int(batch["ids"][i])
            tokens = [self.tgt_itos[t] for t in hyp.tokens]
            src_tokens = ds.src_tokens[idx]
            if ev.unk_replace and final:
                tokens = replace_unks(tokens, hyp.attn, src_tokens, self.dictionary)
            rows.append(
                {
                    "id": idx,
                    "src": " ".join(src_tokens),
                    "hyp": detok(tokens),
                    "ref": ds.refs[idx],
                    **({"nll": float(nll[i]), "ntok": int(ntok[i])} if with_ppl else {}),
                    "unks": sum(t == "<unk>" for t in tokens),
                }
            )
        return rows

    def score(self, rows: list[dict[str, Any]], split: str, *, final: bool = True) -> dict[str, float]:
        ev = self.recipe.eval
        lower = self.meta.get("lowercase", False) if ev.bleu_lowercase is None else ev.bleu_lowercase
        hyps, refs = [r["hyp"] for r in rows], [r["ref"] for r in rows]
        bleu = corpus_bleu(hyps, refs, lowercase=lower)
        beam = ev.beam if final else ev.val_beam
        self.metrics_info = {"bleu_signature": bleu.signature, "decoding": "greedy" if beam == 1 else f"beam {beam}"}
        metrics: dict[str, float] = {}
        if lower:
            # BLEU against the references as they are (sacreBLEU's default, case:mixed) comes first, as sacreBLEU
            # reports it; ``bleu`` (lowercased, as the data was) is the score the tables and monitor use
            cased = corpus_bleu(hyps, refs, lowercase=False)
            metrics["bleu_cased"] = cased.score
            self.metrics_info["bleu_cased_signature"] = cased.signature
        metrics["bleu"] = bleu.score
        if all("nll" in r for r in rows):
            metrics["ppl"] = perplexity(sum(r["nll"] for r in rows), sum(r["ntok"] for r in rows))
        metrics["unk_rate"] = 100.0 * sum(r["unks"] for r in rows) / max(1, sum(len(r["hyp"].split()) for r in rows))
        return metrics

    def save_predictions(self, rows: list[dict[str, Any]], out: Path) -> None:
        """predictions.jsonl (with ids) plus hyp.txt / ref.txt in id order, for the sacrebleu command line."""
        write_jsonl(out / "predictions.jsonl", rows)
        atomic_write(out / "hyp.txt", "".join(r["hyp"].replace("\n", " ") + "\n" for r in rows))
        atomic_write(out / "ref.txt", "".join(r["ref"].replace("\n", " ") + "\n" for r in rows))


class NmtTask(Task):
    name = "nmt"
    summary = "neural machine translation: seq2seq, RNNsearch, Luong global/local"
    data_config = NmtDataConfig
    eval_config = NmtEvalConfig
    module_class = NmtModule
    metric_units = {
        "bleu": "BLEU (sacreBLEU, 0-100; lowercased when the data was: case:lc in its signature)",
        "bleu_cased": "cased BLEU (sacreBLEU's default case:mixed, 0-100, against the references as written)",
        "ppl": "perplexity (per target token, EOS included)",
        "unk_rate": "% of output tokens",
    }

    def datamodule(self, recipe: Recipe, data_dir: Path) -> TextDataModule:
        t = recipe.train
        return TextDataModule(recipe.data, data_dir, t.batch_size, t.seed, t.num_workers)

    def visualize(self, module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
        """Alignments of the first ``n`` sentences of ``split`` as the recipe's beam decodes them
        (:func:`attn_cli.viz.nmt.alignments`)."""
        from attn_cli.data.text import collate
        from attn_cli.viz.nmt import alignments

        if getattr(module.model, "attn", None) is None:
            raise AttnError(f"{module.recipe.model_name} ({module.recipe.name}) has no attention to draw")
        ds = dm.dataset(split)
        batch = collate([ds[i] for i in range(min(n, len(ds)))])
        module.eval()
        with torch.no_grad():
            hyps = module.decode(batch, module.recipe.eval.beam)
            return alignments(
                module.model, batch, hyps, ds.src_tokens, module.tgt_itos, out_dir,
                bos=BOS, split=split, name=module.recipe.name,
            )  # fmt: skip


TASKS.add("nmt", NmtTask())
