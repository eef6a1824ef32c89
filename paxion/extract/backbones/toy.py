"""The built-in toy video-language model: a per-frame ViT and a word-level text encoder, mean-pooled over time.

It ships inside the package (`toy_weights.pt`, made by `paxion.extract.backbones.toy_train`) and, like the
paper's image-text backbones, is blind to the order of frames: the pooled video is the mean of frame embeddings.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from paxion.atomic import save_torch
from paxion.errors import BackboneError
from paxion.extract.backbones.base import Backbone, VideoFeatures, time_mean
from paxion.extract.backbones.toy_text import WordTokenizer, world_vocabulary

WEIGHTS_PATH = Path(__file__).with_name("toy_weights.pt")
WEIGHTS_FORMAT = "paxion-toy-v2"


@dataclass(frozen=True)
class ToyConfig:
    """Sizes of the toy model.

    image_size 48: input side; patch 8: patch side (36 patches + CLS = 37 tokens per frame);
    width 96 / layers 4 / heads 4: the vision transformer; text_width 64 / text_layers 2 / text_heads 4 /
    max_len 24: the text transformer; embed_dim 64: the joint space; mean / std: pixel normalisation.
    """

    image_size: int = 48
    patch: int = 8
    width: int = 96
    layers: int = 4
    heads: int = 4
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    max_len: int = 24
    embed_dim: int = 64
    mean: tuple[float, float, float] = field(default=(0.5, 0.5, 0.5))
    std: tuple[float, float, float] = field(default=(0.25, 0.25, 0.25))

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2D sine-cosine position embedding [grid*grid, dim]: half the channels code the row, half the column."""
    if dim % 4:
        raise ValueError(f"width {dim} must be a multiple of 4 for a 2D sin-cos embedding")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    parts = []
    for pos in (rows.reshape(-1), cols.reshape(-1)):
        angle = pos[:, None].double() * omega[None, :]
        parts += [angle.sin(), angle.cos()]
    return torch.cat(parts, dim=1).float()


