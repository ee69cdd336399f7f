"""The recipe switches that the ablation measures: parts of the augmentation can be switched off,
class weights follow their formula, and ablation.py trains, scores and tabulates its variants."""
import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

import cv2
import numpy as np
import torch

from . import REPO, TRAIN_DIR, fer2013_path, write_subset
from emotion_train.augment import augment, blur, jpeg
from emotion_train.train import (AUGMENT_PARTS, _retime, augment_options, class_weights, epochs_within,
                                 recompute_batchnorm)


class AugmentPartsTest(unittest.TestCase):
    def setUp(self):
        g = torch.Generator().manual_seed(3)
        self.x = torch.rand(16, 1, 48, 48, generator=g)

    def aug(self, *without):
        return augment(self.x, torch.Generator().manual_seed(5), **augment_options(without))

    def test_everything_switched_off_is_the_identity(self):
        y = self.aug(*AUGMENT_PARTS)
        self.assertLess(float((y - self.x).abs().max()), 1e-5)

    def test_each_part_alone_changes_the_faces(self):
        for part in AUGMENT_PARTS:
            with self.subTest(part=part):
                y = self.aug(*(p for p in AUGMENT_PARTS if p != part))
                self.assertGreater(float((y - self.x).abs().max()), 0.05)

    def test_flip_alone_only_mirrors(self):
        y = self.aug("affine", "jitter", "erase")
        mirrored = torch.flip(self.x, dims=[3])
        for i in range(len(y)):
            same = float((y[i] - self.x[i]).abs().max()) < 1e-5
            flipped = float((y[i] - mirrored[i]).abs().max()) < 1e-5
            self.assertTrue(same or flipped, f"face {i} is neither itself nor its mirror")

    def test_unknown_part_is_refused(self):
        with self.assertRaisesRegex(ValueError, "--augment-without blur"):
            augment_options(["blur"])


class CameraAugmentTest(unittest.TestCase):
    """--camera-augment: light, blur, noise and JPEG as a camera gives them, off by default."""

    def setUp(self):
        # Smooth grey images with edges, like faces and unlike uniform noise, which JPEG destroys.
        rng = np.random.default_rng(4)
        faces = [cv2.GaussianBlur(rng.integers(0, 256, (48, 48)).astype(np.uint8), (0, 0), 2.0) for _ in range(16)]
        for f in faces:
            cv2.rectangle(f, (10, 12), (30, 20), int(rng.integers(0, 256)), -1)
            cv2.normalize(f, f, 0, 255, cv2.NORM_MINMAX)
        self.u8 = np.stack(faces)
        self.x = torch.from_numpy(self.u8).float().div(255).view(16, 1, 48, 48)

    def test_jpeg_matches_opencvs_encoder(self):
        for q in (20, 50, 85):
            with self.subTest(quality=q):
                ref = np.stack([cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, q])[1],
                                             cv2.IMREAD_GRAYSCALE) for f in self.u8]).astype(np.float32)
                ours = jpeg(self.x, torch.full((16,), float(q)))[:, 0].numpy() * 255
                # Within a grey level on average, and far closer than the uncompressed faces.
                ours_off, raw_off = float(np.abs(ours - ref).mean()), float(np.abs(self.u8 - ref).mean())
                self.assertLess(ours_off, 1.0)
                self.assertLess(ours_off, raw_off / 4, f"raw faces are {raw_off:.2f} grey levels away")

    def test_blur_matches_opencvs_gaussian(self):
        sigma = torch.linspace(0.3, 1.1, 16)
        ours = blur(self.x, sigma)[:, 0].numpy()
        for i in range(16):
            ref = cv2.GaussianBlur(self.x[i, 0].numpy(), (7, 7), float(sigma[i]), borderType=cv2.BORDER_REPLICATE)
            np.testing.assert_allclose(ours[i], ref, atol=1e-5)

    def test_off_draws_nothing_and_changes_nothing(self):
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        self.assertTrue(torch.equal(augment(self.x, g1), augment(self.x, g2, **augment_options([], 0.0))))
        self.assertTrue(torch.equal(g1.get_state(), g2.get_state()))

    def test_on_changes_faces_within_range(self):
        base = augment(self.x, torch.Generator().manual_seed(5))
        y = augment(self.x, torch.Generator().manual_seed(5), **augment_options([], 1.0))
        changed = ((y - base).abs().flatten(1).max(1).values > 0.02).sum().item()
        # Each face skips all five faults with probability 1/32.
        self.assertGreaterEqual(changed, 12)
        self.assertGreaterEqual(float(y.min()), 0.0)
        self.assertLessEqual(float(y.max()), 1.0)

    def test_probability_outside_0_1_is_refused(self):
        with self.assertRaisesRegex(ValueError, "--camera-augment 1.5"):
            augment_options([], 1.5)


