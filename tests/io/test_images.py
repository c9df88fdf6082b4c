"""Reading PNG/JPEG/DICOM into 2-D uint8 grayscale, with pixel spacing from DICOM and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

from lymphcast.io.images import ImageReadError, read_image

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"


def gradient(h: int = 32, w: int = 32) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) % 256).astype(np.uint8)


def write_dicom(path, pixels: np.ndarray, *, spacing=0.12, frames: int = 1, syntax=ExplicitVRLittleEndian,
                photometric="MONOCHROME2"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = US_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if spacing is not None:
        ds.PixelSpacing = [spacing, spacing]
    ds.PixelData = pixels.tobytes()
    if syntax.is_compressed:
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([b"\x00" * 16])  # not a real codestream; must fail cleanly, not crash
    ds.save_as(path, enforce_file_format=True)
    return path


def test_png_gray_roundtrip(tmp_path):
    Image.fromarray(gradient()).save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.pixels.dtype == np.uint8 and img.shape == (32, 32)
    assert np.array_equal(img.pixels, gradient()) and img.spacing_mm is None


def test_rgb_and_rgba_become_gray(tmp_path):
    rgb = np.zeros((32, 40, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(np.dstack([rgb, np.full((32, 40), 255, np.uint8)])).save(tmp_path / "d.png")
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    for name in ("c.png", "d.png", "c.jpg"):
        img = read_image(tmp_path / name)
        assert img.pixels.ndim == 2 and img.shape == (32, 40)
        assert abs(int(img.pixels[16, 20]) - round(0.299 * 200)) <= 2


def test_16bit_png_is_rescaled(tmp_path):
    arr = (np.arange(32 * 32).reshape(32, 32) * 60).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "w.png")
    img = read_image(tmp_path / "w.png")
    assert img.pixels.dtype == np.uint8 and img.pixels.min() == 0 and img.pixels.max() == 255


def test_dicom_pixels_and_spacing(tmp_path):
    img = read_image(write_dicom(tmp_path / "u.dcm", gradient(), spacing=0.12))
    assert np.array_equal(img.pixels, gradient())
    assert img.spacing_mm == pytest.approx(0.12)
    inv = read_image(write_dicom(tmp_path / "m1.dcm", gradient(), photometric="MONOCHROME1"))
    assert np.array_equal(inv.pixels, 255 - gradient())


def test_dicom_without_suffix_is_detected(tmp_path):
    write_dicom(tmp_path / "IM0001", gradient(), spacing=0.2)
    assert read_image(tmp_path / "IM0001").spacing_mm == pytest.approx(0.2)


def test_multiframe_dicom_rejected(tmp_path):
    path = write_dicom(tmp_path / "cine.dcm", np.stack([gradient()] * 3), frames=3)
    with pytest.raises(ImageReadError, match="multi-frame"):
        read_image(path)


def test_compressed_dicom_clear_error(tmp_path):
    path = write_dicom(tmp_path / "j2k.dcm", gradient(), syntax=JPEG2000Lossless)
    with pytest.raises(ImageReadError, match="compressed"):
        read_image(path)


@pytest.mark.parametrize("content", [b"", b"not an image at all", None])
def test_corrupt_or_missing(tmp_path, content):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError):
        read_image(path)


def test_truncated_png_and_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    for name in ("t.png", "t.jpg"):
        Image.fromarray(noise).save(tmp_path / name)
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(ImageReadError, match="corrupt|truncated"):
            read_image(tmp_path / name)


def test_dicom_without_pixels(tmp_path):
    path = write_dicom(tmp_path / "sr.dcm", gradient())
    import pydicom

    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(ImageReadError, match="no image"):
        read_image(path)
