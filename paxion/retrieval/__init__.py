"""FAISS indexes and retrieval, multiple-choice and zero-shot evaluation."""
