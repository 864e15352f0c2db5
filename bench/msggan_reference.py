"""The original MSG-GAN networks, loss and training step, vendored for ``bench/step_vs_msggan.py``.

From BMSG-GAN by Animesh Karnewar, https://github.com/akanimax/BMSG-GAN, commit
863b1f370c12010a57812fb55e2f1b625e64e5a4, files ``sourcecode/MSG_GAN/CustomLayers.py``, ``GAN.py`` and
``Losses.py``. Kept: the equalized-learning-rate layers (the convolution and its transposed twin as one class
with a switch, the size assertions of both networks as one function), pixel norm, minibatch std-dev, the generator and
discriminator blocks, ``Generator``, ``Discriminator``, ``update_average``, ``RelativisticAverageHingeGAN`` (the
repository's default loss) and the body of ``MSG_GAN.train``'s batch loop with ``optimize_discriminator`` and
``optimize_generator``. Changed only as needed to run here: imports at the top, the ``use_eql=False`` branches
and ``DataParallel`` dropped (the defaults are ``use_eql=True`` and no parallelism on CPU), the step written as
one function ``reference_step``, and the output channels a parameter (3, RGB, in the original; hard-coded there).
The arithmetic of every layer and of the step is the original's.

Original licence:

MIT License

Copyright (c) 2018 Animesh Karnewar

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
# ruff: noqa: N801, D401

from __future__ import annotations

import numpy as np
import torch as th
from torch.nn import AvgPool2d, LeakyReLU, ModuleList
from torch.nn.functional import avg_pool2d, conv2d, conv_transpose2d, interpolate
from torch.nn.modules.utils import _pair

__all__ = ["Discriminator", "Generator", "RelativisticAverageHingeGAN", "reference_step", "update_average"]


class _equalized_conv2d(th.nn.Module):
    """Convolution with the equalized learning rate (weights scaled by sqrt(2 / fan_in) at run time)."""

    transposed = False

    def __init__(self, c_in, c_out, k_size, stride=1, pad=0, bias=True):
        super().__init__()
        shape = (c_in, c_out) if self.transposed else (c_out, c_in)
        self.weight = th.nn.Parameter(th.nn.init.normal_(th.empty(*shape, *_pair(k_size))))
        self.use_bias = bias
        self.stride = stride
        self.pad = pad
        if self.use_bias:
            self.bias = th.nn.Parameter(th.FloatTensor(c_out).fill_(0))
        fan_in = c_in if self.transposed else np.prod(_pair(k_size)) * c_in
        self.scale = np.sqrt(2) / np.sqrt(fan_in)

    def forward(self, x):
        return (conv_transpose2d if self.transposed else conv2d)(
            input=x,
            weight=self.weight * self.scale,
            bias=self.bias if self.use_bias else None,
            stride=self.stride,
            padding=self.pad,
        )


class _equalized_deconv2d(_equalized_conv2d):
    """Transposed convolution with the equalized learning rate (fan-in ``c_in``)."""

    transposed = True


class PixelwiseNorm(th.nn.Module):
    def forward(self, x, alpha=1e-8):
        y = x.pow(2.0).mean(dim=1, keepdim=True).add(alpha).sqrt()
        return x / y


class GenInitialBlock(th.nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.conv_1 = _equalized_deconv2d(in_channels, in_channels, (4, 4), bias=True)
        self.conv_2 = _equalized_conv2d(in_channels, in_channels, (3, 3), pad=1, bias=True)
        self.pixNorm = PixelwiseNorm()
        self.lrelu = LeakyReLU(0.2)

    def forward(self, x):
        y = x.view(*x.shape, 1, 1)
        y = self.lrelu(self.conv_1(y))
        y = self.lrelu(self.conv_2(y))
        return self.pixNorm(y)


class GenGeneralConvBlock(th.nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv_1 = _equalized_conv2d(in_channels, out_channels, (3, 3), pad=1, bias=True)
        self.conv_2 = _equalized_conv2d(out_channels, out_channels, (3, 3), pad=1, bias=True)
        self.pixNorm = PixelwiseNorm()
        self.lrelu = LeakyReLU(0.2)

    def forward(self, x):
        y = interpolate(x, scale_factor=2)
        y = self.pixNorm(self.lrelu(self.conv_1(y)))
        return self.pixNorm(self.lrelu(self.conv_2(y)))


def update_average(model_tgt, model_src, beta):
    def toggle_grad(model, requires_grad):
        for p in model.parameters():
            p.requires_grad_(requires_grad)

    toggle_grad(model_tgt, False)
    toggle_grad(model_src, False)
    param_dict_src = dict(model_src.named_parameters())
    for p_name, p_tgt in model_tgt.named_parameters():
        p_src = param_dict_src[p_name]
        assert p_src is not p_tgt
        p_tgt.copy_(beta * p_tgt + (1.0 - beta) * p_src)
    toggle_grad(model_tgt, True)
    toggle_grad(model_src, True)


class MinibatchStdDev(th.nn.Module):
    def forward(self, x, alpha=1e-8):
        batch_size, _, height, width = x.shape
        y = x - x.mean(dim=0, keepdim=True)
        y = th.sqrt(y.pow(2.0).mean(dim=0, keepdim=False) + alpha)
        y = y.mean().view(1, 1, 1, 1)
        y = y.repeat(batch_size, 1, height, width)
        return th.cat([x, y], 1)


class DisFinalBlock(th.nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.batch_discriminator = MinibatchStdDev()
        self.conv_1 = _equalized_conv2d(in_channels + 1, in_channels, (3, 3), pad=1, bias=True)
        self.conv_2 = _equalized_conv2d(in_channels, in_channels, (4, 4), bias=True)
        self.conv_3 = _equalized_conv2d(in_channels, 1, (1, 1), bias=True)
        self.lrelu = LeakyReLU(0.2)

    def forward(self, x):
        y = self.batch_discriminator(x)
        y = self.lrelu(self.conv_1(y))
        y = self.lrelu(self.conv_2(y))
        y = self.conv_3(y)
        return y.view(-1)


class DisGeneralConvBlock(th.nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv_1 = _equalized_conv2d(in_channels, in_channels, (3, 3), pad=1, bias=True)
        self.conv_2 = _equalized_conv2d(in_channels, out_channels, (3, 3), pad=1, bias=True)
        self.downSampler = AvgPool2d(2)
        self.lrelu = LeakyReLU(0.2)

    def forward(self, x):
        y = self.lrelu(self.conv_1(x))
        y = self.lrelu(self.conv_2(y))
        return self.downSampler(y)


def _check_size(depth, size, message):
    """The size assertions of the original ``Generator`` and ``Discriminator``."""
    assert size != 0 and ((size & (size - 1)) == 0), "latent size not a power of 2"
    if depth >= 4:
        assert size >= np.power(2, depth - 4), message


class Generator(th.nn.Module):
    """Images at every scale 4x4 .. (2**(depth+1))^2; widths ``latent_size``, halving after the fourth block."""

    def __init__(self, depth=7, latent_size=512, image_channels=3):
        super().__init__()
        _check_size(depth, latent_size, "latent size will diminish to zero")
        self.depth = depth
        self.latent_size = latent_size

        def to_rgb(in_channels):
            return _equalized_conv2d(in_channels, image_channels, (1, 1), bias=True)

        self.layers = ModuleList([GenInitialBlock(self.latent_size)])
        self.rgb_converters = ModuleList([to_rgb(self.latent_size)])
        for i in range(self.depth - 1):
            if i <= 2:
                layer = GenGeneralConvBlock(self.latent_size, self.latent_size)
                rgb = to_rgb(self.latent_size)
            else:
                layer = GenGeneralConvBlock(
                    int(self.latent_size // np.power(2, i - 3)), int(self.latent_size // np.power(2, i - 2))
                )
                rgb = to_rgb(int(self.latent_size // np.power(2, i - 2)))
            self.layers.append(layer)
            self.rgb_converters.append(rgb)

    def forward(self, x):
        outputs = []
        y = x
        for block, converter in zip(self.layers, self.rgb_converters):
            y = block(y)
            outputs.append(converter(y))
        return outputs


class Discriminator(th.nn.Module):
    """Takes the ``depth`` images coarse to fine; features ``feature_size``, halved from the fifth scale on."""

    def __init__(self, depth=7, feature_size=512, image_channels=3):
        super().__init__()
        _check_size(depth, feature_size, "feature size cannot be produced")

        def from_rgb(out_channels):
            return _equalized_conv2d(image_channels, out_channels, (1, 1), bias=True)

        self.depth = depth
        self.feature_size = feature_size

        self.rgb_to_features = ModuleList()
        self.final_converter = from_rgb(self.feature_size // 2)
        self.layers = ModuleList()
        self.final_block = DisFinalBlock(self.feature_size)
        for i in range(self.depth - 1):
            if i > 2:
                layer = DisGeneralConvBlock(
                    int(self.feature_size // np.power(2, i - 2)), int(self.feature_size // np.power(2, i - 2))
                )
                rgb = from_rgb(int(self.feature_size // np.power(2, i - 1)))
            else:
                layer = DisGeneralConvBlock(self.feature_size, self.feature_size // 2)
                rgb = from_rgb(self.feature_size // 2)
            self.layers.append(layer)
            self.rgb_to_features.append(rgb)
        self.rgb_to_features[self.depth - 2] = from_rgb(self.feature_size // np.power(2, i - 2))

    def forward(self, inputs):
        assert len(inputs) == self.depth, "Mismatch between input and Network scales"
        y = self.rgb_to_features[self.depth - 2](inputs[self.depth - 1])
        y = self.layers[self.depth - 2](y)
        for x, block, converter in zip(
            reversed(inputs[1:-1]), reversed(self.layers[:-1]), reversed(self.rgb_to_features[:-1])
        ):
            input_part = converter(x)
            y = th.cat((input_part, y), dim=1)
            y = block(y)
        input_part = self.final_converter(inputs[0])
        y = th.cat((input_part, y), dim=1)
        return self.final_block(y)


class RelativisticAverageHingeGAN:
    def __init__(self, dis):
        self.dis = dis

    def dis_loss(self, real_samps, fake_samps):
        r_preds = self.dis(real_samps)
        f_preds = self.dis(fake_samps)
        r_f_diff = r_preds - th.mean(f_preds)
        f_r_diff = f_preds - th.mean(r_preds)
        return th.mean(th.nn.ReLU()(1 - r_f_diff)) + th.mean(th.nn.ReLU()(1 + f_r_diff))

    def gen_loss(self, real_samps, fake_samps):
        r_preds = self.dis(real_samps)
        f_preds = self.dis(fake_samps)
        r_f_diff = r_preds - th.mean(f_preds)
        f_r_diff = f_preds - th.mean(r_preds)
        return th.mean(th.nn.ReLU()(1 + r_f_diff)) + th.mean(th.nn.ReLU()(1 - f_r_diff))


def reference_step(gen, gen_shadow, dis, gen_optim, dis_optim, loss_fn, batch, ema_decay=0.999):
    """One iteration of ``MSG_GAN.train``'s batch loop (normalised latents, EMA on). Returns (d_loss, g_loss)."""
    images = batch
    extracted_batch_size = images.shape[0]
    depth = len(gen.layers)
    images = [images] + [avg_pool2d(images, int(np.power(2, i))) for i in range(1, depth)]
    images = list(reversed(images))
    gan_input = th.randn(extracted_batch_size, gen.latent_size)
    gan_input = gan_input / gan_input.norm(dim=-1, keepdim=True) * (gen.latent_size**0.5)

    # MSG_GAN.optimize_discriminator
    fake_samples = gen(gan_input)
    fake_samples = [x.detach() for x in fake_samples]
    loss = loss_fn.dis_loss(images, fake_samples)
    dis_optim.zero_grad()
    loss.backward()
    dis_optim.step()
    dis_loss = loss.item()

    # MSG_GAN.optimize_generator
    fake_samples = gen(gan_input)
    loss = loss_fn.gen_loss(images, fake_samples)
    gen_optim.zero_grad()
    loss.backward()
    gen_optim.step()
    update_average(gen_shadow, gen, ema_decay)
    return dis_loss, loss.item()
