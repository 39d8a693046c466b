"""Greedy vs beam, pruning, ensembles and unk replacement on real NMT models (tiny sizes)."""

from __future__ import annotations

import pytest
import torch

from attn_cli.config import load_recipe
from attn_cli.nn.search import Ensemble, _row_topk, beam_search, beam_search_nbest, greedy, select
from attn_cli.registry import MODELS
from attn_cli.tasks.nmt import replace_unks

V_SRC, V_TGT = 17, 19
BOS, EOS = 2, 3


def model(recipe: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    r = load_recipe("nmt", recipe)
    m = MODELS.get(r.model_name)(r.model, src_vocab=V_SRC, tgt_vocab=V_TGT, pad_id=0)
    return m.eval()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    src = torch.randint(4, V_SRC, (3, 7))
    src_len = torch.tensor([7, 5, 2])
    src[1, 5:] = 0
    src[2, 2:] = 0
    return src, src_len


RECIPES = ["tiny/luong-global-general", "tiny/luong-local-p", "tiny/luong-local-m-dot", "tiny/bahdanau", "tiny/seq2seq"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_beam_of_one_is_greedy(recipe: str) -> None:
    m = model(recipe)
    src, src_len = batch()
    mem = m.encode(src, src_len)
    g = greedy(m, mem, 3, BOS, EOS, 11)
    b = beam_search(m, mem, 3, BOS, EOS, beam=1, max_len=11, alpha=0.0)
    assert [h.tokens for h in g] == [h.tokens for h in b]
    for hg, hb in zip(g, b):
        assert hg.log_prob == pytest.approx(hb.log_prob, abs=1e-4)


@pytest.mark.parametrize("recipe", RECIPES[:2])
def test_beam_is_at_least_as_good_as_greedy_and_batch_independent(recipe: str) -> None:
    m = model(recipe)
    src, src_len = batch()
    mem = m.encode(src, src_len)
    g = greedy(m, mem, 3, BOS, EOS, 11)
    b = beam_search(m, mem, 3, BOS, EOS, beam=5, max_len=11, alpha=0.0)
    for hg, hb in zip(g, b):
        assert hb.log_prob >= hg.log_prob - 1e-4
    for i in range(3):  # pruning sentences out of the batch must not change anyone's result
        one = beam_search(m, m.encode(src[i : i + 1, : int(src_len[i])], src_len[i : i + 1]), 1, BOS, EOS, 5, 11, 0.0)
        assert one[0].tokens == b[i].tokens


def test_teacher_forcing_agrees_with_step_decoding() -> None:
    """forward() (ragged loop) and step() (search) compute the same distribution."""
    m = model("tiny/luong-local-p")
    src, src_len = batch()
    tgt_in = torch.tensor([[BOS, 5, 6, 7], [BOS, 8, 9, 0], [BOS, 10, 0, 0]])
    out = m(src, src_len, tgt_in)
    logp = torch.log_softmax(m.project(out["hidden"]), -1)
    mem = m.encode(src, src_len)
    state = m.init_state(mem)
    for t in range(tgt_in.size(1)):
        lp, state, attn = m.step(tgt_in[:, t], state, mem)
        for row in range(3):
            if tgt_in[row, t] != 0:
                torch.testing.assert_close(lp[row], logp[row, t], atol=1e-5, rtol=1e-4)
                torch.testing.assert_close(attn[row], out["attn"][row, t], atol=1e-5, rtol=1e-4)


def test_ensemble_of_one_is_the_model_and_two_average() -> None:
    a, b = model("tiny/luong-global-general", 0), model("tiny/bahdanau", 1)
    src, src_len = batch()
    ma, mb = a.encode(src, src_len), b.encode(src, src_len)
    single = beam_search(a, ma, 3, BOS, EOS, 3, 9)
    one = beam_search(Ensemble([a]), (ma,), 3, BOS, EOS, 3, 9)
    assert [h.tokens for h in single] == [h.tokens for h in one]
    assert [h.score for h in single] == [h.score for h in one]
    ens = Ensemble([a, b])
    lp, _, _ = ens.step(torch.full((3,), BOS), ens.init_state((ma, mb)), (ma, mb))
    la, _, _ = a.step(torch.full((3,), BOS), a.init_state(ma), ma)
    lb, _, _ = b.step(torch.full((3,), BOS), b.init_state(mb), mb)
    torch.testing.assert_close(lp.exp(), (la.exp() + lb.exp()) / 2)


def test_unk_replacement_copies_or_translates_the_most_attended_word() -> None:
    attn = torch.tensor([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.0, 0.1, 0.9]])
    src = ["das", "Haus", "Zürich"]
    assert replace_unks(["the", "<unk>", "<unk>"], attn, src, {}) == ["the", "das", "Zürich"]
    assert replace_unks(["<unk>", "is", "<unk>"], attn, src, {"Haus": "house", "Zürich": "Zurich"}) == [
        "house",
        "is",
        "Zurich",
    ]
    assert replace_unks(["<unk>"], None, src, {}) == ["<unk>"]


class OnlyLogProbs:
    """The model behind the plain protocol (normalised ``step`` only, no ``step_logits``)."""

    def __init__(self, m: torch.nn.Module) -> None:
        self.m = m

    def init_state(self, mem):  # noqa: ANN001, ANN201
        return self.m.init_state(mem)

    def step(self, y, state, mem):  # noqa: ANN001, ANN201
        return self.m.step(y, state, mem)


@pytest.mark.parametrize("recipe", ["tiny/luong-global-general", "tiny/bahdanau"])
def test_search_on_logits_equals_search_on_log_probs(recipe: str) -> None:
    """Normalising only the kept top-K scores gives the hypotheses full log-softmax gives."""
    m = model(recipe)
    src, src_len = batch()
    mem = m.encode(src, src_len)
    assert hasattr(m, "step_logits")
    for beam in (1, 3, 5):
        fast = beam_search(m, mem, 3, BOS, EOS, beam, 11, 1.0)
        plain = beam_search(OnlyLogProbs(m), mem, 3, BOS, EOS, beam, 11, 1.0)
        assert [h.tokens for h in fast] == [h.tokens for h in plain]
        for a, b in zip(fast, plain):
            assert a.log_prob == pytest.approx(b.log_prob, abs=1e-4)
    g_fast, g_plain = greedy(m, mem, 3, BOS, EOS, 11), greedy(OnlyLogProbs(m), mem, 3, BOS, EOS, 11)
    assert [h.tokens for h in g_fast] == [h.tokens for h in g_plain]
    assert [h.log_prob for h in g_fast] == pytest.approx([h.log_prob for h in g_plain], abs=1e-4)


def test_beam_wider_than_the_vocabulary() -> None:
    m = model("tiny/luong-global-general")
    src, src_len = batch()
    hyps = beam_search(m, m.encode(src, src_len), 3, BOS, EOS, V_TGT + 4, 6, 0.0)
    assert all(len(h.tokens) <= 5 for h in hyps)


def test_ensemble_members_follow_the_module_onto_its_device() -> None:
    """Lightning moves the module after `setup` (where members are loaded): `on_test_start` must move them too.
    The meta device stands in for a GPU: a member left behind would mix devices in the first step."""
    from attn_cli.tasks.nmt import NmtModule

    module = NmtModule.__new__(NmtModule)
    torch.nn.Module.__init__(module)
    module.model = model("tiny/luong-global-general")
    module.members = [model("tiny/bahdanau", 1)]
    module.to("meta")
    assert module.device.type == "meta" and next(module.members[0].parameters()).device.type == "cpu"
    module.on_test_start()
    assert all(p.device.type == "meta" for m in module._models() for p in m.parameters())


@pytest.mark.parametrize("lowercased", [True, False])
def test_score_reports_cased_bleu_first_when_the_data_was_lowercased(lowercased: bool) -> None:
    """Lowercased data: ``bleu_cased`` (sacreBLEU's default against the references as written) comes first,
    then ``bleu`` (case:lc), each with its signature; cased data: ``bleu`` alone, already cased."""
    import sacrebleu

    from attn_cli.tasks.nmt import NmtModule

    recipe = load_recipe("nmt", "tiny/luong-global-general")
    meta = {"src_vocab": 7, "tgt_vocab": 11, "lowercase": lowercased, "pad": 0}
    module = NmtModule.__new__(NmtModule)  # score() reads only the recipe and meta: no model is built
    module.recipe, module.meta = recipe, meta
    rows = [
        {"id": 0, "hyp": "a man in an orange hat.", "ref": "A man in an orange hat.", "unks": 0},
        {"id": 1, "hyp": "two dogs run on the grass.", "ref": "Two dogs run on the green grass.", "unks": 0},
    ]
    metrics = module.score(rows, "test")
    hyps, refs = [r["hyp"] for r in rows], [[r["ref"] for r in rows]]
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, refs, lowercase=lowercased).score)
    if lowercased:
        assert list(metrics)[0] == "bleu_cased"
        assert metrics["bleu_cased"] == pytest.approx(sacrebleu.corpus_bleu(hyps, refs).score)
        assert metrics["bleu_cased"] < metrics["bleu"]
        assert "case:mixed" in module.metrics_info["bleu_cased_signature"]
        assert "case:lc" in module.metrics_info["bleu_signature"]
    else:
        assert "bleu_cased" not in metrics


