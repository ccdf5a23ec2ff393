"""Stand-in for scikit-image (``skimage``)."""
