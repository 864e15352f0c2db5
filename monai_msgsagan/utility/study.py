"""Does a trained generator help an imbalanced classifier? The downstream utility study.

The same classifier (:mod:`~monai_msgsagan.utility.classifier`) is trained under each arm with identical budget,
augmentation and seeds, and scored on a real held-out test split:

``real``
    the imbalanced real train split as it is (uniform sampling, plain cross-entropy);
``real_weighted``
    the same images with a class-weighted cross-entropy (inverse class frequency);
``real_oversampled``
    the same images with class-balanced sampling (every class drawn equally often);
``real_plus_synthetic``
    the real images plus generated images of the minority classes, as many as the MONAI Label hook would add
    (:func:`~monai_msgsagan.label.augment.plan_synthetic_counts` with ``balance`` and ``max_ratio``: one rule);
``synthetic_only``
    train on synthetic, test on real (TSTR): generated images only, as many per class as the real train split;
``real_plus_synthetic_every_class``
    every class gets as many generated images as the largest class has real ones, and training draws every
    class equally often with a fixed fraction (``synthetic_fraction``, 0.5) of each class's draws synthetic:
    whether an image is generated then says nothing about its class. ``real_plus_synthetic`` adds generated
    images to the minority classes only, so "looks generated" predicts "minority class" there; a classifier can
    learn that instead of the finding (the diagnostics measure whether it did).

The best arm without synthetic data (highest mean balanced accuracy among the three ``real*`` arms) is the
baseline every arm is compared with; choosing it on the test split favours the baseline, so a synthetic arm that
beats it has beaten the strongest classic remedy the study tried. Diagnostics say why synthetic data helps or
not: whether the baseline's classifiers recognise fresh synthetic images of each class as that class (does the
generator render the class?), whether the synthetic arms' classifiers call every synthetic image the minority
class (did they learn "looks generated" instead of the finding?), and how diverse the synthetic images of each
class are next to the real ones (pairwise MS-SSIM).

Before anything is trained the study refuses test images that the generator was trained on (from its record,
:mod:`~monai_msgsagan.artifact`) or that are in the classifier's real train split.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from monai_msgsagan.artifact import DataLeakageError, GeneratorArtifact, ModelError, check_no_leakage, find_overlap
from monai_msgsagan.data.sources import TrainingData
from monai_msgsagan.files import atomic_torch_save
from monai_msgsagan.generation import generate
from monai_msgsagan.label.augment import plan_synthetic_counts
from monai_msgsagan.metrics.diversity import collapse_score
from monai_msgsagan.utility.classifier import (
    ClassifierSettings,
    build_classifier,
    class_balanced_weights,
    class_weights,
    fixed_threads,
    predict_probabilities,
    stack_items,
    train_classifier,
)
from monai_msgsagan.utility.fidelity import (
    REFERENCE_ARM,
    class_fidelity_samples,
    radiograph_fid,
    summarize_class_fidelity,
)
from monai_msgsagan.utility.report import write_utility_report
from monai_msgsagan.utility.scoring import (
    defined,
    hierarchical_means,
    metric_names,
    percentile_interval,
    score_resamples,
    stratified_resamples,
    summarize,
)

__all__ = [
    "ARMS",
    "BASELINE_ARMS",
    "DEFAULT_ARM",
    "MIN_TEST_IMAGES_PER_CLASS",
    "run_utility_study",
    "generate_images",
]

logger = logging.getLogger(__name__)

#: The arms of the study, in report order.
ARMS: tuple[str, ...] = (
    "real",
    "real_weighted",
    "real_oversampled",
    "real_plus_synthetic",
    "synthetic_only",
    "real_plus_synthetic_every_class",
)
#: Fewest test images per class for which the verdict calls an arm better or worse than the baseline.
MIN_TEST_PER_CLASS = 10
#: Fewest test images per class the study runs with at all: a class with one image has a recall of 0 or 1 and a
#: bootstrap with no spread; with none its recall, the AUROC and the macro F1 are undefined.
MIN_TEST_IMAGES_PER_CLASS = 2
#: Arms that use no synthetic data (the baseline is the best of them).
BASELINE_ARMS: tuple[str, ...] = ("real", "real_weighted", "real_oversampled")
#: The synthetic mix the real-data study supports (``bundle/docs/EVALUATION.md``), which the MONAI Label hook uses
#: by default and the verdict speaks of first.
DEFAULT_ARM = "real_plus_synthetic_every_class"
#: Most candidates per kept image that classifier-filtered sampling generates.
MAX_FILTER_CANDIDATES = 20
#: Seed of the filter classifier (``real_oversampled`` training, not one of the study's seeds).
FILTER_CLASSIFIER_SEED = 1000


def generate_images(
    generator: GeneratorArtifact,
    class_index: int,
    count: int,
    seed: int,
    truncation: float = 1.0,
    keep: nn.Module | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, float]:
    """``count`` synthetic images of a class, ``(count, 1, R, R)`` in [-1, 1], and the share of the generated
    candidates the filter accepted (1.0 without a filter).

    Without ``keep`` they are the first ``count`` images that :func:`~monai_msgsagan.generation.generate` (and so
    the MONAI Label hook) makes for ``seed`` and ``truncation``. With a classifier ``keep`` (classifier-filtered
    sampling) images are generated in index order and only those it calls ``class_index`` are kept, up to
    :data:`MAX_FILTER_CANDIDATES` times ``count`` candidates; if fewer pass, the rest are the candidates it gives
    the highest probability of the class (logged).
    """
    if count == 0:
        return torch.zeros(0, 1, generator.resolution, generator.resolution), 1.0
    if keep is None:
        return generate(generator.network, count, seed, class_index, batch_size=64, truncation=truncation), 1.0
    kept, rejected, start = [], [], 0
    while sum(len(x) for x in kept) < count and start < MAX_FILTER_CANDIDATES * count:
        num = min(max(64, count), MAX_FILTER_CANDIDATES * count - start)
        batch = generate(generator.network, num, seed, class_index, start=start, batch_size=64, truncation=truncation)
        class_probs = predict_probabilities(keep, batch, device=device)
        accepted, probs = class_probs.argmax(-1) == class_index, class_probs[:, class_index]
        kept.append(batch[accepted])
        rejected.append((batch[~accepted], probs[~accepted]))
        start += num
    images = torch.cat(kept)
    accepted = len(images)
    if accepted < count:
        pool = torch.cat([b for b, _ in rejected])
        order = torch.cat([p for _, p in rejected]).argsort(descending=True)
        logger.warning(
            "utility: the filter classifier called %d of %d synthetic images of class %d their class; the other %d "
            "are the most probable of the rest",
            accepted, start, class_index, count - accepted,
        )  # fmt: skip
        images = torch.cat([images, pool[order[: count - accepted]]])
    return images[:count], accepted / start


def _check_inputs(train: TrainingData, test: TrainingData, generator: GeneratorArtifact) -> tuple[list[str], list[str]]:
    record = generator.record
    if record.class_names != list(train.class_names) or list(test.class_names) != list(train.class_names):
        raise ModelError(
            f"class names differ: generator record {record.class_names}, train split {list(train.class_names)}, "
            f"test split {list(test.class_names)}; they must be the same classes in the same order."
        )
    if generator.num_classes != len(train.class_names) or generator.num_classes < 2:
        raise ValueError(
            f"{generator.path}: the utility study needs a class-conditional generator of the data's "
            f"{len(train.class_names)} classes, it has num_classes={generator.num_classes}."
        )
    counts = dict(zip(test.class_names, torch.bincount(torch.as_tensor(test.labels, dtype=torch.long),
                                                       minlength=len(test.class_names)).tolist()))  # fmt: skip
    short = {c: n for c, n in counts.items() if n < MIN_TEST_IMAGES_PER_CLASS}
    if short:
        raise ValueError(
            f"the test split ({test.source}) has {counts} images per class; the utility study needs at least "
            f"{MIN_TEST_IMAGES_PER_CLASS} of every class (at least {MIN_TEST_PER_CLASS} for a verdict) and refuses "
            f"before training anything: {short} are too few (with none, recall, AUROC and macro F1 are undefined). "
            "Use a test split with every class."
        )
    test_ids, test_names = test.identities()
    check_no_leakage(record, test_ids, test_names)
    train_ids, train_names = train.identities()
    overlap = find_overlap(train_ids, train_names, test_ids, test_names)
    if overlap:
        shown = "; ".join(f"{t} (= train image {r})" for t, r in overlap[:10])
        raise DataLeakageError(
            f"{len(overlap)} test image(s) are also in the classifier's train split: {shown}"
            f"{' ...' if len(overlap) > 10 else ''}."
        )
    return train_ids, test_ids


def _cached_classifier(
    cache_dir: Path | None, key: dict[str, Any], num_classes: int, settings: ClassifierSettings, train
) -> nn.Module:
    """The classifier that ``train()`` makes for ``key``, read from ``cache_dir`` when an earlier study (of another
    generator on the same real data) trained it already; a missing or unreadable entry is trained and written."""
    if cache_dir is None:
        return train()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    path = cache_dir / f"{key['arm']}_seed{key['seed']}_{digest}.pt"
    if path.is_file():
        try:
            network = build_classifier(num_classes, settings, key["in_channels"])
            network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            logger.info("utility: classifier %s seed %s read from %s", key["arm"], key["seed"], path)
            return network.eval()
        except Exception as err:  # a damaged cache entry is retrained, never trusted
            logger.warning("utility: cached classifier %s unreadable (%s); training it again", path, err)
    network = train()
    atomic_torch_save({k: v.cpu() for k, v in network.state_dict().items()}, path)
    return network


def run_utility_study(
    train: TrainingData,
    test: TrainingData,
    generator: GeneratorArtifact,
    output_dir: str | os.PathLike,
    arms: Sequence[str] = ARMS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    classifier: ClassifierSettings | None = None,
    balance: float = 1.0,
    max_ratio: float | None = None,
    synthetic_seed: int = 0,
    num_resamples: int = 1000,
    bootstrap_seed: int = 0,
    num_probe: int = 128,
    synthetic_fraction: float = 0.5,
    device: torch.device | str = "cpu",
    settings: dict | None = None,
    classifier_cache_dir: str | os.PathLike | None = None,
    default_arm: str = DEFAULT_ARM,
    truncation: float = 1.0,
    filter_synthetic: bool = False,
) -> dict[str, Any]:
    """Train and score the classifier under every arm; write ``utility.json`` and the plots into ``output_dir``.

    Args:
        train: the real (imbalanced) train split: ``{"image": (1, R, R) in [-1, 1], "label"}`` items at the
            generator's resolution.
        test: the real held-out test split (same classes, same resolution).
        generator: the trained class-conditional generator with its record (training data identity).
        output_dir: where ``utility.json`` and the PNG plots go.
        arms: which of :data:`ARMS` to run (the baseline needs at least one of :data:`BASELINE_ARMS`).
        seeds: classifier seeds (weights, sampling order, augmentation); 5 or more, since the classifier's spread
            over seeds is larger than over test images and the intervals resample both.
        classifier: network size and budget (default :class:`ClassifierSettings`).
        balance, max_ratio: how many synthetic images ``real_plus_synthetic`` adds (the label hook's rule).
        synthetic_seed: run seed of the synthetic images.
        num_resamples: hierarchical bootstrap resamples (classifier seeds, and test images stratified by class).
        bootstrap_seed: seed of the resampling.
        num_probe: fresh synthetic images per class for the diagnostics and the class fidelity (see
            ``diagnostics`` and ``class_fidelity`` in the report).
        synthetic_fraction: share of each class's draws that are synthetic in ``real_plus_synthetic_every_class``,
            in (0, 1).
        device: where the classifiers train and the generator runs.
        settings: extra JSON-ready settings stored in the report (model file, commands); the report holds the
            train and test splits' data specifications (``train_data``, ``test_data``) itself.
        classifier_cache_dir: where the classifiers of the arms without synthetic data are kept, keyed by their
            real train images, settings and seed, so studies of several generators on the same data train them
            once (None: no cache).
        default_arm: the synthetic arm users get by default (the MONAI Label hook's mix); the verdict speaks of it
            first.
        truncation: ``psi`` of the synthetic images (:func:`~monai_msgsagan.generation.generate`), 1 for none.
        filter_synthetic: classifier-filtered sampling: keep only synthetic images that a classifier trained on
            the real train split alone (class-balanced, seed :data:`FILTER_CLASSIFIER_SEED`) calls their class
            (:func:`generate_images`); the probe images of the diagnostics and the class fidelity are drawn the
            same way. The reference classifiers that measure class fidelity are trained the same way with other
            seeds, so fidelity measured after filtering is biased upwards: judge filtering by the arms' scores.

    Returns:
        the report (also written as ``utility.json``, with the per-seed resampled scores in
        ``utility_scores.pt`` for pooling over generators), with ``files`` naming what was written.

    Raises:
        DataLeakageError: test images in the generator's training data or in the train split (named).
        ModelError / ValueError: classes that differ between record and data, an unconditional generator, a test
            split with fewer than :data:`MIN_TEST_IMAGES_PER_CLASS` images of some class, an unknown arm, or no
            baseline arm; all before anything is trained.
    """
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arms {unknown}; the arms are {list(ARMS)}.")
    if not any(a in BASELINE_ARMS for a in arms):
        raise ValueError(f"at least one arm without synthetic data {list(BASELINE_ARMS)} is needed as the baseline.")
    if default_arm in BASELINE_ARMS or default_arm not in ARMS:
        raise ValueError(f"default_arm must be a synthetic arm of {list(ARMS)}, got {default_arm!r}.")
    if not seeds:
        raise ValueError("give at least one classifier seed (three or more for a spread).")
    classifier = classifier or ClassifierSettings()
    train_ids, _ = _check_inputs(train, test, generator)
    names = list(train.class_names)
    k = len(names)
    train_images, train_labels = stack_items([train.dataset[i] for i in range(len(train.dataset))])
    test_images, test_labels = stack_items([test.dataset[i] for i in range(len(test.dataset))])
    for split, images in (("train", train_images), ("test", test_images)):
        if images.shape[-1] != generator.resolution:
            raise ValueError(
                f"{split} images are {images.shape[-1]} px, the generator makes {generator.resolution} px."
            )
    if not 0.0 < synthetic_fraction < 1.0:
        raise ValueError(f"synthetic_fraction must lie in (0, 1), got {synthetic_fraction}.")
    real_counts = torch.bincount(train_labels, minlength=k).tolist()
    extra = plan_synthetic_counts(real_counts, balance, max_ratio, mix="minority")
    every_class = plan_synthetic_counts(real_counts, balance, max_ratio, mix="every_class")
    synthetic_counts = {
        "real": [0] * k,
        "real_weighted": [0] * k,
        "real_oversampled": [0] * k,
        "real_plus_synthetic": extra,
        "synthetic_only": real_counts,
        "real_plus_synthetic_every_class": every_class,
    }
    need = [max(synthetic_counts[a][c] for a in arms) for c in range(k)]
    cache = Path(classifier_cache_dir) if classifier_cache_dir else None
    settings_key = {**classifier.__dict__, "block_config": list(classifier.block_config)}

    def cache_key(arm: str, seed: int) -> dict[str, Any]:
        """What fixes a classifier of the arms without synthetic data: its cache entry's key."""
        return {"arm": arm, "seed": int(seed), "classifier": settings_key, "train": train_ids,
                "in_channels": int(train_images.shape[1]), "torch": torch.__version__}  # fmt: skip

    keep = None
    if filter_synthetic:

        def fit_filter() -> nn.Module:
            draw = class_balanced_weights(train_labels, k)
            return train_classifier(train_images, train_labels, k, classifier, FILTER_CLASSIFIER_SEED, draw, None,
                                    device)  # fmt: skip

        keep = _cached_classifier(cache, cache_key(REFERENCE_ARM, FILTER_CLASSIFIER_SEED), k, classifier, fit_filter)
    start = time.perf_counter()
    with fixed_threads(classifier.num_threads):
        drawn = [generate_images(generator, c, need[c], synthetic_seed, truncation, keep, device) for c in range(k)]
    synthetic = [images for images, _ in drawn]
    acceptance = {names[c]: round(rate, 4) for c, (_, rate) in enumerate(drawn)}
    generation_s = time.perf_counter() - start

    def arm_data(arm: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(images, labels, draw weights or None, loss class weights or None) of an arm."""
        counts = synthetic_counts[arm]
        synth_images = torch.cat([synthetic[c][:n] for c, n in enumerate(counts)])
        synth_labels = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(counts)])
        if arm == "synthetic_only":
            return synth_images, synth_labels, None, None
        images, labels = torch.cat([train_images, synth_images]), torch.cat([train_labels, synth_labels])
        if arm == "real_weighted":
            return images, labels, None, class_weights(train_labels, k)
        if arm == "real_oversampled":
            return images, labels, class_balanced_weights(labels, k), None
        if arm == "real_plus_synthetic_every_class":
            real_w = (1.0 - synthetic_fraction) * class_balanced_weights(train_labels, k)
            synth_w = synthetic_fraction * class_balanced_weights(synth_labels, k)
            return images, labels, torch.cat([real_w, synth_w]), None
        return images, labels, None, None

    resamples = stratified_resamples(test_labels, max(1, num_resamples) + 1, bootstrap_seed)
    metrics = metric_names(names)
    probabilities: dict[str, torch.Tensor] = {}
    scores: dict[str, torch.Tensor] = {}
    networks: dict[str, list[torch.nn.Module]] = {}
    timings = {}
    for arm in arms:
        images, labels, draw_weights, loss_weights = arm_data(arm)
        arm_start = time.perf_counter()
        nets, probs = [], []
        for seed in seeds:

            def fit(images=images, labels=labels, draw=draw_weights, weights=loss_weights, seed=seed) -> nn.Module:
                return train_classifier(images, labels, k, classifier, int(seed), draw, weights, device)

            net = _cached_classifier(cache if arm in BASELINE_ARMS else None, cache_key(arm, seed), k, classifier, fit)
            nets.append(net)
            with fixed_threads(classifier.num_threads):
                probs.append(predict_probabilities(net, test_images, device=device))
        networks[arm] = nets
        probabilities[arm] = torch.stack(probs)
        scores[arm] = score_resamples(probabilities[arm], test_labels, resamples)
        timings[arm] = round(time.perf_counter() - arm_start, 1)
        logger.info(
            "utility arm %s: balanced accuracy %.3f (%d seeds, %.0f s)",
            arm,
            float(scores[arm][:, 0, 0].mean()),
            len(seeds),
            timings[arm],
        )
    baseline = max((a for a in arms if a in BASELINE_ARMS), key=lambda a: float(scores[a][:, 0, 0].mean()))
    minority = [names[c] for c in range(k) if real_counts[c] < max(real_counts)]
    report: dict[str, Any] = {
        "classes": names,
        "minority_classes": minority,
        "test_counts": dict(zip(names, torch.bincount(test_labels, minlength=k).tolist())),
        "train_counts": {
            arm: {
                "real": dict(zip(names, real_counts if arm != "synthetic_only" else [0] * k)),
                "synthetic": dict(zip(names, synthetic_counts[arm])),
            }
            for arm in arms
        },
        "arms": {},
        "baseline": baseline,
        "baseline_rule": "the arm without synthetic data with the highest mean balanced accuracy on the test split",
        "default_arm": default_arm,
        "differences": {},
    }
    means = {arm: hierarchical_means(scores[arm], bootstrap_seed) for arm in arms}  # (B, M), paired draws
    for arm in arms:
        preds = probabilities[arm].argmax(-1)
        confusion = torch.zeros(k, k, dtype=torch.long)
        for p in preds:
            confusion += torch.bincount(test_labels * k + p, minlength=k * k).reshape(k, k)
        report["arms"][arm] = {
            "metrics": summarize(scores[arm], metrics, seed=bootstrap_seed),
            "confusion_matrix": confusion.tolist(),
            "seconds": timings[arm],
        }
        if arm != baseline:
            diff = means[arm] - means[baseline]
            report["differences"][arm] = {}
            for i, m in enumerate(metrics):
                resampled = diff[1:, i] if len(diff) > 1 else diff[:, i]
                lo, hi = (defined(v) for v in percentile_interval(resampled[torch.isfinite(resampled)]))
                report["differences"][arm][m] = {
                    "mean": defined(float(diff[0, i])),
                    "ci95": [lo, hi],
                    "excludes_zero": lo is not None and hi is not None and bool(lo > 0 or hi < 0),
                }
    report["verdict"] = _verdict(report)

    def draw(class_index: int, count: int, seed: int) -> torch.Tensor:
        return generate_images(generator, class_index, count, seed, truncation, keep, device)[0]

    with fixed_threads(classifier.num_threads):
        probe = [draw(c, num_probe, synthetic_seed + 1) for c in range(k)]
        report["diagnostics"] = _diagnostics(
            networks, baseline, probe, synthetic, train_images, train_labels, names, device
        )
        fidelity_samples = _class_fidelity(report, networks, probe, scores, metrics, test_images, test_labels,
                                           draw, synthetic_seed, bootstrap_seed, device)  # fmt: skip
    report["settings"] = {
        "generator": str(generator.path),
        "generator_sha256": generator.sha256,
        "train_data": asdict(train.spec),
        "test_data": asdict(test.spec),
        "seeds": [int(s) for s in seeds],
        "classifier": settings_key,
        "balance": balance,
        "max_ratio": max_ratio,
        "synthetic_fraction": synthetic_fraction,
        "synthetic_seed": synthetic_seed,
        "truncation": truncation,
        "filter_synthetic": filter_synthetic,
        "filter_acceptance": acceptance if filter_synthetic else None,  # accepted / generated per class
        "num_resamples": num_resamples,
        "bootstrap": "hierarchical: classifier seeds with replacement, then test images stratified by true class; "
        "percentile interval; paired across arms (the same draws)",
        "generation_seconds": round(generation_s, 2),
        **(settings or {}),
    }
    report["files"] = write_utility_report(report, output_dir)
    scores_path = Path(output_dir) / "utility_scores.pt"
    atomic_torch_save(
        {
            "metrics": [str(m) for m in metrics],
            "arms": {str(a): v.float() for a, v in scores.items()},
            "class_fidelity": {str(c): v.float() for c, v in fidelity_samples.items()},
        },
        scores_path,
    )
    report["files"]["scores"] = str(scores_path)
    return report


def _class_fidelity(
    report: dict[str, Any],
    networks: dict[str, list[nn.Module]],
    probe: Sequence[torch.Tensor],
    scores: dict[str, torch.Tensor],
    metrics: list[str],
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    draw: Callable[[int, int, int], torch.Tensor],
    synthetic_seed: int,
    bootstrap_seed: int,
    device: torch.device | str,
) -> dict[str, torch.Tensor]:
    """Class fidelity, train-on-synthetic against train-on-real, and the radiograph FID, all with the reference
    classifier (:mod:`~monai_msgsagan.utility.fidelity`), into ``report``; returns each class's bootstrap samples
    ``(S, B, 2)`` (saved for pooling over generators). ``draw(class_index, count, seed)`` makes synthetic images
    the way the arms got them."""
    names = report["classes"]
    if REFERENCE_ARM not in networks:
        report["class_fidelity"] = {"note": f"not measured: the reference classifier is the {REFERENCE_ARM} arm"}
        return {}
    reference = networks[REFERENCE_ARM]
    samples = {}
    per_class = {}
    for c, name in enumerate(names):
        recall = scores[REFERENCE_ARM][:, :, metrics.index(f"recall/{name}")]
        samples[name] = class_fidelity_samples(reference, probe[c], c, recall, bootstrap_seed + 1 + c, device)
        per_class[name] = summarize_class_fidelity(samples[name], bootstrap_seed)
    out: dict[str, Any] = {
        "reference_classifier": f"the {REFERENCE_ARM} arm's classifiers (real train split only, class-balanced), "
        "one per classifier seed",
        "classes": per_class,
    }
    if "synthetic_only" in scores:
        i = metrics.index("balanced_accuracy")
        tstr = hierarchical_means(scores["synthetic_only"][..., i : i + 1], bootstrap_seed)[:, 0]
        trtr = hierarchical_means(scores[REFERENCE_ARM][..., i : i + 1], bootstrap_seed)[:, 0]
        ratio = tstr / trtr
        out["synthetic_only_vs_real"] = {
            "balanced_accuracy_synthetic_only": float(tstr[0]),
            "balanced_accuracy_real": float(trtr[0]),
            "ratio": float(ratio[0]),
            "ci95": list(percentile_interval(ratio[1:] if len(ratio) > 1 else ratio)),
        }
    counts = torch.bincount(test_labels, minlength=len(names)).tolist()
    matched = torch.cat([draw(c, n, synthetic_seed + 2) for c, n in enumerate(counts)])
    if len(matched) >= 2:
        out["radiograph_fid"] = {
            **radiograph_fid(reference, test_images, matched, device),
            "images": f"{len(test_images)} real held-out vs {len(matched)} synthetic of the same classes "
            f"(run seed synthetic_seed + 2)",
        }
    report["class_fidelity"] = out
    return samples


@torch.no_grad()
def _diagnostics(
    networks: dict[str, list[torch.nn.Module]],
    baseline: str,
    probe: Sequence[torch.Tensor],
    synthetic: Sequence[torch.Tensor],
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    names: Sequence[str],
    device: torch.device | str,
) -> dict[str, Any]:
    """Why synthetic data helps or not, per class, on fresh synthetic "probe" images (a run seed no arm trained on):

    - ``called_this_class``: the fraction of the class's probe images that each arm's classifiers (mean
      probability over seeds) call that class. The baseline's value says whether the generator renders the class
      as real images of the class look; a synthetic arm's value next to it shows a shortcut: a classifier that
      learned "looks generated" as a class calls the probe images of the *other* classes that class too.
    - ``ms_ssim_synthetic`` / ``ms_ssim_real`` / ``collapse_score``: pairwise MS-SSIM of the class's synthetic
      training images next to its real train images (> 1: less diverse than the real class).
    """
    out: dict[str, Any] = {
        "probe": "fresh synthetic images per class (run seed synthetic_seed + 1), classified by each arm's "
        "classifiers (mean probability over seeds)",
        "baseline": baseline,
        "classes": {},
    }
    for c, name in enumerate(names):
        entry: dict[str, Any] = {"num_probe": len(probe[c]), "called_this_class": {}}
        if len(probe[c]):
            for arm, nets in networks.items():
                probs = torch.stack([predict_probabilities(n, probe[c], device=device) for n in nets]).mean(0)
                entry["called_this_class"][arm] = float((probs.argmax(1) == c).float().mean())
        real_c = train_images[train_labels == c]
        if len(synthetic[c]) >= 2 and len(real_c) >= 2:
            score = collapse_score(real_c[:256], synthetic[c][:256], num_pairs=2000, seed=0)
            entry["ms_ssim_synthetic"] = score["fake"]["mean"]
            entry["ms_ssim_real"] = score["real"]["mean"]
            entry["collapse_score"] = score["score"]
        out["classes"][name] = entry
    return out


def _verdict(report: dict[str, Any]) -> str:
    """One sentence per synthetic arm: better, worse or not distinguishable from the baseline, on balanced
    accuracy and on each minority class's recall (95% intervals).

    With fewer than :data:`MIN_TEST_PER_CLASS` test images in a class the bootstrap over test images cannot say
    anything (a class of 2 images has 3 possible recalls, and the interval ignores the spread over seeds), so the
    verdict says so instead of calling an arm better or worse.
    """
    small = {c: n for c, n in report["test_counts"].items() if n < MIN_TEST_PER_CLASS}
    if small:
        return (
            f"not measurable: the test split has fewer than {MIN_TEST_PER_CLASS} images of "
            + ", ".join(f"{c} ({n})" for c, n in small.items())
            + "; the intervals are not meaningful, so no arm is called better or worse."
        )
    lines = []
    default = report.get("default_arm")
    order = sorted(report["differences"], key=lambda a: a != default)
    for arm in order:
        diffs = report["differences"][arm]
        if arm in BASELINE_ARMS:
            continue
        parts = []
        for metric in ["balanced_accuracy", *(f"recall/{c}" for c in report["minority_classes"])]:
            d = diffs[metric]
            lo, hi = d["ci95"]
            word = "better than" if lo > 0 else "worse than" if hi < 0 else "not distinguishable from"
            parts.append(f"{metric} {d['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}]: {word}")
        label = f"{arm} (the default mix)" if arm == default else arm
        lines.append(f"{label} vs {report['baseline']}: " + "; ".join(parts))
    return "\n".join(lines)
