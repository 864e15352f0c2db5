"""monai-msgsagan: MSG-SAGAN (self-attention guided multi-scale gradient GAN) for diverse synthetic X-rays."""

__version__ = "0.1.0"
