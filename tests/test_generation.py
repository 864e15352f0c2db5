"""The generator artifact (weights + record, or TorchScript with the record inside) and the one generate()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from bundle_utils import TINY_GENERATOR, save_generator_artifact, tiny_generator

from monai_msgsagan.artifact import GeneratorRecord, ModelError, load_generator, record_path
from monai_msgsagan.generation import GenerationError, generate, generate_per_class, image_latents, image_seed
from monai_msgsagan.networks import InferenceGenerator, MultiScaleGenerator

ARGS = TINY_GENERATOR
CLASSES = ["normal", "lung_opacity"]


def tiny_multiscale(num_classes: int = 2) -> MultiScaleGenerator:
    return tiny_generator({**ARGS, "num_classes": num_classes}, multiscale=True)


def test_one_seeding_policy_whatever_the_batch_or_the_request():
    """Image i of class c for seed s is the same in any request: batch size, count and start do not matter."""
    net = tiny_multiscale()
    images = generate(net, 5, seed=7, class_index=1, batch_size=2)
    torch.testing.assert_close(generate(net, 3, 7, 1, start=2, batch_size=3), images[2:], atol=1e-5, rtol=0)
    assert not torch.allclose(generate(net, 1, 7, 0), images[:1])  # another class: other latents
    assert not torch.allclose(generate(net, 1, 8, 1), images[:1])  # another seed
    z = image_latents(128, 7, 1, range(5))
    assert torch.equal(z[3], torch.randn(1, 128, generator=torch.Generator().manual_seed(image_seed(7, 1, 3)))[0])
    assert image_seed(7, 1, 3) != image_seed(8, 1, 2)  # neighbouring seeds share no images
    with torch.no_grad():
        reference = net(z, torch.ones(5, dtype=torch.long))[-1]
    torch.testing.assert_close(images, reference, atol=1e-5, rtol=0)
    assert net.training  # mode restored


def test_generate_per_class_blocks_and_the_inference_network():
    net = tiny_multiscale()
    images, labels = generate_per_class(net, 3, seed=5, batch_size=4)
    assert images.shape == (6, 1, 32, 32) and images.dtype == torch.float32
    assert labels.tolist() == [0, 0, 0, 1, 1, 1] and images.min() >= -1 and images.max() <= 1
    infer = InferenceGenerator(**ARGS).eval()
    infer.load_state_dict(net.state_dict())
    torch.testing.assert_close(generate_per_class(infer, 3, seed=5)[0], images, atol=1e-5, rtol=0)
    unconditional, none = generate_per_class(tiny_multiscale(num_classes=0), 4)
    assert unconditional.shape == (4, 1, 32, 32) and none is None


def test_generate_refuses_bad_requests_and_bad_output():
    net = tiny_multiscale()
    with pytest.raises(ValueError, match="num_images"):
        generate(net, 0)
    with pytest.raises(ValueError, match=r"class index 2 is outside \[0, 2\)"):
        generate(net, 1, class_index=2)
    with pytest.raises(ValueError, match="unconditional"):
        generate(tiny_multiscale(num_classes=0), 1, class_index=1)
    torch.nn.init.constant_(net.blocks[-1].image_head.weight, float("nan"))
    with pytest.raises(GenerationError, match="NaN or infinite"):
        generate(net, 2)


def test_state_dict_artifact_round_trip_and_refusals(tmp_path: Path):
    model = save_generator_artifact(InferenceGenerator(**ARGS), ARGS, CLASSES, tmp_path / "models" / "model.pt")
    artifact = load_generator(model)
    assert artifact.record.network == ARGS and artifact.class_names == CLASSES
    assert (artifact.latent_dim, artifact.num_classes, artifact.resolution) == (128, 2, 32)
    assert artifact.class_index("lung_opacity") == 1 and artifact.class_index(None) is None
    assert artifact.class_name(None) == "normal" and artifact.identity()["sha256"] == artifact.sha256
    with pytest.raises(ModelError, match=r"model\.pt: class 'pneumothorax' is not one of"):
        artifact.class_index("pneumothorax")
    # weights that do not fit the record
    torch.save(InferenceGenerator(**{**ARGS, "channels": [8, 8, 8, 8]}).state_dict(), model)
    with pytest.raises(ModelError, match=r"model\.pt: the weights do not fit the network of .*model\.json"):
        load_generator(model)
    # a file weights_only refuses: named, without PyTorch's advice to load it unsafely
    torch.save({"weight": torch.zeros(1), "made_in": Path("/somewhere")}, model)
    with pytest.raises(ModelError, match=r"model\.pt.*weights-only") as err:
        load_generator(model)
    shown = str(err.value) + str(err.value.__cause__) + str(err.value.__context__)
    assert "weights_only=False" not in shown
    model.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="neither a TorchScript export nor a PyTorch state dict"):
        load_generator(model)
    # the record: missing, unreadable, of another format
    torch.save(InferenceGenerator(**ARGS).state_dict(), model)
    record_path(model).write_text("{not json")
    with pytest.raises(ModelError, match="unreadable generator record"):
        load_generator(model)
    record_path(model).write_text(json.dumps({"generator_record": {"format": 99}}))
    with pytest.raises(ModelError, match="record format 99"):
        load_generator(model)
    record_path(model).unlink()
    with pytest.raises(ModelError, match=r"model\.json: generator record not found"):
        load_generator(model)
    with pytest.raises(ModelError, match="not found"):
        load_generator(tmp_path / "missing.pt")


def test_record_format_1_reads_with_data_settings_defaults(tmp_path: Path):
    """0.3.0 wrote the record's fields at the top level of model.json, without data settings."""
    data = {"source": "/data/cxr.csv", "num_images": 0, "item_ids": [], "item_names": []}
    flat = {"network": ARGS, "class_names": CLASSES, "version": "0.3.0", "format": 1, "training_data": data}
    (tmp_path / "model.json").write_text(json.dumps(flat))
    record = GeneratorRecord.load(tmp_path / "model.json")
    assert record.data_settings["dataset_dir"] == "/data/cxr.csv" and record.data_settings["num_phantoms"] == 512
    assert record.class_index(None) == 0 and record.class_index("lung_opacity") == 1
