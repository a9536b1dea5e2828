"""Ground truth: simnet's compressors in real `torch.distributed` runs.

    hooks     the compressors as DDP communication hooks (same encoders, same bytes)
    measure   `simnet measure`: the scenario as real DDP training with gloo
    netns     the emulated cluster: one network namespace per rank, tbf-shaped star
    calibrate `simnet calibrate`: alpha, bandwidth factor, per-collective overheads
    validate  `simnet validate`: predicted vs measured, per compressor and collective
Importing this package is light; torch loads with the submodules that need it.
"""
