"""The avatar format: .ply <-> dataclass <-> message round trips, validation of bad avatars."""

import numpy as np
import pytest
from conftest import shared

from gaussian_head_ros.core.avatar import GaussianAvatar, gaussian_fields, load_ply, save_ply
from gaussian_head_ros.core.synthetic import synthetic_avatar


@pytest.mark.parametrize("sh_degree", [0, 1, 3])
def test_ply_round_trip_is_exact(tmp_path, sh_degree):
    a = synthetic_avatar(5000, seed=3, sh_degree=sh_degree, operator_id="Ada Lovelace (lab 2)")
    save_ply(a, tmp_path / "a.ply")
    b = load_ply(tmp_path / "a.ply")
    assert b.equals(a)
    assert b.sh_degree == sh_degree and b.operator_id == "Ada Lovelace (lab 2)"


def test_ply_is_a_standard_vertex_only_3dgs_file(tmp_path):
    """me.ply: one element `vertex`, the standard 3DGS columns at SH degree 3, all float32, no comments."""
    a = synthetic_avatar(100, seed=1)
    paths = save_ply(a, tmp_path / "a.ply")
    assert paths == [tmp_path / "a.ply", tmp_path / "a.driving.npz"]
    header, body = (tmp_path / "a.ply").read_bytes().split(b"end_header\n")
    lines = header.decode().splitlines()
    assert lines[:3] == ["ply", "format binary_little_endian 1.0", "element vertex 100"]
    props = [ln.split() for ln in lines[3:]]
    want = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(45)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    assert props == [["property", "float", n] for n in want]
    assert len(body) == 100 * 4 * len(want)
def test_plain_3dgs_ply_loads_as_static(tmp_path):
    """A .ply from another 3DGS tool (no binding, no mesh) loads with every Gaussian static."""
    n = 50
    rng = np.random.default_rng(0)
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
    rows = rng.normal(size=(n, len(names))).astype("<f4")
    hdr = "ply\nformat binary_little_endian 1.0\nelement vertex %d\n" % n
    hdr += "".join(f"property float {p}\n" for p in names) + "end_header\n"
    (tmp_path / "x.ply").write_bytes(hdr.encode() + rows.tobytes())
    b = load_ply(tmp_path / "x.ply")
    assert b.num_gaussians == n and np.all(b.face_id == -1) and np.all(b.part == 0)
    np.testing.assert_array_equal(b.means, rows[:, :3])


def test_truncated_and_foreign_files_are_refused(tmp_path):
    a = synthetic_avatar(1000, seed=2)
    save_ply(a, tmp_path / "a.ply")
    data = (tmp_path / "a.ply").read_bytes()
    (tmp_path / "t.ply").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_ply(tmp_path / "t.ply")
    (tmp_path / "n.ply").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a .ply"):
        load_ply(tmp_path / "n.ply")


def test_a_photo_a_driving_file_or_a_clip_given_as_an_avatar_is_named_with_what_to_do(tmp_path):
    """Given where an avatar .ply is expected (`--avatar`, photo_path's avatar files), a photo, the avatar's own
    .driving.npz or a clip is named as what it is, with the way to its avatar; the error said only "missing 'ply'
    magic" (user28, s28). Real files: ../shared's portraits (JPEG, PNG) and a driving clip (MP4)."""
    a = synthetic_avatar(1000, seed=2)
    written = save_ply(a, tmp_path / "me.ply")
    driving = next(p for p in written if p.name.endswith(".driving.npz"))
    cases = [(shared("portraits", "obama_speech.jpg"), "JPEG photo.*gaussian-head reconstruct"),
             (shared("portraits", "business_person.png"), "PNG photo.*gaussian-head reconstruct"),
             (shared("driving", "lp_d0.mp4"), "a video.*drives an avatar"),
             (driving, r"driving file, not the avatar: give its \.ply \(me\.ply")]
    heic = tmp_path / "phone.heic"  # an iPhone photo's first bytes: ISO BMFF 'ftyp' with the 'heic' brand
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    cases.append((heic, "HEIC/HEIF photo"))
    for path, reason in cases:
        with pytest.raises(ValueError, match=reason) as e:
            load_ply(path)
        assert path.name in str(e.value)



