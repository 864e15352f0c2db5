"""monai_msgsagan.networks"""
