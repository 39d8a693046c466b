"""Do a DMN run's gates pick the facts they are supervised with? Per task and split, from a checkpoint.

For each question: the answer right or not, and for each pass t whether the fact with the largest gate is
the fact pass t is supervised with (the t-th supporting fact, the last one again past it:
:func:`attn_cli.models.dmn.pass_targets`; a pass with nothing to supervise counts as a hit). Also the
mean gate on the supervised facts and on the others, and the gate loss beside that of a constant gate at
the rate of supervised facts (what a gate that learned nothing scores). Then, per task, the questions
with more supporting facts than the run has passes (those facts get no supervision and may go unread).
Reads the prepared data in ``--data-dir`` (default ./data); nothing is written.

    python scripts/dmn_gates.py RUN [--splits train,test] [--checkpoint best.ckpt]
"""

from __future__ import annotations

import torch
from memory_probe import probe_run  # scripts/ is on the path of a script run from it

from attn_cli.data.memory import collate_babi
from attn_cli.models.dmn import pass_targets


def main() -> None:
    args, module, recipe, dm = probe_run(__doc__ or "")
    print("| split | task | questions | answer error (%) | gate argmax on the supervised fact, pass 1 / 2 / 3 (%) "
          "| mean gate: supervised / other facts | gate BCE / constant gate's |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for split in args.splits.split(","):
        ds = dm.dataset(split)
        stats: dict[int, dict[str, list[float]]] = {}
        with torch.no_grad():
            for start in range(0, len(ds), 256):
                batch = collate_babi([ds[i] for i in range(start, min(len(ds), start + 256))])
                out = module.model(batch["story"], batch["story_len"], batch["question"])
                gates = out["attn"]  # (B, T, M)
                target, supervised = pass_targets(batch["supporting"], gates.size(1))  # (B, T, M), (B, T)
                mask = torch.arange(gates.size(2))[None] < batch["story_len"][:, None]  # (B, M)
                hit = (gates.argmax(-1) == target.long().argmax(-1)) | ~supervised  # (B, T)
                right = out["logits"].argmax(-1) == batch["answer"]  # (B,)
                for i in range(len(right)):
                    s = stats.setdefault(int(batch["task"][i]), {"right": [], "hit": [], "on": [], "off": [], "y": []})
                    s["right"].append(float(right[i]))
                    s["hit"].append(hit[i].float().tolist())
                    keep = mask[i][None] & supervised[i][:, None]  # (T, M)
                    s["on"] += gates[i][keep & target[i]].tolist()
                    s["off"] += gates[i][keep & ~target[i]].tolist()
        for task, s in sorted(stats.items()):
            n = len(s["right"])
            passes = " / ".join(f"{100 * sum(h[t] for h in s['hit']) / n:.1f}" for t in range(len(s["hit"][0])))
            g = torch.tensor(s["on"] + s["off"]).clamp(1e-6, 1 - 1e-6)
            y = torch.tensor([1.0] * len(s["on"]) + [0.0] * len(s["off"]))
            bce = float(torch.nn.functional.binary_cross_entropy(g, y)) if len(y) else float("nan")
            rate = float(y.mean()) if len(y) else float("nan")
            const = float(torch.nn.functional.binary_cross_entropy(torch.full_like(y, rate), y)) if len(y) else rate
            on = sum(s["on"]) / max(1, len(s["on"]))
            off = sum(s["off"]) / max(1, len(s["off"]))
            print(f"| {split} | qa{task} | {n} | {100 * (1 - sum(s['right']) / n):.1f} | {passes} "
                  f"| {on:.3f} / {off:.3f} | {bce:.3f} / {const:.3f} |")  # fmt: skip
    passes = recipe.model.passes
    print(f"\n| split | task | questions | more supporting facts than the {passes} passes | most facts |")
    print("| --- | --- | --- | --- | --- |")
    for split in args.splits.split(","):
        rows = dm.dataset(split).rows
        for task in sorted({r["task"] for r in rows}):
            counts = [len(r["supporting"]) for r in rows if r["task"] == task]
            over = sum(k > passes for k in counts)
            print(f"| {split} | qa{task} | {len(counts)} | {over} | {max(counts)} |")


if __name__ == "__main__":
    main()
