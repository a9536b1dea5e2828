"""simnet: predict throughput and time-to-accuracy of compressed data-parallel SGD.

Real gradients, real encoders, and a SimPy discrete-event model of the cluster.
"""

__version__ = "0.7.0"
