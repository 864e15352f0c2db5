"""MultiScaleGanTrainer, differentiable augmentation, EMA, checkpoints and exact resume (in process, CPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Events
from torch.utils.data import DataLoader, DistributedSampler

from monai_msgsagan.data import PhantomDataset
from monai_msgsagan.engines import (
    GanIterationEvents,
    GanOutputKeys,
    MultiScaleGanTrainer,
    NonFiniteLossError,
    PyramidDiffAugment,
    cpu_has_native_bf16,
)
from monai_msgsagan.handlers import GanCheckpointSaver, GeneratorEMA, GlobalRandomState, ResumeFromLatest
from monai_msgsagan.handlers.integrity import checkpoints
from monai_msgsagan.losses import GradientPenalty, R1Penalty
from monai_msgsagan.networks import InferenceGenerator, MultiScaleDiscriminator, MultiScaleGenerator
from monai_msgsagan.transforms import image_pyramid

RES, LATENT, CH = 16, 16, [16, 16, 8]


@pytest.fixture(autouse=True)
def deterministic():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(threads)


def build(
    ckpt_dir,
    max_epochs,
    num_classes=2,
    seed=0,
    augment=True,
    penalty=None,
    dataset=None,
    loss="rahinge",
    mode_seeking_weight=0.0,
    spectral_norm=True,
    class_loss_weight=0.0,
):
    """Everything a bundle would build, from scratch (as a restarted process would)."""
    torch.manual_seed(seed)
    g = MultiScaleGenerator(RES, LATENT, channels=CH, attention_resolutions=(8,), num_classes=num_classes)
    ema = MultiScaleGenerator(RES, LATENT, channels=CH, attention_resolutions=(8,), num_classes=num_classes)
    d = MultiScaleDiscriminator(
        RES, channels=CH, attention_resolutions=(8,), num_classes=num_classes, use_spectral_norm=spectral_norm,
        auxiliary_classifier=class_loss_weight > 0,
    )  # fmt: skip
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), 4e-4, betas=(0.0, 0.99))
    dataset = dataset if dataset is not None else PhantomDataset(24, RES, num_classes=max(num_classes, 1), seed=seed)
    # data order from (seed, epoch): MONAI workflows call set_epoch on a DistributedSampler every epoch
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    loader = DataLoader(dataset, batch_size=8, sampler=sampler, drop_last=True)
    aug = PyramidDiffAugment(adaptive=True, probability=0.2, adjust_speed_images=64, interval=1) if augment else None
    objects = {
        "generator": g,
        "discriminator": d,
        "ema_generator": ema,
        "g_optimizer": opt_g,
        "d_optimizer": opt_d,
        "random_state": GlobalRandomState(),
    }
    handlers = [
        ResumeFromLatest(ckpt_dir, objects),
        GeneratorEMA(g, ema, half_life_images=50, batch_size=8),
        GanCheckpointSaver(ckpt_dir, objects, ema, ckpt_dir / "model.pt"),
    ]
    trainer = MultiScaleGanTrainer(
        "cpu",
        max_epochs,
        loader,
        g,
        opt_g,
        d,
        opt_d,
        loss=loss,
        penalty=penalty,
        augment=aug,
        mode_seeking_weight=mode_seeking_weight,
        class_loss_weight=class_loss_weight,
        seed=seed,
        train_handlers=handlers,
        max_nonfinite_steps=3,
    )
    return trainer, g, d, ema


def states(*nets):
    return [{k: v.clone() for k, v in n.state_dict().items()} for n in nets]


def assert_same(a, b):
    for sa, sb in zip(a, b):
        assert sa.keys() == sb.keys()
        for k in sa:
            torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)


def test_training_updates_g_d_and_ema(tmp_path):
    trainer, g, d, ema = build(tmp_path, max_epochs=1)
    before = states(g, d)
    trainer.run()
    out = trainer.state.output
    assert set(out) >= {"d_loss", "g_loss", "real_logit", "fake_logit", "augment_p", "skipped"}
    assert all(torch.isfinite(torch.as_tensor(v)) for v in out.values())
    after = states(g, d)
    for sb, sa in zip(before, after):
        assert any(not torch.equal(sb[k], sa[k]) for k in sb)
    # EMA is neither the initial nor the current generator
    assert any(not torch.equal(ema.state_dict()[k], g.state_dict()[k]) for k in g.state_dict())
    assert (tmp_path / "model.pt").is_file()
    model = torch.load(tmp_path / "model.pt", weights_only=True)
    inf = InferenceGenerator(RES, LATENT, channels=CH, attention_resolutions=(8,), num_classes=2)
    inf.load_state_dict(model)  # the exported file is the flat EMA generator state dict
    assert_same(states(inf), states(ema))


def test_gan_iteration_events_fire_between_the_steps_and_outputs_use_the_enum(tmp_path):
    trainer, *_ = build(tmp_path, max_epochs=1)
    trainer.d_train_steps = 2
    seen = []

    def record(engine, name):
        seen.append((engine.state.iteration, name, dict(engine.state.output)))

    trainer.add_event_handler(GanIterationEvents.D_STEP_COMPLETED, record, "D")
    trainer.add_event_handler(GanIterationEvents.G_STEP_COMPLETED, record, "G")
    trainer.add_event_handler(Events.ITERATION_COMPLETED, record, "I")
    trainer.run()
    assert [(i, n) for i, n, _ in seen] == [(it, n) for it in (1, 2, 3) for n in "DDGI"]
    first_d, second_d, g_done, _ = (out for _, _, out in seen[:4])
    assert first_d[GanOutputKeys.D_LOSS] != 0.0 and first_d[GanOutputKeys.G_LOSS] == 0.0  # G not run yet
    # the D values are means over the D steps done so far
    assert second_d[GanOutputKeys.D_LOSS] != first_d[GanOutputKeys.D_LOSS]
    assert g_done[GanOutputKeys.G_LOSS] != 0.0 and g_done[GanOutputKeys.D_LOSS] == second_d[GanOutputKeys.D_LOSS]
    out = trainer.state.output
    assert set(out) == set(GanOutputKeys) and all(isinstance(k, GanOutputKeys) for k in out)
    assert out["d_loss"] == out[GanOutputKeys.D_LOSS]  # plain string keys keep working


def test_health_signals_accuracy_and_per_scale_gradients_leave_training_unchanged(tmp_path):
    plain, g0, d0, _ = build(tmp_path / "plain", max_epochs=1)
    plain.run()
    measured, g1, d1, _ = build(tmp_path / "measured", max_epochs=1)
    measured.measure_scale_gradients = True
    norms = []
    measured.add_event_handler(Events.ITERATION_COMPLETED, lambda e: norms.append(e.scale_gradient_norms))
    measured.run()
    assert_same(states(g1, d1), states(g0, d0))  # measuring costs a backward through D, changes nothing
    assert len(norms) == 3 and all(len(n) == 3 and all(v > 0 for v in n) for n in norms)  # 3 scales: 4, 8, 16
    assert plain.scale_gradient_norms is None
    out = measured.state.output
    assert 0.0 <= out[GanOutputKeys.D_REAL_ACC] <= 1.0 and 0.0 <= out[GanOutputKeys.D_FAKE_ACC] <= 1.0
    real_acc, fake_acc = MultiScaleGanTrainer._d_accuracy(torch.tensor([3.0, 2.0, -1.0]), torch.tensor([0.0, 1.0]))
    assert (real_acc, fake_acc) == (pytest.approx(2 / 3), 1.0)  # fake mean 0.5, real mean 4/3


@pytest.mark.parametrize("penalty", [R1Penalty(1.0, interval=2), GradientPenalty(1.0)])
def test_penalties_and_losses_train(tmp_path, penalty):
    loss = "logistic" if isinstance(penalty, R1Penalty) else "wgan"
    trainer, *_ = build(tmp_path, max_epochs=1, penalty=penalty, loss=loss)
    trainer.run()
    assert trainer.state.output["penalty"] >= 0 and trainer.state.output["skipped"] == 0.0


def test_mode_seeking_term_and_label_pairing(tmp_path):
    trainer, *_ = build(tmp_path, max_epochs=1, mode_seeking_weight=2.0)
    z = torch.zeros(4, LATENT)
    z[2:] = 1.0  # |z_i - z_(i+2)| = 1
    fake = torch.zeros(4, 1, RES, RES)
    fake[2:] = 0.5  # paired images differ by 0.5
    term = trainer._mode_seeking_loss(fake, z)
    torch.testing.assert_close(term, torch.tensor(2.0 / (0.5 + 1e-5)))
    # a generator that ignores z pays ~weight / 1e-5, one that spreads its images pays little
    assert trainer._mode_seeking_loss(torch.zeros(4, 1, RES, RES), z) > 1e5
    assert trainer._paired_labels(torch.tensor([3, 1, 0, 2, 1])).tolist() == [3, 1, 3, 1, 1]
    assert trainer._paired_labels(None) is None
    with pytest.raises(ValueError, match="mode_seeking_weight must be >= 0"):
        build(tmp_path, max_epochs=1, mode_seeking_weight=-1.0)


def test_auxiliary_class_loss_trains_d_on_real_classes_and_g_on_fake_ones(tmp_path):
    trainer, g, d, _ = build(tmp_path, max_epochs=2, class_loss_weight=1.0, mode_seeking_weight=0.1)
    head = d.class_head.weight.detach().clone()
    losses = []

    def record(engine):
        out = engine.state.output
        losses.append((float(out[GanOutputKeys.D_CLASS_LOSS]), float(out[GanOutputKeys.G_CLASS_LOSS])))

    trainer.add_event_handler(Events.ITERATION_COMPLETED, record)
    trainer.run()
    assert not torch.equal(head, d.class_head.weight)  # D's head learns
    assert all(0 < dl < 10 and 0 < gl < 10 for dl, gl in losses)  # two classes: cross-entropy starts near ln 2
    # D's head learns the real classes only: the G step's class loss moves G, not the head
    z, labels = torch.randn(8, LATENT), torch.tensor([0, 1] * 4)
    d.zero_grad(set_to_none=True)
    d.requires_grad_(False)
    _, classes = d.logits_and_classes(g(z, labels), labels)
    F.cross_entropy(classes, labels).backward()
    assert d.class_head.weight.grad is None and any(p.grad is not None for p in g.parameters())
    d.requires_grad_(True)
    plain, *_ = build(tmp_path / "plain", max_epochs=1)
    with pytest.raises(ValueError, match="auxiliary classifier"):
        MultiScaleGanTrainer("cpu", 1, plain.data_loader, g, torch.optim.Adam(g.parameters()), plain.d_network,
                             torch.optim.Adam(plain.d_network.parameters()), class_loss_weight=1.0)  # fmt: skip


@pytest.mark.parametrize("loss", ["logistic", "rahinge"])
def test_mode_seeking_training_with_plain_discriminator(tmp_path, loss):
    """The default bundle recipe (no spectral norm, logistic loss with R1, mode seeking); rahinge also scores the
    real batch in the generator step, with the real labels, not the paired ones."""
    trainer, g, d, _ = build(
        tmp_path, max_epochs=1, loss=loss, penalty=R1Penalty(0.1, 4), mode_seeking_weight=0.1, spectral_norm=False
    )
    assert not any("parametrizations" in name for name, _ in d.named_parameters())
    trainer.augment = None  # real images reach D unchanged, so they can be recognised below
    data = trainer.data_loader.dataset
    real = {i: (data[i]["image"], data[i]["label"]) for i in range(len(data))}
    seen = []
    d_forward = trainer._d_forward

    def recording_d(images, labels):
        seen.append((images[-1].detach().clone(), labels.clone()))
        return d_forward(images, labels)

    trainer._d_forward = recording_d
    trainer.run()
    out = trainer.state.output
    assert out["skipped"] == 0.0 and 0.0 < out["mode_seeking"] < float("inf")
    # every real image D scored came with its own label (the paired labels are for the fakes only)
    checked = 0
    for images, labels in seen:
        for image, label in zip(images, labels):
            match = [lb for img, lb in real.values() if torch.equal(img, image)]
            if match:
                assert int(label) == match[0]
                checked += 1
    assert checked >= (48 if loss == "rahinge" else 24)  # 3 iterations x 8 real images per scoring


def test_exact_resume_matches_uninterrupted_run(tmp_path):
    full_dir, part_dir = tmp_path / "full", tmp_path / "part"
    trainer, g, d, ema = build(full_dir, max_epochs=4)
    trainer.run()
    expected = states(g, d, ema)
    expected_p = trainer.augment.probability

    first, *_ = build(part_dir, max_epochs=2)
    first.run()
    assert checkpoints(part_dir)[0].name == "checkpoint_6.pt"  # 3 iterations per epoch
    del first
    resumed, g2, d2, ema2 = build(part_dir, max_epochs=4)  # a fresh process would build exactly this
    resumed.run()
    assert resumed.state.epoch == 4 and resumed.state.iteration == 12
    assert resumed.augment.probability == expected_p
    assert_same(states(g2, d2, ema2), expected)


def test_checkpoints_load_weights_only_and_keep_newest(tmp_path):
    trainer, *_ = build(tmp_path, max_epochs=3)
    trainer.run()
    kept = sorted(p.name for p in tmp_path.glob("checkpoint_*.pt"))
    assert kept == ["checkpoint_6.pt", "checkpoint_9.pt"]
    ckpt = torch.load(tmp_path / "checkpoint_9.pt", weights_only=True)
    assert set(ckpt) == {
        "generator",
        "discriminator",
        "ema_generator",
        "g_optimizer",
        "d_optimizer",
        "random_state",
        "trainer",
    }
    assert ckpt["trainer"]["iteration"] == 9 and "rng" in ckpt["trainer"] and "augment" in ckpt["trainer"]
    assert not list(tmp_path.glob("*.tmp"))


def test_unreadable_checkpoint_is_reported(tmp_path):
    (tmp_path / "checkpoint_3.pt").write_bytes(b"not a checkpoint")
    trainer, *_ = build(tmp_path, max_epochs=1)
    with pytest.raises(RuntimeError, match="cannot resume: no intact checkpoint .*checkpoint_3.pt"):
        trainer.run()


def test_non_finite_steps_are_skipped_then_stop(tmp_path):
    nan_data = [{"image": torch.full((1, RES, RES), float("nan")), "label": 0} for _ in range(40)]
    trainer, g, d, ema = build(tmp_path, max_epochs=2, dataset=nan_data, augment=False)
    params = [dict(g.named_parameters()), dict(d.named_parameters())]
    before = [{k: v.detach().clone() for k, v in p.items()} for p in params]
    with pytest.raises(NonFiniteLossError, match="3 consecutive training steps"):
        trainer.run()
    assert_same([{k: v.detach() for k, v in p.items()} for p in params], before)  # no step touched the weights
    # spectral-norm power iterations run on the weights, not the data, so they stay finite
    assert all(torch.isfinite(b).all() for b in d.buffers())
    assert checkpoints(tmp_path) == []


def test_unconditional_training_and_accumulation(tmp_path):
    trainer, g, *_ = build(tmp_path, max_epochs=1, num_classes=0)
    trainer.accumulation_steps = 2
    trainer.run()
    assert g.num_classes == 0 and trainer.state.output["skipped"] == 0.0


@pytest.mark.parametrize("d_train_steps,accumulation_steps,forwards", [(1, 1, 1), (2, 1, 2), (1, 2, 4)])
def test_the_g_step_reuses_the_last_d_steps_fakes(tmp_path, d_train_steps, accumulation_steps, forwards):
    """With one micro-batch G runs once per D step and not again for its own step; the D step's fakes are the
    G step's (same latents, paired labels); with accumulation each micro-batch is generated again."""
    trainer, g, d, _ = build(tmp_path / "run", max_epochs=1, mode_seeking_weight=0.5, augment=False)
    trainer.d_train_steps, trainer.accumulation_steps = d_train_steps, accumulation_steps
    g_outputs, d_fake_inputs = [], []
    g.register_forward_hook(lambda _m, _i, out: g_outputs.append(out[-1].detach().clone()))
    d.register_forward_pre_hook(lambda _m, args: d_fake_inputs.append((args[0][-1].clone(), args[1].clone())))
    counted = []
    trainer.add_event_handler(GanIterationEvents.G_STEP_COMPLETED, lambda e: counted.append(len(g_outputs)))
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: e.terminate())
    trainer.run()
    assert counted == [forwards]
    if accumulation_steps == 1:
        # D's inputs: real then fake per D step, then the G step's fake (and real, for the relativistic loss)
        d_step_fake, g_step_fake = d_fake_inputs[2 * d_train_steps - 1], d_fake_inputs[2 * d_train_steps]
        torch.testing.assert_close(d_step_fake[0], g_step_fake[0], rtol=0, atol=0)
        torch.testing.assert_close(d_step_fake[1], g_step_fake[1], rtol=0, atol=0)
        half = g_step_fake[1].shape[0] // 2
        assert torch.equal(g_step_fake[1][:half], g_step_fake[1][half : 2 * half])  # paired for mode seeking