@torch.no_grad()
def reference_beam(
    m: torch.nn.Module, mem: dict, sentence: int, beam: int, limit: int, alpha: float
) -> list[tuple[list[int], float, float, torch.Tensor | None]]:
    """Plain beam search, one sentence and one hypothesis at a time (no batching, no pruning tricks):
    every finished hypothesis as (tokens, score, log prob, attention), in the order they ended.

    Each step extends every alive hypothesis by every word (only by EOS at the length limit), keeps the
    K best candidates, moves those ending in EOS to the finished list and stops once the best
    candidate has ended or K hypotheses have."""
    one = select(mem, torch.tensor([sentence]))
    alive = [([], 0.0, m.init_state(one), [])]  # (tokens, log prob, state, attention rows)
    finished: list[tuple[list[int], float, float, torch.Tensor | None]] = []
    for t in range(limit):
        candidates = []
        for tokens, logp, state, att in alive:
            y = torch.tensor([tokens[-1] if tokens else BOS])
            lp, new_state, weights = m.step(y, state, one)  # (1, V)
            words = [EOS] if t == limit - 1 else range(lp.size(1))
            for w in words:
                candidates.append((logp + float(lp[0, w]), tokens + [w], new_state, att + [weights]))
        candidates.sort(key=lambda c: -c[0])
        alive = []
        for logp, tokens, state, att in candidates[:beam]:
            if tokens[-1] == EOS:
                rows = torch.cat(att)[:-1] if att[0] is not None else None  # not EOS's own
                finished.append((tokens[:-1], logp / ((5.0 + len(tokens)) / 6.0) ** alpha, logp, rows))
            else:
                alive.append((tokens, logp, state, att))
        if candidates[0][1][-1] == EOS or len(finished) >= beam:
            break
    return finished


