"""Video decoding, backbone adapters, the extraction pipeline and state-change saliency."""
