"""Training loops: cold-start SFT and RL."""
