"""Export a trained enhancer for other tools: ONNX models (`dpe_hf.export.onnx`) and 3D LUTs
in the .cube format (`dpe_hf.export.lut`).

The submodules are not imported here: the ONNX one needs the `[export]` extra (onnx,
onnxruntime), the LUT one only numpy.
"""
