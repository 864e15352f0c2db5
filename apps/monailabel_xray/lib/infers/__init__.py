from lib.infers.synthesis import XraySynthesisInfer

__all__ = ["XraySynthesisInfer"]