def test_an_avatar_or_its_driving_file_given_as_the_photo_is_named_with_what_to_do(tmp_path, monkeypatch, capsys):
    """`gaussian-head reconstruct me.driving.npz` said "could not decode the compressed image (corrupt, truncated or
    not an image)", naming neither the file nor what it is. Now the file (absolute), what it is and what to do: the
    avatar is made already, drive it with `gaussian-head render me.ply`. The .ply, a controls file and a MediaPipe
    model are named too; a message's bytes (no file name, a node's topic) are refused as before."""
    import json

    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.imageio import decode_compressed

    save_ply(synthetic_avatar(200, seed=3), tmp_path / "me.ply")
    (tmp_path / "c.jsonl").write_text(json.dumps(FaceControl.rest().to_json()) + "\n")
    monkeypatch.chdir(tmp_path)
    task = shared("models", "face_landmarker.task")
    for given, said in (("me.driving.npz", "me.driving.npz is an avatar's driving file (.driving.npz"),
                        ("me.ply", "me.ply is an avatar file (.ply"),
                        ("c.jsonl", "c.jsonl is a controls file (FaceControl JSON lines"),
                        (str(task), f"{task} is a MediaPipe model bundle (.task), not a photo")):
        capsys.readouterr()
        assert main(["reconstruct", given, "-o", "new.ply"]) == 1, given
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], (given, err)
        if given.startswith("me."):
            assert f"{tmp_path}/{given} is" in err[0], err  # where it was read
            assert "not a photo: the avatar is made already; drive it with `gaussian-head render me.ply`" in err[0], err
    assert not (tmp_path / "new.ply").exists()
    with pytest.raises(ValueError, match=r"^an avatar's driving file \(\.driving\.npz.*render ME\.ply"):
        decode_compressed((tmp_path / "me.driving.npz").read_bytes())