def test_conditional_training_requires_labels(tmp_path):
    data = [{"image": torch.zeros(1, RES, RES)} for _ in range(8)]
    trainer, *_ = build(tmp_path, max_epochs=1, dataset=data)
    with pytest.raises(ValueError, match="needs a 'label' entry"):
        trainer.run()


def test_image_pyramid_is_area_downsampling():
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    pyramid = image_pyramid(x, 4)
    assert [p.shape[-1] for p in pyramid] == [4, 8, 16, 32]
    for p in pyramid:
        torch.testing.assert_close(p, F.interpolate(x, size=p.shape[-2:], mode="area"))
    with pytest.raises(ValueError, match=r"expected real images of shape \(B, C, 32, 32\)"):
        image_pyramid(torch.rand(2, 1, 16, 16), 4)


def test_diffaugment_is_seeded_consistent_and_adaptive():
    pyr = image_pyramid(torch.rand(4, 1, 32, 32) * 2 - 1, 4)
    aug = PyramidDiffAugment()
    a = aug(pyr, torch.Generator().manual_seed(3))
    b = aug(pyr, torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert [x.shape for x in a] == [x.shape for x in pyr]
    assert not torch.equal(a[-1], pyr[-1])
    off = PyramidDiffAugment(probability=0.0)
    assert all(torch.equal(x, y) for x, y in zip(off(pyr, torch.Generator()), pyr))
    # gradients flow through the augmentation to the images
    img = [p.clone().requires_grad_(True) for p in pyr]
    sum(x.sum() for x in aug(img, torch.Generator().manual_seed(0))).backward()
    assert all(p.grad is not None for p in img)
    # ADA: over-confident D on reals raises p, under-confident lowers it
    ada = PyramidDiffAugment(adaptive=True, probability=0.5, adjust_speed_images=40, interval=1)
    ada.update(torch.ones(4))
    assert ada.probability == pytest.approx(0.6)
    ada.update(-torch.ones(4))
    assert ada.probability == pytest.approx(0.5)
    restored = PyramidDiffAugment(adaptive=True)
    restored.load_state_dict(ada.state_dict())
    assert restored.state_dict() == ada.state_dict()
    with pytest.raises(ValueError, match="unknown augmentation policy"):
        PyramidDiffAugment(policy=("flip",))


def test_ema_update_rule():
    torch.manual_seed(0)
    g = MultiScaleGenerator(RES, LATENT, channels=CH)
    ema_net = MultiScaleGenerator(RES, LATENT, channels=CH)
    ema = GeneratorEMA(g, ema_net, half_life_images=80, rampup=None, batch_size=8)
    assert ema.beta(1) == pytest.approx(0.5 ** (8 / 80))
    start = states(ema_net)[0]
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)

    class State:
        iteration = 1

    class Engine:
        state = State()

    ema(Engine())
    beta = ema.beta(1)
    for k, v in ema_net.named_parameters():
        torch.testing.assert_close(v, beta * start[k] + (1 - beta) * (start[k] + 1.0))


