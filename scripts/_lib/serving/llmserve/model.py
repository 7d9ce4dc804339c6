"""Tiny decoder-only transformer with per-sequence KV caches.

Why: a serving engine needs a real model whose iteration cost grows with the number of
scheduled tokens. Weights are seeded random (no download); what matters is the compute,
not the text. One forward call runs the linear layers over *all* scheduled tokens of an
iteration at once (continuous batching); attention runs per sequence against its cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the tiny decoder (validated by check.py before anything runs)."""

    d_model: int = 256
    layers: int = 4
    heads: int = 4
    vocab: int = 2048
    max_context: int = 512

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"heads={self.heads} must divide d_model={self.d_model}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    def n_params(self) -> int:
        """Parameter count (embeddings included)."""
        d = self.d_model
        per_layer = 12 * d * d + 13 * d
        return self.layers * per_layer + (2 * self.vocab + self.max_context) * d + 2 * d


class KVCache:
    """Preallocated keys/values of one sequence: [layers, 2, heads, length, head_dim]."""

    def __init__(self, cfg: ModelConfig, length: int) -> None:
        self.kv = torch.empty(cfg.layers, 2, cfg.heads, length, cfg.head_dim)


@dataclass
class Segment:
    """Tokens of one sequence scheduled in one iteration (a prefill chunk or 1 decode)."""

    cache: KVCache
    start: int  # position of the first token in the sequence
    tokens: list[int]
    wants_logits: bool  # True if this segment ends with a token that yields output


class _Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)


class TinyDecoder(nn.Module):
    """GPT-style decoder; `forward_segments` is the continuous-batching entry point."""

    def __init__(self, cfg: ModelConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(seed)
        self.tok = nn.Embedding(cfg.vocab, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_context, cfg.d_model)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab, bias=False)
        with torch.no_grad():
            for name, p in self.named_parameters():  # every tensor from `gen`: reproducible
                if p.dim() > 1:
                    p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
                elif name.endswith("weight"):  # 1-D weights are LayerNorm gains
                    p.fill_(1.0)
                else:
                    p.copy_(0.02 * torch.randn(p.shape, generator=gen))
        self.eval()

    def new_cache(self, length: int) -> KVCache:
        return KVCache(self.cfg, min(length, self.cfg.max_context))

    @torch.inference_mode()
    def forward_segments(self, segs: list[Segment]) -> list[int]:
        """Run one iteration; returns the greedy next token of each segment wanting logits."""
        cfg = self.cfg
        ids = torch.tensor([t for s in segs for t in s.tokens], dtype=torch.long)
        pos = torch.cat([torch.arange(s.start, s.start + len(s.tokens)) for s in segs])
        if int(pos.max()) >= cfg.max_context:
            raise ValueError("sequence longer than max_context")
        x = self.tok(ids) + self.pos(pos)
        n_tok, h, hd = ids.numel(), cfg.heads, cfg.head_dim
        scale = 1.0 / math.sqrt(hd)
        bounds = []
        off = 0
        for s in segs:
            bounds.append((off, off + len(s.tokens)))
            off += len(s.tokens)
        for li, blk in enumerate(self.blocks):
            qkv = blk.qkv(blk.ln1(x)).view(n_tok, 3, h, hd).permute(1, 2, 0, 3)
            att = torch.empty(h, n_tok, hd)
            for s, (a, b) in zip(segs, bounds, strict=True):
                end = s.start + (b - a)
                s.cache.kv[li, :, :, s.start : end] = qkv[1:, :, a:b]
                keys, vals = s.cache.kv[li, 0, :, :end], s.cache.kv[li, 1, :, :end]
                q = qkv[0, :, a:b]
                if b - a == 1:
                    # single query: plain matmuls have less per-call overhead than SDPA
                    w = torch.softmax(torch.matmul(q, keys.transpose(1, 2)) * scale, -1)
                    torch.matmul(w, vals, out=att[:, a:b])
                else:
                    # causal within the chunk, full view of the already-cached prefix
                    qi = torch.arange(s.start, end).unsqueeze(1)
                    mask = torch.arange(end).unsqueeze(0) <= qi
                    att[:, a:b] = F.scaled_dot_product_attention(q, keys, vals, attn_mask=mask)
            x = x + blk.proj(att.transpose(0, 1).reshape(n_tok, cfg.d_model))
            x = x + blk.fc2(F.gelu(blk.fc1(blk.ln2(x))))
        last = [b - 1 for s, (_, b) in zip(segs, bounds, strict=True) if s.wants_logits]
        if not last:
            return []
        logits = self.head(self.ln_f(x[torch.tensor(last)]))
        return logits.argmax(-1).tolist()
