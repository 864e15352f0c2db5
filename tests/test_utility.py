"""The downstream utility study: generator record, leakage check, scores and intervals, every arm end to end,
and the bundle's ``utility`` workflow in a subprocess."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_utils import BUNDLE_DIR, REPO_ROOT, TINY_TRAIN, copy_bundle, overrides, run_bundle, train_bundle
from xray_files import write_phantom_folder

from monai_msgsagan.artifact import DataLeakageError, check_no_leakage, load_generator, save_record, training_record
from monai_msgsagan.data import DataSpec, training_data
from monai_msgsagan.generation import generate
from monai_msgsagan.label.augment import plan_synthetic_counts
from monai_msgsagan.networks import InferenceGenerator
from monai_msgsagan.utility import (
    ARMS,
    BASELINE_ARMS,
    DEFAULT_ARM,
    ClassifierSettings,
    build_classifier,
    class_balanced_weights,
    class_weights,
    generate_images,
    metric_names,
    percentile_interval,
    predict_probabilities,
    run_utility_study,
    score_resamples,
    stratified_resamples,
    summarize,
    train_classifier,
)
from monai_msgsagan.utility.fidelity import summarize_class_fidelity
from monai_msgsagan.utility.scoring import hierarchical_means
from monai_msgsagan.utility.study import FILTER_CLASSIFIER_SEED, MAX_FILTER_CANDIDATES

NET_ARGS = {"resolution": 16, "latent_dim": 8, "channels": [16, 8, 8], "attention_resolutions": [], "num_classes": 2}
TINY_CLASSIFIER = ClassifierSettings(init_features=8, growth_rate=4, block_config=(2, 2), num_steps=4, batch_size=8)


def save_generator(folder: Path, data, seed: int = 0) -> Path:
    """An (untrained) generator saved as the bundle saves one: ``model.pt`` and its record ``model.json``."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.pt"
    torch.save(InferenceGenerator(**NET_ARGS).state_dict(), model)
    save_record(training_record(NET_ARGS, data, {"loss": "logistic"}), model)
    return model


def test_training_record_holds_the_data_and_best_weights_have_their_own(tmp_path: Path):
    data = training_data(DataSpec(num_phantoms=8, seed=3), 16)
    model = save_generator(tmp_path / "models", data)
    generator = load_generator(model)
    record = generator.record
    assert record.network == NET_ARGS and record.class_names == ["normal", "lung_opacity"]
    assert record.training_data["item_ids"][:2] == ["phantom:3:0", "phantom:3:1"]
    assert record.data_spec == DataSpec(num_phantoms=8, seed=3) == data.spec
    assert generator.resolution == 16 and generator.num_classes == 2
    best = model.with_name("model_best.pt")  # the health monitor's best weights: the run's record, their SHA-256
    best.write_bytes(model.read_bytes())
    save_record(record, best, extra={"epoch": 1})
    assert load_generator(best).record.training_data == record.training_data


def test_leakage_of_files_is_refused_naming_them(tmp_path: Path):
    """A test image that is a renamed copy of a training file is found by content, and named."""
    csv = write_phantom_folder(tmp_path / "train", 6, size=16, seed=0)
    data = training_data(DataSpec(csv, label_column="class_name"), 16)
    record = training_record(NET_ARGS, data)
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    shutil.copy(tmp_path / "train" / "phantom_00002.png", test_dir / "renamed.png")
    write_phantom_folder(tmp_path / "fresh", 2, size=16, seed=7)
    shutil.copy(tmp_path / "fresh" / "phantom_00000.png", test_dir / "new.png")
    test_ids = [f"sha256:{hashlib.sha256(p.read_bytes()).hexdigest()}" for p in sorted(test_dir.glob("*"))]
    names = [str(p) for p in sorted(test_dir.glob("*"))]
    with pytest.raises(
        DataLeakageError, match=r"1 held-out test image.*renamed\.png \(= training image .*phantom_00002"
    ):
        check_no_leakage(record, test_ids, names)
    check_no_leakage(record, test_ids[:1], names[:1])  # new.png alone is fine


