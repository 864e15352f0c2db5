from lib.trainers.classification import XrayClassificationTrain

__all__ = ["XrayClassificationTrain"]
