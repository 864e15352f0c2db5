"""monai_msgsagan.transforms"""
