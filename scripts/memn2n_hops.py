"""Which statement does each MemN2N hop read? Per task and split, from a checkpoint.

For each question, the statement with the largest weight of hop k is compared with the question's supporting
facts in bAbI's order (the order of reasoning: on qa16 "greg is a swan", "julius is a swan", "julius is
green"): the table gives, per hop, the % of questions whose hop-k argmax is the 1st, 2nd, 3rd supporting fact,
and the answer error. A model that reasons as the paper's Fig. 1 shows reads fact k on hop k; one that
guesses reads none of them. Reads the prepared data in ``--data-dir`` (default ./data); nothing is written.

    python scripts/memn2n_hops.py RUN [--splits train,test] [--checkpoint best.ckpt]
"""

from __future__ import annotations

import torch
from memory_probe import probe_run  # scripts/ is on the path of a script run from it

from attn_cli.data.memory import collate_babi


def main() -> None:
    args, module, recipe, dm = probe_run(__doc__ or "")
    hops = int(recipe.model.hops)
    print(
        f"run {args.run} ({args.checkpoint}); per hop: % of questions whose largest weight is on supporting fact 1 / 2 / 3"
    )
    print("| split | task | questions | answer error (%) | " + " | ".join(f"hop {k + 1}" for k in range(hops)) + " |")
    print("| --- | --- | --- | --- | " + " | ".join("---" for _ in range(hops)) + " |")
    for split in args.splits.split(","):
        ds = dm.dataset(split)
        batch = collate_babi([ds[i] for i in range(len(ds))])
        with torch.no_grad():
            out = module.model(batch["story"], batch["story_len"], batch["question"])
        top = out["attn"].argmax(-1)  # (B, K): the statement each hop weighs most
        rank = batch["supporting"].gather(1, top)  # (B, K): its rank among the supporting facts, 0 for none
        wrong = out["logits"].argmax(-1) != batch["answer"]  # (B,)
        for task in sorted(set(batch["task"].tolist())):
            sel = batch["task"] == task
            n = int(sel.sum())
            cells = [
                " / ".join(f"{100 * float((rank[sel, k] == f).float().mean()):.1f}" for f in (1, 2, 3))
                for k in range(hops)
            ]
            print(
                f"| {split} | qa{task} | {n} | {100 * float(wrong[sel].float().mean()):.1f} | "
                + " | ".join(cells)
                + " |"
            )


if __name__ == "__main__":
    main()
