"""monai_msgsagan.label"""