def test_a_broken_driving_file_or_an_impossible_count_is_refused_with_a_reason(tmp_path):
    """load_ply says what is wrong with a ValueError (its contract; reconstruction_node's avatar-file photo_path turns
    that into a BAD_IMAGE status and, at start-up, the cached face): a driving file that is not a zip, one cut short,
    one without save_ply's arrays, and a header counting more rows than the file holds raised BadZipFile, KeyError and
    MemoryError instead, which the node left without any status (review22)."""
    import io
    import zipfile

    from gaussian_head_ros.core.avatar import driving_path

    save_ply(synthetic_avatar(200, seed=3), tmp_path / "me.ply")
    side = driving_path(tmp_path / "me.ply")
    good = side.read_bytes()
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    lacking = io.BytesIO()
    with zipfile.ZipFile(lacking, "w") as z:
        for n, data in members.items():
            if n != "part.npy":
                z.writestr(n, data)
    for broken, reason in ((b"PK\x03\x04junk", "driving file"), (good[: len(good) // 2], "driving file"),
                           (lacking.getvalue(), "lacks part")):
        side.write_bytes(broken)
        with pytest.raises(ValueError, match=reason):
            load_ply(tmp_path / "me.ply")
    side.unlink()
    head = b"ply\nformat binary_little_endian 1.0\nelement vertex 100000000000000\nproperty float x\nend_header\n"
    (tmp_path / "big.ply").write_bytes(head + bytes(12))
    with pytest.raises(ValueError, match="truncated .ply: element vertex counts 100000000000000 rows"):
        load_ply(tmp_path / "big.ply")

@pytest.mark.parametrize("breakage, reason", [
    (lambda a: a.means.__setitem__((0, 0), np.nan), "NaN"),
    (lambda a: setattr(a, "face_id", np.full_like(a.face_id, 10_000)), "triangles that do not exist"),
    (lambda a: setattr(a, "quats", a.quats[:-1]), "shape"),
    (lambda a: a.quats.__setitem__(0, 0.0), "zero-length"),
    (lambda a: setattr(a, "template_faces", a.template_faces + 10_000), "vertices that do not exist"),
])
def test_validate_names_the_problem(breakage, reason):
    a = synthetic_avatar(500, seed=4)
    breakage(a)
    with pytest.raises(ValueError, match=reason):
        a.validate()


def test_budget_and_empty():
    a = synthetic_avatar(500, seed=4)
    with pytest.raises(ValueError, match="budget"):
        a.validate(max_gaussians=100)
    empty = GaussianAvatar(**GaussianAvatar.columns_from_table(np.zeros((0, len(gaussian_fields(0))), np.float32),
                                                               gaussian_fields(0)),
                           template_vertices=a.template_vertices, template_faces=a.template_faces)
    with pytest.raises(ValueError, match="zero Gaussians"):
        empty.validate()


def test_message_round_trip_in_process():
    conv = pytest.importorskip("gaussian_head_ros.nodes.conversions")
    a = synthetic_avatar(3000, seed=5, sh_degree=2)
    b = conv.msg_to_avatar(conv.avatar_to_msg(a))
    assert b.equals(a)


def _rim_banded(n: int, banded: int, seed: int):
    """A degree-1 synthetic avatar whose band 1 is non-zero on `banded` rows only, as a mesh_fit avatar's edge-on
    rim (builder.edge_on_sh); one of them holds only -0.0 (bits, not a value)."""
    a = synthetic_avatar(n, seed=seed, sh_degree=1)
    keep = np.random.default_rng(seed).choice(n, banded, replace=False)
    band = np.zeros_like(a.sh[:, 1:])
    band[keep] = a.sh[keep, 1:]
    band[keep[0]] = -0.0
    a.sh[:, 1:] = band
    return a, np.sort(keep)


def test_message_carries_sh_bands_only_where_they_are_not_zero():
    """Format 2: `gaussians` has no f_rest columns; sh_rest_rows / sh_rest hold the band of the rows that have one
    (a -0.0 too), and the avatar comes back bit for bit, driven to the same colours from an oblique camera. A 60k
    avatar with 5 % banded rows: 7.46 MB in format 1 (f_rest on every row), 5.4 MB now."""
    conv = pytest.importorskip("gaussian_head_ros.nodes.conversions")
    from rclpy.serialization import serialize_message

    from gaussian_head_ros.core.drive import Driver

    a, keep = _rim_banded(60_000, 3000, seed=4)
    msg = conv.avatar_to_msg(a)
    assert not [f.name for f in msg.gaussians.fields if f.name.startswith("f_rest_")] and msg.sh_degree == 1
    assert np.array_equal(np.frombuffer(msg.sh_rest_rows, np.uint32), keep) and len(msg.sh_rest) == 3000 * 9
    assert len(serialize_message(msg)) < 5_500_000
    b = conv.msg_to_avatar(msg)
    assert b.equals(a) and b.sh[keep[0], 1:].tobytes() == a.sh[keep[0], 1:].tobytes()
    viewmat = np.eye(4)
    viewmat[:3, :3] = np.array([[0.8, 0, 0.6], [0, 1, 0], [-0.6, 0, 0.8]])
    viewmat[2, 3] = 0.6
    ca, cb = (Driver(x).drive(viewmat=viewmat).colors for x in (a, b))
    assert ca.tobytes() == cb.tobytes() and not np.array_equal(ca, Driver(a).colors)


@pytest.mark.parametrize("rows, values, reason", [
    ([3, 2], 18, "strictly ascending"), ([2, 2], 18, "strictly ascending"), ([5, 100], 18, "below 100"),
    ([1, 2], 17, "17 SH band values for 2 rows"),
])
def test_message_sh_bands_that_do_not_fit_are_refused(rows, values, reason):
    conv = pytest.importorskip("gaussian_head_ros.nodes.conversions")
    import array

    msg = conv.avatar_to_msg(synthetic_avatar(100, seed=1, sh_degree=1))
    msg.sh_rest_rows, msg.sh_rest = array.array("I", rows), array.array("f", [0.1] * values)
    with pytest.raises(ValueError, match=reason):
        conv.msg_to_avatar(msg)


def test_message_of_format_1_is_refused_with_its_version():
    """A format-1 message (f_rest columns on every row, before the bands went apart) is refused, saying so."""
    conv = pytest.importorskip("gaussian_head_ros.nodes.conversions")
    msg = conv.avatar_to_msg(synthetic_avatar(100, seed=1))
    msg.format_version = 1
    with pytest.raises(ValueError, match="format_version 1 is not supported .expected 4.*different gaussian_head_ros"):
        conv.msg_to_avatar(msg)
    msg.format_version = 2  # format 2: no wrinkle map fields
    with pytest.raises(ValueError, match="format_version 2 is not supported .expected 4"):
        conv.msg_to_avatar(msg)
    msg.format_version = 3  # format 3: no rest brow shift
    with pytest.raises(ValueError, match="format_version 3 is not supported .expected 4"):
        conv.msg_to_avatar(msg)


def _wrinkled(n: int, seed: int):
    """A synthetic avatar with a wrinkle map on every 7th row: rgb changes up to 0.2, fully in at a 3 mm
    displacement of the template's lower half (its MediaPipe-sized template)."""
    a = synthetic_avatar(n, seed=seed)
    rng = np.random.default_rng(seed)
    rows = np.arange(0, n, 7, dtype=np.uint32)
    a.wrinkle_rows, a.wrinkle_rgb = rows, rng.uniform(-0.2, 0.2, (len(rows), 3)).astype(np.float32)
    e = np.zeros_like(a.template_vertices)
    e[len(e) // 2:, 0] = 0.003
    a.wrinkle_expression = e
    return a


def test_the_wrinkle_map_round_trips_through_the_files_and_the_message(tmp_path):
    """File format 2 / message format 3 carry the wrinkle map (rows, rgb, the expression it is fully in at) bit
    for bit; the driver adds it to those rows' colours by the share of that expression the control reaches."""
    conv = pytest.importorskip("gaussian_head_ros.nodes.conversions")
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver

    a = _wrinkled(2000, seed=8)
    save_ply(a, tmp_path / "a.ply")
    b = load_ply(tmp_path / "a.ply")
    assert b.equals(a) and np.array_equal(b.wrinkle_rows, a.wrinkle_rows) and len(b.wrinkle_rows) == 286
    msg = conv.avatar_to_msg(a)
    assert msg.format_version == 4 and len(msg.wrinkle_rgb) == 3 * 286
    c = conv.msg_to_avatar(msg)
    assert c.equals(a)
    d = Driver(c)
    rest = d.drive(FaceControl.rest()).colors
    for share in (1.0, 0.5):
        ex = (share * a.wrinkle_expression).astype(np.float32)
        got = d.drive(FaceControl(expression=ex)).colors
        want = rest.copy()
        want[a.wrinkle_rows] = np.clip(want[a.wrinkle_rows] + np.float32(share) * a.wrinkle_rgb, 0, 1)
        np.testing.assert_allclose(got, want, atol=1e-6)
    plain = synthetic_avatar(2000, seed=8)
    assert Driver(plain).drive(FaceControl.rest()).colors.tobytes() == rest.tobytes()  # at rest: no map at all
    away = d.drive(FaceControl(expression=(-a.wrinkle_expression).astype(np.float32))).colors
    assert away.tobytes() == rest.tobytes()  # the opposite expression: none of it


def _as_older_driving_file(side, version: int, dropped) -> None:
    """Rewrite the driving file `side` as one of an older format: without the arrays for which `dropped(name)` is
    true, its metadata's format_version set to `version`."""
    import json

    with np.load(side) as z:
        d = {k: z[k] for k in z.files if not dropped(k)}
    meta = json.loads(str(d["metadata"]))
    meta["format_version"] = version
    d["metadata"] = np.array(json.dumps(meta))
    with open(side, "wb") as fh:
        np.savez(fh, **d)


def test_avatar_files_of_format_1_load_without_a_wrinkle_map(tmp_path):
    """A driving file written before the wrinkle map (format 1: no wrinkle_* arrays) loads as it was."""
    a = synthetic_avatar(500, seed=2)
    save_ply(a, tmp_path / "a.ply")
    _as_older_driving_file(tmp_path / "a.driving.npz", 1, lambda k: k.startswith("wrinkle_") or k == "rest_brow_shift")
    b = load_ply(tmp_path / "a.ply")
    assert b.equals(a) and len(b.wrinkle_rows) == 0 and b.wrinkle_rgb.shape == (0, 3)


def test_avatar_files_of_format_3_load_and_drive_as_they_did(tmp_path):
    """Format 4 added the part label PART_UNDER_CHIN; a file of format 3 (none) loads as it was and drives alike."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import drive

    a = synthetic_avatar(800, seed=3)
    save_ply(a, tmp_path / "a.ply")
    _as_older_driving_file(tmp_path / "a.driving.npz", 3, lambda k: False)
    b = load_ply(tmp_path / "a.ply")
    assert b.equals(a)
    c = FaceControl(expression=np.full((len(a.template_vertices), 3), 0.002, np.float32))
    assert drive(b, c).means.tobytes() == drive(a, c).means.tobytes()


def test_the_rest_brow_shift_round_trips_and_older_files_load_with_none(tmp_path):
    """File format 3 / message format 4 carry the photo's rest brow shift (GaussianAvatar.rest_brow_shift, per
    brow, metres) bit for bit; a driving file of format 2 (none written) loads with 0 0 (no shift: the driver lifts
    no lids with a raise)."""
    conv = pytest.importorskip("gaussian_head_ros.nodes.conversions")
    a = synthetic_avatar(500, seed=4)
    a.rest_brow_shift = np.array([-0.0034, -0.0031], np.float32)
    save_ply(a, tmp_path / "a.ply")
    b = load_ply(tmp_path / "a.ply")
    assert b.equals(a) and b.rest_brow_shift.tobytes() == a.rest_brow_shift.tobytes()
    msg = conv.avatar_to_msg(a)
    assert msg.format_version == 4
    c = conv.msg_to_avatar(msg)
    assert c.equals(a) and c.rest_brow_shift.tobytes() == a.rest_brow_shift.tobytes()
    assert not c.equals(synthetic_avatar(500, seed=4))  # the shift is part of the avatar
    _as_older_driving_file(tmp_path / "a.driving.npz", 2, lambda k: k == "rest_brow_shift")
    old = load_ply(tmp_path / "a.ply")
    assert old.rest_brow_shift.shape == (2,) and not np.any(old.rest_brow_shift)


@pytest.mark.parametrize("shift, reason", [
    ([0.0], "rest brow shift must be 2"), ([0.0, np.nan], "finite"), ([0.0, -0.02], "within"),
])
def test_rest_brow_shifts_that_do_not_fit_are_refused(shift, reason):
    a = synthetic_avatar(100, seed=1)
    a.rest_brow_shift = np.asarray(shift, np.float32)
    with pytest.raises(ValueError, match=reason):
        a.validate()


@pytest.mark.parametrize("rows, rgb, expression, reason", [
    ([3, 2], 2, True, "strictly ascending"), ([5, 100], 2, True, "below 100"), ([1, 2], 1, True, "expected .M,. and"),
    ([1, 2], 2, False, "wrinkle expression has shape"),
])
def test_wrinkle_maps_that_do_not_fit_are_refused(rows, rgb, expression, reason):
    a = synthetic_avatar(100, seed=1)
    a.wrinkle_rows, a.wrinkle_rgb = np.asarray(rows, np.uint32), np.full((rgb, 3), 0.1, np.float32)
    a.wrinkle_expression = np.zeros_like(a.template_vertices) if expression else np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match=reason):
        a.validate()


def test_file_and_message_carry_the_same_gaussians(tmp_path):
    """The viewer file's columns are the message's PointCloud2 columns of the same name, bit for bit."""
    conv = pytest.importorskip("gaussian_head_ros.nodes.conversions")
    a = synthetic_avatar(777, seed=6)
    save_ply(a, tmp_path / "a.ply")
    body = (tmp_path / "a.ply").read_bytes().split(b"end_header\n", 1)[1]
    names = [n for n in gaussian_fields(3) if n not in ("part", "face_id", "bary_0", "bary_1", "bary_2")]
    file_rows = np.frombuffer(body, "<f4").reshape(777, len(names))
    msg = conv.avatar_to_msg(a)
    msg_names = [f.name for f in msg.gaussians.fields]
    msg_rows = np.frombuffer(bytes(msg.gaussians.data), "<f4").reshape(777, len(msg_names))
    for name in msg_names:
        if name in names:
            assert file_rows[:, names.index(name)].tobytes() == msg_rows[:, msg_names.index(name)].tobytes(), name


def test_avatar_cache_round_trip_and_refusals(tmp_path):
    """core/avatar_cache: what is written is read back; a missing file is None; a truncated, altered,
    foreign or other-kind file is refused with ValueError; no temporary file is left behind."""
    from gaussian_head_ros.core import avatar_cache

    path = tmp_path / "d" / "a.avatar"
    assert avatar_cache.read(path, "k") is None
    avatar_cache.write(path, b"payload" * 1000, "k")
    assert avatar_cache.read(path, "k") == b"payload" * 1000
    assert [p.name for p in path.parent.iterdir()] == ["a.avatar"]
    data = path.read_bytes()
    for bad, why in ((data[:-10], "truncated"), (data[:-1] + b"X", "checksum"), (b"GIF89a" + data[6:], "not an avatar"),
                     (data[:20], "too short")):
        path.write_bytes(bad)
        with pytest.raises(ValueError, match=why):
            avatar_cache.read(path, "k")
    path.write_bytes(data)
    with pytest.raises(ValueError, match="another message definition"):
        avatar_cache.read(path, "other")


def test_a_cache_path_naming_a_photo_or_an_avatar_file_is_never_written_over(tmp_path):
    """reconstruction_node with cache_path:=me.ply (the avatar file `gaussian-head reconstruct` made, taken for the
    file the robot serves) or cache_path:=photo.jpg took it: at its first avatar it wrote its cache over the file
    (me.ply: 14.9 MB of avatar replaced by a 5.5 MB cache; photo.jpg likewise; user45, s45). Now a file `files.kind`
    names as something else (a photo, an avatar .ply, a video ...) is refused as the cache, when cache_path is
    checked and again at each write, and left as it is; reading it says what it is. A cache file (both layouts), a
    missing one, and bytes that say nothing are written as before."""
    import cv2

    from gaussian_head_ros.core import avatar_cache
    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    save_ply(synthetic_avatar(300), tmp_path / "me.ply")
    cv2.imwrite(str(tmp_path / "photo.jpg"), np.full((32, 32, 3), 128, np.uint8))
    for name, what in (("me.ply", "an avatar .ply"), ("photo.jpg", "a JPEG photo")):
        path = tmp_path / name
        before = path.read_bytes()
        with pytest.raises(ValueError, match=f"cache_path {path} is {what}: writing an avatar cache over it would "
                                             "lose it; name another file"):
            avatar_cache.check_path(path)
        with pytest.raises(ValueError, match=f"is {what}: writing an avatar cache over it"):
            avatar_cache.write(path, b"payload", "k")
        with pytest.raises(ValueError, match=f"{path}: {what}, not an avatar cache"):
            avatar_cache.read(path, "k")
        assert path.read_bytes() == before, name
    for name, data in (("old.avatar", None), ("new.avatar", b""), ("notes.bin", b"\x00" * 100)):
        path = tmp_path / name
        if data is None:
            avatar_cache.write(path, b"old", "k")
            path.write_bytes(avatar_cache.MAGIC1 + path.read_bytes()[8:])  # layout 1's magic: still a cache
        elif data:
            path.write_bytes(data)
        avatar_cache.check_path(path)
        avatar_cache.write(path, b"payload", "k")
        assert avatar_cache.read(path, "k") == b"payload", name


def test_a_cache_path_on_a_read_only_file_system_is_said_so(tmp_path, monkeypatch):
    """cache_path in a directory of a file system mounted read-only (a robot's root file system) was refused as
    '(permission denied)' (user26, s26, with a tmpfs mounted ro): it names the read-only file system now; a directory
    this process may not write in is still 'permission denied'."""
    import os
    import types

    from gaussian_head_ros.core import avatar_cache

    monkeypatch.setattr(os, "access", lambda *a, **k: False)  # as root, only a real ro mount refuses
    monkeypatch.setattr(os, "statvfs", lambda p: types.SimpleNamespace(f_flag=os.ST_RDONLY))
    with pytest.raises(ValueError, match="cannot write in .* \\(a read-only file system"):
        avatar_cache.check_path(tmp_path / "me.avatar")
    monkeypatch.setattr(os, "statvfs", lambda p: types.SimpleNamespace(f_flag=0))
    with pytest.raises(ValueError, match="\\(permission denied\\)"):
        avatar_cache.check_path(tmp_path / "me.avatar")


def test_avatar_cache_keeps_a_note_beside_the_payload(tmp_path):
    """core/avatar_cache's note (reconstruction_node: the key of the photo the cached avatar was made from) is
    written and read with the payload, covered by its checksum; a layout-1 file (written before notes) is read
    with an empty note."""
    import hashlib
    import struct

    from gaussian_head_ros.core import avatar_cache

    path = tmp_path / "a.avatar"
    avatar_cache.write(path, b"payload" * 100, "k", note=b'{"photo_key": "ab"}')
    assert avatar_cache.read_entry(path, "k") == (b"payload" * 100, b'{"photo_key": "ab"}')
    assert avatar_cache.read(path, "k") == b"payload" * 100
    data = bytearray(path.read_bytes())
    data[avatar_cache._HEAD.size + 3] ^= 1  # a bit of the note
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        avatar_cache.read_entry(path, "k")
    sha = lambda b: hashlib.sha256(b).digest()  # noqa: E731
    path.write_bytes(struct.pack("<8s32s32sQ", b"GHRAVC1\n", sha(b"k"), sha(b"old"), 3) + b"old")
    assert avatar_cache.read_entry(path, "k") == (b"old", b"")


def test_zonal_sh_shows_its_lobe_from_every_direction():
    """avatar.sh_zonal (the learned reconstructor's view-dependent head outline, rar.view_sh) through sh_basis (what
    Driver evaluates): a Gaussian seen along d shows delta x legendre(d . e) for any lobe of degree <= 2 (the addition
    theorem for 3DGS's real SH); t^2 is 1 along e from either side and 0 at right angles."""
    from gaussian_head_ros.core.avatar import legendre, sh_basis, sh_zonal

    rng = np.random.default_rng(0)
    e = rng.normal(size=(200, 3))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    d = rng.normal(size=(200, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    delta = rng.uniform(-0.5, 0.5, (200, 3))
    for lobe in ((1 / 3, 0.0, 2 / 3), (0.0, 1.0), (0.2, 0.3, 0.5)):
        sh = sh_zonal(delta, e, lobe)
        shown = np.einsum("nk,nkc->nc", sh_basis(d, len(lobe) - 1), sh)
        want = delta * legendre((d * e).sum(1), lobe)[:, None]
        assert np.abs(shown - want).max() < 1e-5, lobe
    t2 = (1 / 3, 0.0, 2 / 3)
    side = np.cross(e, rng.normal(size=(200, 3)))
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    for view, g in ((e, 1.0), (-e, 1.0), (side, 0.0)):
        shown = np.einsum("nk,nkc->nc", sh_basis(view, 2), sh_zonal(delta, e, t2))
        assert np.abs(shown - g * delta).max() < 1e-5


def test_ply_count_reads_the_header_only(tmp_path):
    """core.avatar.ply_count: the Gaussians an avatar .ply holds, from its header (reconstruction_node checks an avatar
    file's size against the display's budget before loading it); ValueError for a file that is not a .ply."""
    from gaussian_head_ros.core.avatar import ply_count, save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    save_ply(synthetic_avatar(1234, seed=1), tmp_path / "me.ply")
    assert ply_count(tmp_path / "me.ply") == 1234
    cut = tmp_path / "cut.ply"
    cut.write_bytes((tmp_path / "me.ply").read_bytes()[:2000])  # the header and a few rows: still counted
    assert ply_count(cut) == 1234
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a ply")
    with pytest.raises(ValueError, match="photo.jpg is a JPEG photo, not an avatar .ply"):
        ply_count(tmp_path / "photo.jpg")


def test_an_avatar_message_differing_in_any_field_is_another_avatar():
    """render_node keeps the avatar it shows when the same message comes again (user24, s24) by
    conversions.avatar_message_key. A message differing only outside the Gaussians' bytes (a point_step, a template
    face, a wrinkle row) must be another one, so that msg_to_avatar's checks refuse it: keyed on the Gaussians' CRC
    alone, test_hostile_inputs' malformed point_step was 'received again, kept' instead of refused."""
    from gaussian_head_ros.nodes.conversions import avatar_message_key, avatar_to_msg

    avatar = synthetic_avatar(500, seed=3, operator_id="same")
    assert avatar_message_key(avatar_to_msg(avatar)) == avatar_message_key(avatar_to_msg(avatar))
    for change in (lambda m: setattr(m.gaussians, "point_step", m.gaussians.point_step + 4),
                   lambda m: setattr(m.gaussians.fields[4], "datatype", 2),
                   lambda m: setattr(m, "rest_brow_shift", [0.0, 0.5]),
                   # the same bytes, one float moved from the end of one buffer to the start of the next
                   lambda m: (setattr(m, "expression_basis", m.expression_basis + m.lighting_sh[:1]),
                              setattr(m, "lighting_sh", m.lighting_sh[1:]))):
        msg = avatar_to_msg(avatar)
        change(msg)
        assert avatar_message_key(msg) != avatar_message_key(avatar_to_msg(avatar))


def test_an_avatar_made_again_differs_only_in_its_stamp():
    """conversions.same_avatar_made_again: the same Gaussians with another stamp are the avatar shown made again (the
    render node keeps it without a cross-fade to the same face, user58); the same stamp (the same message) is not 'made
    again', nor another stamp with any other field changed."""
    from gaussian_head_ros.nodes.conversions import avatar_message_key, avatar_to_msg, same_avatar_made_again

    avatar = synthetic_avatar(500, seed=3, operator_id="same")
    shown = avatar_to_msg(avatar)
    again = avatar_to_msg(avatar)
    again.header.stamp.sec = shown.header.stamp.sec + 20
    assert same_avatar_made_again(avatar_message_key(again), avatar_message_key(shown))
    assert not same_avatar_made_again(avatar_message_key(shown), avatar_message_key(shown))
    assert not same_avatar_made_again(avatar_message_key(again), ())
    for change in (lambda m: setattr(m, "operator_id", "other"), lambda m: setattr(m.header, "frame_id", "other"),
                   lambda m: setattr(m, "rest_brow_shift", [0.0, 0.5])):
        other = avatar_to_msg(avatar)
        other.header.stamp.sec = shown.header.stamp.sec + 20
        change(other)
        assert not same_avatar_made_again(avatar_message_key(other), avatar_message_key(shown))


def test_an_avatar_save_cut_off_keeps_the_previous_pair(tmp_path, monkeypatch):
    """save_ply wrote me.ply, then me.driving.npz, each in place: a Ctrl-C (or a full disk) while the driving file
    was written left the new .ply beside an emptied driving file (load_ply: 'cannot read the driving file ...: No data
    left in file', neither avatar loads). Now both are written beside them and renamed in when whole: the previous
    pair loads as it was, and no partial file is left."""
    old, new = synthetic_avatar(500, seed=1), synthetic_avatar(700, seed=2)
    path = tmp_path / "me.ply"
    save_ply(old, path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_ply(new, path)
    monkeypatch.undo()
    back = load_ply(path)
    assert back.num_gaussians == 500 and np.array_equal(back.means, old.means)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.driving.npz", "me.ply"]


def test_an_avatar_save_that_cannot_be_put_in_place_leaves_nothing_and_names_the_file(tmp_path, capsys):
    """A folder where the driving file goes (me.driving.npz/): save_ply failed at the rename, naming its partial file
    ('Is a directory: .../.me.driving.npz.partial-123.npz') and leaving it there. Now the error names the driving
    file, neither file nor part is left, and `gaussian-head reconstruct -o me.ply` says so before the work."""
    from gaussian_head_ros.cli import main

    (tmp_path / "me.driving.npz").mkdir()
    with pytest.raises(IsADirectoryError) as e:
        save_ply(synthetic_avatar(100), tmp_path / "me.ply")
    assert e.value.filename == str(tmp_path / "me.driving.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.driving.npz"]
    capsys.readouterr()
    assert main(["reconstruct", str(tmp_path / "not_read.jpg"), "-o", str(tmp_path / "me.ply")]) == 1
    assert f"driving file {tmp_path / 'me.driving.npz'} is a directory" in capsys.readouterr().err


def test_a_long_file_name_is_written_or_refused_before_any_work(tmp_path, capsys):
    """A legal 250-byte name (the limit is 255) failed after the whole work: the part written beside it,
    '.NAME.partial-PID.EXT', is ~20 bytes longer ('File name too long: .../.bbb...partial-14703.mp4', naming the part,
    cli63). The part's name is cut to fit now; a name above the limit (or an avatar whose driving file's name would be)
    is refused by check_writable before any work, naming the file."""
    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.files import WholeFile, name_max

    limit = name_max(str(tmp_path))
    stem = "ü" * ((limit - len(".ply")) // 2)  # 2 bytes a character: a name of limit - 1 bytes or so, all legal
    ply, driving = save_ply(synthetic_avatar(50), tmp_path / f"{stem[:-8]}.ply")  # its .driving.npz fits too
    assert load_ply(ply).num_gaussians == 50 and driving.is_file()
    with WholeFile(tmp_path / f"{stem}.ply") as whole, whole.writing() as fh:  # the limit's name itself
        fh.write(b"ply\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ply.name, driving.name, f"{stem}.ply"])
    capsys.readouterr()
    too_long = tmp_path / ("a" * (limit + 1) + ".ply")
    assert main(["reconstruct", str(tmp_path / "not_read.jpg"), "-o", str(too_long)]) == 1
    said = capsys.readouterr().err.strip()
    assert said.startswith(f"gaussian-head reconstruct: error: -o/--output {too_long}: the name aaaa") and \
        f"is {limit + 5} bytes long, above the {limit} bytes" in said, said
    assert main(["reconstruct", str(tmp_path / "not_read.jpg"), "-o", str(tmp_path / f"{stem}.ply")]) == 1
    assert "-o/--output's driving file" in capsys.readouterr().err  # NAME.ply fits, NAME.driving.npz would not
