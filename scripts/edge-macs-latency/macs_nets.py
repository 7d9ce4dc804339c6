"""Three 224-px ImageNet-shaped nets with different MAC/latency character (random weights).

- vit-tiny: ViT-Ti/16 layout (dim 192, 12 blocks, 3 heads); attention written with
  plain matmuls so FlopCounterMode sees every MAC (the fused nn.MultiheadAttention
  fast path can hide them).
- mobilenetv2: MobileNetV2 inverted residuals (depthwise 3x3): few MACs, but
  memory-bound kernels with low arithmetic intensity.
- plain-conv: VGG-like dense 3x3 convs: many MACs in the CPU's fastest kernels.
"""

from __future__ import annotations

import torch
from torch import nn

NETS = ("vit-tiny", "mobilenetv2", "plain-conv")


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.n1, self.attn = nn.LayerNorm(dim), _Attention(dim, heads)
        self.n2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.n1(x))
        return x + self.mlp(self.n2(x))


class ViT(nn.Module):
    """Patch-16 ViT with a class token; (dim, depth, heads) = (192, 12, 3) is ViT-Ti."""

    def __init__(self, img: int, dim: int = 192, depth: int = 12, heads: int = 3) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 16, stride=16)
        n = (img // 16) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[_Block(dim, heads) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


def _cbr(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class _InvRes(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        layers = [_cbr(cin, mid, 1)] if expand != 1 else []
        layers += [
            _cbr(mid, mid, 3, stride, groups=mid),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.body = nn.Sequential(*layers)
        self.res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.res else self.body(x)


def _c(ch: float) -> int:
    return max(8, int(ch + 4) // 8 * 8)


class MobileNetV2(nn.Module):
    """Standard MobileNetV2 stage table (t, c, n, s) with a width multiplier."""

    CFG = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        cin = _c(32 * width)
        layers: list[nn.Module] = [_cbr(3, cin, 3, 2)]
        for t, c, n, s in self.CFG:
            cout = _c(c * width)
            for i in range(n):
                layers.append(_InvRes(cin, cout, s if i == 0 else 1, t))
                cin = cout
        last = _c(1280 * max(1.0, width))
        layers.append(_cbr(cin, last, 1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(last, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


class PlainConv(nn.Module):
    """VGG-like: stride-2 stem, then per stage one strided + one plain dense 3x3 conv."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        chans = [_c(c * width) for c in (32, 64, 128, 256, 512)]
        layers: list[nn.Module] = [_cbr(3, chans[0], 3, 2)]
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [_cbr(cin, cout, 3, 2), _cbr(cout, cout, 3, 1)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def build_net(name: str, img: int, width: float = 1.0) -> nn.Module:
    """Random-init eval-mode net; width scales channels (ViT: embedding dim)."""
    if name == "vit-tiny":
        dim = max(3, int(round(192 * width / 3)) * 3)  # keep dim divisible by 3 heads
        net: nn.Module = ViT(img, dim=dim)
    elif name == "mobilenetv2":
        net = MobileNetV2(width)
    elif name == "plain-conv":
        net = PlainConv(width)
    else:
        raise ValueError(f"unknown net {name!r}; expected one of {NETS}")
    return net.eval()
