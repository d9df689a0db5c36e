"""AttnLRP: conservation where the rules are exact, invariances, the graph check, and the model
left exactly as given. The comparison with lxt (the authors' library) is in
``test_attnlrp_lxt.py``."""

from __future__ import annotations

import pytest
import torch
import transformers as tf
from torch import nn

from attribkit.core.errors import UnsupportedModelError
from attribkit.methods.propagation import attnlrp, attnlrp_rules


class LastLogit(nn.Module):
    """Input embeddings -> the logits at the last position."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.lm(inputs_embeds=embeds, use_cache=False).logits[:, -1]
        return out


def _llama(attn: str = "eager", seed: int = 0) -> tf.LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = tf.LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=48,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         attn_implementation=attn)
    return tf.LlamaForCausalLM(cfg).double().eval()


def _embeds(model: nn.Module, n: int = 2, length: int = 6, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 40, (n, length), generator=g)
    emb: torch.Tensor = model.get_input_embeddings()(ids).detach()  # type: ignore[operator]
    return emb


class GatedStack(nn.Module):
    """RMSNorm -> gated MLP -> LayerNorm -> Linear, bias-free.

    AttnLRP conserves exactly here: the identity rule (SiLU, RMSNorm), the uniform split of the
    gate product, and epsilon -> 0 on linear maps (the centring of LayerNorm) all conserve."""

    def __init__(self) -> None:
        super().__init__()
        cfg = tf.LlamaConfig(hidden_size=8, intermediate_size=12, mlp_bias=False,
                             num_attention_heads=2, num_key_value_heads=2)
        torch.manual_seed(0)
        # torch's RMSNorm computes in the input's dtype (Llama's casts to float32)
        self.norm = nn.RMSNorm(8, eps=1e-6)
        self.mlp = tf.models.llama.modeling_llama.LlamaMLP(cfg)
        self.out_norm = nn.LayerNorm(8, bias=False)
        self.head = nn.Linear(8, 3, bias=False)
        with torch.no_grad():
            self.norm.weight.uniform_(0.5, 1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.out_norm(self.mlp(self.norm(x))))
        return out


def test_conservation_is_exact_without_attention_and_biases() -> None:
    model = GatedStack().double().eval()
    x = torch.randn(4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    a = attnlrp(model, x, target=1)
    out = model(x)[:, 1]
    # (the identity rule divides by x + 1e-10 sign(x): exact to about 1e-10 / |x|)
    torch.testing.assert_close(a.values.sum(1), out, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(a.extras["conservation"], torch.ones(4, dtype=torch.float64),
                               rtol=1e-8, atol=0)


def test_gated_mlp_matrix_form() -> None:
    """The rules written out: relevance of the down projection's input, split 50/50 between the
    gate (identity rule through SiLU, epsilon rule into x) and the up projection."""
    cfg = tf.LlamaConfig(hidden_size=6, intermediate_size=7, mlp_bias=False,
                         num_attention_heads=2, num_key_value_heads=2)
    torch.manual_seed(3)
    mlp = tf.models.llama.modeling_llama.LlamaMLP(cfg).double().eval()
    x = torch.randn(1, 6, dtype=torch.float64)
    wg, wu, wd = mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight
    with torch.no_grad():
        gate, up = x @ wg.T, x @ wu.T
        h = torch.nn.functional.silu(gate) * up
        out = h @ wd.T
        r_out = torch.zeros_like(out)
        r_out[0, 2] = out[0, 2]
        r_h = h * ((r_out / out) @ wd)                     # epsilon rule (eps -> 0)
        r_gate = r_up = r_h / 2                            # uniform rule; identity through SiLU
        r_x = x * ((r_gate / gate) @ wg) + x * ((r_up / up) @ wu)
    a = attnlrp(mlp, x, target=2)
    torch.testing.assert_close(a.values, r_x, rtol=1e-10, atol=1e-12)


def test_eager_and_sdpa_attention_agree() -> None:
    x = _embeds(_llama())
    a = attnlrp(LastLogit(_llama("eager")), x, target=3)
    b = attnlrp(LastLogit(_llama("sdpa")), x, target=3)
    # eager attention takes its softmax in float32: agreement to float32's precision
    torch.testing.assert_close(a.values, b.values, rtol=1e-4,
                               atol=1e-6 * float(a.values.abs().max()))
    assert a.extras["blocks"] == 4 and a.extras["norms"] == 5


def test_uniform_rule_is_applied_in_attention() -> None:
    """Without the query/key/value shares the result differs (the test can fail)."""
    model = LastLogit(_llama())
    x = _embeds(model.lm)
    a = attnlrp(model, x, target=3).values
    x2 = x.clone().requires_grad_(True)
    with attnlrp_rules(model) as scope:
        assert "lm.model.layers.0.self_attn" in scope.blocks
        model(x2)[:, 3].sum().backward()
    assert x2.grad is not None
    torch.testing.assert_close(x2 * x2.grad, a)
    x3 = x.clone().requires_grad_(True)
    model(x3)[:, 3].sum().backward()
    assert x3.grad is not None
    assert not torch.allclose(x3 * x3.grad, a, rtol=1e-3)


def _snapshot(model: nn.Module) -> tuple[dict[str, torch.Tensor], list[int], list[bool]]:
    hooks = [len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
             for m in model.modules()]
    return ({k: v.clone() for k, v in model.state_dict().items()}, hooks,
            [m.training for m in model.modules()])


def _same(a: tuple[dict[str, torch.Tensor], list[int], list[bool]],
          b: tuple[dict[str, torch.Tensor], list[int], list[bool]]) -> bool:
    return (a[0].keys() == b[0].keys() and all(torch.equal(a[0][k], b[0][k]) for k in a[0])
            and a[1] == b[1] and a[2] == b[2])


def test_model_left_exactly_as_given_after_success_and_failure() -> None:
    model = LastLogit(_llama())
    x = _embeds(model.lm)
    with torch.no_grad():
        before_out = model(x)
    before = _snapshot(model)
    attnlrp(model, x, target=0)
    assert _same(before, _snapshot(model))
    with pytest.raises(RuntimeError, match="boom"), attnlrp_rules(model):
        model(x)
        raise RuntimeError("boom")
    assert _same(before, _snapshot(model))

    def explode(_m: nn.Module, _a: object, _o: object) -> None:
        raise RuntimeError("inside the forward pass")

    h = model.lm.model.layers[1].mlp.register_forward_hook(explode)
    with pytest.raises(RuntimeError, match="inside the forward pass"):
        attnlrp(model, x, target=0)
    h.remove()
    assert _same(before, _snapshot(model))
    with torch.no_grad():
        torch.testing.assert_close(model(x), before_out, rtol=0, atol=0)


def test_forward_values_unchanged_inside_the_scope() -> None:
    model = LastLogit(_llama())
    x = _embeds(model.lm).requires_grad_(True)
    plain = model(x)
    with attnlrp_rules(model):
        ruled = model(x)
    torch.testing.assert_close(ruled, plain, rtol=0, atol=0)


class Functional(nn.Module):
    def __init__(self, op: str) -> None:
        super().__init__()
        self.a, self.b, self.op = nn.Linear(4, 4), nn.Linear(4, 2), op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        h = torch.nn.functional.gelu(h) if self.op == "gelu" else h * x
        out: torch.Tensor = self.b(h)
        return out


@pytest.mark.parametrize(("op", "message"), [("gelu", "GeluBackward0"),
                                             ("product", "multiplied traced tensors")])
def test_operations_without_a_rule_are_refused(op: str, message: str) -> None:
    model = Functional(op).double().eval()
    with pytest.raises(UnsupportedModelError, match=message):
        attnlrp(model, torch.randn(2, 4, dtype=torch.float64), target=0)


def test_epsilon_shrinks_relevance_towards_zero() -> None:
    model = LastLogit(_llama())
    x = _embeds(model.lm)
    r0 = attnlrp(model, x, target=3).values.abs().sum()
    r1 = attnlrp(model, x, target=3, epsilon=10.0).values.abs().sum()
    assert float(r1) < float(r0)


class BertLogits(nn.Module):
    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.bert(input_ids=ids, attention_mask=mask).logits
        return out


def test_bert_at_the_word_embeddings_with_padding() -> None:
    """BERT-style models (LayerNorm, GELU, tanh pooler): attributing at the word-embedding layer
    of token ids equals attributing the embeddings directly; padded tokens get nothing."""
    torch.manual_seed(0)
    cfg = tf.BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=24, num_labels=2)
    bert = tf.BertForSequenceClassification(cfg).double().eval()
    ids = torch.tensor([[2, 5, 7, 9, 3], [2, 8, 3, 0, 0]])
    mask = (ids != 0).long()
    model = BertLogits(bert)
    layer = bert.bert.embeddings.word_embeddings
    a = attnlrp(model, ids, target=1, layer=layer, forward_args=(mask,))
    assert a.extras["blocks"] == 2 and a.extras["activations"] == 3  # 2 GELU + tanh pooler

    class FromEmbeds(BertLogits):
        def forward(self, e: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.bert(inputs_embeds=e, attention_mask=m).logits
            return out

    b = attnlrp(FromEmbeds(bert), layer(ids).detach(), target=1, forward_args=(mask,))
    torch.testing.assert_close(a.values, b.values, rtol=1e-10, atol=1e-12)
    assert float(a.values[1, 3:].abs().max()) == 0.0
