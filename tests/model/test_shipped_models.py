"""Every model shipped in models/ must be what its metadata says: the daemon trusts NAME.json."""
import glob
import json
import os
import re
import unittest

import cv2
import numpy as np

from . import REPO
from emotion_train import LABELS
from emotion_train.data import file_sha256
from emotion_train.evaluate import class_weights, dnn_predict

# EMO_MODELS_DIR checks an export before it is copied into models/.
MODELS_DIR = os.environ.get("EMO_MODELS_DIR") or os.path.join(REPO, "models")
SHIPPED = sorted(glob.glob(os.path.join(MODELS_DIR, "*.json")))


def installed_models():
    """The model names models/CMakeLists.txt installs (EMO_MODELS)."""
    with open(os.path.join(REPO, "models", "CMakeLists.txt")) as f:
        m = re.search(r"^set\(EMO_MODELS ([^)]*)\)", f.read(), re.M)
    return m.group(1).split() if m else []


@unittest.skipUnless(SHIPPED, f"no model in {MODELS_DIR} (*.json); export one with emotion-model export")
class ShippedModelTest(unittest.TestCase):
    @unittest.skipIf(os.environ.get("EMO_MODELS_DIR"), "EMO_MODELS_DIR checks another folder")
    def test_every_installed_model_is_here_and_checked(self):
        installed = installed_models()
        self.assertTrue(installed, "no set(EMO_MODELS ...) in models/CMakeLists.txt")
        for name in installed:
            self.assertIn(os.path.join(MODELS_DIR, name + ".json"), SHIPPED)

    def test_metadata_matches_the_onnx_file(self):
        rng = np.random.default_rng(0)
        faces = rng.integers(0, 256, (5, 48, 48)).astype(np.uint8)
        for path in SHIPPED:
            with self.subTest(model=os.path.basename(path)):
                try:
                    with open(path) as f:
                        meta = json.load(f)
                except ValueError as e:
                    self.fail(f"{path} is not JSON ({e}); a placeholder instead of an export?")
                self.assertEqual(meta["format"], "emotiond-model/1")
                self.assertEqual(meta["name"] + ".json", os.path.basename(path))
                self.assertEqual(os.path.basename(meta["onnx"]), meta["onnx"], "onnx must be a plain file name")
                onnx_path = os.path.join(os.path.dirname(path), meta["onnx"])
                self.assertEqual(file_sha256(onnx_path), meta["sha256"])
                self.assertEqual(meta["labels"], list(LABELS))
                self.assertEqual((meta["input"]["width"], meta["input"]["height"], meta["input"]["channels"]),
                                 (48, 48, 1))
                self.assertIn(meta["tta"], ("none", "hflip"))
                self.assertTrue(0.2 < meta["framing"]["scale"] < 5)
                self.assertGreater(meta["normalization"]["std"], 0)
                # A prior correction the daemon would refuse is refused here too (ModelError).
                weights = class_weights(meta)
                if "prior_correction" in meta:
                    pc = meta["prior_correction"]
                    self.assertEqual(pc["training_rows"], meta["training"]["rows"],
                                     "the class shares are not those of the training rows")
                net = cv2.dnn.readNetFromONNX(onnx_path)
                prob = dnn_predict(net, faces, meta["normalization"], meta["tta"], batch=5, weights=weights)
                self.assertEqual(prob.shape, (5, 7))
                np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-5)
                self.assertTrue((prob >= 0).all())
                # Batch 1, as the daemon runs it, gives the same rows as the batch.
                np.testing.assert_allclose(dnn_predict(net, faces, meta["normalization"], meta["tta"], batch=1,
                                                       weights=weights), prob, atol=1e-5)


if __name__ == "__main__":
    unittest.main()
