"""What the Hugging Face adapters share: offline float32 loading, the checkpoint's image processing, text encoding.

The adapters (hf_clip, hf_xclip, hf_siglip) subclass `HFBackbone`; this module imports none of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import torch

from paxion.errors import BackboneError
from paxion.extract.backbones.base import Backbone, PixelSpec, processor_pixels

# PIL's resampling codes, as preprocessor_config.json stores them, for the kernels torch has.
RESAMPLE = {2: "bilinear", 3: "bicubic"}


def _local_file(target: str, filename: str) -> Path | None:
    """A file of a local model directory or of a model already in the user's HF cache, or None."""
    if Path(target).is_dir():
        path = Path(target) / filename
        return path if path.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(target, filename)
    return Path(found) if isinstance(found, str) else None


def _hw(value: int | dict) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value["height"], value["width"])


def pixel_spec(target: str, *, defaults: dict, image_size: int) -> PixelSpec:
    """The checkpoint's image processing: its preprocessor_config.json over its processor class's `defaults`.

    Without `size` / `crop_size`, the model's `image_size` is both (a shorter-side resize and centre crop when
    `do_center_crop`, else a resize to the square). Raises BackboneError when the file asks for a resampling kernel
    other than bilinear / bicubic, or for a shorter-side resize without a crop.
    Source: transformers' image processor fields (size as an int or {"shortest_edge"} or {"height", "width"},
    crop_size, do_center_crop, resample, image_mean, image_std).
    """
    path = _local_file(target, "preprocessor_config.json")
    config = defaults | (json.loads(path.read_text()) if path else {})
    crop = _hw(config.get("crop_size", image_size)) if config.get("do_center_crop", False) else None
    size = config.get("size", image_size if crop else {"height": image_size, "width": image_size})
    size = size if isinstance(size, int) else size.get("shortest_edge") or _hw(size)
    if isinstance(size, int) and crop is None:
        raise BackboneError(f"{path}: a shorter-side resize without a centre crop gives frames of varying sizes")
    resample = RESAMPLE.get(config.get("resample", 2))
    if resample is None:
        raise BackboneError(f"{path}: resample {config['resample']} is not bilinear (2) or bicubic (3)")
    return PixelSpec(size=size, crop=crop, resample=resample,
                     mean=tuple(config["image_mean"]), std=tuple(config["image_std"]))


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

    Subclasses set `kind` (the spec's name, e.g. "hf-clip"), `model_class` (the `transformers` model class) and
    `processor_defaults` (what its model's own image processing is without a preprocessor config: do_center_crop,
    resample, image_mean, image_std; only statistics known for certain).
    """

    kind: str
    model_class: type
    processor_defaults: ClassVar[dict]

    def __init__(
        self, *, name: str, model: torch.nn.Module, tokenizer, pixels: PixelSpec, text_batch: int = 256
    ) -> None:
        super().__init__()
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.text_batch = text_batch
        self.pixels = pixels
        vision = model.config.vision_config
        if pixels.output != (vision.image_size, vision.image_size):
            raise BackboneError(f"{name}: the image processor makes {pixels.output} pixels, the model takes "
                                f"{vision.image_size}")
        self.image_size = vision.image_size
        self.token_dim = vision.hidden_size
        self.tokens_per_frame = (vision.image_size // vision.patch_size) ** 2 + self.class_tokens
        self.embed_dim = getattr(model.config, "projection_dim", None) or model.config.text_config.projection_size
        self.mean, self.std = pixels.mean, pixels.std
        self.freeze()

    class_tokens = 1  # tokens besides the patches in the vision tower's last hidden state
    # the tokenizer's `padding`; texts padded to the full length are encoded without a mask, as SigLIP was trained
    text_padding: str | bool = True

    @property
    def logit_scale(self) -> float:
        """The model's trained inverse temperature exp(logit_scale)."""
        return self.model.logit_scale.exp().item()

    def config_dict(self) -> dict:
        """The model config (without load paths) and the image processing."""
        return {"kind": self.kind, "config": _portable(self.model.config.to_dict()), "pixels": vars(self.pixels)}

    @property
    def decode_geometry(self) -> tuple[int, bool]:
        """A cropping processor gets centre squares at its shorter-side size; a squashing one, the squashed input."""
        if self.pixels.crop is None or not isinstance(self.pixels.size, int):
            return self.image_size, False
        return self.pixels.size, True

    def preprocess(self, frames) -> torch.Tensor:
        """Uint8 frames [B, T, H, W, 3] as the checkpoint's image processor makes them: float [B, T, 3, S, S]."""
        return processor_pixels(frames, self.pixels, device=self.device)

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """The model's projected text features [n, d]."""
        if not texts:
            return torch.zeros(0, self.embed_dim, device=self.device)
        max_len = self.model.config.text_config.max_position_embeddings
        out = []
        for i in range(0, len(texts), self.text_batch):
            inputs = self.tokenizer(
                texts[i : i + self.text_batch], padding=self.text_padding, truncation=True, max_length=max_len,
                return_tensors="pt",
            ).to(self.device)
            out.append(self._text_features(inputs["input_ids"], inputs["attention_mask"]))
        return torch.cat(out)

    def _text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Projected features [n, d] of tokenised texts (the mask is passed only to models that pad to the batch;
        SigLIP pads to full length and was trained without one)."""
        mask = {"attention_mask": attention_mask} if self.text_padding is True else {}
        return _pooled(self.model.get_text_features(input_ids=input_ids, **mask))

    def truncated(self, texts: list[str]) -> list[bool]:
        """Per text, whether its token sequence is longer than the text encoder's `max_position_embeddings`."""
        max_len = self.model.config.text_config.max_position_embeddings
        lengths = self.tokenizer(texts, truncation=False, verbose=False)["input_ids"] if texts else []
        return [len(ids) > max_len for ids in lengths]

    @classmethod
    def load(cls, target: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> HFBackbone:
        """Load weights (as `dtype`, default float32 whatever the checkpoint stores) and tokenizer from a local
        directory or the HF cache, never the web.

        Raises BackboneError when they are not on disk, are another model type or lack weights.
        """
        from transformers import AutoConfig, AutoTokenizer

        kind = cls.kind
        try:
            config = AutoConfig.from_pretrained(target, local_files_only=True)
            expected = cls.model_class.config_class.model_type
            if config.model_type != expected:
                raise BackboneError(f"{kind}:{target} is a {config.model_type!r} model, not {expected!r}")
            model, info = cls.model_class.from_pretrained(
                target, local_files_only=True, output_loading_info=True, dtype=dtype
            )
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
        pixels = pixel_spec(target, defaults=cls.processor_defaults, image_size=config.vision_config.image_size)
        return cls(name=f"{kind}:{target}", model=model, tokenizer=tokenizer, pixels=pixels).to(device)