class ClassWeightsTest(unittest.TestCase):
    def test_formula_and_unit_mean_over_the_faces(self):
        labels = np.array([0] * 60 + [1] * 15 + [2] * 25)
        for mode, p in (("sqrt", 0.5), ("inverse", 1.0)):
            with self.subTest(mode=mode):
                w = class_weights(labels, mode, n_classes=3).numpy()
                raw = (100 / np.array([60, 15, 25])) ** p
                np.testing.assert_allclose(w / w[0], raw / raw[0], rtol=1e-6)
                self.assertAlmostEqual(float(w[labels].mean()), 1.0, places=5)
        np.testing.assert_allclose(class_weights(labels, "none", n_classes=3).numpy(), 1.0, rtol=1e-6)

    def test_inverse_weights_give_every_class_the_same_total(self):
        labels = np.array([0] * 70 + [1] * 5 + [2] * 25)
        w = class_weights(labels, "inverse", n_classes=3).numpy()
        totals = w * np.bincount(labels)
        np.testing.assert_allclose(totals, totals[0], rtol=1e-6)

    def test_absent_class_gets_no_weight_and_unknown_mode_is_refused(self):
        w = class_weights(np.array([0, 0, 2]), "inverse", n_classes=3).numpy()
        self.assertEqual(w[1], 0.0)
        with self.assertRaisesRegex(ValueError, "--class-weights square"):
            class_weights(np.array([0, 1]), "square", n_classes=2)


@unittest.skipUnless(fer2013_path(), "needs fer2013.csv.gz: set EMO_FER2013 or put it in "
                                     "../shared/data/fer2013/ next to the checkout")