def test_scores_agree_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 3, 60))
    probs = torch.softmax(torch.from_numpy(rng.normal(size=(60, 3))) + 2 * torch.nn.functional.one_hot(labels, 3), 1)
    names = metric_names(["a", "b", "c"])
    scores = dict(zip(names, score_resamples(probs[None].float(), labels, torch.arange(60)[None])[0, 0].tolist()))
    y, p = labels.numpy(), probs.numpy()
    assert scores["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(y, p.argmax(1)))
    assert scores["macro_f1"] == pytest.approx(metrics.f1_score(y, p.argmax(1), average="macro"))
    assert scores["auroc"] == pytest.approx(metrics.roc_auc_score(y, p, multi_class="ovr"), abs=1e-6)
    recall = metrics.recall_score(y, p.argmax(1), average=None)
    precision = metrics.precision_score(y, p.argmax(1), average=None)
    for i, c in enumerate("abc"):
        assert scores[f"recall/{c}"] == pytest.approx(recall[i])
        assert scores[f"precision/{c}"] == pytest.approx(precision[i])


def test_bootstrap_interval_matches_a_case_computed_by_hand():
    """Class 0 has two test images (one right, one wrong), class 1 one (right). A stratified resample keeps one
    class-1 image (recall 1) and draws two class-0 images: recall 0, 1/2, 1 with probability 1/4, 1/2, 1/4, so
    balanced accuracy is 0.5, 0.75, 1.0 with those probabilities: the 95% interval is [0.5, 1.0], the mean 0.75."""
    labels = torch.tensor([0, 0, 1])
    probs = torch.tensor([[[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]])
    resamples = stratified_resamples(labels, 4001, seed=0)
    assert resamples[0].tolist() == [0, 1, 2] and bool((resamples[:, 2] == 2).all())
    balanced = score_resamples(probs, labels, resamples)[0, 1:, 0].numpy()
    values, counts = np.unique(balanced, return_counts=True)
    assert values.tolist() == [0.5, 0.75, 1.0]
    assert counts / counts.sum() == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    assert percentile_interval(balanced) == (0.5, 1.0)
    assert balanced.mean() == pytest.approx(0.75, abs=0.02)
    assert percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))


def test_hierarchical_bootstrap_resamples_classifier_seeds_too():
    """Five classifier seeds that disagree (balanced accuracy 0.6 .. 1.0) on identical test resamples: an interval
    over test images alone would be a point; resampling the seeds gives the spread of a 5-seed mean."""
    per_seed = torch.tensor([0.6, 0.7, 0.8, 0.9, 1.0], dtype=torch.float64)
    scores = per_seed[:, None, None].expand(5, 2001, 1)
    means = hierarchical_means(scores, seed=0)[:, 0]
    assert means[0] == pytest.approx(0.8)  # row 0: every seed once
    lo, hi = percentile_interval(means[1:])
    assert lo == pytest.approx(0.8 - 1.96 * 0.1414 / 5**0.5, abs=0.03) and hi == pytest.approx(0.8 + 0.124, abs=0.03)
    # GAN seeds x classifier seeds: a GAN seed that is 0.2 better widens the pooled interval
    pooled = torch.stack([scores, scores + 0.2])
    pooled_means = hierarchical_means(pooled, seed=0)[:, 0]
    assert pooled_means[0] == pytest.approx(0.9)
    assert percentile_interval(pooled_means[1:])[1] - percentile_interval(pooled_means[1:])[0] > hi - lo
    assert torch.equal(hierarchical_means(scores, 3), hierarchical_means(scores.clone(), 3))  # paired draws


def test_classifier_is_the_same_whatever_the_thread_count():
    """The classifier trains on its own fixed thread count, so a seed gives the same weights whatever the
    process's (and the process's count is restored)."""
    images, labels = torch.rand(24, 1, 16, 16) * 2 - 1, torch.arange(24) % 2
    weights = []
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        net = train_classifier(images, labels, 2, TINY_CLASSIFIER, seed=3)
        assert torch.get_num_threads() == threads
        weights.append(net.state_dict())
    torch.set_num_threads(before)
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_class_fidelity_is_undefined_when_no_real_image_is_recognised():
    samples = torch.zeros(3, 11, 2, dtype=torch.float64)
    samples[..., 0] = 0.4  # synthetic share; the real share stays 0
    out = summarize_class_fidelity(samples, seed=0)
    assert out["fidelity"] is None and out["ci95"] is None and "undefined" in out["note"]
    samples[..., 1] = 0.8
    out = summarize_class_fidelity(samples, seed=0)
    assert out["fidelity"] == pytest.approx(0.5) and out["ci95"] == pytest.approx([0.5, 0.5])


