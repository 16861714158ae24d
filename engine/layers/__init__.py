"""Network layers shared by several models (partial convolution, ...)."""