def _fused(trainer):
    """Give the trainer fused Adam optimizers (as the bundle builds them) over the same networks."""
    trainer.g_optimizer = torch.optim.Adam(trainer.g_network.parameters(), 2e-4, betas=(0.0, 0.99), fused=True)
    trainer.d_optimizer = torch.optim.Adam(trainer.d_network.parameters(), 4e-4, betas=(0.0, 0.99), fused=True)


def test_fused_optimizers_skip_non_finite_steps_on_the_device(tmp_path):
    """A NaN batch among finite ones: with fused optimizers the skip is decided on the device (``found_inf``), the
    skipped steps leave parameters and optimizer state alone and the finite steps are applied."""
    finite = PhantomDataset(24, RES, num_classes=2, seed=0)
    data = [dict(finite[i]) for i in range(24)]
    for item in data[8:16]:  # one NaN batch of three (the loader below keeps the order)
        item["image"] = torch.full((1, RES, RES), float("nan"))
    trainer, g, d, _ = build(tmp_path, max_epochs=1, dataset=data, augment=False)
    trainer.set_data(DataLoader(data, batch_size=8, shuffle=False))
    _fused(trainer)
    after_first = {}
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED(once=1), lambda e: after_first.update(states=_params(g, d), opt=_opt_states(e))
    )
    skipped = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: skipped.append(float(e.state.output["skipped"])))
    before_third = {}
    trainer.add_event_handler(
        Events.ITERATION_STARTED(once=3), lambda e: before_third.update(states=_params(g, d), opt=_opt_states(e))
    )
    trainer.run()
    assert skipped == [0.0, 1.0, 0.0]
    # the NaN iteration changed no weight (spectral-norm vectors still follow the weights, as before)...
    assert_same(before_third["states"], after_first["states"])
    assert_same(before_third["opt"], after_first["opt"])  # ...and no optimizer state (step counts included)
    assert int(trainer.d_optimizer.state[next(d.parameters())]["step"]) == 2
    assert all(torch.isfinite(p).all() for p in list(g.parameters()) + list(d.parameters()))


