"""The generator artifact (weights + record, or TorchScript with the record inside) and the one generate()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from bundle_utils import TINY_GENERATOR, save_generator_artifact, tiny_generator
from monai.data import save_net_with_metadata

from monai_msgsagan.artifact import (
    MAX_RECORD_BYTES,
    RECORD_NAME,
    GeneratorRecord,
    ModelError,
    UnknownClassError,
    load_generator,
    record_path,
    resolve_class,
    save_record,
)
from monai_msgsagan.data import DataSpec
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generate_on_another_device_leaves_the_network_where_it_was():
    net = tiny_multiscale()
    images = generate(net, 2, device="cuda", half_precision=True)
    assert images.device.type == "cpu" and images.dtype == torch.float32
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in net.parameters())


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


def test_one_class_resolution():
    """A name, an index or None (the first class) -> (index, name); anything else names the classes."""
    assert resolve_class("lung_opacity", CLASSES) == (1, "lung_opacity") == resolve_class(1, CLASSES)
    assert resolve_class(None, CLASSES) == (0, "normal") and resolve_class(None, []) == (0, None)
    assert resolve_class(None, CLASSES, default=1) == (1, "lung_opacity") == resolve_class(1, CLASSES, default=0)
    for bad in ("pneumothorax", 2, -1, True, ""):
        with pytest.raises(UnknownClassError, match=r"is not one of the classes \['normal', 'lung_opacity'\]"):
            resolve_class(bad, CLASSES)
    with pytest.raises(UnknownClassError, match="request class 0 asked of an unconditional generator"):
        resolve_class(0, [], "request class")


def test_state_dict_artifact_round_trip_and_refusals(tmp_path: Path):
    model = save_generator_artifact(InferenceGenerator(**ARGS), ARGS, CLASSES, tmp_path / "models" / "model.pt")
    artifact = load_generator(model)
    assert artifact.record.network == ARGS and artifact.class_names == CLASSES
    assert (artifact.latent_dim, artifact.num_classes, artifact.resolution) == (128, 2, 32)
    assert artifact.identity()["sha256"] == artifact.sha256
    record = artifact.record
    # weights that do not fit the record (bound to it, as a careless export would)
    torch.save(InferenceGenerator(**{**ARGS, "channels": [8, 8, 8, 8]}).state_dict(), model)
    save_record(record, model)
    with pytest.raises(ModelError, match=r"model\.pt: the weights do not fit the network of .*model\.json"):
        load_generator(model)
    # a file weights_only refuses: named, without PyTorch's advice to load it unsafely
    torch.save({"weight": torch.zeros(1), "made_in": Path("/somewhere")}, model)
    save_record(record, model)
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


def test_record_format_1_reads_with_data_spec_defaults(tmp_path: Path):
    """0.3.0 wrote the record's fields at the top level of model.json, without data settings."""
    data = {"source": "/data/cxr.csv", "num_images": 0, "item_ids": [], "item_names": []}
    flat = {"network": ARGS, "class_names": CLASSES, "version": "0.3.0", "format": 1, "training_data": data}
    (tmp_path / "model.json").write_text(json.dumps(flat))
    record = GeneratorRecord.load(tmp_path / "model.json")
    assert record.data_spec == DataSpec(dataset_dir="/data/cxr.csv")
    assert record.class_names == CLASSES
    for settings, reason in (({"shards": 4}, "unexpected keyword argument 'shards'"), ({"seed": "0"}, "DataSpec.seed")):
        flat["training_data"]["settings"] = settings
        (tmp_path / "model.json").write_text(json.dumps(flat))
        with pytest.raises(ModelError, match=rf"model\.json: .*training_data\.settings: not a data spec.*{reason}"):
            GeneratorRecord.load(tmp_path / "model.json")


def test_weights_and_record_of_different_runs_are_refused_naming_both(tmp_path: Path):
    """The record names its weights' SHA-256: weights replaced (or a record of another run) are refused."""
    model = save_generator_artifact(tiny_generator(seed=0), ARGS, CLASSES, tmp_path / "models" / "model.pt")
    record = json.loads(record_path(model).read_text())["generator_record"]
    assert record["format"] == 3 and record["weights_sha256"] == load_generator(model).sha256
    torch.save(tiny_generator(seed=1).state_dict(), model)  # other weights, same network: loadable, but not these
    with pytest.raises(ModelError, match=r"model\.pt \(SHA-256 .*\) is not the model its record .*model\.json"):
        load_generator(model)
    # a record of the 0.4.0 format (no weights SHA-256) cannot vouch for the weights beside it
    del record["weights_sha256"]
    record["format"] = 2
    record_path(model).write_text(json.dumps({"generator_record": record}))
    with pytest.raises(ModelError, match=r"model\.json does not name the SHA-256 .*save_record"):
        load_generator(model)
    save_record(GeneratorRecord.load(record_path(model)), model)  # the way out the message gives
    assert (
        load_generator(model).sha256 == json.loads(record_path(model).read_text())["generator_record"]["weights_sha256"]
    )


