"""The path-method frontier in the registry, the public API, the axiom audit and the guards."""

from __future__ import annotations

import pytest
import torch

import attribkit
from attribkit import axioms
from attribkit.core.errors import TargetError
from attribkit.core.guard import hook_state
from attribkit.methods import get

NEW = {"guided_ig": "path", "blur_ig": "path", "idgi": "path", "xrai": "path",
       "guided_grad_cam": "cam"}


def test_registered_exported_and_dispatched_by_alias():
    reg = attribkit.methods()
    for name, family in NEW.items():
        assert reg[name].family == family
        assert name in attribkit.__all__ and getattr(attribkit, name) is reg[name].fn
    assert reg["idgi"].complete and reg["guided_ig"].complete and reg["blur_ig"].complete
    assert not reg["xrai"].complete and not reg["guided_grad_cam"].complete
    assert reg["guided_grad_cam"].needs_module
    for alias, name in (("guided-ig", "guided_ig"), ("blur-integrated-gradients", "blur_ig"),
                        ("idgi_ig", "idgi"), ("guided-gradcam", "guided_grad_cam")):
        assert get(alias).name == name


@pytest.mark.parametrize(("axiom", "method", "expected"), [
    ("completeness", "idgi", True),        # exact on the discrete path
    ("sensitivity_b", "idgi", True),       # a dummy's gradient is zero everywhere
    ("sensitivity_b", "guided_ig", True),
    ("linearity", "idgi", False),          # g^2 / ||g||^2 is not linear in F
    ("linearity", "guided_ig", False),     # the path depends on F's gradients
])
def test_axiom_verdicts(axiom, method, expected):
    report = axioms.AXIOM_CHECKS[axiom](method, {"steps": 24})
    assert report.passed is expected, str(report)


def test_model_untouched_after_a_failure(make_cnn, rng):
    model = make_cnn()
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    before = hook_state(model)
    flags = [p.requires_grad for p in model.parameters()]
    for name, opts in (("guided_ig", {}), ("blur_ig", {}), ("idgi", {}),
                       ("guided_grad_cam", {"layer": "3"})):
        with pytest.raises(TargetError):
            attribkit.explain(model, x, name, target=99, **opts)
        assert hook_state(model) == before
        assert [p.requires_grad for p in model.parameters()] == flags
        assert not model.training
