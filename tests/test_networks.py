"""MSG-SAGAN generator, discriminator, attention and inference generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monai_msgsagan.generation import sample_latent
from monai_msgsagan.networks import (
    DEFAULT_ATTENTION_RESOLUTIONS,
    InferenceGenerator,
    MultiScaleDiscriminator,
    MultiScaleGenerator,
    PixelNorm,
    SelfAttention2d,
)
from monai_msgsagan.networks.blocks import default_channels, he_init, upsample_conv3x3
from monai_msgsagan.networks.generator import check_labels

LATENT = 16


def tiny_channels(resolution: int) -> list[int]:
    return default_channels(resolution, channel_base=256, max_channels=32)


def make_pair(resolution: int, attention: tuple[int, ...], num_classes: int):
    g = MultiScaleGenerator(
        resolution, LATENT, channels=tiny_channels(resolution), attention_resolutions=attention, num_classes=num_classes
    )
    d = MultiScaleDiscriminator(
        resolution, channels=tiny_channels(resolution), attention_resolutions=attention, num_classes=num_classes
    )
    return g, d


@pytest.mark.parametrize("resolution", [16, 32, 64])
@pytest.mark.parametrize("attention", [(), (16,), (8, 32)])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_shapes_and_ranges_at_every_scale(resolution, attention, num_classes):
    attention = tuple(a for a in attention if a <= resolution)
    torch.manual_seed(0)
    g, d = make_pair(resolution, attention, num_classes)
    z = sample_latent(4, LATENT, torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 0]) if num_classes else None
    images = g(z, labels)
    sides = [2**k for k in range(2, resolution.bit_length())]
    assert [tuple(i.shape) for i in images] == [(4, 1, s, s) for s in sides]
    for img in images:
        assert img.dtype == torch.float32
        assert img.min() >= -1.0 and img.max() <= 1.0
        assert img.std() > 0  # not a constant map
    logits = d(images, labels)
    assert logits.shape == (4,)
    assert torch.isfinite(logits).all()


def test_attention_layers_are_placed_where_asked():
    g, d = make_pair(64, (16, 64), 0)
    g_att = [type(b.attention).__name__ for b in g.blocks]
    assert g_att == ["Identity", "Identity", "SelfAttention2d", "Identity", "SelfAttention2d"]
    assert sum(isinstance(m, SelfAttention2d) for m in d.modules()) == 2
    plain_g, plain_d = make_pair(64, (), 0)
    assert not any(isinstance(m, SelfAttention2d) for m in list(plain_g.modules()) + list(plain_d.modules()))


def test_no_attention_is_exactly_msggan_plus_attention_params():
    """MSG-SAGAN differs from MSG-GAN only by its attention layers: removing them gives the same parameters."""
    sa_g, sa_d = make_pair(32, (16, 32), 2)
    msg_g, msg_d = make_pair(32, (), 2)
    for sa, msg in ((sa_g, msg_g), (sa_d, msg_d)):
        sa_names = {k for k in sa.state_dict() if ".attention." not in k and "final_attention" not in k}
        assert sa_names == set(msg.state_dict())


def test_default_attention_keeps_existing_scales():
    assert MultiScaleGenerator(16, LATENT).attention_resolutions == []
    assert MultiScaleGenerator(64, LATENT, channels=tiny_channels(64)).attention_resolutions == [32, 64]
    # the default is None, not an identity check on a tuple: the equal tuple given explicitly is checked
    assert MultiScaleDiscriminator(16, attention_resolutions=None).attention_resolutions == []
    with pytest.raises(ValueError, match="not scales of this network"):
        MultiScaleGenerator(16, LATENT, attention_resolutions=tuple(DEFAULT_ATTENTION_RESOLUTIONS))


def test_discriminator_blocks_are_named_by_side_and_old_checkpoints_load():
    d = MultiScaleDiscriminator(32, channels=tiny_channels(32), attention_resolutions=(16,), num_classes=2)
    assert list(d.blocks) == ["8", "16", "32"] and d.blocks["32"].finest
    state = d.state_dict()
    # bundle <= 0.6 numbered the blocks fine to coarse: blocks.0 was the 32 px block
    old = {k.replace("blocks.32.", "blocks.0.").replace("blocks.16.", "blocks.1.").replace("blocks.8.", "blocks.2."): v
           for k, v in state.items()}  # fmt: skip
    assert "blocks.0.from_image.parametrizations.weight.original" in old
    fresh = MultiScaleDiscriminator(32, channels=tiny_channels(32), attention_resolutions=(16,), num_classes=2)
    fresh.load_state_dict(old)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("num_classes", [0, 2])
def test_gradients_reach_every_parameter(num_classes):
    torch.manual_seed(0)
    g, d = make_pair(32, (8, 32), num_classes)
    for m in list(g.modules()) + list(d.modules()):  # open the attention so its convs get gradients too
        if isinstance(m, SelfAttention2d):
            torch.nn.init.constant_(m.gamma, 0.5)
    z = torch.randn(4, LATENT)
    labels = torch.tensor([0, 1, 1, 0]) if num_classes else None
    d(g(z, labels), labels).sum().backward()
    for net in (g, d):
        for name, p in net.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_coarse_scales_get_discriminator_gradient():
    torch.manual_seed(0)
    _, d = make_pair(32, (), 0)
    images = [torch.randn(2, 1, s, s, requires_grad=True) for s in (4, 8, 16, 32)]
    d(images).sum().backward()
    assert all(img.grad.abs().sum() > 0 for img in images)


def test_attention_at_gamma_zero_is_identity():
    torch.manual_seed(0)
    attn = SelfAttention2d(16)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(attn(x), x)
    torch.nn.init.constant_(attn.gamma, 1.0)
    assert not torch.allclose(attn(x), x)


def test_attention_matches_explicit_softmax():
    torch.manual_seed(0)
    attn = SelfAttention2d(16)
    torch.nn.init.constant_(attn.gamma, 0.7)
    x = torch.randn(2, 16, 4, 6)
    q = attn.query(x).flatten(2)  # (B, d, N)
    k = attn.key(x).flatten(2)
    v = attn.value(x).flatten(2)
    weights = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N, N), no 1/sqrt(d) as in SAGAN
    expected = x + 0.7 * attn.out((v @ weights.transpose(1, 2)).reshape(2, -1, 4, 6))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-5)


def test_pixel_norm_is_the_same_formula_in_every_layout():
    """Channels-last inputs take the fused ``rms_norm`` kernel, others the composite formula: same values and
    gradients, output in the input's memory format; ``(B, C)`` latents too."""
    torch.manual_seed(0)
    norm = PixelNorm()
    x = torch.randn(4, 12, 5, 7)
    expected = x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)
    grad = torch.randn_like(x)
    for layout in (torch.contiguous_format, torch.channels_last):
        xl = x.contiguous(memory_format=layout).clone(memory_format=layout).requires_grad_()
        out = norm(xl)
        assert out.is_contiguous(memory_format=layout)
        torch.testing.assert_close(out, expected)
        (out * grad).sum().backward()
        ref = x.detach().clone().requires_grad_()
        ((ref * torch.rsqrt(ref.pow(2).mean(dim=1, keepdim=True) + 1e-8)) * grad).sum().backward()
        torch.testing.assert_close(xl.grad, ref.grad)
    z = torch.randn(3, 8)
    torch.testing.assert_close(norm(z), z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8))


