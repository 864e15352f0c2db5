"""monai_msgsagan.handlers"""