# seeds whose random models end some hypotheses early and others at the limit; "eos-second" makes EOS every
# hypothesis's second choice, so that K hypotheses finish before the best candidate does
@pytest.mark.parametrize(
    ("recipe", "seed", "eos_second"),
    [
        ("tiny/luong-global-general", 3, False),
        ("tiny/luong-local-p", 8, False),
        ("tiny/bahdanau-lstm", 3, False),
        ("tiny/seq2seq", 3, False),
        ("tiny/bahdanau", 0, True),
    ],
)
@pytest.mark.parametrize("plain", [False, True], ids=["grouped-logits", "expanded-log-probs"])
def test_batched_beam_search_equals_a_plain_one_per_hypothesis(
    recipe: str, seed: int, eos_second: bool, plain: bool
) -> None:
    """The batched search (back-pointers, one memory row per sentence, finished sentences pruned, ragged
    length limits, EOS forced at the limit) returns exactly the plain search's hypotheses and scores; the
    plain decoder wrapper takes the search's other path (K memory rows per sentence, normalised scores)."""
    m = model(recipe, seed)
    if eos_second:
        with torch.no_grad():
            [out] = [x for x in m.modules() if isinstance(x, torch.nn.Linear) and x.out_features == V_TGT]
            out.bias[EOS] += 3.0
            out.bias[EOS + 1] += 4.0
    src, src_len = batch()
    mem = m.encode(src, src_len)
    limits = torch.tensor([10, 5, 2])
    decoder = OnlyLogProbs(m) if plain else m
    assert getattr(decoder, "grouped_memory", False) is not plain
    lengths = set()  # how far below its limit each hypothesis ended
    for beam in range(1, 6):
        for alpha in (0.0, 1.0):
            got = beam_search_nbest(decoder, mem, 3, BOS, EOS, beam, limits, alpha)
            for s in range(3):
                want = sorted(reference_beam(m, mem, s, beam, int(limits[s]), alpha), key=lambda h: -h[1])
                assert [h.tokens for h in got[s]] == [w[0] for w in want], (beam, alpha, s)
                assert [h.score for h in got[s]] == pytest.approx([w[1] for w in want], abs=1e-5)
                assert [h.log_prob for h in got[s]] == pytest.approx([w[2] for w in want], abs=1e-5)
                for h, w in zip(got[s], want):
                    if w[3] is None:
                        assert h.attn is None
                    else:
                        torch.testing.assert_close(h.attn, w[3], atol=1e-6, rtol=1e-5)
                lengths.update(int(limits[s]) - 1 - len(h.tokens) for h in got[s])
    assert 0 in lengths and max(lengths) > 0  # hypotheses forced to end at the limit and others ending before