def _record_with(tmp_path: Path, edit) -> Path:
    model = save_generator_artifact(
        tiny_generator(), ARGS, CLASSES, tmp_path / "model.pt", training_ids=["phantom:0:0", "phantom:0:1"]
    )
    raw = json.loads(record_path(model).read_text())
    edit(raw["generator_record"])
    record_path(model).write_text(json.dumps(raw))
    return model


@pytest.mark.parametrize(
    "edit, field, reason",
    [
        (lambda r: r.update(class_names=["covid", "covid"]), "class_names", "named more than once"),
        (lambda r: r.update(class_names=["", None]), "class_names", "non-empty strings"),
        (lambda r: r.update(class_names=["normal"]), "class_names", "2 classes in the network"),
        (lambda r: r["training_data"].update(item_ids=[], item_names=[]), "training_data.num_images", "says 2"),
        (lambda r: r["training_data"].update(item_names=["a"]), "training_data.item_names", "1 names for 2"),
        (lambda r: r["training_data"].update(item_ids=[1, 2]), "training_data.item_ids", "list of strings"),
        (lambda r: r["network"].update(latent_dim="128"), "network.latent_dim", "non-negative integer"),
        (lambda r: r.update(weights_sha256="beef"), "weights_sha256", "64 lower-case hex"),
    ],
)
def test_a_record_that_cannot_be_right_is_refused_naming_the_field(tmp_path: Path, edit, field, reason):
    model = _record_with(tmp_path, edit)
    with pytest.raises(ModelError, match=rf"model\.json: generator record: field {field}: .*{reason}"):
        load_generator(model)


def test_a_record_too_deep_or_too_large_is_refused_naming_the_file(tmp_path: Path):
    model = save_generator_artifact(tiny_generator(), ARGS, CLASSES, tmp_path / "model.pt")
    record_path(model).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelError, match=r"model\.json: nested deeper than 32 levels"):
        load_generator(model)
    nested: object = 1
    for _ in range(40):  # within json's recursion limit, beyond a record's nesting
        nested = [nested]
    record_path(model).write_text(json.dumps({"generator_record": {"recipe": {"a": nested}}}))
    with pytest.raises(ModelError, match=r"model\.json: field generator_record\.recipe\.a\.0.*: nested deeper"):
        load_generator(model)
    with record_path(model).open("wb") as f:
        f.truncate(MAX_RECORD_BYTES + 1)  # sparse: no 64 MiB written
    with pytest.raises(ModelError, match=r"model\.json: 64\.0 MiB, more than a generator record's limit"):
        load_generator(model)


@pytest.mark.parametrize("edit", ["emptied", "deep"])
def test_a_torchscript_export_carrying_a_bad_record_is_refused(tmp_path: Path, edit: str):
    """The record inside an export is checked as the one beside model.pt: an emptied image list, deep nesting."""
    ids = ["phantom:0:0", "phantom:0:1"]
    pt = save_generator_artifact(tiny_generator(), ARGS, CLASSES, tmp_path / "model.pt", training_ids=ids)
    raw = json.loads(record_path(pt).read_text())
    ts = tmp_path / "model.ts"
    raw["generator_record"]["training_data"].update(item_ids=[], item_names=[])  # still says 2 images
    text = json.dumps(raw) if edit == "emptied" else "[" * 100_000 + "]" * 100_000
    save_net_with_metadata(
        torch.jit.script(tiny_generator()), str(ts.with_suffix("")), more_extra_files={RECORD_NAME: text.encode()}
    )
    reason = "generator record: field training_data.num_images: says 2" if edit == "emptied" else "nested deeper"
    with pytest.raises(ModelError, match=rf"model\.ts( \(model\.json\))?: {reason}"):
        load_generator(ts)


def test_a_torchscript_export_for_a_class_makes_it_the_default_class(tmp_path: Path):
    """A request without a class gets the class the model was exported for (``--class`` at export)."""
    pt = save_generator_artifact(tiny_generator(), ARGS, CLASSES, tmp_path / "model.pt", training_ids=["phantom:0:0"])
    net = tiny_generator()
    net.default_class = 1
    save_net_with_metadata(
        torch.jit.script(net), str(tmp_path / "model"), more_extra_files={RECORD_NAME: record_path(pt).read_bytes()}
    )
    artifact = load_generator(tmp_path / "model.ts")
    assert artifact.default_class == 1 and load_generator(pt).default_class == 0
    assert artifact.resolve_class(None) == (1, "lung_opacity")
    assert load_generator(pt).resolve_class(None) == (0, "normal")


def test_truncation_is_part_of_the_one_seeding_policy():
    net = tiny_multiscale()
    full = generate(net, 4, seed=3, class_index=1)
    torch.testing.assert_close(generate(net, 4, seed=3, class_index=1, truncation=1.0), full, rtol=0, atol=0)
    truncated = generate(net, 4, seed=3, class_index=1, truncation=0.5)
    assert not torch.allclose(truncated, full)
    # the same latents, whatever the batch: image i with psi is the i-th image of the request
    torch.testing.assert_close(generate(net, 2, seed=3, class_index=1, start=2, truncation=0.5), truncated[2:])
    with pytest.raises(ValueError, match="truncation must lie in"):
        generate(net, 1, truncation=0.0)
