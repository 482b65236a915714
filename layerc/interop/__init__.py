"""Models in and out of layerc: ONNX and Keras files.

Each format is one module; its library (onnx, h5py) is imported inside the functions that
need it, so the core never pays for it.
"""