class WeightAverageTest(unittest.TestCase):
    def net(self, seed):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))

    def test_the_average_is_the_mean_of_the_weights(self):
        # What train does each averaged epoch: torch's AveragedModel.update_parameters(model).
        nets = [self.net(s) for s in (1, 2, 3)]
        avg = torch.optim.swa_utils.AveragedModel(nets[0])
        for n in nets:
            avg.update_parameters(n)
        self.assertEqual(int(avg.n_averaged), 3)
        for k, v in nets[0].named_parameters():
            want = sum(dict(n.named_parameters())[k] for n in nets) / 3
            self.assertTrue(torch.allclose(dict(avg.module.named_parameters())[k], want, atol=1e-6), k)
        # The averaged network is a copy: the template keeps its own weights.
        self.assertFalse(torch.allclose(nets[0][0].weight, avg.module[0].weight))
        # Its state_dict (what last.pt keeps) carries the average across a resume.
        again = torch.optim.swa_utils.AveragedModel(self.net(9))
        again.load_state_dict(avg.state_dict())
        again.update_parameters(nets[0])
        self.assertEqual(int(again.n_averaged), 4)
        self.assertTrue(torch.allclose(again.module[0].weight,
                                       (3 * avg.module[0].weight + nets[0][0].weight) / 4, atol=1e-6))

    def test_a_time_budget_counts_the_averaged_epochs_dearer(self):
        # 100 s per epoch, averaged ones 150 s: 5 averaged cost 750, the other 250 s buy 2 more.
        self.assertEqual(epochs_within(1000, 100, 50, 5), 7)
        self.assertEqual(epochs_within(1000, 100, 50, 0), 10)
        # Every epoch averaged, and the budget too small for all of them.
        self.assertEqual(epochs_within(1000, 100, 50, 30), 6)
        self.assertEqual(epochs_within(1000, 100, 50, 8), 6)

    def test_the_second_epoch_refits_the_schedule_where_the_run_is(self):
        # The probe planned 20 epochs of 10 steps in a 100 s budget. The first epoch took 15 s (one-off
        # costs), the second 10 s: 25 s gone, 75 s left for 7 more epochs of 10.2 s with the margin.
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump({"epochs": 20, "lr": 0.1}, f)
            net = torch.nn.Linear(2, 2)
            opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=20, steps_per_epoch=10,
                                                        pct_start=0.2)
            for _ in range(20):
                opt.step()
                sched.step()
            args = argparse.Namespace(epochs=20, lr=0.1, out=d)
            with contextlib.redirect_stdout(io.StringIO()) as out:
                sched = _retime(args, opt, sched, 2, 25.0, 10.0, 100, 300, 10, os.path.join(d, "log.jsonl"))
            self.assertEqual(args.epochs, 9)
            self.assertIn("9 epochs instead of 20", out.getvalue())
            with open(os.path.join(d, "config.json")) as f:
                self.assertEqual(json.load(f), {"epochs": 9, "lr": 0.1, "retimed_from": 20})
            with open(os.path.join(d, "log.jsonl")) as f:
                self.assertEqual(json.loads(f.read())["retimed"], 9)
            # The rest of the run follows a 9-epoch schedule from its 21st step, to its end.
            ref_opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
            ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=0.1, epochs=9, steps_per_epoch=10,
                                                      pct_start=0.2)
            for _ in range(20):
                ref_opt.step()
                ref.step()
            for _ in range(70):
                self.assertAlmostEqual(opt.param_groups[0]["lr"], ref_opt.param_groups[0]["lr"], places=12)
                opt.step()
                sched.step()
                ref_opt.step()
                ref.step()
            self.assertAlmostEqual(opt.param_groups[0]["lr"], ref_opt.param_groups[0]["lr"], places=12)
            # The probe was right: nothing changes. Out of time: the run ends with the epochs done.
            args = argparse.Namespace(epochs=9, lr=0.1, out=d)
            self.assertIs(_retime(args, opt, sched, 2, 20.0, 9.0, 90, 300, 10, os.path.join(d, "log.jsonl")), sched)
            self.assertEqual(args.epochs, 9)
            args = argparse.Namespace(epochs=9, lr=0.1, out=d)
            with contextlib.redirect_stdout(io.StringIO()):
                _retime(args, opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=9, steps_per_epoch=10),
                        2, 120.0, 60.0, 100, 300, 10, os.path.join(d, "log.jsonl"))
            self.assertEqual(args.epochs, 2)

    def test_batchnorm_statistics_are_those_of_the_faces(self):
        net = self.net(4)
        x = torch.rand(512, 1, 12, 12)
        recompute_batchnorm(net, x, 0.5, 0.25, {}, augmented=False, batch=128)
        self.assertFalse(net.training)
        with torch.no_grad():
            h = net[0]((x - 0.5) / 0.25)
        # Equal batches: the cumulative average of the batch means is the mean over all faces.
        self.assertTrue(torch.allclose(net[1].running_mean, h.mean(dim=(0, 2, 3)), atol=1e-5))
        batch_vars = torch.stack([h[i:i + 128].var(dim=(0, 2, 3)) for i in range(0, 512, 128)])
        self.assertTrue(torch.allclose(net[1].running_var, batch_vars.mean(0), atol=1e-5))
        self.assertEqual(net[1].momentum, 0.1)  # restored for training
        # Augmented, with its fixed generator: other statistics, but the same ones every time.
        a = recompute_batchnorm(self.net(4), x, 0.5, 0.25, {}, augmented=True)[1].running_mean.clone()
        b = recompute_batchnorm(self.net(4), x, 0.5, 0.25, {}, augmented=True)[1].running_mean
        self.assertTrue(torch.equal(a, b))
        self.assertFalse(torch.allclose(a, net[1].running_mean, atol=1e-5))


