"""The special tokens every vocabulary starts with, in this order, for text and captions alike.

``data_prep`` writes vocabularies that begin with :data:`SPECIALS` and the runtime reads token ids with
these indices; both import them from here, so the preparation layer depends on the runtime and never the
reverse (docs/architecture.md).
"""

from __future__ import annotations

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
PAD, UNK, BOS, EOS = range(4)

# the words of the generated caption datasets (data_prep.mnist_captions, data_prep.moving_mnist), which the
# caption task also scores on their own (digit names, motions)
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MOVES = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}  # (dx, dy)
