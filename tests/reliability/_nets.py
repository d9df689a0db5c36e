"""Small models shared by the reliability tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def cnn(seed: int = 0, inplace: bool = False, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Conv -> act -> Conv -> act -> pool -> Linear, float64, eval mode."""
    torch.manual_seed(seed)
    kw = {"inplace": inplace} if act in (nn.ReLU, nn.ReLU6) else {}
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), act(**kw), nn.Conv2d(4, 4, 3, padding=1), act(**kw),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3),
    ).double().eval()


def mlp(seed: int = 0, d: int = 5, c: int = 3) -> nn.Sequential:
    """Linear -> ReLU -> Linear, float64, eval mode."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, c)).double().eval()


def images(n: int = 2, seed: int = 0) -> Tensor:
    """``(n, 2, 6, 6)`` float64 images."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 6, 6, generator=g, dtype=torch.float64)


def rows(n: int = 3, d: int = 5, seed: int = 0) -> Tensor:
    """``(n, d)`` float64 rows."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def snapshot(model: nn.Module) -> dict[str, object]:
    """Everything attribkit promises to leave as given."""
    from attribkit.core.guard import hook_state

    return {
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "training": [m.training for m in model.modules()],
        "hooks": hook_state(model),
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "layout": [(p.data_ptr(), p.stride()) for p in model.parameters()],
    }


def same(a: dict[str, object], b: dict[str, object]) -> bool:
    """Whether two snapshots agree, tensors bit for bit."""
    sa, sb = a["state"], b["state"]
    assert isinstance(sa, dict) and isinstance(sb, dict)
    return (all(a[k] == b[k] for k in ("requires_grad", "training", "hooks", "layout"))
            and sa.keys() == sb.keys()
            and all(torch.equal(sa[k], sb[k]) for k in sa))
