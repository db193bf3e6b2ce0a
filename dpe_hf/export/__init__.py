"""Export a trained enhancer for other tools: ONNX models (`dpe_hf.export.onnx`) and 3D LUTs
in the .cube format (`dpe_hf.export.lut`).

The submodules are not imported here: exporting to ONNX needs the `[export]` extra (onnx),
running an ONNX model onnxruntime, the LUT module only numpy.
"""
