"""Non-attention building blocks: encoders, CNN backbones, greedy and beam search."""
