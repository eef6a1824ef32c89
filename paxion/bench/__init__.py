"""Dataset readers and ActionBench construction (action antonyms, object replacement)."""