def _params(*nets):
    return [{k: v.detach().clone() for k, v in n.named_parameters()} for n in nets]


def _opt_states(engine):
    return [
        {f"{i}.{k}": v.clone() for i, s in enumerate(opt.state.values()) for k, v in s.items()}
        for opt in (engine.g_optimizer, engine.d_optimizer)
    ]


def test_non_finite_guard_reads_the_device_at_the_check_interval(tmp_path):
    """Skips are counted on the device and read every ``check_interval`` iterations and at each epoch's end,
    inside the iteration (before checkpoint handlers): the error comes at the first read after the limit."""
    nan_data = [{"image": torch.full((1, RES, RES), float("nan")), "label": 0} for _ in range(40)]
    trainer, g, *_ = build(tmp_path, max_epochs=2, dataset=nan_data, augment=False)
    _fused(trainer)
    trainer.check_interval = 4
    before = states(g)
    with pytest.raises(NonFiniteLossError, match=r"at least 3 consecutive .*\(8 in a row by iteration 4\)"):
        trainer.run()
    assert trainer.state.iteration == 4 and checkpoints(tmp_path) == []
    assert_same(states(g), before)


def test_the_step_reads_nothing_from_the_device_between_checks(tmp_path):
    """No ``bool``/``float``/``item``/``tolist`` of a tensor in a normal iteration: the step stays asynchronous.
    (An unconditional model without ADA and with fused optimizers: labels are checked on the host by design, a
    non-fused optimizer needs the skip flag on the host, and ADA reads its statistic every few steps.)"""
    trainer, *_ = build(tmp_path, max_epochs=2, num_classes=0, augment=False)
    _fused(trainer)
    trainer.check_interval = 4
    reads: list[int] = []

    class CountReads(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in (torch.Tensor.__bool__, torch.Tensor.__float__, torch.Tensor.item, torch.Tensor.tolist):
                reads.append(trainer.state.iteration)
            return func(*args, **(kwargs or {}))

    trainer.add_event_handler(Events.ITERATION_STARTED, lambda e: mode.__enter__())
    trainer.add_event_handler(GanIterationEvents.G_STEP_COMPLETED, lambda e: mode.__exit__(None, None, None))
    mode = CountReads()
    trainer.run()
    assert sorted(set(reads)) == [3, 4, 6]  # epoch ends (3 iterations each) and iteration 4; nothing else
    out = trainer.state.output
    assert all(isinstance(out[k], torch.Tensor) and out[k].dim() == 0 for k in GanOutputKeys if k != "augment_p")


def test_bad_labels_are_refused_before_the_step(tmp_path):
    data = [{"image": torch.zeros(1, RES, RES), "label": 2} for _ in range(8)]
    trainer, *_ = build(tmp_path, max_epochs=1, dataset=data)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got values from 2 to 2"):
        trainer.run()


def test_the_default_loss_is_the_bundles():
    import json
    from pathlib import Path

    bundle = json.loads((Path(__file__).resolve().parents[1] / "bundle/configs/train.json").read_text())
    default = MultiScaleGanTrainer.__init__.__defaults__[0]  # the first defaulted argument is ``loss``
    assert default == bundle["loss"] == "logistic"


def test_bf16_autocast_on_cpus_with_native_bf16(tmp_path, monkeypatch):
    """``amp`` is bf16 autocast on CUDA and on CPUs with native bf16 (AMX or AVX512-BF16, faster there), ignored
    on other CPUs (emulated, slower); ``amp=False`` is float32 on every CPU."""
    trainer, g, *_ = build(tmp_path, max_epochs=1, augment=False)
    assert not trainer.amp  # build() leaves it off
    amp, *_ = build(tmp_path / "amp", max_epochs=1, augment=False)
    amp.amp = True  # as MultiScaleGanTrainer(..., amp=True) sets it on a CPU with native bf16
    seen = []
    d_forward = amp._d_forward

    def recording_d(images, labels):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
        return d_forward(images, labels)

    amp._d_forward = recording_d
    amp.run()
    assert torch.bfloat16 in seen and all(torch.isfinite(torch.as_tensor(v)) for v in amp.state.output.values())
    args = ("cpu", 1, trainer.data_loader, g, trainer.g_optimizer, trainer.d_network, trainer.d_optimizer)
    assert MultiScaleGanTrainer(*args, amp=True).amp == cpu_has_native_bf16()
    # the decision follows what torch reports for this CPU: AMX tiles or AVX512-BF16, either suffices
    for amx, avx512_bf16 in ((False, False), (True, False), (False, True), (True, True)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda bf16=avx512_bf16: bf16)
        assert cpu_has_native_bf16() == (amx or avx512_bf16)
        assert MultiScaleGanTrainer(*args, amp=True).amp == (amx or avx512_bf16)
        assert not MultiScaleGanTrainer(*args, amp=False).amp
