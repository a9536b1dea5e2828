"""Convolutional networks of the zoo, written here (torchvision does not install beside this torch).

Paper-scale models follow torchvision's definitions layer for layer, so parameter counts match
its published figures for 1000 classes (ResNet-50 25,557,032; ResNet-152 60,192,808; VGG-19
143,667,240; AlexNet 61,100,840); adaptive pooling makes counts independent of image size.
"""

from __future__ import annotations

from torch import nn

__all__ = ["small_cnn", "resnet_small", "resnet", "alexnet", "vgg19"]


def small_cnn(in_channels: int, num_classes: int, image_size: int,
              channels: tuple[int, ...] = (32, 64), hidden: int = 128) -> nn.Module:
    """Conv(3x3)-ReLU-MaxPool(2) stages, then one hidden fully connected layer."""
    layers: list[nn.Module] = []
    c, size = in_channels, image_size
    for width in channels:
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c, size = width, size // 2
    layers += [nn.Flatten(), nn.Linear(c * size * size, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def _norm(kind: str, channels: int) -> nn.Module:
    # GroupNorm normalises each sample on its own: no running statistics, so torch.func can
    # vmap it, and K workers' mean gradient equals the union batch's (unlike BatchNorm).
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be 'group' or 'batch', got {kind!r}")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut (He et al. 2016)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), _norm(norm, c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), _norm(norm, c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), _norm(norm, c_out))
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


def resnet_small(in_channels: int, num_classes: int, blocks: int = 1,
                 widths: tuple[int, ...] = (16, 32, 64), norm: str = "group") -> nn.Module:
    """The CIFAR-style ResNet of He et al. 2016 §4.2 for 28x28 / 32x32 inputs.

    3 stages of `blocks` basic blocks (widths 16, 32, 64; stride 2 between stages): depth
    6*blocks + 2, so blocks=1 is ResNet-8 (78k parameters) and blocks=3 ResNet-20.
    norm 'group' (default, vmap-able) or 'batch'.
    """
    layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
                               _norm(norm, widths[0]), nn.ReLU()]
    c = widths[0]
    for i, width in enumerate(widths):
        for j in range(blocks):
            layers.append(BasicBlock(c, width, 2 if i > 0 and j == 0 else 1, norm))
            c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, as torchvision's ResNet v1.5), 1x1 expand x4."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        c_out = planes * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(c_in, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
            nn.Conv2d(planes, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


def resnet(in_channels: int, num_classes: int, layers: tuple[int, ...]) -> nn.Module:
    """ImageNet ResNet with bottleneck blocks: [3,4,6,3] is ResNet-50, [3,8,36,3] ResNet-152."""
    stem = [nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(3, 2, 1)]
    body: list[nn.Module] = []
    c = 64
    for i, (planes, count) in enumerate(zip((64, 128, 256, 512), layers)):
        for j in range(count):
            body.append(Bottleneck(c, planes, 2 if i > 0 and j == 0 else 1))
            c = planes * Bottleneck.expansion
    model = nn.Sequential(*stem, *body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
    for m in model.modules():  # torchvision's initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


def alexnet(in_channels: int, num_classes: int, dropout: float = 0.5) -> nn.Module:
    """AlexNet as torchvision's (Krizhevsky 2014 "one weird trick" variant); images >= 63 px."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d(6), nn.Flatten(),
        nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
        nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, num_classes))


_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def vgg19(in_channels: int, num_classes: int, dropout: float = 0.5) -> nn.Module:
    """VGG-19 (configuration E of Simonyan & Zisserman 2015), no BatchNorm; images >= 32 px."""
    layers: list[nn.Module] = []
    c = in_channels
    for v in _VGG19:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    layers += [nn.AdaptiveAvgPool2d(7), nn.Flatten(),
               nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
               nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
               nn.Linear(4096, num_classes)]
    return nn.Sequential(*layers)
