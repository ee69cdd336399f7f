"""ONNX export for OpenCV 4.6, metrics, bench and frontier: everything that needs no data set."""
import json
import os
import subprocess
import tempfile
import unittest

import cv2
import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from . import CLI
from emotion_train import LABELS
from emotion_train.arch import ARCHITECTURES, build
from emotion_train.evaluate import ModelError, class_weights, dnn_predict, format_table, metrics
from emotion_train.export import strip_identities, to_onnx


def raw_export(model):
    """What torch.onnx.export gives without the rewrite (same settings as emotion_train.export.to_onnx)."""
    import io
    buf = io.BytesIO()
    torch.onnx.export(torch.nn.Sequential(model, torch.nn.Softmax(dim=1)).eval(), torch.zeros(1, 1, 48, 48), buf,
                      opset_version=11, input_names=["input"], output_names=["prob"],
                      dynamic_axes={"input": {0: "batch"}, "prob": {0: "batch"}})
    return onnx.load_from_string(buf.getvalue())


class StripIdentitiesTest(unittest.TestCase):
    def test_consumers_are_rewired_through_chains_and_graph_outputs_kept(self):
        # x -> Identity a -> Identity b -> Relu r -> Identity out (a graph output)
        nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Identity", ["a"], ["b"]),
                 helper.make_node("Relu", ["b"], ["r"]), helper.make_node("Identity", ["r"], ["out"])]
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                                  [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])],
                                  value_info=[helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
        self.assertEqual(strip_identities(model), 2)
        self.assertEqual([n.op_type for n in model.graph.node], ["Relu", "Identity"])
        self.assertEqual(list(model.graph.node[0].input), ["x"])
        self.assertEqual([v.name for v in model.graph.value_info], [])
        onnx.checker.check_model(model)

    def test_untrained_export_needs_the_rewrite_for_opencv(self):
        # Fresh batch norms fold to identical zero biases, which torch 1.13 shares through Identity
        # nodes: exactly the graph OpenCV 4.6 refuses.
        torch.manual_seed(0)
        raw = raw_export(build("emonet-s"))
        self.assertGreater(sum(n.op_type == "Identity" for n in raw.graph.node), 0)
        level = cv2.getLogLevel()
        cv2.setLogLevel(0)  # the expected failure logs too
        try:
            with self.assertRaises(cv2.error):
                cv2.dnn.readNetFromONNX(np.frombuffer(raw.SerializeToString(), np.uint8))
        finally:
            cv2.setLogLevel(level)

    def test_every_architecture_exports_and_matches_pytorch_in_opencv(self):
        rng = np.random.default_rng(0)
        faces = rng.integers(0, 256, (5, 48, 48)).astype(np.uint8)
        norm = {"scale": 1 / 255.0, "mean": 0.5, "std": 0.25}
        x = torch.from_numpy(((faces / 255.0 - 0.5) / 0.25).astype(np.float32)).unsqueeze(1)
        for name in ARCHITECTURES:
            with self.subTest(arch=name):
                torch.manual_seed(0)
                model = build(name).eval()
                blob = to_onnx(model)
                g = onnx.load_from_string(blob)
                self.assertNotIn("Identity", [n.op_type for n in g.graph.node])
                self.assertEqual([i.name for i in g.graph.input], ["input"])
                self.assertEqual([o.name for o in g.graph.output], ["prob"])
                net = cv2.dnn.readNetFromONNX(np.frombuffer(blob, np.uint8))
                got = dnn_predict(net, faces, norm, "none", batch=5)
                with torch.no_grad():
                    want = torch.softmax(model(x), 1).numpy()
                self.assertEqual(got.shape, (5, 7))
                np.testing.assert_allclose(got.sum(1), 1, atol=1e-5)
                np.testing.assert_allclose(got, want, atol=1e-5)

    def test_hflip_tta_averages_the_mirror_image(self):
        torch.manual_seed(0)
        model = build("emonet-xs").eval()
        net = cv2.dnn.readNetFromONNX(np.frombuffer(to_onnx(model), np.uint8))
        faces = np.random.default_rng(1).integers(0, 256, (3, 48, 48)).astype(np.uint8)
        norm = {"scale": 1 / 255.0, "mean": 0.5, "std": 0.25}
        plain = dnn_predict(net, faces, norm, "none")
        mirror = dnn_predict(net, faces[:, :, ::-1].copy(), norm, "none")
        np.testing.assert_allclose(dnn_predict(net, faces, norm, "hflip"), (plain + mirror) / 2, atol=1e-6)
        self.assertGreater(np.abs(plain - mirror).max(), 1e-4)  # otherwise the check above proves nothing


class PriorCorrectionTest(unittest.TestCase):
    """emotion-model prior: the metadata's prior_correction, and predictions reweighted by it as the
    daemon does (daemon/model.c, classify.cpp)."""

    def test_weights_and_reweighting(self):
        torch.manual_seed(0)
        net = cv2.dnn.readNetFromONNX(np.frombuffer(to_onnx(build("emonet-xs").eval()), np.uint8))
        faces = np.random.default_rng(2).integers(0, 256, (4, 48, 48)).astype(np.uint8)
        norm = {"scale": 1 / 255.0, "mean": 0.5, "std": 0.25}
        prior = [0.14, 0.015, 0.143, 0.251, 0.168, 0.11, 0.173]
        w = class_weights({"prior_correction": {"power": 0.5, "training_prior": prior}})
        np.testing.assert_allclose(w, np.array(prior) ** -0.5)
        self.assertIsNone(class_weights({}))
        self.assertIsNone(class_weights({"prior_correction": {"power": 0, "training_prior": prior}}))
        plain = dnn_predict(net, faces, norm)
        want = plain * w / (plain * w).sum(1, keepdims=True)
        np.testing.assert_allclose(dnn_predict(net, faces, norm, weights=w), want, atol=1e-9)
        for bad in ({"power": 3, "training_prior": prior}, {"power": 0.5, "training_prior": prior[:6]},
                    {"power": 0.5, "training_prior": [0.5] + prior[1:]}, {"power": 0.5}):
            with self.assertRaises(ModelError, msg=str(bad)):
                class_weights({"prior_correction": bad})

    def test_prior_command_writes_and_removes_it(self):
        torch.manual_seed(0)
        rng = np.random.default_rng(3)
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "m.onnx"), "wb") as f:
                f.write(to_onnx(build("emonet-xs").eval()))
            from emotion_train.data import file_sha256
            meta = {"format": "emotiond-model/1", "name": "m", "onnx": "m.onnx",
                    "sha256": file_sha256(os.path.join(tmp, "m.onnx")), "labels": list(LABELS),
                    "normalization": {"scale": 1 / 255.0, "mean": 0.5, "std": 0.25}, "tta": "none"}
            with open(os.path.join(tmp, "m.json"), "w") as f:
                json.dump(meta, f)
            # Training rows: class k four times for k < 6, neutral twelve times; five PublicTest rows.
            labels = [k for k in range(6) for _ in range(4)] + [6] * 12
            with open(os.path.join(tmp, "d.csv"), "w") as f:
                f.write("emotion,pixels,Usage\n")
                for i, k in enumerate(labels + [0, 1, 2, 3, 4]):
                    pixels = " ".join(str(v) for v in rng.integers(0, 256, 48 * 48))
                    f.write(f"{k},{pixels},{'Training' if i < len(labels) else 'PublicTest'}\n")
            run = [*CLI, "prior", "--model", os.path.join(tmp, "m.json"), "--data", os.path.join(tmp, "d.csv"),
                   "--cache", "", "--threads", "1"]
            subprocess.run(run + ["--power", "0.5"], check=True, capture_output=True)
            with open(os.path.join(tmp, "m.json")) as f:
                got = json.load(f)
            np.testing.assert_allclose(got["prior_correction"]["training_prior"], np.bincount(labels) / len(labels))
            self.assertEqual(got["prior_correction"]["power"], 0.5)
            self.assertEqual(got["prior_correction"]["training_rows"], len(labels))
            self.assertEqual(got["evaluation"]["n"], 5)
            self.assertEqual(got["sha256"], meta["sha256"], "the ONNX file is untouched")
            # A copy without it, named after its file; then removed from the model itself.
            subprocess.run(run + ["--power", "0", "--out", os.path.join(tmp, "raw.json")], check=True,
                           capture_output=True)
            with open(os.path.join(tmp, "raw.json")) as f:
                raw = json.load(f)
            self.assertNotIn("prior_correction", raw)
            self.assertEqual(raw["name"], "raw")
            bad = subprocess.run(run + ["--power", "5"], capture_output=True, text=True)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("--power", bad.stderr)