def _encoder(*, width: int, layers: int, heads: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        width, heads, dim_feedforward=4 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class ToyVision(nn.Module):
    """Per-frame ViT: patch tokens plus a fixed 2D sin-cos position embedding, a CLS token, pre-norm layers."""

    def __init__(self, *, config: ToyConfig = ToyConfig()) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, config.width, config.patch, stride=config.patch)
        self.cls = nn.Parameter(torch.randn(1, 1, config.width) * 0.02)
        self.register_buffer("pos", sincos_2d(config.grid, config.width)[None], persistent=False)
        self.encoder = _encoder(width=config.width, layers=config.layers, heads=config.heads)
        self.norm = nn.LayerNorm(config.width)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images [n, 3, S, S] -> tokens [n, 1 + grid^2, width] (CLS first)."""
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return self.norm(self.encoder(x))


class ToyText(nn.Module):
    """Word-level causal text transformer with learned position embeddings, read out at the [EOS] token.

    Causal attention, as in CLIP's text encoder, is what makes the readout see word order: with full attention
    the [EOS] state is close to a sum over a bag of words, and "from left to right" equals "from right to left".
    """

    def __init__(self, *, vocab_size: int, config: ToyConfig = ToyConfig()) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.text_width, padding_idx=0)
        self.pos = nn.Parameter(torch.randn(config.max_len, config.text_width) * 0.02)
        self.encoder = _encoder(width=config.text_width, layers=config.text_layers, heads=config.text_heads)
        self.norm = nn.LayerNorm(config.text_width)

    def forward(self, ids: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
        """Token ids [n, L] and [EOS] positions [n] -> text states [n, text_width]."""
        length = ids.shape[1]
        x = self.embed(ids) + self.pos[:length]
        # Padding follows [EOS], so the causal mask alone keeps it out of every text's readout.
        future = torch.ones(length, length, dtype=torch.bool, device=ids.device).triu(1)
        x = self.norm(self.encoder(x, mask=future, is_causal=True))
        return x[torch.arange(ids.shape[0], device=ids.device), eos]


class ToyModel(nn.Module):
    """The trainable toy video-language model: vision and text towers, projections and a temperature."""

    def __init__(self, *, vocab: list[str] | None = None, config: ToyConfig = ToyConfig()) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = WordTokenizer(vocab or world_vocabulary(), max_len=config.max_len)
        self.vision = ToyVision(config=config)
        self.text = ToyText(vocab_size=len(self.tokenizer), config=config)
        self.vision_proj = nn.Linear(config.width, config.embed_dim, bias=False)
        self.text_proj = nn.Linear(config.text_width, config.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_video(self, pixels: torch.Tensor) -> VideoFeatures:
        """Pixels [B, T, 3, S, S] -> tokens, per-frame embeddings and their time-mean."""
        b, t = pixels.shape[:2]
        tokens = self.vision(pixels.flatten(0, 1))
        frames = self.vision_proj(tokens[:, 0]).view(b, t, -1)
        return VideoFeatures(tokens.view(b, t, *tokens.shape[1:]), frames, time_mean(frames))

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Texts -> joint-space embeddings [n, embed_dim]."""
        ids, eos = self.tokenizer.encode(texts)
        device = self.logit_scale.device
        return self.text_proj(self.text(ids.to(device), eos.to(device)))

    def save(self, path: str | Path, *, provenance: dict | None = None) -> None:
        """Write config, vocabulary and weights (everything needed to rebuild the model) to one file."""
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        save_torch(path, {
            "format": WEIGHTS_FORMAT,
            "config": asdict(self.config),
            "vocab": self.tokenizer.vocab,
            "state_dict": state,
            "provenance": provenance or {},
        })

    @classmethod
    def load(cls, path: str | Path) -> ToyModel:
        """Rebuild a model written by `save`; raises BackboneError for a missing or foreign file."""
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            raise BackboneError(f"cannot read toy weights {path}: {exc}") from exc
        if not isinstance(blob, dict) or blob.get("format") != WEIGHTS_FORMAT:
            raise BackboneError(f"{path} is not a toy backbone weights file ({WEIGHTS_FORMAT})")
        config = {**blob["config"], "mean": tuple(blob["config"]["mean"]), "std": tuple(blob["config"]["std"])}
        model = cls(vocab=blob["vocab"], config=ToyConfig(**config))
        model.load_state_dict(blob["state_dict"])
        return model


class ToyBackbone(Backbone):
    """The frozen toy model behind the `Backbone` interface (frame-wise, 37 tokens of width 96, d = 64)."""

    temporal = False

    def __init__(self, *, model: ToyModel, name: str = "toy", text_batch: int = 1024) -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.text_batch = text_batch
        cfg = model.config
        self.image_size, self.embed_dim, self.token_dim = cfg.image_size, cfg.embed_dim, cfg.width
        self.tokens_per_frame = cfg.grid**2 + 1
        self.mean, self.std = cfg.mean, cfg.std
        self.freeze()

    def config_dict(self) -> dict:
        """The toy config and vocabulary."""
        return {"kind": "toy", "config": asdict(self.model.config), "vocab": self.model.tokenizer.vocab}

    @torch.inference_mode()
    def encode_video(self, pixels: torch.Tensor) -> VideoFeatures:
        """Tokens [B, T, 37, 96], frame embeddings [B, T, 64], pooled mean [B, 64]."""
        return self.model.encode_video(pixels.to(self.device))

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Caption embeddings [n, 64]."""
        if not texts:
            return torch.zeros(0, self.embed_dim, device=self.device)
        chunks = [texts[i : i + self.text_batch] for i in range(0, len(texts), self.text_batch)]
        return torch.cat([self.model.encode_text(chunk) for chunk in chunks])


def load_toy(path: str | Path = WEIGHTS_PATH, *, device: str | torch.device = "cpu") -> ToyBackbone:
    """The frozen toy backbone from a weights file (by default the one shipped with paxion)."""
    if not Path(path).is_file():
        raise BackboneError(f"toy weights not found at {path}; rebuild them with `paxion backbone train-toy`")
    return ToyBackbone(model=ToyModel.load(path)).to(device)