@pytest.mark.parametrize("bias", [True, False])
def test_upsample_conv3x3_is_nearest_upsampling_then_the_convolution(bias):
    """Values and gradients (input, weight, bias) of the one transposed convolution equal those of nearest 2x
    upsampling followed by the 3x3 convolution, in both memory layouts, at odd sizes too."""
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, 6, dtype=torch.float64)
    conv = torch.nn.Conv2d(5, 4, 3, padding=1, bias=bias).double()
    grad = torch.randn(3, 4, 14, 12, dtype=torch.float64)
    expected = conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
    (expected * grad).sum().backward()
    expected_grads = [p.grad.clone() for p in conv.parameters()]
    for layout in (torch.contiguous_format, torch.channels_last):
        conv.zero_grad()
        xl = x.clone(memory_format=layout).requires_grad_()
        out = upsample_conv3x3(xl, conv.weight, conv.bias)
        torch.testing.assert_close(out, expected)
        (out * grad).sum().backward()
        for got, want in zip([p.grad for p in conv.parameters()], expected_grads):
            torch.testing.assert_close(got, want)
        xr = x.clone().requires_grad_()
        (conv(F.interpolate(xr, scale_factor=2.0, mode="nearest")) * grad).sum().backward()
        torch.testing.assert_close(xl.grad, xr.grad)


