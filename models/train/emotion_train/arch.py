"""Candidate architectures. Every model maps a [N,1,48,48] normalised grey batch to [N,7] logits;
softmax is applied by the exporter so that the ONNX file returns probabilities."""
import torch
from torch import nn


def _conv_bn(cin, cout, act):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), act()]


class Original(nn.Module):
    """The student project's design: six 3x3 convolutions (64, 64, 128, 128, 256, 256) with
    batch normalisation and ELU, max-pooling and dropout after each pair, a dense layer of 128
    with ELU and dropout, and a 7-way output."""

    def __init__(self, n_classes=7):
        super().__init__()
        layers, cin = [], 1
        for width in (64, 128, 256):
            layers += _conv_bn(cin, width, nn.ELU) + _conv_bn(width, width, nn.ELU)
            layers += [nn.MaxPool2d(2), nn.Dropout(0.3)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(256 * 6 * 6, 128), nn.BatchNorm1d(128), nn.ELU(),
            nn.Dropout(0.5), nn.Linear(128, n_classes))

    def forward(self, x):
        return self.head(self.features(x))


class _Residual(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(x + self.body(x))


class EmoNet(nn.Module):
    """Ours: a narrow residual network sized for <= 2 ms per face in OpenCV DNN on one core.
    Full resolution (48x48) only gets a single cheap convolution; the work happens at 24, 12 and
    6 pixels, where a residual pair per stage lets a small width learn more than a plain stack.
    Global average pooling replaces the 9216x128 dense layer of the original, the largest
    source of over-fitting there."""

    def __init__(self, widths=(32, 64, 128, 192), n_classes=7, dropout=0.3, residual24=True):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.features = nn.Sequential(
            *_conv_bn(1, w0, lambda: nn.ReLU(inplace=True)), nn.MaxPool2d(2),      # 24
            *_conv_bn(w0, w1, lambda: nn.ReLU(inplace=True)),
            *([_Residual(w1)] if residual24 else []), nn.MaxPool2d(2),  # 12
            *_conv_bn(w1, w2, lambda: nn.ReLU(inplace=True)), _Residual(w2), nn.MaxPool2d(2),  # 6
            *_conv_bn(w2, w3, lambda: nn.ReLU(inplace=True)), _Residual(w3))
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(w3, n_classes))

    def forward(self, x):
        return self.head(self.features(x))


ARCHITECTURES = {
    "original": Original,
    "emonet-xs": lambda: EmoNet((16, 32, 96, 192), residual24=False),
    "emonet-s": lambda: EmoNet((24, 48, 96, 160)),
    "emonet-s2": lambda: EmoNet((32, 64, 128, 192), residual24=False),
    "emonet-m": lambda: EmoNet((32, 64, 128, 192)),
    "emonet-l": lambda: EmoNet((32, 80, 160, 256)),
    "emonet-xl": lambda: EmoNet((48, 96, 192, 384)),
    "emonet-xs2": lambda: EmoNet((16, 32, 128, 224), residual24=False),
    "emonet-xs3": lambda: EmoNet((16, 40, 112, 192), residual24=False),
}


def build(name):
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}") from None


def macs(model, size=48):
    """Multiply-accumulates of convolutions and linear layers for one face."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            total += out.numel() // out.shape[0] * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    for h in hooks:
        h.remove()
    return total
