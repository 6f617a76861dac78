"""`spectral-lab export`: one frame as PNG / .npy / .csv (best, last, N, stop:RULE), the whole
trajectory as a labelled array (npz; netCDF and Zarr when their extras are installed), and the
contract around outputs: refused before any work, never over a trajectory, never half-written."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from _fakes import run_cli

from spectral_lab.analyze.psnr import psnr
from spectral_lab.errors import ExportError
from spectral_lab.export import parse_frame, png_bytes
from spectral_lab.trajectory import open_trajectory

MODEL = ("--model", "dip", "--model-opt", "levels=2", "--model-opt", "down=8", "--model-opt", "up=8",
         "--model-opt", "in_channels=4", "--runs", "2", "--lr", "0.01", "--device", "cpu", "--quiet")
IMAGE = ("record", "--signal", "image", "--downsample", "1", "--noise", "white", "--sigma", "25", *MODEL,
         "--iterations", "12")
ONED = ("record", "--signal", "sines", "--freqs", "2,5", "--amps", "1,1", "--length", "32", "--model", "conv",
        "--depth", "3", "--width", "8", "--iterations", "9", "--every", "3", "--runs", "2", "--lr", "0.01",
        "--device", "cpu", "--quiet")


def decode_png(data: bytes) -> tuple[np.ndarray, dict]:
    """Pixels (H, W[, 3]) and the header of an unfiltered PNG, read independently of the writer."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, chunks = 8, {}
    while i < len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        kind, body = data[i + 4:i + 8], data[i + 8:i + 8 + n]
        assert struct.unpack(">I", data[i + 8 + n:i + 12 + n])[0] == zlib.crc32(kind + body)
        chunks.setdefault(kind, []).append(body)
        i += 12 + n
    w, h, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    raw = np.frombuffer(zlib.decompress(b"".join(chunks[b"IDAT"])), dtype=np.uint8).reshape(h, -1)
    assert np.all(raw[:, 0] == 0)  # filter type 0 on every row
    channels = 3 if colour == 2 else 1
    pixels = raw[:, 1:].copy().view(">u2" if depth == 16 else np.uint8).reshape(h, w, channels)
    text = dict(b.split(b"\0", 1) for b in chunks.get(b"tEXt", []))
    return (pixels[..., 0] if channels == 1 else pixels), {"depth": depth, "colour": colour, "text": text}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from PIL import Image

    from spectral_lab.cli import main

    folder = tmp_path_factory.mktemp("export")
    clean = folder / "clean.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(clean)
    image, oned, observed_only = folder / "image.h5", folder / "oned.h5", folder / "noref.h5"
    assert main([*IMAGE, "--image", str(clean), "--out", str(image)]) == 0
    assert main([*ONED, "--out", str(oned)]) == 0
    assert main(["record", "--observed", str(clean), "--downsample", "1", *MODEL, "--iterations", "12",
                 "--out", str(observed_only)]) == 0
    return {"image": image, "oned": oned, "noref": observed_only}


# --------------------------------------------------------------------------- the frame spec

@pytest.mark.parametrize("text, expected", [("best", ("best", None)), ("last", ("last", None)),
                                            ("40", ("iteration", 40)), ("stop:es_wmv", ("stop", "es_wmv"))])
def test_frame_specs_parse(text, expected):
    assert parse_frame(text) == expected


@pytest.mark.parametrize("text", ["-3", "stop:", "first", "1.5"])
def test_a_bad_frame_spec_is_a_usage_error(text, files, tmp_path, capsys):
    with pytest.raises(ValueError):
        parse_frame(text)
    code, _, err = run_cli(capsys, "export", files["image"], "--frame", text, "-o", tmp_path / "x.png")
    assert code == 2 and "--frame" in err


# --------------------------------------------------------------------------- PNG