@pytest.mark.parametrize(("rows", "vocab", "k"), [(7, 5921, 5), (3, 1000, 1), (5, 37, 4), (4, 19, 5), (6, 100, 10)])
def test_chunked_row_topk_is_topk(rows: int, vocab: int, k: int) -> None:
    """The chunked top-k search returns torch.topk's values and indices (vocabularies with and without a
    remainder past the last whole chunk, and too small to chunk)."""
    torch.manual_seed(vocab)
    x = torch.randn(rows, vocab) * 4
    x[0, -1] = 100.0  # the row's best entry in the remainder columns
    x[1, :k] = 50.0 + torch.arange(k, dtype=x.dtype)  # all k best in the first chunk
    values, index = _row_topk(x, k)
    want = x.topk(k, dim=1)
    assert torch.equal(values, want.values) and torch.equal(index, want.indices)


def test_ensemble_searches_alike_with_one_memory_row_per_sentence_or_k() -> None:
    """An ensemble of grouped-memory members is grouped too; its search equals the K-fold-memory search."""
    a, b = model("tiny/luong-global-general", 0), model("tiny/bahdanau", 1)
    src, src_len = batch()
    mems = (a.encode(src, src_len), b.encode(src, src_len))
    grouped, expanded = Ensemble([a, b]), Ensemble([a, b])
    expanded.grouped_memory = False
    assert grouped.grouped_memory
    one, other = (beam_search_nbest(e, mems, 3, BOS, EOS, 4, 9, 1.0) for e in (grouped, expanded))
    assert [[h.tokens for h in s] for s in one] == [[h.tokens for h in s] for s in other]
    for s1, s2 in zip(one, other):
        assert [h.score for h in s1] == pytest.approx([h.score for h in s2], abs=1e-5)
        for h1, h2 in zip(s1, s2):
            torch.testing.assert_close(h1.attn, h2.attn)


@pytest.mark.parametrize("grouped", [True, False], ids=["grouped", "expanded"])
def test_first_beam_step_runs_one_row_per_sentence(grouped: bool) -> None:
    """All K hypotheses of a sentence start as the same BOS row: the first step computes it once per
    sentence (memory rows too, for a decoder without grouped memory), the later steps K rows per sentence,
    and the result is the search's with every row computed (the plain reference above checks that)."""
    m = model("tiny/luong-global-general")
    src, src_len = batch()
    mem = m.encode(src, src_len)
    seen: list[tuple[int, int]] = []

    class Recording(OnlyLogProbs):
        grouped_memory = grouped

        def step(self, y, state, mem_):  # noqa: ANN001, ANN201
            seen.append((y.size(0), mem_["memory"].size(0)))
            return self.m.step(y, state, mem_)

    got = beam_search(Recording(m), mem, 3, BOS, EOS, 4, 9, 1.0)
    assert seen[0] == (3, 3)
    assert seen[1] == (12, 3 if grouped else 12)
    assert [h.tokens for h in got] == [h.tokens for h in beam_search(m, mem, 3, BOS, EOS, 4, 9, 1.0)]
