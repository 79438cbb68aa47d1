"""Intel feeds (NVD, OSV, CISA KEV, EPSS, endoflife.date): loading and indexing.

Owns intel only and knows nothing of estates or findings. The loaders arrive with the
patches/unsupported work; the configuration checks need no intel.
"""
