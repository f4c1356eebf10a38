"""data.fetch: ODinW from a loopback server (Range, drops, corrupt and unsafe zips), RF100-VL through the
rf100vl package with the Roboflow API answered on loopback, the key never shown, and the CLI.

Network traffic goes to 127.0.0.1 only. The zips hold data.synth output in the real layouts.
"""

import copy
import hashlib
import io
import json
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, run_inv
from support.http_server import LoopbackServer

from tasks.lib.core.errors import ConfigError, ToolError
from tasks.lib.data import coco, fetch, odinw_fetch, synth, transfer

KEY = "rfTESTkey0123456789abcdef"  # a fake Roboflow key; it must never show up anywhere
NO_PROXY = {"no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}


# --------------------------------------------------------------------------------------------------
# Archives made from data.synth output


def zip_tree(folder: Path, top: str | None = None) -> bytes:
    """A zip of folder's files; under top/ when given (ODinW), at the root otherwise (a Roboflow export)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name != coco.SYNTH_MARKER:
                relative = path.relative_to(folder).as_posix()
                archive.write(path, f"{top}/{relative}" if top else relative)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def odinw_zips(tmp_path_factory):
    """{zip name: bytes} for every ODinW-13 zip, each a top-level <Name>/ folder."""
    root = tmp_path_factory.mktemp("odinw-synth")
    synth.write(synth.plan("odinw", str(root), "all", 6), workers=1)
    zips = {name: zip_tree(root / name, name) for name in odinw_fetch.ODINW13_ZIPS}
    other = tmp_path_factory.mktemp("odinw-synth-seed-1")
    synth.write(synth.plan("odinw", str(other), "pothole", 6, seed=1), workers=1)
    zips["pothole-v2"] = zip_tree(other / "pothole", "pothole")
    synth.write(synth.plan("rf100vl", str(other), "bees", 6), workers=1)  # any COCO tree stands in for BCCD
    zips["BCCD"] = zip_tree(other / "bees", "BCCD/BCCD.v3-raw.coco")
    return zips


def rawify(data: dict) -> dict:
    """The raw Roboflow export of a cleaned annotation file: root class 0, classes at 1..K, ids from 0."""
    raw = copy.deepcopy(data)
    root_name = data["categories"][0]["supercategory"]
    raw["categories"] = [{"id": 0, "name": root_name, "supercategory": "none"}] + [
        {**c, "id": c["id"] + 1} for c in data["categories"]
    ]
    shift = min(a["id"] for a in data["annotations"])
    for a in raw["annotations"]:
        a["category_id"] += 1
        a["id"] -= shift
    return raw


@pytest.fixture(scope="module")
def rf_exports(tmp_path_factory):
    """{name: (raw export zip bytes, {split: the cleaned json rf100vl must turn it back into})}."""
    root = tmp_path_factory.mktemp("rf-synth")
    names = ["actions", "-grccs", "bees"]
    synth.write(synth.plan("rf100vl", str(root), ",".join(names), 6), workers=1)
    exports = {}
    for name in names:
        folder = root / name
        cleaned = {}
        for split in coco.RF100VL_SPLITS:
            path = folder / split / coco.RF100VL_JSON
            cleaned[split] = json.loads(path.read_text())
            path.write_text(json.dumps(rawify(cleaned[split])))
        exports[name] = (zip_tree(folder), cleaned)
    return exports


def bad_zip(top: str, entry: zipfile.ZipInfo | str, content: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{top}/train/annotations_without_background.json", b"{}")
        archive.writestr(entry, content)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# ODinW


@pytest.fixture
def server(monkeypatch):
    for name, value in NO_PROXY.items():
        monkeypatch.setenv(name, value)
    with LoopbackServer() as running:
        yield running


def fetch_odinw(root, server, names, **kwargs):
    retries = kwargs.pop("retries", 3)
    opts = fetch.options("odinw", Path(root), ",".join(names), base_url=server.url + "/odinw_35", **kwargs)
    opts.retries, opts.timeout = retries, 10.0
    outcome = fetch.run(opts, stream=io.StringIO())
    return {r.dataset: r for r in outcome.results}


def staging_leftovers(root) -> list[str]:
    staging = Path(root) / transfer.STAGING
    return sorted(p.name for p in staging.iterdir() if p.name != "lock") if staging.exists() else []


def test_odinw_zips_install_verified_and_are_skipped_next_time(tmp_path, server, odinw_zips):
    for name in ("AerialMaritimeDrone", "pistols", "BCCD"):
        server.add(f"/odinw_35/{name}.zip", odinw_zips[name])
    results = fetch_odinw(tmp_path, server, ["AerialMaritimeDrone", "pistols", "BCCD"])
    assert {r.status for r in results.values()} == {"pass"}, results
    assert (tmp_path / "BCCD" / "BCCD.v3-raw.coco" / "test" / coco.RF100VL_JSON).is_file()  # an ODinW-35-only zip
    assert "size verified" in results["pistols"].detail and results["pistols"].bytes > 0
    reports = coco.validate_root("odinw", tmp_path, ["AerialMaritimeDrone_large", "pistols"], workers=1)
    assert [r.errors for r in reports] == [[], []]
    marker = json.loads((tmp_path / "pistols" / transfer.MARKER).read_text())
    assert marker["sha256"] and marker["source"].endswith("/odinw_35/pistols.zip")
    assert "export/test_annotations_without_background.json" in marker["files"]
    assert staging_leftovers(tmp_path) == []  # no .part, no staging folder
    gets = len(server.requests("GET"))
    again = fetch_odinw(tmp_path, server, ["AerialMaritimeDrone", "pistols", "BCCD"])
    assert {r.status for r in again.values()} == {"skip"} and "complete" in again["pistols"].detail
    assert len(server.requests("GET")) == gets  # nothing downloaded again


def test_a_dropped_connection_resumes_on_the_next_run_with_range(tmp_path, server, odinw_zips):
    body = odinw_zips["pothole"]
    half = len(body) // 2
    server.add("/odinw_35/pothole.zip", body, cut_after=half)
    first = fetch_odinw(tmp_path, server, ["pothole"], retries=0)["pothole"]
    assert first.status == "fail" and "re-run to resume" in first.detail, first
    assert not (tmp_path / "pothole").exists()
    assert (tmp_path / transfer.STAGING / "pothole.zip.part").stat().st_size == half
    second = fetch_odinw(tmp_path, server, ["pothole"])["pothole"]
    assert second.status == "pass" and "resumed at" in second.detail, second
    assert server.requests("GET")[-1][2] == f"bytes={half}-"
    assert coco.validate_root("odinw", tmp_path, ["pothole"], workers=1)[0].errors == []
    assert (
        json.loads((tmp_path / "pothole" / transfer.MARKER).read_text())["sha256"] == hashlib.sha256(body).hexdigest()
    )


def test_a_dropped_connection_is_retried_within_the_run(tmp_path, server, odinw_zips, monkeypatch):
    monkeypatch.setattr(transfer, "RETRY_PAUSE", 0.01)
    body = odinw_zips["Raccoon"]
    server.add("/odinw_35/Raccoon.zip", body, cut_after=1000, cuts=2)
    result = fetch_odinw(tmp_path, server, ["Raccoon"])["Raccoon"]
    assert result.status == "pass" and "3 attempts" in result.detail, result
    assert [r for _, _, r in server.requests("GET")] == [None, "bytes=1000-", "bytes=2000-"]


@pytest.mark.parametrize("change", ["new_version", "range_ignored"])
def test_a_changed_file_or_a_server_ignoring_range_starts_over(tmp_path, server, odinw_zips, change):
    old = odinw_zips["pothole"]
    server.add("/odinw_35/pothole.zip", old, cut_after=len(old) // 3)
    assert fetch_odinw(tmp_path, server, ["pothole"], retries=0)["pothole"].status == "fail"
    if change == "new_version":  # another ETag: the part belongs to another file and is not resumed
        body = odinw_zips["pothole-v2"]
        server.add("/odinw_35/pothole.zip", body, etag='"v2"')
        asked = None
    else:  # the part is resumed, the server answers 200 with the whole file: the part starts over
        body = old
        server.add("/odinw_35/pothole.zip", old, ignore_range=True)
        asked = f"bytes={len(old) // 3}-"
    result = fetch_odinw(tmp_path, server, ["pothole"])["pothole"]
    assert result.status == "pass" and "resumed" not in result.detail, result
    assert server.requests("GET")[-1][2] == asked
    assert (
        json.loads((tmp_path / "pothole" / transfer.MARKER).read_text())["sha256"] == hashlib.sha256(body).hexdigest()
    )


def test_ctrl_c_keeps_the_partial_download_and_the_next_run_resumes(clean_env, tmp_path, server, odinw_zips):
    body = odinw_zips["AerialMaritimeDrone"]
    server.add("/odinw_35/AerialMaritimeDrone.zip", body, rate=len(body) // 20)  # about 20 s: Ctrl-C lands in it
    root = tmp_path / "odinw"
    part = root / transfer.STAGING / "AerialMaritimeDrone.zip.part"
    command = [
        str(Path(sys.executable).with_name("inv")),
        "data.fetch",
        "--dataset",
        "odinw",
        "--datasets",
        "AerialMaritimeDrone",
        "--base-url",
        server.url + "/odinw_35",
        "--root",
        str(root),
    ]
    running = subprocess.Popen(
        command, cwd=ROOT, env=dict(clean_env, **NO_PROXY), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while not (part.exists() and part.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=30)
    assert running.returncode != 0 and "partial downloads stay" in out + err, (out, err)
    assert 0 < part.stat().st_size < len(body)
    assert not (root / "AerialMaritimeDrone").exists() and staging_leftovers(root) == [part.name, part.name + ".json"]
    server.files["/odinw_35/AerialMaritimeDrone.zip"].rate = None
    result = fetch_odinw(root, server, ["AerialMaritimeDrone"])["AerialMaritimeDrone"]
    assert result.status == "pass" and "resumed at" in result.detail, result


def test_what_a_download_is_checked_against_is_said_exactly(tmp_path):
    """No pinned table: the dry run says size and the sha256 Hugging Face states (tested below)."""
    opts = fetch.options("odinw", tmp_path, "pothole")
    notes = " ".join(fetch.notes(opts, fetch.run(opts, dry_run=True)))
    assert "sha256 against the one Hugging Face states for the stored object (X-Linked-Etag)" in notes
    assert "table" not in notes and not hasattr(odinw_fetch, "SHA256")


@pytest.mark.parametrize("announced", ["right", "wrong"])
def test_hugging_face_redirects_give_the_size_and_the_sha256_to_check(tmp_path, server, odinw_zips, announced):
    body = odinw_zips["pothole"]
    server.add("/cdn/pothole.zip", body, head_status=403)  # a signed CDN URL that refuses HEAD
    sha = hashlib.sha256(body if announced == "right" else b"other bytes").hexdigest()

    def resolve(method, path, query, headers, payload):  # /resolve/: a redirect carrying size and sha256
        return 302, {"Location": "/cdn/pothole.zip", "X-Linked-Size": str(len(body)), "X-Linked-Etag": f'"{sha}"'}, b""

    server.routes["/hf/"] = resolve
    opts = fetch.options("odinw", tmp_path, "pothole", base_url=server.url + "/hf")
    result = fetch.run(opts, stream=io.StringIO()).results[0]
    if announced == "right":
        assert (
            result.status == "pass"
            and "sha256 verified (the sha256 Hugging Face states for the stored object)" in result.detail
        )
    else:
        assert result.status == "fail" and "sha256 mismatch" in result.detail and not (tmp_path / "pothole").exists()
    assert [m for m, p, _ in server.requests() if p.startswith("/cdn/")] == ["GET"]  # HEAD stayed on /resolve/


def flip_inside_a_member(body: bytes) -> bytes:
    """The same zip with one byte of compressed data changed: only the CRC check can notice."""
    info = zipfile.ZipFile(io.BytesIO(body)).infolist()[-1]
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    return body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]


def symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("dice/train/link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not_a_zip", "not a readable zip archive"),
        ("bad_crc", "corrupt archive"),
        ("escape", "points outside the target folder"),
        ("absolute", "is an absolute path"),
        ("symlink", "is a symbolic link"),
        ("too_big", "unpacks to more than 0.001 GB"),
        ("html", "is a web page, not a file"),
    ],
)
def test_corrupt_unsafe_and_wrong_archives_are_refused_and_nothing_lands(tmp_path, server, odinw_zips, case, message):
    root = tmp_path / "root"
    kwargs = {}
    served = {"content_type": "application/zip"}
    if case == "not_a_zip":
        body = b"PK\x03\x04 but then nothing a zip needs" * 50
    elif case == "bad_crc":
        body = flip_inside_a_member(odinw_zips["pothole"])
    elif case == "escape":
        body = bad_zip("dice", "../x", b"escaped")
    elif case == "absolute":
        body = bad_zip("dice", str(tmp_path / "abs.txt"), b"absolute")
    elif case == "symlink":
        body = bad_zip("dice", symlink_entry(), b"/etc/passwd")
    elif case == "too_big":
        body = bad_zip("dice", "dice/train/big.bin", bytes(2_000_000))  # 2 MB of zeros, a few KB zipped
        kwargs["max_extract_gb"] = "0.001"
    else:
        body = b"<!DOCTYPE html><html><body>GLIPModel/GLIP</body></html>"
        served["content_type"] = "text/html; charset=utf-8"
    server.add("/odinw_35/dice.zip", body, **served)
    result = fetch_odinw(root, server, ["dice"], **kwargs)["dice"]
    assert result.status == "fail" and message in result.detail, result
    assert not (root / "dice").exists()
    assert not (tmp_path / "x").exists() and not (root / "x").exists() and not (tmp_path / "abs.txt").exists()
    assert staging_leftovers(root) == []  # the bad archive is not kept either
    assert root.exists() == (case != "html")  # a web page is caught by HEAD, before anything is written


def test_overlapping_entries_are_refused_before_extraction():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("dice/a.json", b"{}" * 100)
        twin = copy.copy(archive.infolist()[0])
        twin.filename = twin.orig_filename = "dice/b.json"
        archive.filelist.append(twin)  # a second directory entry over the same bytes (a quoted-overlap bomb)
    infos = zipfile.ZipFile(io.BytesIO(buffer.getvalue())).infolist()
    with pytest.raises(transfer.FetchFailed, match="overlap"):
        transfer.vet_entries(infos, 10**9)


def test_what_is_already_there_decides_the_action(tmp_path):
    synth.write(synth.plan("odinw", str(tmp_path), "pothole,Raccoon,CottontailRabbits,Packages", 6), workers=1)
    for name in ("Raccoon", "CottontailRabbits", "Packages"):
        (tmp_path / name / coco.SYNTH_MARKER).unlink()  # as if from elsewhere
    (tmp_path / "Raccoon" / "roboflow.zip").write_bytes(b"half")
    (tmp_path / "Packages" / "Raw" / "test" / coco.ODINW_JSON).write_text("null")
    decide = transfer.decide
    assert decide("odinw", tmp_path, "pothole", False) == ("replace", "synthetic data from data.synth")
    assert decide("odinw", tmp_path, "Raccoon", False) == ("replace", "interrupted download (roboflow.zip left behind)")
    assert decide("odinw", tmp_path, "CottontailRabbits", False)[0] == "skip"
    action, reason = decide("odinw", tmp_path, "Packages", False)
    assert action == "fail" and "pass --force" in reason
    assert decide("odinw", tmp_path, "Packages", True) == ("replace", "--force")
    assert decide("odinw", tmp_path, "dice", False) == ("fetch", "")


def test_disk_space_is_checked_before_any_download(tmp_path, server, odinw_zips, monkeypatch):
    server.add("/odinw_35/pothole.zip", odinw_zips["pothole"])
    monkeypatch.setattr(transfer.shutil, "disk_usage", lambda path: _Usage())
    with pytest.raises(ToolError, match=r"GB free, about .* needed for 1 ODinW zip"):
        fetch_odinw(tmp_path, server, ["pothole"])
    assert server.requests("GET") == [] and len(server.requests("HEAD")) == 1


class _Usage:
    total, used, free = 10**12, 10**12, 1000


def test_names_and_urls_are_checked_up_front():
    assert odinw_fetch.zip_names(None, None) == list(odinw_fetch.ODINW13_ZIPS)
    assert len(odinw_fetch.zip_names("35", None)) == 32 and "vector" not in odinw_fetch.zip_names("35", None)
    assert odinw_fetch.zip_names(None, ["EgoHands_generic", "EgoHands", "BCCD"]) == ["EgoHands", "BCCD"]
    with pytest.raises(ConfigError, match="did you mean 'pistols'"):
        odinw_fetch.zip_names(None, ["pistol"])
    with pytest.raises(ConfigError, match="not 13 or 35"):
        odinw_fetch.zip_names("20", None)
    with pytest.raises(ConfigError, match="/tree/ page"):
        odinw_fetch.check_base_url("https://huggingface.co/GLIPModel/GLIP/tree/main/odinw_35")
    with pytest.raises(ConfigError, match="not an http"):
        odinw_fetch.check_base_url("ftp://example.org/odinw")
    with pytest.raises(ConfigError, match="--jobs"):
        fetch.options("odinw", Path("/tmp"), None, jobs="0")
    with pytest.raises(ConfigError, match="--max-extract-gb"):
        fetch.options("odinw", Path("/tmp"), None, max_extract_gb="lots")


def test_cli_odinw_fetches_with_json_and_dry_run_touches_nothing(clean_env, tmp_path, server, odinw_zips):
    server.add("/odinw_35/pothole.zip", odinw_zips["pothole"])
    env = dict(clean_env, **NO_PROXY)
    base = ["data.fetch", "--dataset", "odinw", "--datasets", "pothole", "--base-url", server.url + "/odinw_35"]
    plan = run_inv([*base, "--root", str(tmp_path / "never"), "--dry-run"], env)
    assert plan.returncode == 0, plan.stderr
    assert f"{server.url}/odinw_35/pothole.zip" in plan.stdout and "nothing written" in plan.stdout
    assert not (tmp_path / "never").exists() and server.requests() == []
    done = run_inv([*base, "--root", str(tmp_path / "odinw"), "--json"], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "pass" and report["results"][0]["dataset"] == "pothole"
    assert "downloaded" in done.stderr  # progress went to stderr, plain lines (not a terminal)
    assert (tmp_path / "odinw" / "pothole" / transfer.MARKER).is_file()


# --------------------------------------------------------------------------------------------------
# RF100-VL: the real rf100vl and roboflow packages; the Roboflow API answered on loopback


class FakeRoboflowApi:
    """The Roboflow REST API as the roboflow SDK calls it (api.roboflow.com/...?api_key=...), answered with
    payloads shaped like the real ones, and the export zips served as files (optionally cut or failing)."""

    def __init__(self, server: LoopbackServer, exports: dict, failing: set[str] = frozenset()) -> None:
        import rf100vl.util

        self.server, self.failing = server, failing
        by_base = {}
        for project, base in rf100vl.util.DATASET_TO_BASENAME_JSON.items():
            if "fsod" not in project:
                by_base.setdefault(base, project)
        self.projects = {by_base[name]: name for name in exports}
        for project, name in self.projects.items():
            server.add(f"/dl/{project}.zip", exports[name][0])
        server.routes["/"] = self.answer

    def project(self, slug: str) -> dict:
        return {
            "annotation": "things",
            "classes": {},
            "colors": {},
            "created": 1700000000,
            "id": f"rf100-vl/{slug}",
            "images": 18,
            "name": slug,
            "public": True,
            "splits": {"train": 6, "valid": 6, "test": 6},
            "type": "object-detection",
            "unannotated": 0,
            "updated": 1700000000,
        }

    def version(self, slug: str) -> dict:
        return {
            "augmentation": {},
            "created": 1700000000,
            "id": f"rf100-vl/{slug}/2",
            "images": 18,
            "preprocessing": {},
            "splits": {"train": 6, "valid": 6, "test": 6},
            "exports": ["coco"],
            "generating": False,
            "progress": 1.0,
        }

    def answer(self, method, path, query, headers, body):
        if query.get("api_key") != KEY:
            return (
                401,
                {},
                json.dumps({"error": {"message": "This API key does not exist (or has been revoked)."}}).encode(),
            )
        parts = [p for p in path.split("/") if p]
        if method == "POST" and not parts:
            return (
                200,
                {},
                json.dumps({"welcome": "Welcome to the Roboflow API.", "workspace": "my-workspace"}).encode(),
            )
        if parts[0] != "rf100-vl":
            return 404, {}, b'{"error": "no such workspace"}'
        workspace = {"name": "rf100-vl", "url": "rf100-vl", "members": 1}
        if len(parts) == 1:
            payload = {"workspace": {**workspace, "projects": [self.project(s) for s in self.projects]}}
        elif len(parts) == 2:
            payload = {"workspace": workspace, "project": self.project(parts[1]), "versions": [self.version(parts[1])]}
        elif len(parts) == 3:
            payload = {"workspace": workspace, "project": self.project(parts[1]), "version": self.version(parts[1])}
        elif self.projects.get(parts[1]) in self.failing:  # an error page that echoes the request, key and all
            return 404, {}, f"Not found: https://api.roboflow.com{path}?api_key={KEY}".encode()
        else:
            link = f"{self.server.url}/dl/{parts[1]}.zip?key=signed0123456789"
            payload = {"export": {"link": link, "format": parts[3]}}
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()


@pytest.fixture
def roboflow_on_loopback(server, monkeypatch):
    """Point the SDK's HTTP functions (roboflow.util.http) at the loopback server instead of api.roboflow.com."""
    pytest.importorskip("rf100vl")
    import requests
    from roboflow import config
    from roboflow.util import http

    def routed(method):
        def call(url, **kwargs):
            assert url.startswith((config.API_URL, server.url)), url
            return requests.request(method, url.replace(config.API_URL, server.url, 1), **kwargs)

        return call

    for name in ("get", "post", "head", "put"):
        monkeypatch.setattr(http, name, routed(name.upper()))
    monkeypatch.setenv("ROBOFLOW_API_KEY", KEY)
    return server


def fetch_rf(root, names, **kwargs):
    opts = fetch.options("rf100vl", Path(root), ",".join(names), **kwargs)
    outcome = fetch.run(opts, stream=io.StringIO())
    return {r.dataset: r for r in outcome.results}


def test_rf100vl_fetch_goes_through_rf100vl_and_installs_cleaned_data(tmp_path, roboflow_on_loopback, rf_exports):
    FakeRoboflowApi(roboflow_on_loopback, rf_exports)
    (tmp_path / "-grccs" / "train").mkdir(parents=True)  # an earlier plain rf100vl run that died mid-way
    (tmp_path / "-grccs" / "roboflow.zip").write_bytes(rf_exports["-grccs"][0][:500])
    results = fetch_rf(tmp_path, ["actions", "-grccs"])
    assert {r.status for r in results.values()} == {"pass"}, results
    assert "replaced (interrupted download" in results["-grccs"].detail
    assert not (tmp_path / "-grccs" / "roboflow.zip").exists()
    for name in ("actions", "-grccs"):
        for split, cleaned in rf_exports[name][1].items():  # rf100vl's cleaner turned the raw export back
            assert json.loads((tmp_path / name / split / coco.RF100VL_JSON).read_text()) == cleaned
        marker = json.loads((tmp_path / name / transfer.MARKER).read_text())
        assert marker["version"].startswith("rf100-vl/") and marker["version"].endswith("/2")
    assert [r.errors for r in coco.validate_root("rf100vl", tmp_path, ["actions", "-grccs"], workers=1)] == [[], []]
    assert staging_leftovers(tmp_path) == []
    calls = len(roboflow_on_loopback.requests())
    assert {r.status for r in fetch_rf(tmp_path, ["actions", "-grccs"]).values()} == {"skip"}
    assert len(roboflow_on_loopback.requests()) == calls  # complete datasets: not even the API is asked


def test_what_the_roboflow_client_said_is_shown_scrubbed_when_a_fetch_fails(tmp_path, roboflow_on_loopback, rf_exports):
    FakeRoboflowApi(roboflow_on_loopback, rf_exports, failing={"actions"})  # its error page echoes the key
    stream = io.StringIO()
    outcome = fetch.run(fetch.options("rf100vl", tmp_path, "actions"), stream=stream)
    assert [r.status for r in outcome.results] == ["fail"]
    shown = stream.getvalue()
    assert "the Roboflow client said (its last lines, ROBOFLOW_API_KEY removed):" in shown, shown
    assert KEY not in shown and len(shown.split("ROBOFLOW_API_KEY removed):")[1].strip().splitlines()) >= 1
    quiet = io.StringIO()
    FakeRoboflowApi(roboflow_on_loopback, rf_exports)
    fetch.run(fetch.options("rf100vl", tmp_path, "actions"), stream=quiet)
    assert "the Roboflow client said" not in quiet.getvalue()  # nothing failed: nothing to show


def test_rf100vl_interrupted_download_never_looks_complete(tmp_path, roboflow_on_loopback, rf_exports):
    api = FakeRoboflowApi(roboflow_on_loopback, rf_exports)
    slug = next(s for s, n in api.projects.items() if n == "bees")
    roboflow_on_loopback.files[f"/dl/{slug}.zip"].cut_after = 700
    results = fetch_rf(tmp_path, ["bees", "actions"])
    assert results["bees"].status == "fail" and results["actions"].status == "pass", results
    assert not (tmp_path / "bees").exists()
    assert not list(tmp_path.rglob("roboflow.zip")) and staging_leftovers(tmp_path) == []


def test_rf100vl_key_is_required_up_front_and_checked_package(monkeypatch, tmp_path):
    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ROBOFLOW_API_KEY is not set .*app.roboflow.com/settings/api"):
        fetch.options("rf100vl", tmp_path, None)
    monkeypatch.setenv("ROBOFLOW_API_KEY", KEY)
    with pytest.raises(ConfigError, match="--base-url applies to --dataset odinw only"):
        fetch.options("rf100vl", tmp_path, None, base_url="http://x")
    monkeypatch.setattr("tasks.lib.data.rf100vl_fetch.installed_version", lambda: "1.0.0")
    with pytest.raises(ConfigError, match="rf100vl 1.0.0 is installed; data.fetch needs 1.1.2"):
        fetch.options("rf100vl", tmp_path, None)


def test_scrub_hides_keys_query_secrets_and_url_credentials(monkeypatch):
    monkeypatch.setenv("ROBOFLOW_API_KEY", KEY)
    text = (
        f"GET https://api.roboflow.com/x?api_key={KEY}&nocache=true failed; link "
        "https://storage.example/ds.zip?X-Goog-Signature=abc123&key=zzz; https://user:pw@host/p"
    )
    shown = transfer.scrub(text)
    assert KEY not in shown and "abc123" not in shown and "zzz" not in shown and "pw@" not in shown
    assert "api_key=***" in shown and "nocache=true" in shown


def test_cli_rf100vl_without_key_is_one_line_exit_2_and_writes_nothing(clean_env, tmp_path):
    done = run_inv(["data.fetch", "--datasets", "actions"], dict(clean_env, ROBOFLOW_VL_100_ROOT=str(tmp_path / "rf")))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ROBOFLOW_API_KEY is not set")
    assert "export ROBOFLOW_API_KEY=" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "rf").exists() and done.stdout == ""


