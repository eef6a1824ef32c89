"""Knowledge Patcher, Knowledge Fuser, Side-Tuning, losses, training loop and ActionBench evaluation."""
