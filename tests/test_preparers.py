"""Each preparer turns tiny files in its official metadata format into the expected manifest."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data.manifest import read_manifest
from data.prepare import main
from data.preparers import BuildOptions, MetadataError
from data.preparers.audiocaps import prepare_audiocaps
from data.preparers.audioset import labels_caption, prepare_audioset
from data.preparers.bbc import prepare_bbc
from data.preparers.clotho import prepare_clotho
from data.preparers.folder import prepare_folder
from data.preparers.manifest_builder import AudioIndex, seconds_text, youtube_clip_names
from data.preparers.wavcaps import prepare_wavcaps

SR = 8000


def wav(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * SR), dtype=np.float32), SR)
    return path


def text(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def by_id(manifest: Path) -> dict:
    return {e.id: e for e in read_manifest(manifest)}


def log_lines(report) -> list[list[str]]:
    assert report.log is not None and report.log.name.endswith(".missing.txt")
    return [line.split("\t") for line in report.log.read_text(encoding="utf-8").splitlines()]


# ----------------------------------------------------------------------------- helpers


def test_seconds_text_and_youtube_names():
    assert seconds_text("30.000") == "30" and seconds_text("7.50") == "7.5"
    names = youtube_clip_names("abc", "30")
    assert names[:2] == ["abc", "abc_30"]
    assert {"abc_30_40", "abc_30.000_40.000", "Yabc", "Yabc_30.0"} <= set(names)


def test_audio_index_finds_names_extensions_and_subfolders(tmp_path):
    wav(tmp_path / "a" / "x.flac", 0.1)
    wav(tmp_path / "y.WAV", 0.1)
    index = AudioIndex(tmp_path)
    assert index.find(["missing", "x"]) == str(tmp_path / "a" / "x.flac")
    assert index.find(["x.wav"]) == str(tmp_path / "a" / "x.flac")
    assert index.find(["a/x.mp3"]) == str(tmp_path / "a" / "x.flac")
    assert index.find(["y"]) == str(tmp_path / "y.WAV")
    assert index.find(["b/x"]) is None


def test_labels_caption():
    assert labels_caption(["Dog", "Bark", "Domestic animals, pets"]) == "The sound of dog, bark and domestic animals"
    assert labels_caption(["Speech"], "{labels} can be heard") == "speech can be heard"
    assert labels_caption([]) == ""


# ----------------------------------------------------------------------------- formats


def test_audiocaps(tmp_path):
    train = text(
        tmp_path / "train.csv",
        "audiocap_id,youtube_id,start_time,caption\n"
        "1,vidA,30,A dog barks\n"
        '2,-vidB,0,"Rain falls, thunder"\n'
        "3,vidGone,10,Nobody downloaded this\n",
    )
    test = text(
        tmp_path / "test.csv",
        "audiocap_id,youtube_id,start_time,caption\n"
        + "".join(f"{100 + i},vidC,20,caption {i}\n" for i in range(5))
        + "".join(f"{200 + i},vidD,50,other {i}\n" for i in range(5)),
    )
    wav(tmp_path / "train" / "vidA.wav", 1.0)
    wav(tmp_path / "train" / "Y-vidB.flac", 0.5)
    wav(tmp_path / "test" / "102.wav", 0.25)  # named by one audiocap_id of the clip
    wav(tmp_path / "test" / "vidD_50.ogg", 0.75)
    out = tmp_path / "out" / "audiocaps.jsonl"
    report = prepare_audiocaps([train, test], [tmp_path / "train", tmp_path / "test"], out)
    assert (report.written, report.missing, report.unreadable) == (4, 1, 0)
    entries = by_id(out)
    assert list(entries) == ["audiocaps_vidA_30", "audiocaps_-vidB_0", "audiocaps_vidC_20", "audiocaps_vidD_50"]
    assert entries["audiocaps_-vidB_0"].captions == ["Rain falls, thunder"]
    assert entries["audiocaps_vidC_20"].captions == [f"caption {i}" for i in range(5)]
    assert [e.split for e in entries.values()] == ["train", "train", "test", "test"]
    assert entries["audiocaps_vidA_30"].duration == pytest.approx(1.0)
    assert entries["audiocaps_vidD_50"].duration == pytest.approx(0.75)
    assert entries["audiocaps_vidC_20"].path == str(tmp_path / "test" / "102.wav")
    assert all(e.source == "audiocaps" for e in entries.values())
    (line,) = log_lines(report)
    assert line[0] == "audiocaps_vidGone_10" and "not found" in line[2]


def test_audiocaps_name_template_split_override_and_bad_csv(tmp_path):
    csv = text(tmp_path / "clips.csv", "audiocap_id,youtube_id,start_time,caption\n1,vidA,30,A dog\n")
    wav(tmp_path / "audio" / "vidA_30.wav", 0.5)
    wav(tmp_path / "audio" / "vidA.wav", 0.1)  # would win without the template
    out = tmp_path / "m.jsonl"
    report = prepare_audiocaps([csv], [tmp_path / "audio"], out, split="val", name_template="{youtube_id}_{start_time}")
    (entry,) = read_manifest(out)
    assert entry.path.endswith("vidA_30.wav") and entry.split == "val" and report.log is None
    bad = text(tmp_path / "bad.csv", "audiocap_id,youtube_id,start_time\n1,vidA,30\n")
    with pytest.raises(MetadataError, match=r"bad\.csv: missing column 'caption'"):
        prepare_audiocaps([bad], [tmp_path / "audio"], out)


def test_audioset(tmp_path):
    labels = text(
        tmp_path / "class_labels_indices.csv",
        'index,mid,display_name\n0,/m/0bt9lr,"Dog"\n1,/m/05tny_,"Bark"\n'
        '2,/m/068hy,"Domestic animals, pets"\n3,/m/09x0r,"Speech"\n',
    )
    segments = text(
        tmp_path / "balanced_train_segments.csv",
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# num_ytids=4, num_segs=4, num_unique_labels=4, num_positive_labels=6\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        '--dogvid01, 30.000, 40.000, "/m/0bt9lr,/m/05tny_,/m/068hy"\n'
        'speechvid1, 0.000, 10.000, "/m/09x0r"\n'
        'brokenvid1, 10.000, 20.000, "/m/09x0r"\n'
        'missingvid, 5.500, 15.500, "/m/09x0r,/m/unknown"\n',
    )
    wav(tmp_path / "audio" / "Y--dogvid01.wav", 1.0)
    wav(tmp_path / "audio" / "part01" / "speechvid1_0.000_10.000.flac", 0.5)
    (tmp_path / "audio" / "Ybrokenvid1.wav").write_bytes(b"not a wav file at all")
    out = tmp_path / "audioset.jsonl"
    report = prepare_audioset([segments], labels, [tmp_path / "audio"], out)
    assert (report.written, report.missing, report.unreadable) == (2, 1, 1)
    entries = by_id(out)
    dog = entries["audioset_--dogvid01_30"]
    assert dog.labels == ["Dog", "Bark", "Domestic animals, pets"]
    assert dog.captions == ["The sound of dog, bark and domestic animals"]
    assert dog.split == "train" and dog.source == "audioset" and dog.duration == pytest.approx(1.0)
    assert entries["audioset_speechvid1_0"].duration == pytest.approx(0.5)
    problems = {line[0]: line for line in log_lines(report)}
    assert set(problems) == {"audioset_missingvid_5.5", "audioset_brokenvid1_10"}
    assert "cannot open" in problems["audioset_brokenvid1_10"][2]
    bad = text(tmp_path / "eval_segments.csv", "# c\n# c\n# YTID, start_seconds, end_seconds\nvid, 0.0, 10.0\n")
    with pytest.raises(MetadataError, match=r"eval_segments\.csv:4: missing column 'positive_labels'"):
        prepare_audioset([bad], labels, [tmp_path / "audio"], out)


def test_wavcaps_json_variants(tmp_path):
    fsd = tmp_path / "json" / "fsd_final.json"
    text(
        fsd,
        json.dumps(
            {
                "num_captions_per_audio": 1,
                "data": [
                    {
                        "id": "180913",
                        "file_name": "UK Mello.wav",
                        "href": "x",
                        "tags": ["bell", "ring"],
                        "caption": "A bell rings.",
                        "duration": 3.2,
                        "author": "a",
                        "download_link": "d",
                    },
                    {"id": "999", "file_name": "gone.wav", "caption": "Missing.", "duration": 1.0},
                ],
            }
        ),
    )
    audioset_sl = text(
        tmp_path / "json" / "as_final.json",
        json.dumps(
            {
                "num_captions_per_audio": 1,
                "data": [{"id": "Y7fmOlUlwoNg.wav", "caption": "Music plays.", "audio": "wav_path", "duration": 10.0}],
            }
        ),
    )
    bbc = text(
        tmp_path / "json" / "bbc_final.json",
        json.dumps(
            {
                "num_captions_per_audio": 1,
                "data": [
                    {
                        "id": "07070001",
                        "description": "d",
                        "category": "['Boats', 'Water']",
                        "caption": "A boat approaches.",
                        "duration": 2.0,
                    }
                ],
            }
        ),
    )
    soundbible = text(
        tmp_path / "json" / "sb_final.json",
        json.dumps([{"title": "t", "id": "2219", "caption": "An airplane lands.", "duration": 14.1}]),
    )
    clotho_style = text(
        tmp_path / "json" / "clotho_val.json",
        json.dumps(
            {
                "num_captions_per_audio": 2,
                "data": [{"id": "c1", "audio": "/x/y/c1.wav", "caption_1": "one", "caption_2": "two", "duration": 0.5}],
            }
        ),
    )
    wav(tmp_path / "audio" / "FreeSound" / "180913.flac", 0.5)
    wav(tmp_path / "audio" / "AudioSet_SL" / "Y7fmOlUlwoNg.flac", 0.25)
    wav(tmp_path / "audio" / "BBC" / "07070001.flac", 0.5)
    wav(tmp_path / "audio" / "SoundBible" / "2219.flac", 0.5)
    wav(tmp_path / "audio" / "clotho" / "c1.wav", 0.5)
    out = tmp_path / "wavcaps.jsonl"
    report = prepare_wavcaps([fsd, audioset_sl, bbc, soundbible, clotho_style], [tmp_path / "audio"], out)
    assert (report.written, report.missing) == (5, 1)
    entries = by_id(out)
    assert set(entries) == {
        "wavcaps_freesound_180913",
        "wavcaps_audioset_sl_Y7fmOlUlwoNg",
        "wavcaps_bbc_07070001",
        "wavcaps_soundbible_2219",
        "wavcaps_c1",
    }
    fs = entries["wavcaps_freesound_180913"]
    assert fs.captions == ["A bell rings."] and fs.labels == ["bell", "ring"] and fs.source == "wavcaps_freesound"
    assert fs.duration == pytest.approx(0.5) and fs.split is None
    assert entries["wavcaps_bbc_07070001"].labels == ["Boats", "Water"]
    assert entries["wavcaps_c1"].captions == ["one", "two"]
    (line,) = log_lines(report)
    assert line[0] == "wavcaps_freesound_999"
    # without probing, durations come from the metadata; a source override renames ids
    report = prepare_wavcaps(
        [fsd], [tmp_path / "audio"], out, source="fsd", split="train", options=BuildOptions(probe=False)
    )
    (entry,) = read_manifest(out)
    assert (entry.id, entry.duration, entry.split, entry.source) == ("fsd_180913", 3.2, "train", "fsd")
    no_caption = text(tmp_path / "json" / "broken.json", json.dumps({"data": [{"id": "1", "duration": 1}]}))
    with pytest.raises(MetadataError, match=r"broken\.json: item 0: missing key 'caption'"):
        prepare_wavcaps([no_caption], [tmp_path / "audio"], out)


def test_bbc(tmp_path):
    csv = text(
        tmp_path / "BBCSoundEffects.csv",
        '"location","description","secs","category","CDNumber","CDName","tracknum"\n'
        '"07070001.wav","Boat, motor: approach and stop.","158","Boats: Motor","EC1T5","Boats","1"\n'
        '"07070002.wav","Seagulls calling.","60","Birds","EC1T5","Boats","2"\n'
        '"07070003.wav","Never downloaded.","30","Birds","EC1T5","Boats","3"\n',
    )
    wav(tmp_path / "audio" / "07070001.wav", 1.0)
    wav(tmp_path / "audio" / "07070002.flac", 0.5)
    out = tmp_path / "bbc.jsonl"
    report = prepare_bbc([csv], [tmp_path / "audio"], out)
    assert (report.written, report.missing, report.unreadable) == (2, 1, 0)
    entries = by_id(out)
    first = entries["bbc_07070001"]
    assert first.captions == ["Boat, motor: approach and stop."] and first.labels == ["Boats: Motor"]
    assert first.duration == pytest.approx(1.0) and first.source == "bbc" and first.split is None
    assert entries["bbc_07070002"].path.endswith("07070002.flac")
    assert log_lines(report)[0][:2] == ["bbc_07070003", "07070003.wav"]
    bad = text(tmp_path / "bad.csv", "location,secs\n07070001.wav,3\n")
    with pytest.raises(MetadataError, match=r"bad\.csv: missing column 'description'"):
        prepare_bbc([bad], [tmp_path / "audio"], out)


def test_clotho(tmp_path):
    header = "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
    dev = text(
        tmp_path / "clotho_captions_development.csv",
        header + '"Radio Garble.wav",r1,r2,r3,r4,"r5, with comma"\nabsent.wav,a1,a2,a3,a4,a5\n',
    )
    ev = text(tmp_path / "clotho_captions_evaluation.csv", header + "café.wav,c1,c2,c3,c4,c5\n")
    wav(tmp_path / "development" / "Radio Garble.wav", 0.5)
    wav(tmp_path / "evaluation" / "café.wav", 0.25)
    out = tmp_path / "clotho.jsonl"
    report = prepare_clotho([dev, ev], [tmp_path / "development", tmp_path / "evaluation"], out)
    assert (report.written, report.missing) == (2, 1)
    entries = by_id(out)
    radio = entries["clotho_Radio Garble"]
    assert radio.captions == ["r1", "r2", "r3", "r4", "r5, with comma"] and radio.split == "train"
    assert entries["clotho_café"].split == "test" and entries["clotho_café"].duration == pytest.approx(0.25)
    assert log_lines(report)[0][0] == "clotho_absent"
    bad = text(tmp_path / "clotho_captions_validation.csv", "file_name,text\nx.wav,y\n")
    with pytest.raises(MetadataError, match=r"clotho_captions_validation\.csv: missing column 'caption_1'"):
        prepare_clotho([bad], [tmp_path], out)


def test_folder_with_sidecars_and_csv(tmp_path):
    root = tmp_path / "My Sounds"
    wav(root / "dogs" / "bark1.wav", 0.5)
    text(root / "dogs" / "bark1.txt", "A dog barks\n\n  Barking twice \n")
    wav(root / "rain.flac", 0.25)
    wav(root / "silent.wav", 0.1)
    captions = text(
        tmp_path / "captions.csv",
        "file_name,caption\nrain.wav,Rain on a roof\nrain.flac,Steady rain\n"
        "dogs/bark1.wav,A small dog\nghost.wav,Not there\n",
    )
    out = tmp_path / "manifests" / "folder.jsonl"
    report = prepare_folder(root, out, captions_csv=captions, options=BuildOptions(relative_paths=True))
    assert (report.written, report.missing, report.skipped) == (3, 1, 0)
    entries = by_id(out)
    assert list(entries) == ["my_sounds_dogs/bark1", "my_sounds_rain", "my_sounds_silent"]
    assert entries["my_sounds_dogs/bark1"].captions == ["A dog barks", "Barking twice", "A small dog"]
    assert entries["my_sounds_rain"].captions == ["Rain on a roof", "Steady rain"]
    assert entries["my_sounds_silent"].captions == []
    assert os.path.normpath(entries["my_sounds_rain"].path) == str(root / "rain.flac")
    assert '"path": "../My Sounds/rain.flac"' in out.read_text(encoding="utf-8")
    assert log_lines(report)[0][:2] == ["my_sounds_ghost", "ghost.wav"]
    report = prepare_folder(root, out, source="mine", split="train", skip_uncaptioned=True)
    assert (report.written, report.missing, report.skipped, report.log) == (1, 0, 2, None)  # only bark1 has a .txt
    assert not (tmp_path / "manifests" / "folder.jsonl.missing.txt").exists()  # stale log removed
    assert {e.split for e in read_manifest(out)} == {"train"}
    bad = text(tmp_path / "bad.csv", "name,caption\nrain.wav,x\n")
    with pytest.raises(MetadataError, match=r"bad\.csv: missing column 'file_name'"):
        prepare_folder(root, out, captions_csv=bad)


# ----------------------------------------------------------------------------- CLI


def test_cli_summary_and_errors(tmp_path, capsys):
    csv = text(tmp_path / "val.csv", "audiocap_id,youtube_id,start_time,caption\n1,vidA,0,x\n2,vidB,0,y\n")
    wav(tmp_path / "audio" / "vidA.wav", 0.5)
    out = tmp_path / "val.jsonl"
    code = main(
        ["audiocaps", "--csv", str(csv), "--audio-dir", str(tmp_path / "audio"), "--out", str(out), "--no-probe"]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 1
    assert "wrote 1 entries" in lines[0] and "1 missing" in lines[0] and "val.jsonl.missing.txt" in lines[0]
    (entry,) = read_manifest(out)
    assert entry.split == "val" and entry.duration is None
    bad = text(tmp_path / "bad.csv", "youtube_id,caption\nvidA,x\n")
    code = main(["audiocaps", "--csv", str(bad), "--audio-dir", str(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bad.csv" in err[0] and "'start_time'" in err[0]
