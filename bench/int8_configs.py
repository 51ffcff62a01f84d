"""Which ops to quantise: int8 agreement with fp32 for Conv/Gemm/MatMul only against every op ONNX Runtime quantises.

Both quantise the same fp32 export of a run, with the same calibration sample (the run's train split, seed 0), QDQ,
per-channel int8 weights and MinMax ranges; they differ only in ``op_types_to_quantize``. Each is evaluated on the
run's test split: top-1, the share of answers identical to the fp32 model's, and the mean absolute logit difference.

    .venv/bin/python bench/int8_configs.py runs/proxy-fashion-mnist/runs/ema/seed0 --json results/int8_configs.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run folder")
    parser.add_argument("--calibration-images", type=int, default=256)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fgvc_ref.data.sources import load_test
    from fgvc_ref.deploy import OnnxClassifier, calibration_pixels, eval_pixels, export_onnx

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(args.run, Path(tmp) / "model.onnx")[0]
        meta = OnnxClassifier(fp32).meta
        size = meta["input"]["shape"][1]
        test = load_test(meta["data"], verify_sources=False)
        pixels, labels = eval_pixels(test.test_images, size), test.test_labels.numpy()
        reference = OnnxClassifier(fp32)(pixels)
        calibration = calibration_pixels(meta["data"], size, "nhwc", args.calibration_images, 0)
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.batches = iter([calibration[i : i + 16] for i in range(0, len(calibration), 16)])

            def get_next(self):
                batch = next(self.batches, None)
                return None if batch is None else {"pixels": batch}

        for name, ops in (("Conv, Gemm, MatMul only", ["Conv", "Gemm", "MatMul"]), ("every op ONNX Runtime quantises (default)", None)):
            out = Path(tmp) / "int8.onnx"
            quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=ops,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
            logits = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"pixels": pixels})[0]
            rows.append({"ops": name, "top1": 100.0 * float((logits.argmax(1) == labels).mean()),
                         "identical_to_fp32": 100.0 * float((logits.argmax(1) == reference.argmax(1)).mean()),
                         "mean_abs_logit_diff": float(np.abs(logits - reference).mean())})
            print(rows[-1], flush=True)
    result = {"command": " ".join(["bench/int8_configs.py", *sys.argv[1:]]), "run": args.run, "data": meta["data"],
              "fp32_top1": 100.0 * float((reference.argmax(1) == labels).mean()), "onnxruntime": onnxruntime.__version__,
              "date": time.strftime("%Y-%m-%d"), "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
