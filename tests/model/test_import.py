"""train --init with an exported model (metadata .json + ONNX): the shipped default rebuilt as a
PyTorch network from its ONNX file, where every BatchNorm was folded into its convolution."""
import json
import os
import shutil
import tempfile
import unittest

import numpy as np

from . import REPO, fer2013_path, run_cli as run, write_subset

DEFAULT = os.path.join(REPO, "models", "emonet-xs.json")


@unittest.skipUnless(fer2013_path(), "needs fer2013.csv.gz: set EMO_FER2013 or put it in "
                                     "../shared/data/fer2013/ next to the checkout")
class ImportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from emotion_train.data import load_dataset
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = os.path.join(cls.tmp.name, "subset.csv.gz")
        write_subset(fer2013_path(), cls.data, n_train=300, n_test=250)
        x, y, usage = load_dataset(cls.data)
        usage = np.asarray(usage)
        cls.xtr, cls.xte = x[usage == "Training"], x[usage == "PublicTest"]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def imported(self, arch="emonet-xs", path=DEFAULT):
        from emotion_train.imported import from_exported
        return from_exported(path, arch, self.xtr)

    def network(self, ck):
        from emotion_train.arch import build
        model = build(ck["arch"])
        model.load_state_dict(ck["model"])
        return model.eval()

    def test_the_default_rebuilt_computes_what_opencv_computes_on_other_faces(self):
        from emotion_train.evaluate import dnn_predict, load_model
        from emotion_train.train import predict
        ck = self.imported()
        net, meta = load_model(DEFAULT)
        self.assertLessEqual(ck["imported"]["parity"], 1e-4)
        self.assertEqual(ck["imported"]["sha256"], meta["sha256"])
        self.assertEqual((ck["mean"], ck["std"]), (meta["normalization"]["mean"], meta["normalization"]["std"]))
        self.assertEqual(ck["public_test_acc"], meta["evaluation"]["accuracy"])
        # PublicTest faces, which the import never saw.
        got = predict(self.network(ck), self.xte, ck["mean"], ck["std"])
        want = dnn_predict(net, self.xte, meta["normalization"], "none", batch=len(self.xte))
        self.assertLess(float(np.abs(got - want).max()), 1e-4)
        self.assertTrue((got.argmax(1) == want.argmax(1)).all())

    def test_batchnorm_holds_the_statistics_of_what_it_normalises(self):
        # In training mode BatchNorm normalises by the batch: on the faces the statistics came from,
        # the first layer must give what it gives in evaluation, or the fine-tune would start elsewhere.
        import torch
        ck = self.imported()
        model = self.network(ck)
        conv, bn = model.features[0], model.features[1]
        t = (torch.from_numpy(self.xtr).float().unsqueeze(1) / 255.0 - ck["mean"]) / ck["std"]
        with torch.no_grad():
            y = conv(t)
            evaluated = bn.eval()(y)
            batch = bn.train()(y)
        self.assertGreater(float(bn.running_var.min()), 0)
        self.assertFalse(torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean)))
        self.assertLess(float((batch - evaluated).abs().max()), 1e-3 * float(evaluated.abs().max()))

    def test_another_architecture_or_a_foreign_graph_is_refused(self):
        from emotion_train.arch import build
        from emotion_train.data import file_sha256
        from emotion_train.evaluate import ModelError
        from emotion_train.export import to_onnx
        with self.assertRaisesRegex(ModelError, "holds emonet-xs, not emonet-s"):
            self.imported("emonet-s")
        # The original design's graph under emonet-xs metadata: ELU and the rest are not an emonet.
        d = os.path.join(self.tmp.name, "foreign")
        os.makedirs(d, exist_ok=True)
        onnx_path = os.path.join(d, "foreign.onnx")
        with open(onnx_path, "wb") as f:
            f.write(to_onnx(build("original").eval()))
        with open(DEFAULT) as f:
            meta = json.load(f)
        meta.update(name="foreign", onnx="foreign.onnx", sha256=file_sha256(onnx_path))
        with open(os.path.join(d, "foreign.json"), "w") as f:
            json.dump(meta, f)
        with self.assertRaisesRegex(ModelError, "only emonet exports can be imported"):
            self.imported(path=os.path.join(d, "foreign.json"))
        # A swapped ONNX file is refused by its checksum before anything is read from it.
        shutil.copy(os.path.join(REPO, "models", "emonet-s.onnx"), onnx_path)
        with self.assertRaisesRegex(ModelError, "sha256"):
            self.imported(path=os.path.join(d, "foreign.json"))

    def test_train_init_from_the_shipped_model_and_export_records_where_it_started(self):
        t = self.tmp.name
        out_dir = os.path.join(t, "tuned")
        tr = run(["train", "--data", self.data, "--cache", "", "--arch", "emonet-xs", "--epochs", "1",
                  "--limit", "300", "--threads", "1", "--lr", "0.002", "--out", out_dir, "--init", DEFAULT])
        self.assertEqual(tr.returncode, 0, tr.stderr)
        self.assertIn("imported " + DEFAULT, tr.stdout)
        with open(os.path.join(out_dir, "config.json")) as f:
            config = json.load(f)
        with open(DEFAULT) as f:
            meta = json.load(f)
        # The run normalises faces as the imported weights expect, not by its 300 faces' own figures.
        self.assertEqual((config["mean"], config["std"]), (meta["normalization"]["mean"], meta["normalization"]["std"]))
        models = os.path.join(t, "models")
        exp = run(["export", "--checkpoint", os.path.join(out_dir, "last.pt"), "--out-dir", models, "--name", "tuned",
                   "--data", self.data, "--cache", "", "--threads", "1"])
        self.assertEqual(exp.returncode, 0, exp.stderr)
        with open(os.path.join(models, "tuned.json")) as f:
            cycles = json.load(f)["training"]["cycles"]
        self.assertEqual(len(cycles), 2)
        self.assertEqual(cycles[0]["exported"]["sha256"], meta["sha256"])
        self.assertEqual(cycles[0]["exported"]["name"], "emonet-xs")
        self.assertEqual(cycles[0]["epochs"], max(i["epochs"] for i in meta["training"]["soup"]))
        self.assertEqual(cycles[1], {"epochs": 1, "lr": 0.002})
        # The wrong architecture fails the run with the reason, before any epoch.
        bad = run(["train", "--data", self.data, "--cache", "", "--arch", "emonet-s", "--epochs", "1",
                   "--limit", "300", "--threads", "1", "--out", os.path.join(t, "bad"), "--init", DEFAULT])
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("holds emonet-xs, not emonet-s", bad.stderr)


if __name__ == "__main__":
    unittest.main()