def test_png_bytes_hold_16_bit_rgb_and_grey_exactly():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    pixels, head = decode_png(png_bytes(rgb, {"Software": "x"}))
    assert head["depth"] == 16 and head["colour"] == 2 and head["text"] == {b"Software": b"x"}
    np.testing.assert_array_equal(pixels, rgb)
    grey = rng.integers(0, 65536, (4, 3), dtype=np.uint16)
    np.testing.assert_array_equal(decode_png(png_bytes(grey))[0], grey)


def test_pillow_reads_the_8_bit_png_as_written(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(1).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    (tmp_path / "a.png").write_bytes(png_bytes(rgb))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), rgb)


def test_export_best_writes_the_oracle_best_frame_as_16_bit_png(files, tmp_path, capsys):
    out = tmp_path / "best.png"
    code, text, err = run_cli(capsys, "export", files["image"], "--frame", "best", "--run", "1", "-o", out)
    assert code == 0, err
    with open_trajectory(files["image"]) as t:
        frames = np.asarray(t.frames(1)[:], dtype=np.float64)
        best = int(np.argmax(psnr(frames, np.asarray(t.target, dtype=np.float64))))
        frame = np.asarray(t.frames(1)[best], dtype=np.float64)
    pixels, head = decode_png(out.read_bytes())
    assert head["depth"] == 16 and pixels.shape == (16, 20, 3)
    np.testing.assert_array_equal(pixels, np.rint(np.moveaxis(np.clip(frame, 0, 1), 0, -1) * 65535))
    assert f"run 1 at iteration {best}" in text and "best PSNR" in text


def test_export_bits_8_writes_an_8_bit_png(files, tmp_path, capsys):
    out = tmp_path / "last8.png"
    code, _, err = run_cli(capsys, "export", files["image"], "--frame", "last", "--bits", "8", "-o", out)
    assert code == 0, err
    with open_trajectory(files["image"]) as t:
        frame = np.asarray(t.frames(0)[t.n_frames(0) - 1], dtype=np.float64)
    pixels, head = decode_png(out.read_bytes())
    assert head["depth"] == 8
    np.testing.assert_array_equal(pixels, np.rint(np.moveaxis(np.clip(frame, 0, 1), 0, -1) * 255))


# --------------------------------------------------------------------------- which frame

def test_export_an_iteration_that_is_stored(files, tmp_path, capsys):
    out = tmp_path / "it6.npy"
    code, _, err = run_cli(capsys, "export", files["oned"], "--frame", "6", "-o", out)
    assert code == 0, err
    with open_trajectory(files["oned"]) as t:
        index = list(t.frame_iterations(0)).index(6)
        np.testing.assert_array_equal(np.load(out), t.frames(0)[index])


def test_an_iteration_between_stored_frames_is_refused_naming_the_nearest(files, tmp_path, capsys):
    out = tmp_path / "it4.npy"
    code, _, err = run_cli(capsys, "export", files["oned"], "--frame", "4", "-o", out)
    assert code == 1 and "iteration 4 is not stored (a frame every 3 iterations)" in err
    assert "nearest stored are 3 and 6" in err and err.count("\n") == 1 and not out.exists()
    code, _, err = run_cli(capsys, "export", files["oned"], "--frame", "99", "-o", out)
    assert code == 1 and "end at 9" in err


def test_a_1d_signal_exports_as_csv(files, tmp_path, capsys):
    out = tmp_path / "last.csv"
    code, _, err = run_cli(capsys, "export", files["oned"], "--frame", "last", "--run", "1", "-o", out)
    assert code == 0, err
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert out.read_text().splitlines()[0] == "sample,t,value"
    with open_trajectory(files["oned"]) as t:
        frame = np.asarray(t.frames(1)[t.n_frames(1) - 1], dtype=np.float64)
    np.testing.assert_array_equal(table[:, 0], np.arange(32))
    np.testing.assert_allclose(table[:, 1], np.arange(32) / 32)
    np.testing.assert_allclose(table[:, 2], frame, rtol=1e-8)