def test_seeded_determinism():
    def run(seed: int):
        torch.manual_seed(seed)
        g = MultiScaleGenerator(32, LATENT, channels=tiny_channels(32), num_classes=2)
        z = sample_latent(3, LATENT, torch.Generator().manual_seed(seed))
        return g(z, torch.tensor([0, 1, 1]))[-1]

    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))


@pytest.mark.parametrize("num_classes", [0, 2])
def test_inference_generator_script_and_trace_equal_eager(num_classes):
    torch.manual_seed(0)
    g = MultiScaleGenerator(
        32, LATENT, channels=tiny_channels(32), attention_resolutions=(16,), num_classes=num_classes
    )
    inf = InferenceGenerator(
        32,
        LATENT,
        channels=tiny_channels(32),
        attention_resolutions=(16,),
        num_classes=num_classes,
        default_class=1 if num_classes else 0,
    )
    inf.load_state_dict(g.state_dict())  # the same flat state dict
    inf.eval()
    z = sample_latent(3, LATENT, torch.Generator().manual_seed(2))
    labels = torch.tensor([1, 1, 1]) if num_classes else None
    expected = g(z, labels)[-1]
    scripted = torch.jit.script(inf)
    torch.testing.assert_close(scripted(z), expected)
    torch.testing.assert_close(inf(z), expected)
    if num_classes:
        torch.testing.assert_close(scripted(z, torch.tensor([0, 1, 0])), g(z, torch.tensor([0, 1, 0]))[-1])
    with pytest.warns(torch.jit.TracerWarning):
        traced = torch.jit.trace(inf, (z,))
    torch.testing.assert_close(traced(z), expected)
    # truncation: psi = 1 is the plain call, psi < 1 scales the normalised latent (scripted too)
    torch.testing.assert_close(scripted(z, labels, 1.0), expected)
    torch.testing.assert_close(scripted(z, labels, 0.5), g(z, labels, 0.5)[-1])


def test_truncation_shrinks_the_latent_part_of_the_first_layer_input():
    torch.manual_seed(0)
    g = MultiScaleGenerator(16, LATENT, channels=tiny_channels(16), attention_resolutions=(), num_classes=2)
    z, labels = sample_latent(4, LATENT, torch.Generator().manual_seed(1)), torch.tensor([0, 1, 0, 1])
    full, half = g._input(z, labels), g._input(z, labels, 0.5)
    torch.testing.assert_close(half[:, :LATENT], 0.5 * full[:, :LATENT])
    torch.testing.assert_close(half[:, LATENT:], full[:, LATENT:])  # the class embedding is kept
    spread = [g(z, labels, psi)[-1].std(dim=0).mean() for psi in (1.0, 0.1)]
    assert spread[1] < spread[0]  # typical images of the class: less spread across latents
    for psi in (0.0, 1.5):
        with pytest.raises(ValueError, match="truncation must lie in"):
            g(z, labels, psi)


def test_auxiliary_classifier_shares_the_features_and_keeps_the_logits():
    torch.manual_seed(0)
    g, _ = make_pair(16, (), 3)
    d = MultiScaleDiscriminator(16, channels=tiny_channels(16), attention_resolutions=(), num_classes=3,
                                use_spectral_norm=False, auxiliary_classifier=True)  # fmt: skip
    labels = torch.tensor([0, 1, 2, 1])
    images = g(torch.randn(4, LATENT), labels)
    logits, classes = d.logits_and_classes(images, labels)
    assert logits.shape == (4,) and classes.shape == (4, 3)
    torch.testing.assert_close(logits, d(images, labels))
    classes.sum().backward()
    assert d.class_head.weight.grad is not None and d.logit.weight.grad is None
    plain = MultiScaleDiscriminator(16, channels=tiny_channels(16), num_classes=3)
    with pytest.raises(ValueError, match="no auxiliary classifier"):
        plain.logits_and_classes(images, labels)
    with pytest.raises(ValueError, match="needs num_classes >= 2"):
        MultiScaleDiscriminator(16, channels=tiny_channels(16), num_classes=0, auxiliary_classifier=True)