class TeacherCacheTest(unittest.TestCase):
    def test_targets_are_kept_and_keyed_by_teacher_and_temperature(self):
        from unittest import mock
        from emotion_train import train as fer_train
        from emotion_train.arch import build
        rng = np.random.default_rng(0)
        faces = rng.integers(0, 256, (12, 48, 48)).astype(np.uint8)
        with tempfile.TemporaryDirectory() as tmp:
            teachers = []
            for seed in (1, 2):
                torch.manual_seed(seed)
                path = os.path.join(tmp, f"teacher{seed}.pt")
                torch.save({"arch": "emonet-xs", "model": build("emonet-xs").state_dict(), "mean": 0.5,
                            "std": 0.25, "epoch": 1, "public_test_acc": 0.5}, path)
                teachers.append(path)
            cache = os.path.join(tmp, "cache")
            with contextlib.redirect_stdout(io.StringIO()):
                first = fer_train.cached_teacher_log_probs(teachers, faces, 4.0, "cpu", cache)
                self.assertEqual(len(os.listdir(cache)), 1)
                self.assertEqual(tuple(first.shape), (12, 7))
                torch.testing.assert_close(first.exp().sum(1), torch.ones(12))
                with mock.patch.object(fer_train, "teacher_log_probs", side_effect=AssertionError("recomputed")):
                    again = fer_train.cached_teacher_log_probs(teachers, faces, 4.0, "cpu", cache)
                torch.testing.assert_close(again, first)
                # Another temperature, another teacher set or other faces: new targets, not the cached ones.
                other_t = fer_train.cached_teacher_log_probs(teachers, faces, 2.0, "cpu", cache)
                one = fer_train.cached_teacher_log_probs(teachers[:1], faces, 4.0, "cpu", cache)
                fewer = fer_train.cached_teacher_log_probs(teachers, faces[:6], 4.0, "cpu", cache)
            self.assertEqual(len(os.listdir(cache)), 4)
            self.assertGreater(float((other_t - first).abs().max()), 1e-4)
            self.assertGreater(float((one - first).abs().max()), 1e-4)
            torch.testing.assert_close(fewer, first[:6])


class SavedTargetsTest(unittest.TestCase):
    def test_saved_targets_load_as_they_were_cached_and_bad_files_are_refused(self):
        from emotion_train import train as fer_train
        rng = np.random.default_rng(1)
        logits = torch.from_numpy(rng.normal(size=(10, 7)).astype(np.float32))
        targets = torch.log_softmax(logits / 4.0, dim=1)
        with tempfile.TemporaryDirectory() as tmp:
            good = os.path.join(tmp, "teacher-x.npy")
            np.save(good, targets.numpy())
            with contextlib.redirect_stdout(io.StringIO()) as out:
                loaded = fer_train.load_teacher_targets(good, 10, "cpu")
            self.assertTrue(torch.equal(loaded, targets))
            self.assertIn(good, out.getvalue())
            # Rows for other faces (a --limit that differs), rows that are not distributions, a
            # file that is no array at all: each refused, naming the file.
            with self.assertRaisesRegex(ValueError, r"teacher-x.npy: holds float32 \(10, 7\), not float \(12, 7\)"):
                fer_train.load_teacher_targets(good, 12, "cpu")
            logits_file = os.path.join(tmp, "logits.npy")
            np.save(logits_file, logits.numpy())
            with self.assertRaisesRegex(ValueError, "logits.npy: rows are not log-probabilities"):
                fer_train.load_teacher_targets(logits_file, 10, "cpu")
            labels_file = os.path.join(tmp, "labels.npy")
            np.save(labels_file, np.zeros((10, 7), dtype=np.int64))
            with self.assertRaisesRegex(ValueError, "labels.npy: holds int64"):
                fer_train.load_teacher_targets(labels_file, 10, "cpu")
            text = os.path.join(tmp, "text.npy")
            with open(text, "w") as f:
                f.write("not an array\n")
            with self.assertRaisesRegex(ValueError, "text.npy: not a readable .npy file"):
                fer_train.load_teacher_targets(text, 10, "cpu")