class MetricsTest(unittest.TestCase):
    def test_hand_computed_example(self):
        y = np.array([0, 0, 0, 3, 3, 6])
        p = np.array([0, 0, 3, 3, 6, 6])
        m = metrics(y, p)
        self.assertAlmostEqual(m["accuracy"], 4 / 6)
        self.assertEqual(m["confusion"][0][:4], [2, 0, 0, 1])
        self.assertAlmostEqual(m["per_class"]["angry"]["precision"], 1.0)
        self.assertAlmostEqual(m["per_class"]["angry"]["recall"], 2 / 3)
        self.assertAlmostEqual(m["per_class"]["happy"]["precision"], 1 / 2)
        self.assertAlmostEqual(m["per_class"]["happy"]["f1"], 0.5)
        self.assertAlmostEqual(m["per_class"]["neutral"]["recall"], 1.0)
        # Classes absent from both truth and prediction score 0, not NaN.
        self.assertEqual(m["per_class"]["disgust"], {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0})
        self.assertEqual(sum(sum(r) for r in m["confusion"]), 6)
        self.assertNotIn("top2", m)

    def test_top_k(self):
        # Three faces: right; true class second; true class third, tied with the second and
        # listed after it (argmax's order counts against it).
        y = np.array([0, 3, 6])
        probs = np.zeros((3, 7))
        probs[0, [0, 1]] = [0.6, 0.4]
        probs[1, [3, 4]] = [0.3, 0.7]
        probs[2, [2, 5, 6]] = [0.5, 0.25, 0.25]
        m = metrics(y, probs.argmax(1), probs=probs)
        self.assertAlmostEqual(m["accuracy"], 1 / 3)
        self.assertAlmostEqual(m["top2"], 2 / 3)
        self.assertAlmostEqual(m["top3"], 1.0)
        self.assertEqual(m["per_class"]["happy"]["top2"], 1.0)
        self.assertEqual(m["per_class"]["neutral"]["top2"], 0.0)
        self.assertEqual(m["per_class"]["neutral"]["top3"], 1.0)
        self.assertEqual(m["per_class"]["disgust"]["top2"], 0.0)  # no disgust faces: 0, not NaN
        self.assertIn("top-2", format_table(m))


