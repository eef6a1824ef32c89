"""The trainable models: patcher, fuser and side-tuning layers, and the patched model with its file format."""
