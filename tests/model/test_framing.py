"""Framing: the reference crop the daemon must reproduce, and the YuNet calibration."""
import json
import os
import subprocess
import tempfile
import unittest

import cv2
import numpy as np

from . import CLI, fer2013_path, yunet_path
from emotion_train.framing import (UPRIGHT_MIN_ROLL, calibrate, crop_face, eye_roll, frame_rect, load_framing,
                                   make_scene, upright_crop)

IDENTITY = {"scale": 1.0, "offset_x": 0.0, "offset_y": 0.0}


def ramp(h, w):
    """An image whose every pixel is distinct enough to show where a crop came from."""
    y, x = np.mgrid[0:h, 0:w]
    return ((x * 3 + y * 5) % 256).astype(np.uint8)


class CropTest(unittest.TestCase):
    def test_frame_rect_follows_the_documented_formula(self):
        # side = 1.5 * max(30, 40) = 60; centre = (10 + 15 + 0.1 * 60, 20 + 20 - 0.2 * 60) = (31, 28)
        f = {"scale": 1.5, "offset_x": 0.1, "offset_y": -0.2}
        self.assertEqual(frame_rect((10, 20, 30, 40), f), (1, -2, 60))

    def test_box_inside_the_image_is_a_plain_resized_slice(self):
        img = ramp(200, 300)
        got = crop_face(img, (50, 40, 96, 96), IDENTITY)
        want = cv2.resize(img[40:136, 50:146], (48, 48), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(got, want)

    def test_small_box_is_enlarged_with_linear_interpolation(self):
        img = ramp(100, 100)
        got = crop_face(img, (10, 10, 24, 24), IDENTITY)
        want = cv2.resize(img[10:34, 10:34], (48, 48), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(got, want)

    def test_colour_input_is_converted_to_grey(self):
        img = ramp(120, 120)
        bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        np.testing.assert_array_equal(crop_face(bgr, (10, 10, 96, 96), IDENTITY),
                                      crop_face(img, (10, 10, 96, 96), IDENTITY))

    def test_square_leaving_the_image_is_padded_by_replicating_the_border(self):
        img = ramp(100, 100)
        # A 48-pixel square starting 10 pixels left of and 5 above the image: no resampling.
        got = crop_face(img, (-10, -5, 48, 48), IDENTITY)
        self.assertEqual(got.shape, (48, 48))
        np.testing.assert_array_equal(got[5:, 10:], img[0:43, 0:38])
        np.testing.assert_array_equal(got[5:, :10], np.repeat(img[0:43, :1], 10, axis=1))
        np.testing.assert_array_equal(got[:5, 10:], np.repeat(img[:1, 0:38], 5, axis=0))

    def test_scale_and_offset_move_the_square(self):
        img = ramp(300, 300)
        f = {"scale": 2.0, "offset_x": 0.25, "offset_y": -0.25}
        # Box 48x48 at (100, 100): side 96, centre (124 + 24, 124 - 24) = (148, 100).
        got = crop_face(img, (100, 100, 48, 48), f)
        np.testing.assert_array_equal(got, crop_face(img, (100, 52, 96, 96), IDENTITY))

    def test_scene_round_trip_recovers_the_face(self):
        # make_scene puts a face at a known frame; cropping that frame must give the face back
        # (up to the cubic enlargement and area reduction), which is what calibration relies on.
        face = cv2.GaussianBlur(ramp(48, 48), (3, 3), 0)
        scene = make_scene(face, 192, 96)
        got = crop_face(scene, (96, 96, 192, 192), IDENTITY).astype(int)
        self.assertLess(np.abs(got - face).mean(), 2.0)
        # The same frame described as a smaller box and a larger scale.
        got2 = crop_face(scene, (144, 144, 96, 96), {"scale": 2.0, "offset_x": 0.0, "offset_y": 0.0})
        np.testing.assert_array_equal(got2, got)

    def test_eye_roll_is_clockwise_as_seen(self):
        self.assertAlmostEqual(eye_roll(((10, 10), (20, 10))), 0.0)
        # The left eye (image right) lower: the face is turned clockwise on the screen.
        self.assertAlmostEqual(eye_roll(((10, 10), (20, 20))), 45.0)

    def test_upright_crop_turns_a_turned_face_back(self):
        face = cv2.GaussianBlur(ramp(48, 48), (3, 3), 0)
        scene = make_scene(face, 192, 96)
        box = (96, 96, 192, 192)
        # Below the threshold the crop is the plain one.
        np.testing.assert_array_equal(upright_crop(scene, box, UPRIGHT_MIN_ROLL - 1, IDENTITY),
                                      crop_face(scene, box, IDENTITY))
        for roll in (25.0, -25.0):
            with self.subTest(roll=roll):
                # OpenCV's positive angle turns counter-clockwise as seen: -roll turns by roll.
                m = cv2.getRotationMatrix2D((192.0, 192.0), -roll, 1.0)
                turned = cv2.warpAffine(scene, m, (384, 384), borderMode=cv2.BORDER_REPLICATE)
                back = np.abs(upright_crop(turned, box, roll, IDENTITY).astype(int) - face).mean()
                as_it_lies = np.abs(crop_face(turned, box, IDENTITY).astype(int) - face).mean()
                self.assertLess(back, 3.0)
                self.assertGreater(as_it_lies, 4 * back)

    def test_load_framing_rejects_incomplete_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "f.json")
            with open(path, "w") as f:
                json.dump({"scale": 1.1, "offset_x": 0.0}, f)
            with self.assertRaises(ValueError):
                load_framing(path)
            with open(path, "w") as f:
                json.dump({"scale": 1.1, "offset_x": 0.01, "offset_y": -0.02, "detected": 9, "tried": 10}, f)
            self.assertEqual(load_framing(path), {"scale": 1.1, "offset_x": 0.01, "offset_y": -0.02})


@unittest.skipUnless(fer2013_path() and yunet_path(),
                     "needs FER2013 (EMO_FER2013) and YuNet 2022mar (EMO_YUNET) or ../shared next to the checkout")
class CalibrationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from . import write_subset
        from emotion_train.data import load_fer2013
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = os.path.join(cls.tmp.name, "subset.csv.gz")
        write_subset(fer2013_path(), cls.data, n_train=60, n_test=0)
        cls.faces = load_fer2013(cls.data)[0]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_calibrated_framing_reproduces_the_fer2013_crop(self):
        cv2.setNumThreads(1)
        framing, found = calibrate(self.faces, yunet_path())
        self.assertGreaterEqual(len(found), 0.8 * len(self.faces))
        self.assertTrue(0.8 < framing["scale"] < 1.25, framing)
        self.assertLess(abs(framing["offset_x"]), 0.1)
        self.assertLess(abs(framing["offset_y"]), 0.1)
        # Applying the framing to each detection must land on the original 48x48 face: the crop
        # correlates with it better than crops 1.4 times too large or too small. (Pixel
        # correlation, because a 2-pixel shift alone already costs ~25 grey levels of mean error.)
        det = cv2.FaceDetectorYN.create(yunet_path(), "", (576, 576), 0.9, 0.3, 50)
        corr = {1.0: [], 1.4: [], 1 / 1.4: []}
        for face in self.faces[:24]:
            scene = make_scene(face, 192, 192)
            _, faces = det.detect(scene)
            if faces is None:
                continue
            box = faces[np.argmax(faces[:, -1])][:4]
            for k in corr:
                crop = crop_face(scene, box, dict(framing, scale=framing["scale"] * k))
                corr[k].append(np.corrcoef(crop.ravel().astype(float), face.ravel().astype(float))[0, 1])
        self.assertGreater(len(corr[1.0]), 15)
        med = {k: np.median(v) for k, v in corr.items()}
        self.assertGreater(med[1.0], 0.6, med)
        self.assertGreater(med[1.0], med[1.4] + 0.05, med)
        self.assertGreater(med[1.0], med[1 / 1.4] + 0.05, med)

    def test_cli_writes_the_framing_file(self):
        out = os.path.join(self.tmp.name, "framing.json")
        r = subprocess.run(CLI + ["calibrate-framing", "--data", self.data, "--cache", "", "--detector",
                                  yunet_path(), "--n", "20", "--threads", "1", "--out", out],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"detected \d+ / 20 faces")
        with open(out) as f:
            d = json.load(f)
        self.assertEqual(set(d), {"scale", "offset_x", "offset_y", "detected", "tried"})
        self.assertEqual(d["tried"], 20)
        self.assertEqual(load_framing(out)["scale"], d["scale"])

    def test_cli_reports_a_detector_opencv_cannot_load(self):
        bogus = os.path.join(self.tmp.name, "not-a-model.onnx")
        with open(bogus, "wb") as f:
            f.write(b"not onnx")
        r = subprocess.run(CLI + ["calibrate-framing", "--data", self.data, "--cache", "", "--detector", bogus,
                                  "--n", "5", "--out", os.path.join(self.tmp.name, "x.json")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("emotion-model:", r.stderr)
        self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main()
