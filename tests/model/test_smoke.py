"""The whole tool chain on real FER2013 faces, small: one epoch on 300 Training rows, export with
the OpenCV parity check, evaluation of the exported files."""
import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

from . import CLI, REPO, fer2013_path, run_cli as run, write_subset

SCHEMA_KEYS = ["format", "name", "onnx", "sha256", "labels", "input", "output", "normalization", "framing",
               "tta", "architecture", "macs", "params", "training", "evaluation"]


@unittest.skipUnless(fer2013_path(), "needs fer2013.csv.gz: set EMO_FER2013 or put it in "
                                     "../shared/data/fer2013/ next to the checkout")
class SmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        t = cls.tmp.name
        cls.data = os.path.join(t, "subset.csv.gz")
        write_subset(fer2013_path(), cls.data, n_train=300, n_test=250)
        cls.run_dir = os.path.join(t, "run")
        cls.train = run(["train", "--data", cls.data, "--cache", "", "--arch", "emonet-xs", "--epochs", "1",
                         "--limit", "300", "--threads", "1", "--out", cls.run_dir])
        cls.framing = os.path.join(t, "framing.json")
        with open(cls.framing, "w") as f:
            json.dump({"scale": 1.05, "offset_x": 0.01, "offset_y": -0.02, "detected": 9, "tried": 10}, f)
        cls.models = os.path.join(t, "models")
        cls.export = run(["export", "--checkpoint", os.path.join(cls.run_dir, "best.pt"), "--out-dir", cls.models,
                          "--name", "smoke", "--framing-json", cls.framing, "--tta", "hflip",
                          "--data", cls.data, "--cache", "", "--threads", "1"])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def meta(self):
        with open(os.path.join(self.models, "smoke.json")) as f:
            return json.load(f)

    def test_training_writes_a_checkpoint_and_log(self):
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        with open(os.path.join(self.run_dir, "log.jsonl")) as f:
            log = [json.loads(line) for line in f]
        self.assertEqual([r["epoch"] for r in log], [1])
        self.assertTrue(os.path.exists(os.path.join(self.run_dir, "best.pt")))

    def test_export_passes_the_opencv_parity_check(self):
        self.assertEqual(self.export.returncode, 0, self.export.stderr)
        diff = float(self.export.stdout.split("max |dp| = ")[1].split()[0])
        self.assertLessEqual(diff, 1e-4)

    def test_metadata_schema_and_values(self):
        from emotion_train.data import file_sha256
        self.assertEqual(self.export.returncode, 0, self.export.stderr)
        m = self.meta()
        self.assertEqual(list(m), SCHEMA_KEYS)
        self.assertEqual(m["format"], "emotiond-model/1")
        self.assertEqual(m["onnx"], "smoke.onnx")
        self.assertEqual(m["sha256"], file_sha256(os.path.join(self.models, "smoke.onnx")))
        self.assertEqual(m["labels"], ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])
        self.assertEqual(m["input"], {"name": "input", "width": 48, "height": 48, "channels": 1, "layout": "NCHW"})
        self.assertEqual(m["output"], {"name": "prob", "kind": "probabilities"})
        self.assertEqual(m["normalization"]["scale"], 1 / 255.0)
        with open(os.path.join(self.run_dir, "config.json")) as f:
            config = json.load(f)
        self.assertAlmostEqual(m["normalization"]["mean"], config["mean"])
        self.assertAlmostEqual(m["normalization"]["std"], config["std"])
        self.assertEqual(m["framing"], {"scale": 1.05, "offset_x": 0.01, "offset_y": -0.02})
        self.assertEqual(m["tta"], "hflip")
        self.assertEqual(m["architecture"], "emonet-xs")
        self.assertEqual(m["macs"], 60716352)
        self.assertGreater(m["params"], 100000)
        self.assertEqual(m["training"], {"data": "FER2013 Training", "rows": 300, "epochs": 1,
                                         "cycles": [{"epochs": 1, "lr": 0.1}], "seed": 1})
        self.assertEqual(m["evaluation"]["split"], "PublicTest")
        self.assertEqual(m["evaluation"]["n"], 250)
        self.assertTrue(0 <= m["evaluation"]["accuracy"] <= 1)
        self.assertFalse([f for f in os.listdir(self.models) if f.endswith(".tmp")])

    def test_init_continues_a_run_and_the_export_counts_both_cycles(self):
        t = self.tmp.name
        second = os.path.join(t, "run2")
        out = run(["train", "--data", self.data, "--cache", "", "--arch", "emonet-xs", "--epochs", "1",
                   "--limit", "300", "--threads", "1", "--lr", "0.05", "--out", second,
                   "--init", os.path.join(self.run_dir, "best.pt")])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("initialised from", out.stdout)
        models = os.path.join(t, "models2")
        exp = run(["export", "--checkpoint", os.path.join(second, "best.pt"), "--out-dir", models, "--name", "smoke2",
                   "--framing-json", self.framing, "--data", self.data, "--cache", "", "--threads", "1"])
        self.assertEqual(exp.returncode, 0, exp.stderr)
        with open(os.path.join(models, "smoke2.json")) as f:
            training = json.load(f)["training"]
        self.assertEqual(training["cycles"], [{"epochs": 1, "lr": 0.1}, {"epochs": 1, "lr": 0.05}])
        self.assertEqual(training["epochs"], 2)
        # Another architecture's weights are refused, naming both.
        bad = run(["train", "--data", self.data, "--cache", "", "--arch", "emonet-s", "--epochs", "1",
                   "--limit", "300", "--threads", "1", "--out", os.path.join(t, "run3"),
                   "--init", os.path.join(self.run_dir, "best.pt")])
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("emonet-xs, not emonet-s", bad.stderr)

    def test_last_epoch_exports_and_initialises_like_best(self):
        import torch
        from emotion_train.train import load_weights
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        last, best = os.path.join(self.run_dir, "last.pt"), os.path.join(self.run_dir, "best.pt")
        # One epoch: last.pt and best.pt hold the same weights, and last.pt's epoch (counted from 0
        # for --resume) reads as the one epoch trained.
        a, b = load_weights(last), load_weights(best)
        self.assertEqual({k: v for k, v in a.items() if k != "model"}, {k: v for k, v in b.items() if k != "model"})
        self.assertEqual(a["epoch"], 1)
        for k, v in b["model"].items():
            self.assertTrue(torch.equal(v, a["model"][k]), k)
        # A last.pt from before it recorded arch, mean, std and accuracy takes them from the run's files.
        old = os.path.join(self.tmp.name, "old-run")
        os.makedirs(old, exist_ok=True)
        for name in ("config.json", "log.jsonl"):
            with open(os.path.join(self.run_dir, name)) as src, open(os.path.join(old, name), "w") as dst:
                dst.write(src.read())
        ck = torch.load(last)
        torch.save({k: ck[k] for k in ("model", "opt", "sched", "gen", "epoch", "best")}, os.path.join(old, "last.pt"))
        c = load_weights(os.path.join(old, "last.pt"))
        self.assertEqual({k: v for k, v in c.items() if k != "model"}, {k: v for k, v in b.items() if k != "model"})
        os.remove(os.path.join(old, "log.jsonl"))
        with self.assertRaisesRegex(ValueError, "needs its run's config.json and log.jsonl"):
            load_weights(os.path.join(old, "last.pt"))
        # The export of last.pt counts the epoch once and writes the same network as best.pt's.
        models = os.path.join(self.tmp.name, "models-last")
        exp = run(["export", "--checkpoint", last, "--out-dir", models, "--name", "smoke", "--framing-json",
                   self.framing, "--tta", "hflip", "--data", self.data, "--cache", "", "--threads", "1"])
        self.assertEqual(exp.returncode, 0, exp.stderr)
        with open(os.path.join(models, "smoke.json")) as f:
            m = json.load(f)
        self.assertEqual(m["training"]["epochs"], 1)
        self.assertEqual(m["training"]["cycles"], [{"epochs": 1, "lr": 0.1}])
        self.assertEqual(m["evaluation"], self.meta()["evaluation"])

    def test_distillation_with_a_time_budget_and_the_campaign_bundle(self):
        t = self.tmp.name
        student = os.path.join(t, "student")
        out = run(["train", "--data", self.data, "--cache", "", "--arch", "emonet-xs", "--epochs", "3",
                   "--limit", "300", "--threads", "1", "--out", student, "--device", "cpu", "--time-budget", "0.5",
                   "--teacher", os.path.join(self.run_dir, "best.pt"), "--kd-alpha", "0.5", "--kd-temperature", "2"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("teacher ", out.stdout)
        # Half a second fits less than one epoch: the probe must settle on the minimum, 1.
        self.assertIn("epochs", out.stdout.split("time budget")[1].splitlines()[0])
        with open(os.path.join(student, "config.json")) as f:
            config = json.load(f)
        self.assertEqual(config["epochs"], 1)
        self.assertEqual(config["teacher"], [os.path.join(self.run_dir, "best.pt")])
        self.assertEqual(config["device"], "cpu")
        with open(os.path.join(student, "log.jsonl")) as f:
            self.assertEqual([json.loads(line)["epoch"] for line in f], [1])
        # The campaign's bundle stores weights as .npz and --unbundle restores the same tensors.
        import torch
        from emotion_train.train import load_checkpoint
        from emotion_train import campaign
        runs = os.path.join(t, "camp", "runs")
        os.makedirs(runs)
        os.rename(student, os.path.join(runs, "emonet-xs-kd"))
        with open(os.path.join(runs, "emonet-xs-kd.out"), "w") as f:
            f.write(out.stdout)
        with open(os.path.join(t, "camp", "summary.json"), "w") as f:
            f.write("{}")
        left_out = campaign.bundle(argparse.Namespace(out=os.path.join(t, "camp"), bundle=os.path.join(t, "b")),
                                   ["emonet-xs-kd", "never-ran"])
        self.assertEqual(left_out, [])
        with contextlib.redirect_stdout(io.StringIO()):
            campaign.unbundle(os.path.join(t, "b"), os.path.join(t, "home"))
        a = load_checkpoint(os.path.join(runs, "emonet-xs-kd", "best.pt"))
        b = load_checkpoint(os.path.join(t, "home", "emonet-xs-kd", "best.pt"))
        self.assertEqual({k: v for k, v in a.items() if k != "model"}, {k: v for k, v in b.items() if k != "model"})
        for k, v in a["model"].items():
            self.assertTrue(torch.equal(v, b["model"][k]), k)
        # The distil plan keeps last epochs; weights too big for one file travel as float16, and the
        # targets file rides along into DEST/cache/.
        from emotion_train.train import load_weights
        targets = os.path.join(t, "teacher-abc.npy")
        with open(targets, "wb") as f:
            f.write(b"targets")
        left_out = campaign.bundle(argparse.Namespace(out=os.path.join(t, "camp"), bundle=os.path.join(t, "b2"),
                                                      plan="distil"),
                                   ["emonet-xs-kd"], limits=campaign.BundleLimits(file_bytes=3 << 20),
                                   extra=[targets])
        self.assertEqual(left_out, [])
        with contextlib.redirect_stdout(io.StringIO()) as said:
            campaign.unbundle(os.path.join(t, "b2"), os.path.join(t, "home2"))
        self.assertIn("emonet-xs-kd: last.pt (epoch 1", said.getvalue())
        self.assertIn("from float16", said.getvalue())
        with open(os.path.join(t, "home2", "cache", "teacher-abc.npy"), "rb") as f:
            self.assertEqual(f.read(), b"targets")
        a = load_weights(os.path.join(runs, "emonet-xs-kd", "last.pt"))
        b = load_weights(os.path.join(t, "home2", "emonet-xs-kd", "last.pt"))
        self.assertEqual((a["arch"], a["epoch"], a["mean"]), (b["arch"], b["epoch"], b["mean"]))
        for k, v in a["model"].items():
            self.assertEqual(b["model"][k].dtype, v.dtype, k)
            self.assertTrue(torch.equal(v.half().to(v.dtype), b["model"][k]) if v.is_floating_point()
                            else torch.equal(v, b["model"][k]), k)

    def test_resume_keeps_the_schedule_the_run_started_with(self):
        d = os.path.join(self.tmp.name, "resumed")
        common = ["train", "--data", self.data, "--cache", "", "--arch", "emonet-xs", "--limit", "300",
                  "--threads", "1", "--out", d]
        first = run(common + ["--epochs", "1"])
        self.assertEqual(first.returncode, 0, first.stderr)
        again = run(common + ["--epochs", "9", "--resume"])
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("resumed at epoch 1", again.stdout)
        with open(os.path.join(d, "log.jsonl")) as f:
            self.assertEqual([json.loads(line)["epoch"] for line in f], [1])

    def test_a_run_killed_and_resumed_matches_one_left_alone(self):
        import torch
        # The process dies (os._exit, no cleanup) right after epoch 2's last.pt is in place, as a
        # kill or a power cut would leave it; --resume must then train epoch 3 exactly as the
        # uninterrupted run does: same data order, augmentation, dropout and optimiser state. One
        # plain run, and one whose last two epochs are averaged (the average is resumed too).
        die_after_2 = (
            "import os, runpy, sys\n"
            "real, saved = os.replace, [0]\n"
            "def replace(src, dst):\n"
            "    real(src, dst)\n"
            "    if dst.endswith('last.pt'):\n"
            "        saved[0] += 1\n"
            "        if saved[0] == 2:\n"
            "            os._exit(75)\n"
            "os.replace = replace\n"
            "runpy.run_module('emotion_train', run_name='__main__', alter_sys=True)\n")
        for extra in ([], ["--swa-epochs", "2", "--swa-lr", "0.02"]):
            with self.subTest(extra=extra):
                name = "swa" if extra else "plain"
                whole, cut = (os.path.join(self.tmp.name, f"{kind}-{name}") for kind in ("whole", "cut"))
                common = ["train", "--data", self.data, "--cache", "", "--arch", "emonet-xs", "--limit", "300",
                          "--threads", "1", "--epochs", "3", "--seed", "5"] + extra
                r = run(common + ["--out", whole])
                self.assertEqual(r.returncode, 0, r.stderr)
                r = subprocess.run([sys.executable, "-c", die_after_2] + common + ["--out", cut],
                                   capture_output=True, text=True, timeout=300)
                self.assertEqual(r.returncode, 75, r.stderr)
                self.assertNotIn("epoch 3/3", r.stdout)
                r = run(common + ["--out", cut, "--resume"])
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("resumed at epoch 2", r.stdout)
                logs = []
                for d in (whole, cut):
                    with open(os.path.join(d, "log.jsonl")) as f:
                        logs.append([json.loads(line) for line in f])
                self.assertEqual([rec["epoch"] for rec in logs[1]], [1, 2, 3])
                for a, b in zip(*logs):
                    a.pop("seconds"), b.pop("seconds")
                    self.assertEqual(a, b)
                ends = [torch.load(os.path.join(d, "last.pt")) for d in (whole, cut)]
                for part in ("model", "swa") if extra else ("model",):
                    for k, v in ends[0][part].items():
                        self.assertTrue(torch.equal(v, ends[1][part][k]), f"{part} {k}")
                if extra:
                    a, b = (torch.load(os.path.join(d, "swa.pt"))["model"] for d in (whole, cut))
                    for k, v in a.items():
                        self.assertTrue(torch.equal(v, b[k]), f"swa.pt {k}")

    def test_weight_averaging_trains_averages_and_exports(self):
        import torch
        from emotion_train.train import load_weights
        d = os.path.join(self.tmp.name, "swa")
        r = run(["train", "--data", self.data, "--cache", "", "--arch", "emonet-xs", "--limit", "300",
                 "--threads", "1", "--epochs", "3", "--swa-epochs", "2", "--swa-lr", "0.02", "--out", d])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("average of 2:", r.stdout)
        with open(os.path.join(d, "log.jsonl")) as f:
            log = [json.loads(line) for line in f]
        # One one-cycle epoch, then two at the constant --swa-lr, averaged.
        self.assertEqual([r.get("swa_n") for r in log], [None, 1, 2])
        self.assertEqual([r["lr"] for r in log[1:]], [0.02, 0.02])
        self.assertNotEqual(log[0]["lr"], 0.02)
        swa = load_weights(os.path.join(d, "swa.pt"))
        self.assertEqual((swa["epoch"], swa["swa_n"]), (3, 2))
        self.assertEqual(swa["public_test_acc"], log[-1]["swa_public_test_acc"])
        # last.pt carries the running average (for --resume); swa.pt holds it, BatchNorm recomputed.
        last = torch.load(os.path.join(d, "last.pt"))
        state = last["swa"]  # AveragedModel's state_dict
        self.assertEqual(int(state["n_averaged"]), 2)
        for k, v in swa["model"].items():
            if "running" in k:  # recomputed for the average, not the trained network's
                self.assertFalse(torch.allclose(v, last["model"][k]), k)
            elif v.is_floating_point():
                self.assertTrue(torch.allclose(v, state["module." + k]), k)
        # export reads swa.pt and records the averaging in the training cycles.
        exp = run(["export", "--checkpoint", os.path.join(d, "swa.pt"), "--out-dir", os.path.join(d, "m"),
                   "--name", "swa", "--framing-json", self.framing, "--data", self.data, "--cache", "",
                   "--threads", "1"])
        self.assertEqual(exp.returncode, 0, exp.stderr)
        with open(os.path.join(d, "m", "swa.json")) as f:
            training = json.load(f)["training"]
        self.assertEqual(training["cycles"], [{"epochs": 3, "lr": 0.1, "swa": {"epochs": 2, "lr": 0.02}}])
        # Bad values are refused before anything trains.
        for opts, fragment in ((["--swa-epochs", "-1"], "--swa-epochs"),
                               (["--swa-epochs", "2", "--swa-lr", "0"], "--swa-lr")):
            with self.subTest(opts=opts):
                bad = run(["train", "--data", self.data, "--cache", "", "--epochs", "1", "--limit", "300",
                           "--out", os.path.join(self.tmp.name, "refused-swa")] + opts)
                self.assertEqual(bad.returncode, 1)
                self.assertIn(fragment, bad.stderr)

    def test_bad_distillation_and_budget_values_are_refused(self):
        for opts, fragment in ((["--kd-alpha", "1.5"], "--kd-alpha"), (["--kd-temperature", "0"], "--kd-temperature"),
                               (["--time-budget", "-1"], "--time-budget")):
            with self.subTest(opts=opts):
                r = run(["train", "--data", self.data, "--cache", "", "--epochs", "1", "--limit", "300",
                         "--out", os.path.join(self.tmp.name, "refused-run")] + opts)
                self.assertEqual(r.returncode, 1)
                self.assertIn(fragment, r.stderr)
        # A teacher that is not a checkpoint is named, not a traceback.
        junk = os.path.join(self.tmp.name, "junk.pt")
        with open(junk, "w") as f:
            f.write("not a checkpoint\n")
        r = run(["train", "--data", self.data, "--cache", "", "--epochs", "1", "--limit", "300",
                 "--out", os.path.join(self.tmp.name, "refused-run"), "--teacher", junk])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{junk}: not a readable checkpoint", r.stderr)
        # Saved targets replace teachers; both at once is refused, as is a file that is not there.
        r = run(["train", "--data", self.data, "--cache", "", "--epochs", "1", "--limit", "300",
                 "--out", os.path.join(self.tmp.name, "refused-run"), "--teacher", junk,
                 "--teacher-targets", junk])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--teacher-targets replaces --teacher", r.stderr)
        missing = os.path.join(self.tmp.name, "no-such-targets.npy")
        r = run(["train", "--data", self.data, "--cache", "", "--epochs", "1", "--limit", "300",
                 "--out", os.path.join(self.tmp.name, "refused-run"), "--teacher-targets", missing])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"--teacher-targets {missing}: not a readable .npy file", r.stderr)

    def test_soup_averages_the_weights_and_export_lists_the_ingredients(self):
        import torch
        from emotion_train.train import load_weights
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        t = self.tmp.name
        other = os.path.join(t, "soup-b")
        r = run(["train", "--data", self.data, "--cache", "", "--arch", "emonet-xs", "--epochs", "1",
                 "--limit", "300", "--threads", "1", "--seed", "2", "--out", other])
        self.assertEqual(r.returncode, 0, r.stderr)
        a, b = os.path.join(self.run_dir, "best.pt"), os.path.join(other, "last.pt")
        out = os.path.join(t, "soup")
        r = run(["soup", "--checkpoint", a, "--checkpoint", b, "--out", out, "--data", self.data, "--cache", "",
                 "--threads", "1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("soup of 2: PublicTest", r.stdout)
        wa, wb, soup = load_weights(a), load_weights(b), load_weights(os.path.join(out, "soup.pt"))
        ingredients = [{"checkpoint": "run/best.pt", "epochs": 1, "cycles": [{"epochs": 1, "lr": 0.1}]},
                       {"checkpoint": "soup-b/last.pt", "epochs": 1, "cycles": [{"epochs": 1, "lr": 0.1}]}]
        self.assertEqual(soup["soup"], ingredients)
        for k, v in soup["model"].items():
            if "running" in k:  # recomputed for the mean network, not the mean of the runs' statistics
                self.assertFalse(torch.allclose(v, (wa["model"][k] + wb["model"][k]) / 2), k)
            elif v.is_floating_point():
                self.assertTrue(torch.allclose(v, (wa["model"][k] + wb["model"][k]) / 2, atol=1e-7), k)
        # Two seeds: the ingredients differ, so the mean is neither of them.
        self.assertFalse(torch.allclose(wa["model"]["features.0.weight"], wb["model"]["features.0.weight"]))
        # export reads soup.pt alone (an ingredient's run may be gone by then); the metadata names
        # each ingredient with its own cycles, and the accuracy through OpenCV is the soup's.
        os.rename(other, other + "-gone")
        models = os.path.join(t, "models-soup")
        exp = run(["export", "--checkpoint", os.path.join(out, "soup.pt"), "--out-dir", models, "--name", "soup",
                   "--framing-json", self.framing, "--data", self.data, "--cache", "", "--threads", "1"])
        os.rename(other + "-gone", other)
        self.assertEqual(exp.returncode, 0, exp.stderr)
        with open(os.path.join(models, "soup.json")) as f:
            m = json.load(f)
        self.assertEqual(m["training"]["soup"], ingredients)
        self.assertNotIn("cycles", m["training"])
        self.assertAlmostEqual(m["evaluation"]["accuracy"], soup["public_test_acc"], delta=1.5 / 250)
        # A run fine-tuned from the soup, distilled from saved targets (--teacher-targets): its
        # export's chain of cycles starts with the soup and its ingredients.
        import numpy as np
        targets = os.path.join(t, "teacher-saved.npy")
        logits = torch.from_numpy(np.random.default_rng(3).normal(size=(300, 7)).astype(np.float32))
        np.save(targets, torch.log_softmax(logits / 4.0, dim=1).numpy())
        tuned = os.path.join(t, "soup-tuned")
        r = run(["train", "--data", self.data, "--cache", "", "--arch", "emonet-xs", "--epochs", "1", "--lr", "0.02",
                 "--limit", "300", "--threads", "1", "--out", tuned, "--init", os.path.join(out, "soup.pt"),
                 "--teacher-targets", targets, "--kd-alpha", "0.7", "--kd-temperature", "4"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"teacher targets from {targets}", r.stdout)
        exp = run(["export", "--checkpoint", os.path.join(tuned, "last.pt"), "--out-dir", models, "--name", "tuned",
                   "--framing-json", self.framing, "--data", self.data, "--cache", "", "--threads", "1"])
        self.assertEqual(exp.returncode, 0, exp.stderr)
        with open(os.path.join(models, "tuned.json")) as f:
            m = json.load(f)
        self.assertEqual(m["training"]["cycles"], [{"epochs": 1, "soup": ingredients}, {"epochs": 1, "lr": 0.02}])
        self.assertEqual(m["training"]["epochs"], 2)
        # Refused, with the reason: one ingredient, a soup as an ingredient, two architectures, a
        # missing file.
        s_arch = os.path.join(t, "other-arch")
        os.makedirs(s_arch, exist_ok=True)
        with open(os.path.join(self.run_dir, "config.json")) as src, open(os.path.join(s_arch, "config.json"), "w") as dst:
            dst.write(src.read())
        torch.save(dict(torch.load(a), arch="emonet-s"), os.path.join(s_arch, "best.pt"))
        for ingredients, fragment in (([a], "at least two"),
                                      ([a, os.path.join(out, "soup.pt")], "already a soup"),
                                      ([a, os.path.join(s_arch, "best.pt")], "one architecture per soup"),
                                      ([a, os.path.join(t, "nothing.pt")], "nothing.pt")):
            with self.subTest(fragment=fragment):
                args = ["soup", "--out", os.path.join(t, "refused-soup"), "--data", self.data, "--cache", ""]
                for c in ingredients:
                    args += ["--checkpoint", c]
                r = run(args)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn(fragment, r.stderr)
                self.assertNotIn("Traceback", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(t, "refused-soup")))

    def test_device_cuda_without_a_gpu_is_a_clear_error(self):
        import torch
        if torch.cuda.is_available():
            self.skipTest("this machine has a CUDA GPU")
        r = run(["train", "--data", self.data, "--cache", "", "--epochs", "1", "--limit", "300",
                 "--out", os.path.join(self.tmp.name, "nogpu"), "--device", "cuda"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("no CUDA GPU", r.stderr)

    def test_evaluate_agrees_with_the_recorded_accuracy(self):
        self.assertEqual(self.export.returncode, 0, self.export.stderr)
        out = os.path.join(self.tmp.name, "eval.json")
        figs = os.path.join(self.tmp.name, "figs")
        r = run(["evaluate", "--model", os.path.join(self.models, "smoke.json"), "--data", self.data, "--cache", "",
                 "--threads", "1", "--json", out, "--figures", figs, "--log", os.path.join(self.run_dir, "log.jsonl")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("tta hflip", r.stdout)
        with open(out) as f:
            m = json.load(f)
        self.assertEqual(m["n"], 250)
        self.assertAlmostEqual(m["accuracy"], self.meta()["evaluation"]["accuracy"], places=9)
        self.assertEqual(sum(c["support"] for c in m["per_class"].values()), 250)
        self.assertEqual(sum(map(sum, m["confusion"])), 250)
        import cv2
        for name in ("confusion", "failures", "examples", "class-counts", "training-curve"):
            with self.subTest(figure=name):
                self.assertIsNotNone(cv2.imread(os.path.join(figs, name + ".png")))

    def test_evaluate_refuses_a_model_whose_onnx_changed(self):
        self.assertEqual(self.export.returncode, 0, self.export.stderr)
        bad = os.path.join(self.tmp.name, "tampered")
        os.makedirs(bad, exist_ok=True)
        m = self.meta()
        m["sha256"] = "0" * 64
        with open(os.path.join(bad, "smoke.json"), "w") as f:
            json.dump(m, f)
        os.link(os.path.join(self.models, "smoke.onnx"), os.path.join(bad, "smoke.onnx"))
        r = run(["evaluate", "--model", os.path.join(bad, "smoke.json"), "--data", self.data, "--cache", ""])
        self.assertEqual(r.returncode, 1)
        self.assertIn("differs from", r.stderr)

    def test_compare_counts_the_faces_two_models_disagree_on(self):
        import cv2
        import numpy as np
        from emotion_train.data import load_dataset
        from emotion_train.evaluate import class_weights, dnn_predict
        self.assertEqual(self.export.returncode, 0, self.export.stderr)
        # The one-epoch smoke model against the shipped default, on the subset's 250 PublicTest faces.
        shipped = os.path.join(REPO, "models", "emonet-xs.json")
        out = os.path.join(self.tmp.name, "compare.json")
        r = run(["compare", "--model", os.path.join(self.models, "smoke.json"), "--model", shipped,
                 "--data", self.data, "--cache", "", "--threads", "1", "--json", out])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("McNemar p = ", r.stdout)
        with open(out) as f:
            c = json.load(f)
        smoke, xs = c["models"]
        self.assertEqual((smoke["model"], smoke["tta"], xs["model"]), ("smoke", "hflip", "emonet-xs"))
        self.assertAlmostEqual(smoke["accuracy"], self.meta()["evaluation"]["accuracy"], places=9)
        with open(shipped) as f:
            meta = json.load(f)
        images, labels, usages = load_dataset(self.data, "")
        test = usages == "PublicTest"
        net = cv2.dnn.readNetFromONNX(os.path.join(REPO, "models", meta["onnx"]))
        # As the daemon decides: with the shipped model's prior correction.
        right = dnn_predict(net, images[test], meta["normalization"], meta["tta"],
                            weights=class_weights(meta)).argmax(1) == labels[test]
        self.assertAlmostEqual(xs["accuracy"], float(np.mean(right)), places=9)
        d = c["against_baseline"][0]
        self.assertEqual((d["baseline"], d["model"], d["n"]), ("smoke", "emonet-xs", 250))
        self.assertAlmostEqual(d["difference"], xs["accuracy"] - smoke["accuracy"], places=9)
        self.assertAlmostEqual(d["difference"], (d["right_only_b"] - d["right_only_a"]) / 250, places=9)
        # Trained for 40 epochs against one epoch on 300 faces: clearly better, and the test says so.
        self.assertGreater(d["right_only_b"], d["right_only_a"])
        self.assertLess(d["p_mcnemar"], 0.01)
        self.assertGreater(d["ci95"][0], 0)
        r = run(["compare", "--model", shipped, "--data", self.data, "--cache", ""])
        self.assertEqual(r.returncode, 1)
        self.assertIn("at least two --model", r.stderr)

    def test_export_fails_and_writes_nothing_when_opencv_disagrees(self):
        # Substitute the graph of a differently initialised network: the parity check must catch it.
        import torch
        from emotion_train.arch import build
        from emotion_train.evaluate import ModelError
        from emotion_train import export
        self.assertEqual(self.train.returncode, 0, self.train.stderr)
        torch.manual_seed(123)
        other = export.to_onnx(build("emonet-xs"))
        out_dir = os.path.join(self.tmp.name, "refused")
        args = argparse.Namespace(checkpoint=os.path.join(self.run_dir, "best.pt"), out_dir=out_dir, name="bad",
                                  framing_json=None, tta="none", data=self.data, cache="", threads=1)
        with mock.patch.object(export, "to_onnx", return_value=other), self.assertRaises(ModelError) as cm, \
                contextlib.redirect_stdout(io.StringIO()):
            export.run_export(args)
        self.assertIn("max probability difference", str(cm.exception))
        self.assertFalse(os.path.exists(out_dir) and os.listdir(out_dir))

    def test_export_rejects_a_path_as_name(self):
        r = run(["export", "--checkpoint", os.path.join(self.run_dir, "best.pt"), "--out-dir", self.models,
                 "--name", "../escape", "--data", self.data, "--cache", ""])
        self.assertEqual(r.returncode, 1)
        self.assertIn("model name", r.stderr)


if __name__ == "__main__":
    unittest.main()