def test_class_balanced_weights_draw_every_class_equally():
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    weights = class_balanced_weights(labels, 3)
    per_class = torch.zeros(3, dtype=torch.float64).index_add_(0, labels, weights)
    assert per_class.tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_class_weights_are_inverse_frequency():
    assert class_weights(torch.tensor([0, 0, 0, 1]), 2).tolist() == pytest.approx([4 / 6, 2.0])
    with pytest.raises(ValueError, match="every class needs training images"):
        class_weights(torch.tensor([0, 0]), 2)


def test_every_arm_end_to_end(tmp_path: Path):
    train = training_data(DataSpec(num_phantoms=24, phantom_class_ratio=0.25, seed=0), 16)
    test = training_data(DataSpec(num_phantoms=8, seed=1000), 16)
    generator = load_generator(save_generator(tmp_path / "models", train))
    cache = tmp_path / "classifier_cache"
    report = run_utility_study(
        train,
        test,
        generator,
        tmp_path / "eval",
        seeds=(0, 1, 2),
        classifier=TINY_CLASSIFIER,
        num_resamples=50,
        balance=1.0,
        classifier_cache_dir=cache,
    )
    assert list(report["arms"]) == list(ARMS)
    assert report["baseline"] in ("real", "real_weighted", "real_oversampled")
    assert report["minority_classes"] == ["lung_opacity"]
    extra = plan_synthetic_counts([18, 6], 1.0)
    assert report["train_counts"]["real_plus_synthetic"] == {
        "real": {"normal": 18, "lung_opacity": 6},
        "synthetic": {"normal": extra[0], "lung_opacity": extra[1]},
    }
    assert report["train_counts"]["synthetic_only"]["real"] == {"normal": 0, "lung_opacity": 0}
    assert report["train_counts"]["synthetic_only"]["synthetic"] == {"normal": 18, "lung_opacity": 6}
    assert report["train_counts"]["real_plus_synthetic_every_class"]["synthetic"] == {"normal": 18, "lung_opacity": 18}
    for arm, entry in report["arms"].items():
        assert np.sum(entry["confusion_matrix"]) == 3 * len(test.dataset)
        ba = entry["metrics"]["balanced_accuracy"]
        assert len(ba["per_seed"]) == 3 and ba["ci95"][0] <= ba["ci95"][1]
        assert (arm in report["differences"]) == (arm != report["baseline"])
    assert set(report["diagnostics"]["classes"]) == {"normal", "lung_opacity"}
    called = report["diagnostics"]["classes"]["lung_opacity"]["called_this_class"]
    assert set(called) == set(ARMS) and all(0 <= v <= 1 for v in called.values())
    assert report["diagnostics"]["baseline"] == report["baseline"]
    assert report["verdict"].startswith("not measurable: the test split has fewer than 10 images of normal (4)")
    written = json.loads((tmp_path / "eval" / "utility.json").read_text())
    assert written["baseline"] == report["baseline"] and written["verdict"] == report["verdict"]
    for name in ("utility_metrics.png", "utility_confusion.png", "utility.md"):
        assert (tmp_path / "eval" / name).stat().st_size > 0
    fidelity = report["class_fidelity"]
    assert fidelity["reference_classifier"].startswith("the real_oversampled arm's classifiers")
    assert set(fidelity["classes"]) == {"normal", "lung_opacity"} and fidelity["radiograph_fid"]["mean"] >= 0
    assert len(fidelity["radiograph_fid"]["per_seed"]) == 3 and "ratio" in fidelity["synthetic_only_vs_real"]
    saved = torch.load(tmp_path / "eval" / "utility_scores.pt", weights_only=True)
    assert saved["metrics"] == metric_names(["normal", "lung_opacity"])
    assert saved["arms"]["real"].shape == (3, 51, len(saved["metrics"]))
    assert saved["class_fidelity"]["normal"].shape == (3, 51, 2)
    # the arms without synthetic data are trained once: another generator on the same data reads them back
    assert len(list(cache.glob("*.pt"))) == len(BASELINE_ARMS) * 3
    other = load_generator(save_generator(tmp_path / "other", train, seed=1))
    again = run_utility_study(train, test, other, tmp_path / "eval2", seeds=(0, 1, 2), classifier=TINY_CLASSIFIER,
                              num_resamples=50, classifier_cache_dir=cache)  # fmt: skip
    assert len(list(cache.glob("*.pt"))) == len(BASELINE_ARMS) * 3
    for arm in BASELINE_ARMS:
        assert again["arms"][arm]["metrics"] == report["arms"][arm]["metrics"]


