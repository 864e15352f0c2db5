"""monai_msgsagan.metrics"""
