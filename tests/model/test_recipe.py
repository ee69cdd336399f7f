"""The recipe switches that the ablation measures: parts of the augmentation can be switched off,
class weights follow their formula, and ablation.py trains, scores and tabulates its variants."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

from . import TRAIN_DIR, fer2013_path, write_subset
from fer.augment import augment
from fer.train import AUGMENT_PARTS, augment_options, class_weights


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
class AblationCliTest(unittest.TestCase):
    def test_two_variants_are_trained_scored_and_tabulated(self):
        with tempfile.TemporaryDirectory() as t:
            data = os.path.join(t, "subset.csv.gz")
            write_subset(fer2013_path(), data, n_train=200, n_test=150)
            out = os.path.join(t, "abl")
            cmd = [sys.executable, os.path.join(TRAIN_DIR, "ablation.py"), "--data", data, "--cache", "",
                   "--out", out, "--epochs", "1", "--variants", "without-erase,weights-inverse"]
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
        r = subprocess.run([sys.executable, os.path.join(TRAIN_DIR, "ablation.py"), "--data", "x.csv",
                            "--out", "/nonexistent", "--variants", "recipe,bogus"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown bogus", r.stderr)
        r = subprocess.run([sys.executable, os.path.join(TRAIN_DIR, "emotion-model"), "train", "--data", "x.csv",
                            "--out", "/nonexistent", "--augment-without", "blur"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--augment-without", r.stderr)
