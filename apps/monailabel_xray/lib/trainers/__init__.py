from lib.trainers.classification import XrayClassificationTrain
from lib.trainers.synthetic import SyntheticBundleTrainMixin, SyntheticTrainMixin

__all__ = ["SyntheticBundleTrainMixin", "SyntheticTrainMixin", "XrayClassificationTrain"]
