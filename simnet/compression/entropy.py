"""placeholder"""
def encode(q, grid, d, max_bytes=None): raise ValueError("entropy: not implemented yet")
def supports(grid): return False
def check_supported(grid, name): pass
def decode(payload, numel, d, grid): raise ValueError("entropy: not implemented yet")
