"""FER2013 loading and validation.

The canonical Kaggle file has the header ``emotion,pixels,Usage`` and one face per row:
a label 0..6, 2304 space-separated grey values 0..255 (48x48, row-major) and a split name.
Users download it themselves, so every row is validated and a bad one is reported with its
line number (1-based, header = line 1) instead of producing a silently wrong data set.
"""
import csv
import functools
import gzip
import hashlib
import io
import lzma
import os

import numpy as np

from . import IMAGE_SIZE, LABELS

USAGES = ("Training", "PublicTest", "PrivateTest")
NPIX = IMAGE_SIZE * IMAGE_SIZE

# FER+ vote columns in fer2013new.csv, mapped to the FER2013 label order.
_FERPLUS_COLUMNS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


class DataError(ValueError):
    """A data file that does not have the expected format; the message names file and line."""


def _open_text(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="ascii", newline="")
    return open(path, "r", encoding="ascii", newline="")


def load_fer2013(path):
    """Read a FER2013 CSV (plain or gzip) and return (images uint8 [N,48,48], labels int64 [N],
    usage array of str [N]). Raises DataError naming the line of the first bad row."""
    images, labels, usages = [], [], []
    try:
        with _open_text(path) as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: empty file")
            if [h.strip() for h in header] != ["emotion", "pixels", "Usage"]:
                raise DataError(f"{path}:1: expected header 'emotion,pixels,Usage', got {','.join(header)!r}")
            for line, row in enumerate(reader, start=2):
                if len(row) != 3:
                    raise DataError(f"{path}:{line}: expected 3 fields, got {len(row)}")
                emotion, pixels, usage = row
                try:
                    label = int(emotion)
                except ValueError:
                    raise DataError(f"{path}:{line}: emotion {emotion!r} is not an integer") from None
                if not 0 <= label < len(LABELS):
                    raise DataError(f"{path}:{line}: emotion {label} outside 0..{len(LABELS) - 1}")
                if usage not in USAGES:
                    raise DataError(f"{path}:{line}: Usage {usage!r} is not one of {', '.join(USAGES)}")
                try:
                    values = np.array(pixels.split(), dtype=np.int32)
                except ValueError:
                    raise DataError(f"{path}:{line}: pixels hold a value that is not an integer") from None
                if values.size != NPIX:
                    raise DataError(f"{path}:{line}: expected {NPIX} pixel values, got {values.size}")
                if values.min() < 0 or values.max() > 255:
                    raise DataError(f"{path}:{line}: pixel values must lie in 0..255")
                images.append(values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
                labels.append(label)
                usages.append(usage)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    if not images:
        raise DataError(f"{path}: no data rows")
    return np.stack(images), np.array(labels, dtype=np.int64), np.array(usages)


def load_ferplus(path, n_rows):
    """Read FER+ votes (fer2013new.csv, or a pack made with --ferplus) for the first n_rows rows, as
    float32 [n_rows, 7] vote distributions in FER2013 order. Rows without any vote on the 7 shared
    classes get all zeros."""
    if is_pack(path):
        pack = _read_pack(path)
        if "ferplus" not in pack:
            raise DataError(f"{path}: this pack holds no FER+ votes (pack it with --ferplus)")
        votes = pack["ferplus"]
        if len(votes) < n_rows:
            raise DataError(f"{path}: FER+ votes for {len(votes)} rows, the data has {n_rows}")
        return votes[:n_rows]
    with open(path, "r", encoding="ascii", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _FERPLUS_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(f"{path}:1: missing columns {', '.join(missing)}")
        votes = np.zeros((n_rows, len(LABELS)), dtype=np.float32)
        for i, row in enumerate(reader):
            if i >= n_rows:
                break
            try:
                votes[i] = [float(row[c]) for c in _FERPLUS_COLUMNS]
            except ValueError:
                raise DataError(f"{path}:{i + 2}: vote is not a number") from None
        if i + 1 < n_rows:
            raise DataError(f"{path}: {i + 1} rows, FER2013 file has {n_rows}")
    total = votes.sum(axis=1, keepdims=True)
    return np.divide(votes, total, out=np.zeros_like(votes), where=total > 0)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_cached(path, cache_dir):
    """load_fer2013 with an .npz cache keyed by the file's sha256 (parsing takes ~20 s)."""
    digest = file_sha256(path)
    cache = os.path.join(cache_dir, f"fer2013-{digest[:16]}.npz") if cache_dir else None
    if cache and os.path.exists(cache):
        z = np.load(cache)
        return z["images"], z["labels"], z["usages"].astype(str)
    images, labels, usages = load_fer2013(path)
    if cache:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = cache + ".tmp.npz"
        np.savez_compressed(tmp, images=images, labels=labels, usages=usages)
        os.replace(tmp, cache)
    return images, labels, usages


# A pack is the parsed data set (and optionally the FER+ votes) as one xz-compressed .npz: 55 MB
# instead of the 85 MB CSV, loaded in seconds. It exists to move the data to a training machine.
PACK_SUFFIX = ".npz.xz"
_PACK_FILTERS = [{"id": lzma.FILTER_DELTA, "dist": 1}, {"id": lzma.FILTER_LZMA2, "preset": 6}]


def is_pack(path):
    return str(path).endswith(PACK_SUFFIX)


def write_pack(data_path, out_path, ferplus_path=None, cache_dir=None):
    """Parse and validate data_path, then write it (with FER+ vote distributions) to out_path."""
    if not is_pack(out_path):
        raise DataError(f"{out_path}: a pack file name ends in {PACK_SUFFIX}")
    images, labels, usages = load_cached(data_path, cache_dir)
    arrays = dict(images=images, labels=labels, usages=usages.astype("S10"))
    if ferplus_path:
        arrays["ferplus"] = load_ferplus(ferplus_path, len(labels))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    tmp = out_path + ".tmp"
    with lzma.open(tmp, "wb", format=lzma.FORMAT_XZ, filters=_PACK_FILTERS) as f:
        f.write(buf.getbuffer())
    os.replace(tmp, out_path)
    return len(labels)


@functools.lru_cache(maxsize=1)
def _read_pack(path):
    try:
        with lzma.open(path, "rb") as f:
            z = np.load(io.BytesIO(f.read()))
            return {k: z[k] for k in z.files}
    except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
        raise DataError(f"{path}: not a readable data pack: {e}") from None


def _load_pack(path):
    pack = _read_pack(path)
    try:
        images, labels = pack["images"], pack["labels"]
        usages = pack["usages"].astype(str)
    except KeyError as e:
        raise DataError(f"{path}: pack lacks {e}") from None
    n = len(labels)
    if images.dtype != np.uint8 or images.shape != (n, IMAGE_SIZE, IMAGE_SIZE) or usages.shape != (n,):
        raise DataError(f"{path}: pack arrays have the wrong shapes or types")
    if n == 0 or labels.min() < 0 or labels.max() >= len(LABELS):
        raise DataError(f"{path}: pack labels outside 0..{len(LABELS) - 1}")
    bad = set(np.unique(usages)) - set(USAGES)
    if bad:
        raise DataError(f"{path}: pack has unknown Usage values {sorted(bad)}")
    return images, labels.astype(np.int64), usages


def load_dataset(path, cache_dir=None):
    """A FER2013 CSV (plain or gzip, through the cache) or a pack, as (images, labels, usages)."""
    return _load_pack(path) if is_pack(path) else load_cached(path, cache_dir)
