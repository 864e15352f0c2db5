"""monai_msgsagan.data"""
