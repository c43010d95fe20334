"""Open Long-Tailed Recognition (OLTR, Liu et al., CVPR 2019) as tested nbdev notebooks."""
__version__ = "0.1.0"
