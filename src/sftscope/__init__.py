"""sftscope: when does reasoning SFT generalize, and at what cost?

Pipeline stages, one folder each, talking through files on disk:
data -> train -> evaluate -> analyze -> report, orchestrated by study.
"""

__version__ = "0.1.0"