def test_filtered_truncated_sampling_and_the_default_arm_first(tmp_path: Path):
    train = training_data(DataSpec(num_phantoms=24, phantom_class_ratio=0.25, seed=0), 16)
    test = training_data(DataSpec(num_phantoms=40, seed=1000), 16)
    generator = load_generator(save_generator(tmp_path / "models", train))
    cache = tmp_path / "classifier_cache"
    arms = ("real_oversampled", "real_plus_synthetic", "real_plus_synthetic_every_class")
    report = run_utility_study(train, test, generator, tmp_path / "eval", arms=arms, seeds=(0, 1),
                               classifier=TINY_CLASSIFIER, num_resamples=20, classifier_cache_dir=cache,
                               truncation=0.7, filter_synthetic=True)  # fmt: skip
    settings = report["settings"]
    assert settings["truncation"] == 0.7 and settings["filter_synthetic"] is True
    # every class got its images; the acceptance is accepted / generated, in [0, 1]
    assert set(settings["filter_acceptance"]) == {"normal", "lung_opacity"}
    assert all(0 <= a <= 1 for a in settings["filter_acceptance"].values())
    assert len(list(cache.glob(f"real_oversampled_seed{FILTER_CLASSIFIER_SEED}_*.pt"))) == 1  # trained once
    assert report["default_arm"] == DEFAULT_ARM == "real_plus_synthetic_every_class"
    assert report["verdict"].splitlines()[0].startswith("real_plus_synthetic_every_class (the default mix) vs ")
    # the filter keeps only images its classifier calls their class (the rest only when too few pass)
    keep = _filter(cache, train)
    images, accepted = generate_images(generator, 1, 6, 0, 0.7, keep, "cpu")
    assert images.shape == (6, 1, 16, 16) and 0.0 <= accepted <= 1.0
    called = predict_probabilities(keep, images).argmax(-1)
    # all kept images are called their class, unless too few of the 20 x 6 candidates passed
    assert bool((called == 1).all()) or accepted < 6 / (MAX_FILTER_CANDIDATES * 6)
    unfiltered, rate = generate_images(generator, 1, 6, 0, 0.7)
    assert rate == 1.0 and torch.equal(unfiltered, generate(generator.network, 6, 0, 1, truncation=0.7))
    with pytest.raises(ValueError, match="default_arm must be a synthetic arm"):
        run_utility_study(train, test, generator, tmp_path / "e2", arms=arms, default_arm="real")


def _filter(cache: Path, train) -> torch.nn.Module:
    """The cached filter classifier of the study above."""
    path = next(cache.glob(f"real_oversampled_seed{FILTER_CLASSIFIER_SEED}_*.pt"))
    net = build_classifier(len(train.class_names), TINY_CLASSIFIER)
    net.load_state_dict(torch.load(path, weights_only=True))
    return net.eval()


def test_study_refuses_leaked_or_mismatched_test_data(tmp_path: Path):
    train = training_data(DataSpec(num_phantoms=12, phantom_class_ratio=0.25, seed=0), 16)
    generator = load_generator(save_generator(tmp_path / "models", train))
    leaked = training_data(DataSpec(num_phantoms=4, seed=0), 16)  # phantoms 0-3 of the generator's training seed
    with pytest.raises(DataLeakageError, match=r"4 held-out test image\(s\).*phantom 0 \(seed 0\)"):
        run_utility_study(train, leaked, generator, tmp_path / "eval", classifier=TINY_CLASSIFIER)
    other_train = training_data(DataSpec(num_phantoms=12, seed=5), 16)
    overlapping_test = training_data(DataSpec(num_phantoms=4, seed=5), 16)
    with pytest.raises(DataLeakageError, match="also in the classifier's train split"):
        run_utility_study(other_train, overlapping_test, generator, tmp_path / "eval", classifier=TINY_CLASSIFIER)
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("ratio, counts", [(0.0, "{'normal': 8, 'lung_opacity': 0}"), (0.1, "'lung_opacity': 1}")])
def test_study_refuses_a_test_split_missing_a_class_before_training(tmp_path: Path, ratio: float, counts: str):
    """A one-class test split (AUROC and macro F1 undefined) or a class of one image: refused, nothing trained."""
    train = training_data(DataSpec(num_phantoms=12, phantom_class_ratio=0.25, seed=0), 16)
    generator = load_generator(save_generator(tmp_path / "models", train))
    test = training_data(DataSpec(num_phantoms=8, phantom_class_ratio=ratio, seed=1000), 16)
    with pytest.raises(ValueError, match=rf"(?s)test split \(phantoms\) has .*{re.escape(counts)}.*before training"):
        run_utility_study(train, test, generator, tmp_path / "eval", classifier=TINY_CLASSIFIER)
    assert not (tmp_path / "eval").exists()


