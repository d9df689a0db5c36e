"""Threads sharing one model: the guard and the layer hooks (issue 13)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import cnn, images, same, snapshot

import attribkit


def run_threads(jobs: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def wrap(job: Callable[[], None]) -> None:
        try:
            start.wait()
            job()
        except BaseException as e:  # collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@case("threads", "4 threads x 4 integrated_gradients calls on one model whose parameters require "
      "grad (one of them frozen by the user), half of them with channels_last=True",
      "parameters keep requires_grad as given (nothing is frozen any more) and the weights "
      "come back in their own layout and storage; a training step works afterwards")
def test_threads_leave_parameters_and_layout_as_given() -> None:
    model = cnn(1)
    model[2].bias.requires_grad_(False)  # a mixed state must come back as it was
    before = snapshot(model)
    x = images(3)

    def job(k: int) -> Callable[[], None]:
        def go() -> None:
            for i in range(4):
                attribkit.integrated_gradients(model, x, target=1, steps=8,
                                               channels_last=(i + k) % 2 == 0)
        return go

    assert run_threads([job(k) for k in range(4)]) == []
    assert same(before, snapshot(model))
    assert all(p.is_contiguous() for p in model.parameters())
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(x)[:, 0].sum().backward()
    opt.step()
    assert model[0].weight.grad is not None and model[2].bias.grad is None


@case("threads", "plain inference in one thread while another runs layer integrated gradients "
      "and grad_cam at a layer of the same model",
      "the layer hook acts only on its own thread's passes: every concurrent inference output "
      "is exact and no error is raised")
def test_layer_hooks_leave_other_threads_alone() -> None:
    model = cnn(2)
    x = images(4, seed=2)
    with torch.no_grad():
        expected = model(x)
    done = threading.Event()
    wrong: list[float] = []
    calls = [0]

    def infer() -> None:
        while not done.is_set() or calls[0] < 50:
            with torch.no_grad():
                out = model(x)
            calls[0] += 1
            if not torch.equal(out, expected):
                wrong.append(float((out - expected).abs().max()))

    def explain() -> None:
        try:
            for _ in range(6):
                attribkit.integrated_gradients(model, x, target=0, steps=16, layer=model[1])
                attribkit.grad_cam(model, x, layer=model[2], target=1)
        finally:
            done.set()

    assert run_threads([infer, explain]) == []
    assert wrong == []
    assert calls[0] >= 50


@case("threads", "grad_cam and layer integrated gradients at a Conv2d followed by "
      "ReLU(inplace=True) (the torchvision VGG pattern)",
      "works; the layer hook hands out a fresh tensor and the captured activations are copies; "
      "equal to Captum's LayerGradCam on the same model and to its LayerIntegratedGradients on "
      "the same weights without in-place (Captum's layer IG fails on the in-place model)")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_layer_methods_before_an_inplace_relu_match_captum() -> None:
    from captum.attr import LayerGradCam, LayerIntegratedGradients

    model = cnn(3, inplace=True)
    x = images(3, seed=3)
    ours = attribkit.grad_cam(model, x, layer=model[2], target=2, upsample=False).values
    ref = LayerGradCam(model, model[2]).attribute(x, target=2, relu_attributions=True)
    torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-10)
    with torch.no_grad():
        base = model[0](torch.zeros_like(x))
    lig = attribkit.integrated_gradients(model, x, target=2, layer=model[0], baseline=base,
                                         steps=32)
    # Captum's own LayerIntegratedGradients fails on the in-place ReLU (a leaf modified in
    # place), so its oracle runs on the same weights with ReLU(inplace=False)
    plain = cnn(3, inplace=False)
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), model.parameters(),
                                                 strict=True))
    ref_ig = LayerIntegratedGradients(plain, plain[0]).attribute(
        x, baselines=torch.zeros_like(x), target=2, n_steps=32, method="gausslegendre")
    torch.testing.assert_close(lig.values, ref_ig, atol=1e-10, rtol=1e-8)


@case("threads", "two threads explaining two different models with the propagation methods "
      "(DeepLIFT, LRP) while a third runs plain inference on the first model",
      "each result equals the single-threaded one; inference outputs are exact", "held")
def test_propagation_methods_in_threads() -> None:
    a, b = cnn(4), cnn(5)
    x = images(2, seed=4)
    ref_a = attribkit.deeplift(a, x, target=0).values
    ref_b = attribkit.lrp(b, x, target=1).values
    with torch.no_grad():
        out_a = a(x)
    got: dict[str, torch.Tensor] = {}
    bad: list[int] = []

    def one() -> None:
        got["a"] = attribkit.deeplift(a, x, target=0).values

    def two() -> None:
        got["b"] = attribkit.lrp(b, x, target=1).values

    def three() -> None:
        for _ in range(30):
            with torch.no_grad():
                if not torch.equal(a(x), out_a):
                    bad.append(1)

    assert run_threads([one, two, three]) == []
    torch.testing.assert_close(got["a"], ref_a, atol=0, rtol=0)
    torch.testing.assert_close(got["b"], ref_b, atol=0, rtol=0)
    assert bad == []




@case("threads", "3 threads explaining one train()-mode model whose layer updates buffers in "
      "forward (a counter and a running mean)",
      "the first call to start keeps a copy of each buffer and the last to finish writes it "
      "back (reference-counted): bit-for-bit the values from before")
def test_threads_restore_training_buffers() -> None:
    from tests.reliability._nets import rows
    from tests.reliability.test_model_state import Counter

    model = Counter().double().train()
    model.mean.fill_(0.25)
    before = snapshot(model)

    def go() -> None:
        for _ in range(3):
            attribkit.integrated_gradients(model, rows(4), target=0, steps=16, batch_size=8)

    assert run_threads([go, go, go]) == []
    assert same(before, snapshot(model))
