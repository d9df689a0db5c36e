"""Calibration of ``tolerance=`` on models where the exact or a converged IG is cheap.

The calibrated estimate of :mod:`attribkit.methods.integrated.tolerance` was designed on the
synthetic ReLU6 CNNs (seeds 0-2, "design"); everything else here is held out: a GELU CNN, a small
CNN trained on scikit-learn's digits, the chemistry zoo's graph network (TPSA), and two closed
forms (a wide one-hidden-layer ReLU network, whose exact IG is the fraction of the path on which
each unit is active, and ``exp(w . x)``). For each: the actual relative L2 error against the
reference over the estimate, for the calibrated default and for ``conservative=True``, and the
gradients spent against the smallest fixed-step adaptive run meeting the same tolerance.
EfficientNet-Lite0 on photos is checked in ``benchmarks/ig_accuracy.py``.

Run: ``python benchmarks/ig_calibration.py`` (a few minutes on 2 cores); writes its table into
docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

import attribkit
from _common import machine, write_section

TOLS = (0.05, 0.02, 0.01)
FIXED = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def relu6_cnn(seed: int, act: type[nn.Module] = nn.ReLU6) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c = 3
    for i in range(4):
        layers += [nn.Conv2d(c, 24, 3, padding=1, stride=2 if i % 2 else 1), act()]
        c = 24
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(2.0)
        net[-1].weight.mul_(8.0)
    return nn.Sequential(net, nn.Softmax(-1)).double().eval()


def digits_cnn() -> tuple[nn.Module, Tensor]:
    from sklearn.datasets import load_digits

    data, labels = load_digits(return_X_y=True)
    x = torch.tensor(data / 16.0).reshape(-1, 1, 8, 8)
    y = torch.tensor(labels)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU6(), nn.Conv2d(16, 32, 3, padding=1),
                        nn.ReLU6(), nn.Flatten(), nn.Linear(32 * 64, 64), nn.ReLU6(),
                        nn.Linear(64, 10)).double()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(5):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return nn.Sequential(net, nn.Softmax(-1)).eval(), x[[0, 5, 17]]


def chem() -> tuple[nn.Module, Tensor]:
    from attribkit.zoo.chem.features import featurize, mol_from_smiles, pack
    from attribkit.zoo.chem.properties import load_property_model

    model = load_property_model("tpsa")
    f = featurize(mol_from_smiles("CC(=O)Nc1ccc(O)cc1"))  # paracetamol
    return model, pack(f.atoms.double(), f.pairs.double())


class Exp(nn.Module):
    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(x @ self.w)


def relu_mlp_exact(net: nn.Sequential, x: Tensor) -> Tensor:
    w1, b1, w2 = net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach()[0]
    z0, dz = b1.expand(x.shape[0], -1), x @ w1.T
    cross = (-z0 / dz).clamp(0.0, 1.0)
    active = torch.where(dz > 0, 1 - cross, torch.where(dz < 0, cross, (z0 > 0).double()))
    return x * ((active * w2) @ w1)


def cases() -> list[tuple[str, str, nn.Module, Tensor, Callable[[], Tensor] | None]]:
    out: list[tuple[str, str, nn.Module, Tensor, Callable[[], Tensor] | None]] = []
    for seed in range(3):
        x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64) * 2
        out.append((f"ReLU6 CNN {seed}", "design", relu6_cnn(seed), x, None))
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out.append(("GELU CNN", "held out", relu6_cnn(3, nn.GELU), 2 * x, None))
    net, xs = digits_cnn()
    out.append(("digits CNN (3 digits)", "held out", net, xs, None))
    model, packed = chem()
    out.append(("chem zoo, TPSA, paracetamol", "held out", model, packed, None))
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(50, 400), nn.ReLU(), nn.Linear(400, 1)).double()
    xm = torch.randn(3, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out.append(("ReLU MLP 50-400-1, exact", "held out", mlp, xm,
                lambda: relu_mlp_exact(mlp, xm)))
    w = torch.tensor([0.7, -0.4, 1.1, 0.3, -0.9], dtype=torch.float64)
    xe = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1.5
    s = xe @ w
    out.append(("exp(w.x), exact", "held out", Exp(w), xe,
                lambda: xe * w * ((torch.exp(s) - 1) / s)[:, None]))
    return out


def rel(a: Tensor, ref: Tensor) -> Tensor:
    return (a - ref).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1)


def main() -> None:
    torch.set_num_threads(2)
    lines = ["| model | set | tolerance | actual / estimate (calibrated) | gradients (calibrated)"
             " | smallest fixed adaptive run meeting it | actual / estimate (conservative) | "
             "gradients (conservative) |", "|---|---|---|---|---|---|---|---|"]
    design, held = [], []
    for name, kind, model, x, exact in cases():
        with torch.no_grad():
            target = model(x).argmax(-1) if model(x).dim() > 1 else None
        kw: dict[str, Any] = {"target": target}
        ref = exact() if exact is not None else attribkit.integrated_gradients(
            model, x, steps=2048, batch_size=512, **kw).values
        fixed = {m: rel(attribkit.integrated_gradients(model, x, steps=m, rule="adaptive",
                                                       **kw).values, ref) for m in FIXED}
        for tol in TOLS:
            cal = attribkit.integrated_gradients(model, x, tolerance=tol, rule="adaptive", **kw)
            con = attribkit.integrated_gradients(model, x, tolerance=tol, rule="adaptive",
                                                 conservative=True, **kw)
            assert cal.error_estimate is not None and con.error_estimate is not None
            rc = rel(cal.values, ref) / cal.error_estimate
            rk = rel(con.values, ref) / con.error_estimate
            (design if kind == "design" else held).extend(rc.tolist())
            least = next((m for m in FIXED if bool((fixed[m] <= tol).all())), None)
            lines.append(
                f"| {name} | {kind} | {tol} | {', '.join(f'{v:.2f}' for v in rc.tolist())} | "
                f"{max(cal.params['steps_used'])} | {least if least else '> 512'} | "
                f"{', '.join(f'{v:.2f}' for v in rk.tolist())} | "
                f"{max(con.params['steps_used'])} |")
            print(lines[-1], flush=True)
    body = ("## Calibration of `tolerance=` on small models (`benchmarks/ig_calibration.py`)\n\n"
            f"Machine: {machine()}. Reference: the exact IG where a closed form exists, else "
            "Gauss-Legendre with 2048 steps (float64). Each cell lists every example. The "
            "estimate was designed on the ReLU6 CNNs (design set); the rest is held out. "
            f"Median actual / estimate: design {statistics.median(design):.2f}, held out "
            f"{statistics.median(held):.2f}; range held out {min(held):.2f}-{max(held):.2f}. "
            "Gradients are the most any example of the row used (scan points not counted); "
            "the fixed runs are the adaptive rule at "
            f"{', '.join(map(str, FIXED))} steps, every example meeting the tolerance.\n\n"
            + "\n".join(lines))
    write_section("ig-calibration", body)
    print(body)


if __name__ == "__main__":
    main()
