"""FER2013 CSV loading: users bring their own file, so a malformed row must be refused with its
line number rather than turned into a silently wrong data set."""
import gzip
import os
import tempfile
import unittest

import numpy as np

from emotion_train.data import DataError, load_cached, load_dataset, load_fer2013, load_ferplus, write_pack

HEADER = "emotion,pixels,Usage\n"


def row(label=3, pixels=None, usage="Training", seed=0):
    if pixels is None:
        pixels = " ".join(str(v) for v in np.random.default_rng(seed).integers(0, 256, 2304))
    return f"{label},{pixels},{usage}\n"


class LoaderTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def write(self, text, name="f.csv", compress=False):
        path = os.path.join(self.tmp.name, name)
        opener = gzip.open if compress else open
        with opener(path, "wt", newline="") as f:
            f.write(text)
        return path

    def assertBadLine(self, text, line, fragment):
        path = self.write(text)
        with self.assertRaises(DataError) as cm:
            load_fer2013(path)
        msg = str(cm.exception)
        self.assertIn(f"{path}:{line}:", msg)
        self.assertIn(fragment, msg)

    def test_valid_rows_keep_pixels_labels_and_order(self):
        rows = [row(0, seed=1), row(6, usage="PublicTest", seed=2), row(5, usage="PrivateTest", seed=3)]
        images, labels, usages = load_fer2013(self.write(HEADER + "".join(rows)))
        self.assertEqual(images.shape, (3, 48, 48))
        self.assertEqual(images.dtype, np.uint8)
        self.assertEqual(labels.tolist(), [0, 6, 5])
        self.assertEqual(usages.tolist(), ["Training", "PublicTest", "PrivateTest"])
        # Row-major: the second value in the CSV is pixel (0, 1).
        first = [int(v) for v in rows[1].split(",")[1].split()]
        self.assertEqual(images[1].ravel().tolist(), first)

    def test_gzip_and_plain_give_the_same_arrays(self):
        text = HEADER + row(1, seed=4) + row(2, seed=5)
        plain = load_fer2013(self.write(text, "a.csv"))
        packed = load_fer2013(self.write(text, "a.csv.gz", compress=True))
        for a, b in zip(plain, packed):
            np.testing.assert_array_equal(a, b)

    def test_crlf_line_endings_are_accepted(self):
        images, _, _ = load_fer2013(self.write((HEADER + row(seed=6)).replace("\n", "\r\n")))
        self.assertEqual(len(images), 1)

    def test_bad_header(self):
        self.assertBadLine("label,pixels,Usage\n" + row(), 1, "header")

    def test_wrong_pixel_count(self):
        self.assertBadLine(HEADER + row() + row(pixels="1 2 3"), 3, "2304")

    def test_pixel_value_256(self):
        self.assertBadLine(HEADER + row() + row() + row(pixels=" ".join(["256"] + ["0"] * 2303)), 4, "0..255")

    def test_negative_pixel_value(self):
        self.assertBadLine(HEADER + row(pixels=" ".join(["-1"] + ["0"] * 2303)), 2, "0..255")

    def test_pixel_not_an_integer(self):
        self.assertBadLine(HEADER + row(pixels=" ".join(["1.5"] + ["0"] * 2303)), 2, "not an integer")

    def test_label_7(self):
        self.assertBadLine(HEADER + row() + row(label=7), 3, "emotion 7")

    def test_bad_usage(self):
        self.assertBadLine(HEADER + row(usage="Validation"), 2, "Usage")

    def test_missing_field(self):
        self.assertBadLine(HEADER + "3,1 2 3\n", 2, "3 fields")

    def test_header_only_is_an_error(self):
        with self.assertRaises(DataError):
            load_fer2013(self.write(HEADER))

    def test_truncated_gzip_is_an_error_not_a_crash(self):
        path = self.write(HEADER + row() + row(), "t.csv.gz", compress=True)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])
        with self.assertRaises(DataError):
            load_fer2013(path)

    def test_cache_returns_the_parsed_data(self):
        path = self.write(HEADER + row(4, seed=7) + row(5, usage="PublicTest", seed=8))
        cache = os.path.join(self.tmp.name, "cache")
        first = load_cached(path, cache)
        self.assertEqual(len(os.listdir(cache)), 1)
        second = load_cached(path, cache)
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)


    def test_pack_round_trip_with_ferplus_votes(self):
        path = self.write(HEADER + row(4, seed=7) + row(5, usage="PublicTest", seed=8) + row(0, seed=9))
        votes = self.write("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
                           "unknown,NF\nTraining,a,0,10,0,0,0,0,0,0,0,0\nPublicTest,b,5,0,0,0,5,0,0,0,0,0\n"
                           "Training,c,0,0,0,0,0,0,0,0,0,10\n", name="votes.csv")
        pack = os.path.join(self.tmp.name, "d.npz.xz")
        self.assertEqual(write_pack(path, pack, votes), 3)
        for a, b in zip(load_fer2013(path), load_dataset(pack)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(load_ferplus(pack, 3), load_ferplus(votes, 3))
        self.assertEqual(load_ferplus(pack, 3)[1].tolist(), [0.5, 0, 0, 0, 0, 0, 0.5])

    def test_pack_without_votes_and_broken_packs_are_refused(self):
        path = self.write(HEADER + row(4, seed=7))
        pack = os.path.join(self.tmp.name, "novotes.npz.xz")
        write_pack(path, pack)
        with self.assertRaises(DataError) as cm:
            load_ferplus(pack, 1)
        self.assertIn("no FER+ votes", str(cm.exception))
        broken = os.path.join(self.tmp.name, "broken.npz.xz")
        with open(pack, "rb") as f, open(broken, "wb") as g:
            g.write(f.read()[:100])
        with self.assertRaises(DataError) as cm:
            load_dataset(broken)
        self.assertIn("not a readable data pack", str(cm.exception))
        with self.assertRaises(DataError):
            write_pack(path, os.path.join(self.tmp.name, "wrong.npz"))


if __name__ == "__main__":
    unittest.main()
