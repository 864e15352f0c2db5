"""monai-msgsagan: MSG-SAGAN (self-attention guided multi-scale gradient GAN) for diverse synthetic X-rays.

The public API is small: the networks, the losses, the X-ray transforms and datalists, the trainer, the
diversity/fidelity metrics, and the generator artifact with the one way to generate images
(:func:`load_generator`, :func:`generate`). Subpackages (``data``, ``engines``, ``handlers``, ``metrics``, ``networks``,
``transforms``) hold the rest and are imported here so that bundle configs can reach them as
``monai_msgsagan.<subpackage>.<name>``.
"""

from monai_msgsagan import (
    artifact,
    data,
    engines,
    generation,
    handlers,
    label,
    losses,
    metrics,
    networks,
    transforms,
    utility,
)
from monai_msgsagan._version import __version__
from monai_msgsagan.artifact import GeneratorArtifact, GeneratorRecord, ModelError, load_generator
from monai_msgsagan.data import DataSpec, PhantomDataset, build_datalist, training_data
from monai_msgsagan.engines import MultiScaleGanTrainer, PyramidDiffAugment
from monai_msgsagan.generation import generate, sample_latent
from monai_msgsagan.losses import (
    GradientPenalty,
    HingeLoss,
    NonSaturatingLogisticLoss,
    R1Penalty,
    RelativisticAverageHingeLoss,
    WassersteinLoss,
    get_adversarial_loss,
)
from monai_msgsagan.metrics import collapse_score, pairwise_ms_ssim
from monai_msgsagan.networks import (
    InferenceGenerator,
    MultiScaleDiscriminator,
    MultiScaleGenerator,
    SelfAttention2d,
)
from monai_msgsagan.transforms import LoadXray, LoadXrayd, MultiScalePyramid, MultiScalePyramidd

__all__ = [
    "DataSpec",
    "GeneratorArtifact",
    "GeneratorRecord",
    "GradientPenalty",
    "HingeLoss",
    "InferenceGenerator",
    "LoadXray",
    "LoadXrayd",
    "MultiScaleDiscriminator",
    "MultiScaleGanTrainer",
    "MultiScaleGenerator",
    "MultiScalePyramid",
    "ModelError",
    "MultiScalePyramidd",
    "NonSaturatingLogisticLoss",
    "PhantomDataset",
    "PyramidDiffAugment",
    "R1Penalty",
    "RelativisticAverageHingeLoss",
    "SelfAttention2d",
    "WassersteinLoss",
    "__version__",
    "artifact",
    "build_datalist",
    "collapse_score",
    "data",
    "engines",
    "generate",
    "generation",
    "get_adversarial_loss",
    "handlers",
    "label",
    "load_generator",
    "losses",
    "metrics",
    "networks",
    "pairwise_ms_ssim",
    "sample_latent",
    "training_data",
    "transforms",
    "utility",
]
