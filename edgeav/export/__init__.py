"""Export: per-encoder ONNX (+ sidecar JSON, parity check), INT8 Q/DQ in TensorRT's form, FP16, and its lint.
Heavy dependencies (onnx, onnxruntime, tensorrt) are imported inside the functions that need them."""
