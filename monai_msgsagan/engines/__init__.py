"""monai_msgsagan.engines"""
