"""The plumbing around the suite: `make demo` records only what is missing, the shared data folder
is found through $SPECTRAL_LAB_SHARED as well as ../shared."""

from __future__ import annotations

from conftest import REPO, make_dry_run, shared_data_dir


def _dry_run(folder) -> str:
    return "\n".join(make_dry_run(folder, "demo"))


def test_demo_records_both_files_when_they_are_missing(tmp_path):
    commands = _dry_run(tmp_path)
    records = [line for line in commands.splitlines() if " record " in line]
    assert len(records) == 2 and all("--threads 1" in line for line in records)
    assert "--iterations 1500" in records[1] and "--downsample 16" in records[1]
    assert "plot psnr trajectories/demo-photo.h5" in commands


def test_demo_does_not_record_again_when_the_files_exist(tmp_path):
    (tmp_path / "trajectories").mkdir()
    _dry_run(tmp_path)  # creates the set-up files first, so that the trajectories are newer
    for name in ("demo-sines.h5", "demo-photo.h5"):
        (tmp_path / "trajectories" / name).touch()
    commands = _dry_run(tmp_path)
    assert " record " not in commands and "analyze psnr" in commands


def test_shared_data_is_found_through_the_environment(tmp_path):
    (tmp_path / "data").mkdir()
    assert shared_data_dir({"SPECTRAL_LAB_SHARED": str(tmp_path)}) == tmp_path / "data"
    assert shared_data_dir({"SPECTRAL_LAB_SHARED": str(tmp_path / "data")}) == tmp_path / "data"
    assert shared_data_dir({}) == REPO.parent / "shared" / "data"