class ExportedTeacherTest(unittest.TestCase):
    """train --teacher models/emonet-s.json: the shipped models teach through OpenCV DNN, so a user
    without our checkpoints can distil them."""
    XS = os.path.join(REPO, "models", "emonet-xs.json")

    def setUp(self):
        rng = np.random.default_rng(3)
        self.faces = rng.integers(0, 256, (10, 48, 48)).astype(np.uint8)

    def test_targets_are_the_daemons_probabilities_tempered(self):
        from emotion_train import evaluate
        from emotion_train.train import teacher_log_probs
        net, meta = evaluate.load_model(self.XS)
        with contextlib.redirect_stdout(io.StringIO()):
            t1 = teacher_log_probs([self.XS], self.faces, 1.0, "cpu")
            t4 = teacher_log_probs([self.XS], self.faces, 4.0, "cpu")
        # T = 1: exactly what the daemon computes with mirror averaging.
        daemon = evaluate.dnn_predict(net, self.faces, meta["normalization"], tta="hflip")
        np.testing.assert_allclose(t1.exp().numpy(), daemon, atol=1e-5)
        # T = 4: each view's probabilities p become p^(1/4), renormalised, then the views averaged.
        views = []
        for flip in (False, True):
            x = evaluate.normalise(self.faces[:, :, ::-1] if flip else self.faces, meta["normalization"])
            net.setInput(x)
            q = net.forward().astype(np.float64) ** 0.25
            views.append(q / q.sum(1, keepdims=True))
        np.testing.assert_allclose(t4.exp().numpy(), (views[0] + views[1]) / 2, atol=1e-5)
        entropy = lambda lp: -(lp.exp() * lp).sum(1)  # noqa: E731
        self.assertTrue(bool((entropy(t4) > entropy(t1)).all()), "a higher temperature must flatten the targets")

    def test_a_model_whose_onnx_does_not_match_its_metadata_is_refused(self):
        import shutil
        from emotion_train.evaluate import ModelError
        from emotion_train.train import teacher_log_probs
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(self.XS, tmp)
            shutil.copy(os.path.join(REPO, "models", "emonet-s.onnx"), os.path.join(tmp, "emonet-xs.onnx"))
            with self.assertRaisesRegex(ModelError, "sha256"):
                teacher_log_probs([os.path.join(tmp, "emonet-xs.json")], self.faces, 4.0, "cpu")


class AblationCliTest(unittest.TestCase):
    def test_two_variants_are_trained_scored_and_tabulated(self):
        with tempfile.TemporaryDirectory() as t:
            data = os.path.join(t, "subset.csv.gz")
            write_subset(fer2013_path(), data, n_train=200, n_test=150)
            out = os.path.join(t, "abl")
            cmd = [sys.executable, "-m", "emotion_train.ablation", "--data", data, "--cache", "", "--out", out,
                   "--epochs", "1", "--variants", "without-erase,weights-inverse"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(os.path.join(out, "ablation.json")) as f:
                results = json.load(f)["results"]
            self.assertEqual(sorted(results), ["weights-inverse", "without-erase"])
            for name, res in results.items():
                self.assertTrue(0 <= res["accuracy"] <= 1, name)
                self.assertEqual(set(res["recall"]), {"angry", "disgust", "fear", "happy", "sad", "surprise",
                                                      "neutral"})
            with open(os.path.join(out, "weights-inverse", "config.json")) as f:
                self.assertEqual(json.load(f)["class_weights"], "inverse")
            with open(os.path.join(out, "without-erase", "config.json")) as f:
                self.assertEqual(json.load(f)["augment_without"], ["erase"])
            self.assertIn("| without-erase |", r.stdout)
            # A second call trains nothing again and gives the same table.
            again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            self.assertEqual(again.returncode, 0, again.stderr)
            self.assertEqual(again.stdout.splitlines()[-3:], r.stdout.splitlines()[-3:])
            self.assertNotIn("start", again.stdout)

    def test_unknown_variant_and_bad_train_option_are_refused(self):
        r = subprocess.run([sys.executable, "-m", "emotion_train.ablation", "--data", "x.csv",
                            "--out", "/nonexistent", "--variants", "recipe,bogus"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown bogus", r.stderr)
        # Through the launcher script, from another folder and without PYTHONPATH: it finds the
        # package beside it.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        r = subprocess.run([sys.executable, os.path.join(TRAIN_DIR, "emotion-model"), "train", "--data", "x.csv",
                            "--out", "/nonexistent", "--augment-without", "blur"],
                           capture_output=True, text=True, timeout=60, cwd="/", env=env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--augment-without", r.stderr)