def test_stop_rule_frame_is_where_analyze_stop_stops(files, tmp_path, capsys):
    code, text, _ = run_cli(capsys, "analyze", "stop", files["image"], "--rule", "es_wmv", "--window", "4",
                            "--json")
    stop = json.loads(text)["results"][1]["iteration"]
    out = tmp_path / "stop.npy"
    code, text, err = run_cli(capsys, "export", files["image"], "--frame", "stop:es_wmv", "--rule-opt", "window=4",
                              "--run", "1", "-o", out)
    assert code == 0, err
    assert f"iteration {stop}" in text
    with open_trajectory(files["image"]) as t:
        np.testing.assert_array_equal(np.load(out), t.frames(1)[stop])


def test_a_pair_rule_exports_the_average_of_the_pair(files, tmp_path, capsys):
    code, text, _ = run_cli(capsys, "analyze", "stop", files["image"], "--rule", "pair_discrepancy", "--json")
    stop = json.loads(text)["results"][0]["iteration"]
    out = tmp_path / "pair.npy"
    code, text, err = run_cli(capsys, "export", files["image"], "--frame", "stop:pair_discrepancy", "-o", out)
    assert code == 0, err
    assert "average of runs 0 and 1" in text
    with open_trajectory(files["image"]) as t:
        average = 0.5 * (np.asarray(t.frames(0)[stop], np.float64) + t.frames(1)[stop])
    np.testing.assert_allclose(np.load(out), average, atol=1e-7)