def test_cli_rf100vl_key_never_appears_in_output_or_files(clean_env, tmp_path, server, rf_exports):
    pytest.importorskip("rf100vl")
    FakeRoboflowApi(server, rf_exports, failing={"bees"})
    env = dict(
        clean_env, **NO_PROXY, ROBOFLOW_API_KEY=KEY, API_URL=server.url, ROBOFLOW_VL_100_ROOT=str(tmp_path / "rf")
    )
    done = run_inv(["data.fetch", "--datasets", "actions,bees", "--json"], env)
    assert done.returncode == 1, done.stderr
    results = {r["dataset"]: r for r in json.loads(done.stdout)["results"]}
    assert results["actions"]["status"] == "pass" and results["bees"]["status"] == "fail"
    assert "api_key=***" in results["bees"]["detail"]
    table = run_inv(["data.fetch", "--datasets", "actions,bees", "--force"], env)  # the table, and a replace
    assert table.returncode == 1 and "bees" in table.stdout
    assert any(KEY in p for _, p, _ in server.requests())  # the SDK did send it, in URLs ...
    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert (
        KEY not in done.stdout + done.stderr + table.stdout + table.stderr and leaks == []
    )  # ... and it went nowhere else
    assert (tmp_path / "rf" / "actions" / transfer.MARKER).is_file() and not (tmp_path / "rf" / "bees").exists()