def test_scripted_generator_round_trips_through_a_file(tmp_path):
    inf = InferenceGenerator(16, LATENT, channels=tiny_channels(16)).eval()
    path = tmp_path / "model.ts"
    torch.jit.save(torch.jit.script(inf), str(path))
    z = torch.randn(2, LATENT)
    torch.testing.assert_close(torch.jit.load(str(path))(z), inf(z))


@pytest.mark.parametrize("resolution", [0, 8, 48, 2048, 100])
def test_bad_resolution(resolution):
    with pytest.raises(ValueError, match="power of two"):
        MultiScaleGenerator(resolution, LATENT)
    with pytest.raises(ValueError, match="power of two"):
        MultiScaleDiscriminator(resolution)


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match=r"not scales of this network; it has \[4, 8, 16, 32\]"):
        MultiScaleGenerator(32, LATENT, attention_resolutions=(64,))
    with pytest.raises(ValueError, match="one positive width per scale"):
        MultiScaleDiscriminator(32, channels=[8, 8])
    with pytest.raises(ValueError, match="default_class"):
        InferenceGenerator(16, LATENT, num_classes=2, default_class=2)
    g, d = make_pair(16, (), 2)
    with pytest.raises(ValueError, match=r"z must have shape \(B, 16\)"):
        g(torch.randn(2, 7), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="pass labels"):
        g(torch.randn(2, LATENT))
    # label values are checked where they enter (trainer, InferenceGenerator), not in the training forward pass
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got values from 0 to 5"):
        check_labels(torch.tensor([0, 5]), 2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        InferenceGenerator(16, LATENT, num_classes=2)(torch.randn(2, LATENT), torch.tensor([-1, 1]))
    images = g(torch.randn(2, LATENT), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="expected a list of 3 images"):
        d(images[1:], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, s, s\)"):
        d([images[0], images[1], torch.randn(2, 3, 16, 16)], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="pass labels"):
        d(images)


def test_he_init_keeps_the_signal_through_a_deep_plain_stack():
    """He init keeps activations at unit scale; PyTorch's default shrinks them ~1/sqrt(3) a layer."""
    torch.manual_seed(0)
    rms = {}
    for name, init in (("he", he_init), ("default", lambda layer: layer)):
        x = torch.randn(16, 32, 16, 16)
        with torch.no_grad():
            for _ in range(12):
                x = F.leaky_relu(init(nn.Conv2d(32, 32, 3, padding=1))(x), 0.2)
        rms[name] = float(x.pow(2).mean().sqrt())
    assert 0.3 < rms["he"] < 2.0  # zero padding at the borders costs a little
    assert rms["default"] < rms["he"] / 10
    layer = he_init(nn.Linear(64, 8))
    assert torch.equal(layer.bias, torch.zeros(8))
    # a transposed convolution on a 1x1 input: each output sees in_channels values
    up = he_init(nn.ConvTranspose2d(64, 32, 4), fan_in=64)
    with torch.no_grad():
        y = up(torch.randn(512, 64, 1, 1))
    assert abs(float(y.std()) - (2 / 1.04) ** 0.5) < 0.05


def test_networks_are_he_initialised():
    torch.manual_seed(0)
    g, d = make_pair(32, (16,), 2)
    conv = g.blocks[1].conv1
    expected = (2 / 1.04) ** 0.5 / (conv.in_channels * 9) ** 0.5
    assert abs(float(conv.weight.std()) / expected - 1) < 0.1 and not conv.bias.any()
    d_plain = MultiScaleDiscriminator(32, channels=tiny_channels(32), attention_resolutions=(), use_spectral_norm=False)
    conv = d_plain.blocks["32"].conv1
    expected = (2 / 1.04) ** 0.5 / (conv.in_channels * 9) ** 0.5
    assert abs(float(conv.weight.std()) / expected - 1) < 0.1