class McNemarTest(unittest.TestCase):
    def test_exact_values(self):
        from emotion_train.evaluate import mcnemar
        self.assertEqual(mcnemar(0, 0), 1.0)
        self.assertEqual(mcnemar(3, 3), 1.0)
        self.assertAlmostEqual(mcnemar(5, 0), 2 / 2 ** 5)  # all five disagreements one way
        self.assertAlmostEqual(mcnemar(1, 4), 2 * (1 + 5) / 2 ** 5)
        self.assertEqual(mcnemar(217, 254), mcnemar(254, 217))
        # The REPORT's emonet-s against emonet-xs: 254 against 217.
        self.assertAlmostEqual(mcnemar(254, 217), 0.097, places=3)

    def test_paired_difference(self):
        from emotion_train.evaluate import paired_difference
        a = np.array([1, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
        b = np.array([1, 0, 1, 1, 1, 1, 1, 1], dtype=bool)
        d = paired_difference(a, b)
        self.assertEqual((d["n"], d["right_only_a"], d["right_only_b"]), (8, 1, 3))
        self.assertAlmostEqual(d["difference"], b.mean() - a.mean())
        self.assertLess(d["ci95"][0], d["difference"])
        self.assertGreater(d["ci95"][1], d["difference"])
        self.assertAlmostEqual(d["p_mcnemar"], 2 * (1 + 4) / 2 ** 4)


class TrainingCurveTest(unittest.TestCase):
    """Runs that continue each other are joined at the epoch the next one started from."""

    def write_logs(self, d):
        first = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5, "public_test_acc": a}
                 for e, a in zip(range(1, 6), (0.50, 0.60, 0.65, 0.62, 0.63))]
        second = [{"epoch": e, "train_loss": 0.5, "train_acc": 0.7, "public_test_acc": 0.66,
                   "swa_n": e, "swa_public_test_acc": 0.66 + e / 100} for e in (1, 2)]
        paths = []
        for name, log in (("a.jsonl", first + [{"stopped": 5, "planned": 9}]), ("b.jsonl", second)):
            paths.append(os.path.join(d, name))
            with open(paths[-1], "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in log)
        return paths

    def test_logs_join_at_the_epochs_the_weights_carry(self):
        from emotion_train.figures import curve_png, read_logs
        with tempfile.TemporaryDirectory() as d:
            paths = self.write_logs(d)
            # Continued from the last epoch (as export's cycles record): all five epochs are kept.
            log, starts = read_logs(paths, used_epochs=[5, 2])
            self.assertEqual([r["epoch"] for r in log], [1, 2, 3, 4, 5, 6, 7])
            self.assertEqual(starts, [5])
            self.assertEqual(log[-1]["swa_public_test_acc"], 0.68)
            # Without them, from the best epoch (3): epochs 4 and 5 were not built on.
            log, starts = read_logs(paths)
            self.assertEqual([r["public_test_acc"] for r in log][:3], [0.50, 0.60, 0.65])
            self.assertEqual((len(log), starts), (5, [3]))
            png = curve_png(paths, os.path.join(d, "curve.png"), used_epochs=[5, 2])
            self.assertEqual(cv2.imread(png).shape[2], 3)


class BenchFrontierCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_bench_architecture_and_file(self):
        onnx_path = os.path.join(self.tmp.name, "xs.onnx")
        torch.manual_seed(0)
        with open(onnx_path, "wb") as f:
            f.write(to_onnx(build("emonet-xs")))
        out = os.path.join(self.tmp.name, "bench.json")
        r = subprocess.run(CLI + ["bench", "--onnx", onnx_path, "--arch", "emonet-xs", "--json", out],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 thread(s)", r.stdout)
        with open(out) as f:
            res = json.load(f)
        self.assertEqual([x["name"] for x in res], ["xs", "emonet-xs"])
        for x in res:
            self.assertEqual(x["runs"], 300)
            self.assertTrue(0 < x["p10"] <= x["ms_per_face"] <= x["p90"], x)
        self.assertEqual(res[1]["macs"], 60716352)

    def test_bench_refuses_too_few_runs(self):
        r = subprocess.run(CLI + ["bench", "--arch", "emonet-xs", "--runs", "50"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("at least 300", r.stderr)

    def test_frontier_plot(self):
        points = os.path.join(self.tmp.name, "points.json")
        with open(points, "w") as f:
            json.dump([{"name": "a", "accuracy": 0.6, "ms_per_face": 1.0, "macs": 6e7, "note": "x"},
                       {"name": "b", "accuracy": 0.7, "ms_per_face": 3.0, "macs": 3e8, "note": ""}], f)
        png = os.path.join(self.tmp.name, "fig", "frontier.png")
        r = subprocess.run(CLI + ["frontier", "--points", points, "--out", png],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        img = cv2.imread(png)
        self.assertIsNotNone(img)
        self.assertGreater(img.shape[1], 300)

    def test_frontier_names_a_missing_key(self):
        points = os.path.join(self.tmp.name, "points.json")
        with open(points, "w") as f:
            json.dump([{"name": "a", "accuracy": 0.6}], f)
        r = subprocess.run(CLI + ["frontier", "--points", points, "--out", os.path.join(self.tmp.name, "f.png")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ms_per_face", r.stderr)


if __name__ == "__main__":
    unittest.main()