def test_without_a_clean_target_best_is_refused_and_a_stop_rule_still_works(files, tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", files["noref"], "--frame", "best", "-o", tmp_path / "b.png")
    assert code == 1 and "needs the clean target" in err and "stop:RULE" in err and err.count("\n") == 1
    code, text, err = run_cli(capsys, "export", files["noref"], "--frame", "stop:es_wmv", "--rule-opt", "window=4",
                              "-o", tmp_path / "s.png")
    assert code == 0, err
    assert (tmp_path / "s.png").exists()


def test_an_unknown_rule_is_refused(files, tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", files["image"], "--frame", "stop:magic", "-o", tmp_path / "m.png")
    assert code == 1 and "unknown stopping rule 'magic'" in err


# --------------------------------------------------------------------------- the output contract

def test_an_unsupported_suffix_is_refused_before_the_file_is_read(tmp_path, capsys):
    missing = tmp_path / "does-not-exist.h5"
    for argv in (["--frame", "last", "-o", tmp_path / "x.jpg"], ["--to", "npz", "-o", tmp_path / "x.nc"],
                 ["--to", "netcdf", "-o", tmp_path / "x.h5"]):
        code, _, err = run_cli(capsys, "export", missing, *argv)
        assert code == 1 and "cannot write a" in err and "no such file" not in err


def test_a_suffix_of_the_other_signal_kind_is_refused(files, tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", files["image"], "--frame", "last", "-o", tmp_path / "x.csv")
    assert code == 1 and "use .png or .npy" in err and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("argv, flag", [(["--frame", "last", "--bits", "8", "-o", "x.npy"], "--bits"),
                                        (["--to", "npz", "--run", "1", "-o", "x.npz"], "--run"),
                                        (["--frame", "last", "--sigma", "25", "-o", "x.npy"], "--sigma"),
                                        (["--frame", "best", "--rule-opt", "window=3", "-o", "x.npy"], "--rule-opt")])
def test_flags_the_output_would_ignore_are_refused(files, tmp_path, capsys, argv, flag):
    argv = [a if a not in ("x.npy", "x.npz") else tmp_path / a for a in argv]
    code, _, err = run_cli(capsys, "export", files["image"], *argv)
    assert code == 1 and f"{flag} does not apply" in err


def test_an_existing_output_needs_overwrite_and_a_trajectory_is_never_overwritten(files, tmp_path, capsys):
    out = tmp_path / "x.npy"
    out.write_bytes(b"keep me")
    code, _, err = run_cli(capsys, "export", files["image"], "--frame", "last", "-o", out)
    assert code == 1 and "pass --overwrite" in err and out.read_bytes() == b"keep me"
    code, _, err = run_cli(capsys, "export", files["image"], "--frame", "last", "-o", out, "--overwrite")
    assert code == 0 and np.load(out).shape == (3, 16, 20)
    fake = tmp_path / "traj.npz"  # a trajectory under an export's name
    fake.write_bytes(files["oned"].read_bytes())
    before = fake.read_bytes()
    code, _, err = run_cli(capsys, "export", files["image"], "--to", "npz", "-o", fake, "--overwrite")
    assert code == 1 and "never overwritten" in err and fake.read_bytes() == before


def test_a_failing_export_leaves_no_file_behind(files, tmp_path, monkeypatch, capsys):
    from spectral_lab.export import labelled

    def broken(data, tmp):
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(labelled, "_write_npz", broken)
    out = tmp_path / "all.npz"
    code, _, err = run_cli(capsys, "export", files["image"], "--to", "npz", "-o", out)
    assert code == 1 and "No space left" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the whole trajectory

def _expected(path):
    with open_trajectory(path) as t:
        return (np.stack([np.asarray(t.frames(r)[:], np.float32) for r in range(t.n_runs)]),
                np.stack([t.losses(r) for r in range(t.n_runs)]), t.frame_iterations(0), t.config)


def test_npz_holds_the_labelled_trajectory(files, tmp_path, capsys):
    out = tmp_path / "oned.npz"
    code, _, err = run_cli(capsys, "export", files["oned"], "--to", "npz", "-o", out)
    assert code == 0, err
    frames, losses, its, config = _expected(files["oned"])
    with np.load(out, allow_pickle=False) as z:
        dims = json.loads(z["dims"].item())
        attrs = json.loads(z["attrs"].item())
        np.testing.assert_array_equal(z["output"], frames)
        np.testing.assert_array_equal(z["loss"], losses)
        np.testing.assert_array_equal(z["iteration"], its)
        assert list(z["seed"]) == [0, 1]
    assert dims["output"] == ["run", "iteration", "sample"] and dims["target"] == ["sample"]
    assert json.loads(attrs["config"]) == config and attrs["config.fit.lr"] == 0.01


def test_netcdf_opens_in_xarray_with_named_dims_and_the_config(files, tmp_path, capsys):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    out = tmp_path / "image.nc"
    code, _, err = run_cli(capsys, "export", files["image"], "--to", "netcdf", "-o", out)
    assert code == 0, err
    frames, losses, its, config = _expected(files["image"])
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["output"].dims == ("run", "iteration", "channel", "y", "x")
        np.testing.assert_array_equal(ds["output"].values, frames)
        np.testing.assert_array_equal(ds["loss"].values, losses)
        assert list(ds["iteration"].values) == list(its)
        assert json.loads(ds.attrs["config"]) == config and ds.attrs["config.model.name"] == "dip"
        assert ds["target"].dims == ("channel", "y", "x")


def test_zarr_opens_in_xarray_with_named_dims(files, tmp_path, capsys):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("zarr")
    out = tmp_path / "image.zarr"
    code, _, err = run_cli(capsys, "export", files["image"], "--to", "zarr", "-o", out)
    assert code == 0, err
    frames, _, _, config = _expected(files["image"])
    with xr.open_zarr(out) as ds:
        assert ds["output"].dims == ("run", "iteration", "channel", "y", "x")
        np.testing.assert_array_equal(ds["output"].values, frames)
        assert list(ds["seed"].values) == [0, 1] and json.loads(ds.attrs["config"]) == config
    code, _, err = run_cli(capsys, "export", files["image"], "--to", "zarr", "-o", out, "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.zarr"]


def test_a_missing_optional_dependency_is_named_with_its_extra(files, tmp_path, monkeypatch):
    import builtins

    from spectral_lab.export import check_export

    real = builtins.__import__

    def no_h5netcdf(name, *args, **kwargs):
        if name == "h5netcdf":
            raise ImportError(name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5netcdf)
    with pytest.raises(ExportError, match=r"pip install 'spectral_lab\[xarray\]'"):
        check_export(tmp_path / "x.nc", "netcdf", overwrite=False)
