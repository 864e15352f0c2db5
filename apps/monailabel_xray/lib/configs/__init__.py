from lib.configs.classification_xray import ClassificationXray

__all__ = ["ClassificationXray"]