def test_undefined_precision_is_reported_as_none_not_a_number():
    """A classifier that never predicts class 1: its precision of class 1 is 0 / 0, reported as None."""
    labels = torch.tensor([0, 0, 1, 1])
    never_one = torch.tensor([[[0.9, 0.1]] * 4])  # (S=1, n=4, K=2)
    scores = score_resamples(never_one, labels, stratified_resamples(labels, 5, 0))
    summary = summarize(scores, metric_names(["a", "b"]))
    assert summary["precision/b"]["mean"] is None and summary["precision/b"]["per_seed"] == [None]
    assert summary["precision/b"]["ci95"] == [None, None] and summary["precision/a"]["mean"] == 0.5
    assert summary["recall/b"]["mean"] == 0.0 and summary["auroc"]["mean"] == 0.5
    with pytest.raises(ValueError, match=r"classes \[1\] have no test image"):
        score_resamples(never_one[:, :2], labels[:2], stratified_resamples(labels[:2], 5, 0))


@pytest.mark.slow
def test_bundle_utility_workflow(tmp_path: Path):
    """train (tiny, imbalanced phantoms) -> ``run utility`` with inference.json + utility.json -> eval/utility.json;
    the same command with test phantoms of the training seed is refused."""
    bundle = copy_bundle(tmp_path / "bundle")
    data = {"num_phantoms": "24", "phantom_class_ratio": "0.25"}
    train_bundle(bundle, {**TINY_TRAIN, **data, "max_epochs": "1"})
    record = json.loads((bundle / "models" / "model.json").read_text())["generator_record"]
    assert record["network"]["resolution"] == 32 and record["class_names"] == ["normal", "lung_opacity"]
    assert record["training_data"]["num_images"] == 24
    configs = f"['{bundle / 'configs' / 'inference.json'}','{bundle / 'configs' / 'utility.json'}']"
    study = overrides({"num_test_phantoms": "8", "classifier_seeds": "[0,1,2]", "num_resamples": "20"})
    study += ["--classifier#num_steps", "2", "--classifier#batch_size", "8"]
    run_bundle("run", bundle, "utility", "--config_file", configs, "--bundle_root", str(bundle), *study)
    report = json.loads((bundle / "eval" / "utility.json").read_text())
    assert list(report["arms"]) == list(ARMS) and report["settings"]["test_data"]["seed"] == 1000
    assert report["test_counts"] == {"normal": 4, "lung_opacity": 4}
    proc = run_bundle(
        "run",
        bundle,
        "utility",
        "--config_file",
        configs,
        "--bundle_root",
        str(bundle),
        *study,
        "--test_seed",
        "0",
        check=False,
    )
    assert proc.returncode != 0 and "DataLeakageError" in proc.stderr + proc.stdout
    assert BUNDLE_DIR.is_dir()


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_utility", REPO_ROOT / "bench" / "utility.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_figure1_split_keeps_patients_apart(figure1_dir: Path, tmp_path: Path):
    train_csv, test_csv = load_bench().figure1_split(figure1_dir, tmp_path, 0.4)

    def patients(path: Path) -> dict[str, list[str]]:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(re.sub(r"[a-z]+$", "", Path(r["path"]).stem), []).append(r["class"])
        return out

    train, test = patients(train_csv), patients(test_csv)
    assert not set(train) & set(test), "a patient is in both splits"
    assert {c for v in train.values() for c in v} == {c for v in test.values() for c in v} == {"COVID-19", "other"}
    assert len((train | test)["COVID-00039"]) == 3  # COVID-00039a, b and c: one patient, one split


@pytest.mark.slow
def test_bench_quick_prints_one_table(tmp_path: Path, capsys):
    results = load_bench().main(["--out", str(tmp_path), "--quick"])
    assert set(results) == {"phantoms 10:1"} and set(results["phantoms 10:1"]) == {"MSG-SAGAN", "MSG-GAN"}
    out = capsys.readouterr().out
    assert out.count("| phantoms 10:1 | MSG-SAGAN |") == len(ARMS) + 2 and "## Why" in out  # arms + 2 classes
    assert (tmp_path / "utility_benchmark.md").read_text().startswith("## Utility on real held-out images")
