"""What the Hugging Face adapters share: offline loading, image normalisation and text encoding.

The adapters (hf_clip, hf_xclip) subclass `HFBackbone`; this module imports neither of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from paxion.errors import BackboneError
from paxion.extract.backbones.base import Backbone

# CLIP's own pixel statistics, used when a checkpoint ships no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _local_file(target: str, filename: str) -> Path | None:
    """A file of a local model directory or of a model already in the user's HF cache, or None."""
    if Path(target).is_dir():
        path = Path(target) / filename
        return path if path.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(target, filename)
    return Path(found) if isinstance(found, str) else None


def image_stats(target: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The checkpoint's image mean and std from its preprocessor config, else CLIP's."""
    path = _local_file(target, "preprocessor_config.json")
    config = json.loads(path.read_text()) if path else {}
    return tuple(config.get("image_mean", CLIP_MEAN)), tuple(config.get("image_std", CLIP_STD))


def _portable(config: dict) -> dict:
    """A model config without the fields that name where or by which version it was loaded."""
    return {
        k: _portable(v) if isinstance(v, dict) else v
        for k, v in config.items()
        if not str(k).startswith("_") and k != "transformers_version"
    }


def _pooled(output: object) -> torch.Tensor:
    """The projected features of a `get_*_features` call (a tensor, or an output with `pooler_output`)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class HFBackbone(Backbone):
    """A frozen `transformers` CLIP-family model with its tokenizer; subclasses encode video.

    Subclasses set `kind` (the spec's name, e.g. "hf-clip") and `model_class` (the `transformers` model class).
    """

    kind: str
    model_class: type

    def __init__(
        self, *, name: str, model: torch.nn.Module, tokenizer, mean: tuple, std: tuple, text_batch: int = 256
    ) -> None:
        super().__init__()
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.text_batch = text_batch
        vision = model.config.vision_config
        self.image_size = vision.image_size
        self.token_dim = vision.hidden_size
        self.tokens_per_frame = (vision.image_size // vision.patch_size) ** 2 + 1
        self.embed_dim = model.config.projection_dim
        self.mean, self.std = tuple(mean), tuple(std)
        self.freeze()

    def config_dict(self) -> dict:
        """The model config (without load paths) and the pixel normalisation."""
        return {
            "kind": self.kind,
            "config": _portable(self.model.config.to_dict()),
            "mean": self.mean,
            "std": self.std,
        }

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """The model's projected text features [n, d]."""
        if not texts:
            return torch.zeros(0, self.embed_dim, device=self.device)
        max_len = self.model.config.text_config.max_position_embeddings
        out = []
        for i in range(0, len(texts), self.text_batch):
            inputs = self.tokenizer(
                texts[i : i + self.text_batch], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
            ).to(self.device)
            out.append(self._text_features(inputs["input_ids"], inputs["attention_mask"]))
        return torch.cat(out)

    def _text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Projected features [n, d] of tokenised texts."""
        return _pooled(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))

    def truncated(self, texts: list[str]) -> list[bool]:
        """Per text, whether its token sequence is longer than the text encoder's `max_position_embeddings`."""
        max_len = self.model.config.text_config.max_position_embeddings
        lengths = self.tokenizer(texts, truncation=False, verbose=False)["input_ids"] if texts else []
        return [len(ids) > max_len for ids in lengths]

    @classmethod
    def load(cls, target: str, *, device: str | torch.device = "cpu") -> HFBackbone:
        """Load weights and tokenizer from a local directory or the HF cache, never the web.

        Raises BackboneError when they are not on disk, are another model type, or lack weights.
        """
        from transformers import AutoConfig, AutoTokenizer

        kind = cls.kind
        try:
            config = AutoConfig.from_pretrained(target, local_files_only=True)
            expected = cls.model_class.config_class.model_type
            if config.model_type != expected:
                raise BackboneError(f"{kind}:{target} is a {config.model_type!r} model, not {expected!r}")
            model, info = cls.model_class.from_pretrained(target, local_files_only=True, output_loading_info=True)
            tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise BackboneError(
                f"{kind}:{target}: weights or tokenizer not found locally ({type(exc).__name__}); "
                f"run `huggingface-cli download {target}` on a machine with internet, or pass a local directory"
            ) from exc
        if info["missing_keys"]:
            # from_pretrained would otherwise fill them with random values without failing
            raise BackboneError(
                f"{kind}:{target}: checkpoint lacks {len(info['missing_keys'])} weights, "
                f"e.g. {min(info['missing_keys'])}"
            )
        mean, std = image_stats(target)
        return cls(name=f"{kind}:{target}", model=model, tokenizer=tokenizer, mean=mean, std=std).to(device)
