"""Inputs from the field (issue 14), built at test time from ../shared portraits: phone photos stored rotated
with an EXIF Orientation tag, transparent cut-outs, 48 MP phone photos. No personal photo is committed.

The expected values come from the right behaviour, not from our code: the EXIF orientations are written
from the EXIF 2.3 table (where row 0 and column 0 of the stored image lie), the composite is
alpha * colour + (1 - alpha) * backdrop, and the reduced decode is libjpeg's 1/2, 1/4, 1/8.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT, mesh_fit_reconstructor, mesh_fit_result, shared
from graph_peer import photo

from gaussian_head_ros.core.imageio import BACKDROP_RGB, decode_compressed, decode_raw, read_image

EXIF_ORIENTATION = 0x0112


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """[H, W, 3] upright pixels -> the pixels a camera stores with EXIF Orientation `orientation`.

    EXIF 2.3, tag 0x0112: (row 0, column 0) of the stored image are (top, left) 1, (top, right) 2,
    (bottom, right) 3, (bottom, left) 4, (left, top) 5, (right, top) 6, (right, bottom) 7, (left, bottom) 8."""
    u = upright
    return np.ascontiguousarray({
        1: u,
        2: u[:, ::-1],
        3: u[::-1, ::-1],
        4: u[::-1],
        5: u.transpose(1, 0, 2),
        6: np.rot90(u, 1),  # row 0 = the right column, column 0 = the top row
        7: u[::-1, ::-1].transpose(1, 0, 2),
        8: np.rot90(u, -1),  # row 0 = the left column, column 0 = the bottom row
    }[orientation])


def encode_with_orientation(upright: np.ndarray, orientation: int, fmt: str = "JPEG", quality: int = 95) -> bytes:
    """A JPEG (or PNG with an eXIf chunk) as a phone writes it: pixels stored turned, plus the tag."""
    from PIL import Image

    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    buf = io.BytesIO()
    Image.fromarray(stored_for_orientation(upright, orientation)).save(buf, fmt, exif=exif.tobytes(), quality=quality,
                                                                       subsampling=0)
    return buf.getvalue()


@pytest.fixture(scope="module")
def fast_reconstructor():
    """The session's fast mesh_fit reconstructor (conftest.mesh_fit_reconstructor)."""
    return mesh_fit_reconstructor(preset="fast")


# ---------------------------------------------------------------------------------------------------
# 1. EXIF orientation

@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_on_decode(orientation):
    up = photo("obama_official.jpg", 320)
    got = decode_compressed(encode_with_orientation(up, orientation))
    assert got.shape == up.shape, (orientation, got.shape)
    assert np.abs(got.astype(int) - up).mean() < 3.0, orientation  # JPEG noise only
    png = decode_compressed(encode_with_orientation(up, orientation, "PNG"))  # PNG's eXIf chunk: lossless
    np.testing.assert_array_equal(png, up)


def registered(render: np.ndarray, photo_moving: np.ndarray, photo_ref: np.ndarray) -> np.ndarray:
    """`render` (drawn from the source camera of `photo_moving`) warped into the frame of `photo_ref` by the
    affine map that registers the two crops (OpenCV's ECC). The crop's placement follows MediaPipe's
    landmarks, which move by a pixel or two with JPEG rounding; that is not what a test of orientation asks."""
    ref = cv2.cvtColor(photo_ref, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    mov = cv2.cvtColor(photo_moving, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    warp = np.eye(2, 3, dtype=np.float32)
    try:
        _, warp = cv2.findTransformECC(ref, mov, warp, cv2.MOTION_AFFINE,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6), None, 5)
    except cv2.error:  # no registration: compare as it is (a turned or mirrored face)
        return render
    return cv2.warpAffine(render, warp, (ref.shape[1], ref.shape[0]), flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def _half(img: np.ndarray) -> np.ndarray:
    """512 -> 256 pixels (renders at 256 are 4x quicker on the CPU)."""
    return cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA)


def test_every_exif_orientation_gives_the_upright_avatar(tmp_path):
    """`gaussian-head reconstruct` on a phone JPEG of each orientation 2-8 gives the upright avatar: it
    reproduces its photo within 1 dB of the upright JPEG's avatar (PSNR in the head region), and that photo
    and avatar are the upright ones (the avatar, registered onto the upright crop, matches the upright photo
    at > 28 dB; measured 29.9-31.6 dB for orientations 2-8 at neutral7's rest pose, 30.1-31.9 before it:
    the avatar rests without the photo's frown, so its rest face differs from this frowning photo by design).
    Ignoring the tag gives a mirrored avatar; a sideways one (6) is turned upright by the framing since try10, and an
    upside-down one (3), which made an upside-down avatar at 12-16 dB, since user37 (s37): both checked."""
    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.avatar import load_ply
    from gaussian_head_ros.core.metrics import psnr
    from gaussian_head_ros.core.reconstruct import ReconstructionError
    from gaussian_head_ros.core.reconstruct.preview import source_view

    up = photo("lp_d8_man_glasses.jpg", 480)
    up = up[: up.shape[0] // 16 * 16, : up.shape[1] // 16 * 16]  # whole JPEG blocks in every orientation

    def reconstruct(name, data):
        """(photo, render, mask) of the avatar of a photo file, 256 px: through the CLI for orientation 6 (its
        .ply and --preview files), through read_image + conftest.mesh_fit_result for the others (the same decode,
        10x quicker; orientations whose decoded pixels are the same, 1 and 4, 2 and 3, reconstructed once)."""
        f = tmp_path / f"{name}.jpg"
        f.write_bytes(data)
        if name == "phone_6":
            prev = tmp_path / f"prev_{name}"
            assert main(["reconstruct", str(f), "-o", str(tmp_path / f"{name}.ply"), "--preset", "fast",
                         "--preview", str(prev)]) == 0
            p, m = (cv2.imread(str(prev / n), cv2.IMREAD_UNCHANGED) for n in ("photo.png", "mask.png"))
            return _half(p[..., ::-1]), draw(load_ply(tmp_path / f"{name}.ply")), _half(m) > 127
        try:
            res = mesh_fit_result(read_image(str(f)), preset="fast")
        except ReconstructionError:
            return None
        return _half(res.photo), draw(res.avatar), _half(res.mask.astype(np.uint8) * 255) > 127

    def draw(avatar):
        return (np.clip(source_view(avatar, size=256, backend="cpu"), 0, 1) * 255 + 0.5).astype(np.uint8)

    photo_up, render_up, mask_up = reconstruct("phone_1", encode_with_orientation(up, 1, quality=100))
    reference = psnr(render_up, photo_up, mask_up)
    assert reference > 30, reference
    for o in range(2, 9):
        p, r, m = reconstruct(f"phone_{o}", encode_with_orientation(up, o, quality=100))
        assert abs(psnr(r, p, m) - reference) < 1.0, (o, psnr(r, p, m), reference)
        assert psnr(registered(r, p, photo_up), photo_up, mask_up) > 28.0, o
    def ignored(o):  # what ignoring the tag gives: the stored pixels as they are
        return reconstruct(f"ignored_{o}", cv2.imencode(".png", stored_for_orientation(up, o)[..., ::-1])[1].tobytes())
    for o in (3, 6):  # upside down (FaceMesh.upside_down: since user37), on its side: the framing turns it upright
        p, r, m = ignored(o)
        assert psnr(registered(r, p, photo_up), photo_up, mask_up) > 28.0, o


def test_an_upside_down_photo_is_turned_upright():
    """A photo stored upside down without an EXIF orientation (a scan fed in the wrong way, a phone shot whose tag an
    app stripped) was reconstructed without a word into an upside-down avatar: the face mesh fits an upside-down face
    as an upright one (facemesh.quarter_turns returns 0), so the avatar's brows and eyes were the photo's chin and mouth
    (user37, s37: obama_official turned 180 degrees, /tmp/u37/upside_down_before_after.png). Now the face detector's
    score tells it (FaceMesh.upside_down): each ../shared portrait turned half a turn (or 170 degrees, not a whole
    number of quarter turns) is framed as the upright photo is, with the warning, and none as it is is turned."""
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo

    turned = "the photo was turned"
    with FaceMesh(static_image_mode=True, max_faces=4) as fm:
        for path in sorted(shared("portraits").iterdir()):
            rgb = read_image(str(path))
            up = frame_photo(rgb, fm, FramingConfig())
            assert not [w for w in up.warnings if turned in w], (path.name, up.warnings)
            down = frame_photo(np.ascontiguousarray(rgb[::-1, ::-1]), fm, FramingConfig())
            said = [w for w in down.warnings if turned in w]
            assert len(said) == 1 and "upside down" in said[0] and "half a turn" in said[0], (path.name, down.warnings)
            # the same face the right way up: its landmarks where the upright photo's are (pixels of the 512 crop)
            err = np.abs(down.landmarks_px[:, :2] - up.landmarks_px[:, :2]).mean()
            assert err < 3.0, (path.name, err)
        h, w = rgb.shape[:2]  # the last portrait, 170 degrees: upside down, not by whole quarter turns
        tilted = cv2.warpAffine(rgb, cv2.getRotationMatrix2D((w / 2, h / 2), 170, 1.0), (w, h),
                                borderMode=cv2.BORDER_REPLICATE)
        said = [x for x in frame_photo(tilted, fm, FramingConfig()).warnings if turned in x]
        assert len(said) == 1 and "upside down" in said[0], said


def _rotated(rgb: np.ndarray, angle_deg: float) -> np.ndarray:
    """[H, W, 3] rotated about its centre by angle_deg (counter-clockwise as displayed), the same frame, black
    corners (an image editor's rotate; scripts/rolled_photos.py measures the same)."""
    h, w = rgb.shape[:2]
    return cv2.warpAffine(rgb, cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0), (w, h))


def test_a_rolled_photo_is_turned_upright():
    """A photo whose head is rolled in the image plane (a phone held crooked, a selfie with the head tilted) was
    framed as it is: the crop and its landmarks rolled, and the avatar built from image rows (below the chin = the
    torso) with its shoulders turned and a dark blob by one (user37, s37). Now (framing.head_roll_deg, roll_upright)
    each ../shared portrait rotated 35 degrees either way is framed as the upright photo is (its landmarks 0.7-4.0 px
    from the upright photo's in the 512 crop, mean per portrait; before: 20-26 px), with the warning; the portraits as
    they are (rolled 0.5-5.4 degrees) and rotated by 4 degrees (within roll_upright_deg) are left as they are.
    two_children_multiface rotated -35 degrees in its frame loses its forehead to the corner: refused, as before."""
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.reconstruct.base import FACE_CUT_OFF, ReconstructionError
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo, head_roll_deg

    rolled = "is rolled"
    with FaceMesh(static_image_mode=True, max_faces=4) as fm:
        for path in sorted(shared("portraits").iterdir()):
            rgb = read_image(str(path))
            up = frame_photo(rgb, fm, FramingConfig())
            assert not [w for w in up.warnings if "the photo was turned" in w], (path.name, up.warnings)
            assert abs(head_roll_deg(fm.detect(rgb)[0].landmarks_px)) < 6.0, path.name
            slight = frame_photo(_rotated(rgb, 4.0), fm, FramingConfig())
            assert not [w for w in slight.warnings if rolled in w], (path.name, slight.warnings)
            for angle in (35.0, -35.0):
                try:
                    turned = frame_photo(_rotated(rgb, angle), fm, FramingConfig())
                except ReconstructionError as e:  # the photo's own: refused as it is too
                    assert e.code == FACE_CUT_OFF and path.name == "two_children_multiface.jpeg", (path.name, e)
                    with pytest.raises(ReconstructionError, match="cut off"):
                        frame_photo(_rotated(rgb, angle), fm, FramingConfig(roll_upright_deg=90.0))
                    continue
                said = [w for w in turned.warnings if rolled in w]
                direction = "clockwise" if angle > 0 else "counter-clockwise"
                assert len(said) == 1, (path.name, angle, turned.warnings)
                assert f"deg {direction} to make the head upright" in said[0], (path.name, angle, said)
                err = np.abs(turned.landmarks_px[:, :2] - up.landmarks_px[:, :2]).mean()
                assert err < 6.0, (path.name, angle, err)
                # (the crop beyond the rotated photo's frame is not the photo: outside `valid`)
                assert not turned.valid.all(), (path.name, angle)


def test_a_rolled_portrait_gives_an_upright_avatar():
    """business_person rotated 35 degrees: its avatar, drawn at rest as the robot's display draws it (core.display's
    head framing, the upright avatar's camera), is the upright photo's avatar: PSNR over the shown pixels > 22 dB
    (fast preset, +35 degrees: measured 25.7, -35: 26.0; before the roll was turned upright 13.1 and 14.2 dB, the
    shoulders turned and a blob by one; scripts/rolled_photos.py measures every portrait and angle)."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.display import AvatarFraming
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.metrics import psnr
    from gaussian_head_ros.core.render import head_viewmat, rasterize

    rgb = read_image(str(shared("portraits", "business_person.png")))
    upright = mesh_fit_result(rgb, preset="fast").avatar
    K = AvatarFraming.from_avatar(upright).intrinsics("head", 30.0, 256, 256, 0.6, 0.9).astype(np.float32)
    view = head_viewmat(0.6).astype(np.float32)

    def at_rest(avatar):
        p = Driver(avatar).drive(FaceControl.rest(), viewmat=view)
        img = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view, K, 256, 256, backend="cpu").image
        return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)

    ref = at_rest(upright)
    result = mesh_fit_result(_rotated(rgb, 35.0), preset="fast")
    got = at_rest(result.avatar)
    shown = (ref.max(axis=2) > 8) | (got.max(axis=2) > 8)
    assert psnr(got, ref, shown) > 22.0
    assert [w for w in result.warnings if "is rolled" in w], result.warnings


def test_a_photo_with_red_and_blue_swapped_is_warned_about():
    """A raw photo with its red and blue swapped (BGR pixels sent as rgb8: user13, s13) was accepted without a word
    and made a blue avatar. Every ../shared portrait: no warning as it is, the swap warning with R and B swapped
    (a greyscale photo: test_reconstruct.test_a_black_and_white_photo_is_said_in_the_warnings)."""
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.reconstruct.framing import check_colour

    with FaceMesh(static_image_mode=True, max_faces=1, iris_model=False) as fm:
        for path in sorted(shared("portraits").iterdir()):
            rgb = read_image(str(path))
            lm = fm.detect(rgb)[0].landmarks_px
            assert check_colour(rgb, lm) == [], path.name
            swapped = check_colour(np.ascontiguousarray(rgb[..., ::-1]), lm)
            assert len(swapped) == 1 and "red and blue look swapped" in swapped[0], (path.name, swapped)


def test_a_dark_photo_is_warned_about():
    """A photo taken in a dim room (obama_official at 12 % brightness) or against a bright window (its face at 0.2 x
    inside a blown-out surround) was accepted without a word, and the robot showed a face as dark (user22, s22). The
    dark warning now comes with it (also beside the grey one); every ../shared portrait as it is has none (the
    dimmest, lp_d8_man_glasses, reads 87 of 255)."""
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.reconstruct.framing import check_colour

    with FaceMesh(static_image_mode=True, max_faces=1, iris_model=False) as fm:
        for path in sorted(shared("portraits").iterdir()):
            rgb = read_image(str(path))
            assert check_colour(rgb, fm.detect(rgb)[0].landmarks_px) == [], path.name
        rgb = read_image(str(shared("portraits", "obama_official.jpg")))
        lm = fm.detect(rgb)[0].landmarks_px
        h, w = rgb.shape[:2]
        face = np.zeros((h, w), np.float32)
        cv2.ellipse(face, (w // 2, int(h * 0.45)), (int(w * 0.28), int(h * 0.4)), 0, 0, 360, 1.0, -1)
        face = cv2.GaussianBlur(face, (0, 0), 25)[..., None]
        backlit = rgb * face * 0.2 + (1 - face) * np.minimum(255, rgb * 0.3 + 230)
        for dark in ((rgb * 0.12).astype(np.uint8), backlit.clip(0, 255).astype(np.uint8)):
            said = check_colour(dark, lm)
            assert len(said) == 1 and "the face is dark" in said[0], said
        grey = np.repeat((rgb * 0.12).astype(np.uint8).mean(2, keepdims=True), 3, axis=2).astype(np.uint8)
        said = check_colour(grey, lm)
        assert len(said) == 2 and "no colour" in said[0] and "the face is dark" in said[1], said


def test_a_head_turned_far_to_the_side_is_warned_about():
    """A photo of a head turned ~45 deg (business_person's own avatar rendered turned 45 deg, the photo a user sends
    who looks away from the camera) was taken without a word: MediaPipe reads it as 39 deg, under max_yaw_deg's 45,
    and the avatar facing the display was torn across the hidden cheek (user25, s25: /work/coord/user25/yawsweep.png).
    It is still taken, now with a warning saying why it looks so; no ../shared portrait (at most 18 deg) gets it."""
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.facemesh import FaceMesh, default_intrinsics
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo

    turned = "the head is turned"
    with FaceMesh(static_image_mode=True, max_faces=4) as fm:
        for path in sorted(shared("portraits").iterdir()):
            assert not [w for w in frame_photo(read_image(str(path)), fm, FramingConfig()).warnings if turned in w], path.name
    driver = Driver(mesh_fit_result(read_image(str(shared("portraits", "business_person.png")))).avatar)
    control = FaceControl.rest()
    control.rotation = euler_to_quat(yaw_deg=45.0).astype(np.float32)
    control.translation = np.array([0.0, 0.0, 2.0], np.float32)
    r = render_control(driver, control, default_intrinsics(768, 768, 14.0), 768, 768)
    photo = np.clip(r.image + (1 - r.alpha[..., None]) * np.array([0.8, 0.82, 0.85]), 0, 1)
    result = mesh_fit_result((photo * 255 + 0.5).astype(np.uint8))
    said = [w for w in result.warnings if turned in w]
    assert len(said) == 1 and "deg to the side" in said[0], result.warnings


def test_dark_glasses_are_warned_about():
    """Sunglasses (obama_official with black lenses drawn over his eyes from his landmarks) were taken without a word:
    the avatar wore them painted on its eyeballs, and its driven blinks and gaze moved black lenses (user25, s25).
    Now a warning says the eyes are hidden; no ../shared portrait gets it (lp_d8_man_glasses' clear glasses neither),
    nor obama_official dimmed to a dark photo, closed-lid-like skin over the eyes, or the eyes' shade of a posterised
    cartoon on one eye only."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.reconstruct.framing import check_eyes

    with FaceMesh(static_image_mode=True, max_faces=1, iris_model=False) as fm:
        for path in sorted(shared("portraits").iterdir()):
            rgb = read_image(str(path))
            assert check_eyes(rgb, fm.detect(rgb)[0].landmarks_px) == [], path.name
        rgb = read_image(str(shared("portraits", "obama_official.jpg")))
        lm = fm.detect(rgb)[0].landmarks_px[:, :2]
    eyes = [lm[list(c)].mean(0) for c in (lmk.EYE_CONTOUR_R, lmk.EYE_CONTOUR_L)]
    iod = float(np.linalg.norm(eyes[0] - eyes[1]))
    glasses, lids, one = rgb.copy(), rgb.copy(), rgb.copy()
    skin = tuple(int(v) for v in rgb[int(lm[1, 1]), int(lm[1, 0])])
    for k, c in enumerate(eyes):
        axes = (int(iod * 0.42), int(iod * 0.3))
        cv2.ellipse(glasses, (int(c[0]), int(c[1])), axes, 0, 0, 360, (20, 20, 20), -1)
        cv2.ellipse(lids, (int(c[0]), int(c[1])), axes, 0, 0, 360, skin, -1)
        if k == 0:
            cv2.ellipse(one, (int(c[0]), int(c[1])), axes, 0, 0, 360, (20, 20, 20), -1)
    said = check_eyes(glasses, lm)
    assert len(said) == 1 and "the eyes are hidden" in said[0], said
    assert check_eyes((rgb * 0.12).astype(np.uint8), lm) == []  # dark all over: the dark-face warning's
    assert check_eyes(lids, lm) == [] and check_eyes(one, lm) == []


def test_two_people_side_by_side_are_both_found():
    """Two people side by side (obama_official beside the astronaut portrait scaled to its height, 2047x1137): the
    face mesh's own detector saw one, so the photo was taken without the '2 faces found, used the largest' warning,
    and the avatar was of whichever face it saw (user13, s13). The full-range detector now looks for the faces it
    missed; a portrait of one person still gives one face, with the same landmarks."""
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo

    left = read_image(str(shared("portraits", "obama_official.jpg")))
    right = cv2.resize(read_image(str(shared("portraits", "astronaut_eileen_collins.png"))), (left.shape[0],) * 2,
                       interpolation=cv2.INTER_CUBIC)
    both = np.ascontiguousarray(np.concatenate([left, right], axis=1))
    with FaceMesh(static_image_mode=True, max_faces=4) as fm:
        faces = fm.detect(both)
        assert len(faces) == 2, [f.bbox for f in faces]
        centres = sorted((f.bbox[0] + f.bbox[2]) / 2 for f in faces)
        assert centres[0] < left.shape[1] < centres[1], centres  # one on each side
        assert faces[0].area >= faces[1].area
        framed = frame_photo(both, fm, FramingConfig())
        assert any(w.startswith("2 faces found, used the largest") for w in framed.warnings), framed.warnings
        alone = fm.detect(left)
        assert len(alone) == 1


def test_a_photo_turned_by_a_wrong_exif_orientation_is_not_said_to_have_none():
    """An upright portrait whose JPEG carries EXIF orientation 6 (an editor that turned the pixels upright and kept the
    phone's tag): decoded, the tag applied, its head lies on its side, and the photo is turned back with a warning that
    said 'stored turned, without an EXIF orientation' (user54, `ros2 param set /reconstruction_node photo_path
    wrongtag6.jpg`: the file has one, exiftool shows it). The warning now names both causes."""
    from PIL import Image

    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo

    exif, buf = Image.Exif(), io.BytesIO()
    exif[EXIF_ORIENTATION] = 6  # "turn a quarter clockwise to display", on pixels already upright
    Image.fromarray(photo("obama_official.jpg", 480)).save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    wrong = decode_compressed(buf.getvalue())
    with FaceMesh(static_image_mode=True, max_faces=4) as fm:
        said = [w for w in frame_photo(wrong, fm, FramingConfig()).warnings if "the photo was turned" in w]
    assert len(said) == 1 and "on its side" in said[0], said
    assert "without an EXIF orientation)" not in said[0], said
    assert "or with an EXIF orientation that does not match its pixels (an editor turned them and kept the " \
           "camera's tag)" in said[0], said


def test_a_photo_lying_on_its_side_gives_the_upright_avatar(fast_reconstructor):
    """A photo stored sideways without an EXIF tag (try10: the robot accepted it and showed the head on its side,
    its torso beside the head): the framing turns it upright by whole quarter turns, so the avatar is exactly
    the upright photo's (same crop, same Gaussians), with a warning saying so. Faces tilted less than 45 degrees
    are left as they are, on every ../shared portrait too."""
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.facemesh import quarter_turns

    fm = FaceMesh()
    try:
        for path in sorted(shared("portraits").iterdir()):
            assert [quarter_turns(f.landmarks_px) for f in fm.detect(read_image(str(path)))][:1] == [0], path.name
        up = photo("obama_official.jpg", 480)
        h, w = up.shape[:2]
        for degrees, turns in ((30, 0), (-35, 0), (55, 3), (-60, 1)):  # counter-clockwise as displayed
            tilted = cv2.warpAffine(up, cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 0.8), (w, h))
            assert quarter_turns(fm.detect(tilted)[0].landmarks_px) == turns, degrees
    finally:
        fm.close()
    rest = fast_reconstructor.reconstruct(up)
    assert not any("upright" in x for x in rest.warnings), rest.warnings
    for k, words in ((1, "quarter turn clockwise"), (3, "quarter turn counter-clockwise")):
        res = fast_reconstructor.reconstruct(np.ascontiguousarray(np.rot90(up, k)))
        assert any("on its side" in x and words in x for x in res.warnings), (k, res.warnings)
        np.testing.assert_array_equal(res.photo, rest.photo)
        np.testing.assert_array_equal(res.avatar.means, rest.avatar.means)


def test_a_face_lost_to_the_scaling_of_a_long_strip_is_said(fast_reconstructor):
    """A 20000x600 strip holding a portrait whose face alone reconstructs (115 px wide) was refused as 'no face found
    in the photo', nothing more (user32, s34, swapped in under avatar.launch.py): the photo is searched at max_side
    2048, where that face is 12 px wide. The refusal now says the size searched and to crop the photo."""
    from gaussian_head_ros.core.reconstruct import ReconstructionError

    face = photo("business_person.png", 600)  # 600 px tall
    fast_reconstructor.reconstruct(face)  # usable on its own
    strip = np.full((600, 20000, 3), 128, np.uint8)
    strip[:, 9900:9900 + face.shape[1]] = face
    with pytest.raises(ReconstructionError, match=r"no face found in the photo \(a 20000x600 photo is searched at "
                                                  r"2048x61, max_side 2048: a face in it is 0.1 of its size there; "
                                                  r"crop the photo around the face\)"):
        fast_reconstructor.reconstruct(strip)


# ---------------------------------------------------------------------------------------------------
# 2. transparency

def _cutout(rng_seed=0):
    """An RGBA cut-out of a portrait: a feathered elliptical alpha, and under the transparent and
    semi-transparent pixels a hidden pure magenta (what an editor leaves there)."""
    rgb = photo("astronaut_eileen_collins.png", 256)
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((xx - w / 2) / (0.38 * w), (yy - h / 2) / (0.48 * h))
    alpha = np.clip((1.0 - r) / 0.15, 0, 1)  # 1 inside, a 15% feathered edge, 0 outside
    a8 = np.round(alpha * 255).astype(np.uint8)
    hidden = rgb.copy()
    hidden[a8 < 255] = (255, 0, 255)
    return rgb, hidden, a8


def _expected(rgb, a8):
    a = a8.astype(np.float64)[..., None] / 255
    return a * rgb + (1 - a) * np.array(BACKDROP_RGB, np.float64)


def _magenta(img) -> np.ndarray:
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return (r > g + 60) & (b > g + 60)


def test_rgba_png_is_composited_without_halo():
    from PIL import Image

    rgb, hidden, a8 = _cutout()
    buf = io.BytesIO()
    Image.fromarray(np.dstack([hidden, a8]), "RGBA").save(buf, "PNG")
    got = decode_compressed(buf.getvalue())
    edge = (a8 > 0) & (a8 < 255)
    assert edge.sum() > 1000
    # Where alpha is 0 the hidden colour must not show; where 0 < alpha < 1 the magenta weighs alpha, and
    # the alpha-weighted magenta against the true colour underneath is what a viewer would composite.
    want_hidden = _expected(hidden, a8)
    assert np.abs(got.astype(float) - want_hidden).max() <= 1.0
    assert not _magenta(got)[a8 == 0].any()
    assert np.all(got[a8 == 0] == BACKDROP_RGB)
    # A grey+alpha PNG and a palette PNG with a transparent index are composited too.
    la = io.BytesIO()
    Image.fromarray(np.dstack([hidden[..., 1], a8]), "LA").save(la, "PNG")
    assert np.all(decode_compressed(la.getvalue())[a8 == 0] == BACKDROP_RGB)
    pal = Image.fromarray(hidden).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    idx = np.asarray(pal).copy()
    idx[a8 == 0] = 63
    pal = Image.fromarray(idx, "P")
    pal.putpalette(Image.fromarray(hidden).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).getpalette())
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=63)
    assert np.all(decode_compressed(buf.getvalue())[a8 == 0] == BACKDROP_RGB)


@pytest.mark.parametrize("encoding", ["rgba8", "bgra8", "8UC4", "rgba16", "bgra16"])
def test_rgba_messages_are_composited(encoding):
    rgb, hidden, a8 = _cutout()
    h, w = a8.shape
    rgba = np.dstack([hidden, a8])
    if encoding in ("bgra8", "8UC4", "bgra16"):
        rgba = rgba[..., [2, 1, 0, 3]]
    if encoding.endswith("16"):
        rgba = rgba.astype("<u2") * 257
    data = np.ascontiguousarray(rgba)
    got = decode_raw(data.tobytes(), w, h, data.strides[0], encoding)
    assert np.abs(got.astype(float) - _expected(hidden, a8)).max() <= 1.0
    assert np.all(got[a8 == 0] == BACKDROP_RGB)


def test_rgba_cutout_gives_an_avatar_without_halo(fast_reconstructor):
    """Reconstructed from the cut-out, no Gaussian carries the magenta hidden under the transparent edge."""
    from PIL import Image

    from gaussian_head_ros.core.avatar import sh_dc_to_rgb

    rgb = photo("lp_d8_man_glasses.jpg", 480)
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((xx - w / 2) / (0.42 * w), (yy - h * 0.45) / (0.5 * h))
    a8 = np.round(np.clip((1.0 - r) / 0.2, 0, 1) * 255).astype(np.uint8)
    hidden = rgb.copy()  # a matting tool's straight colour: the person where alpha > 0, anything under alpha 0
    hidden[a8 == 0] = (255, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(np.dstack([hidden, a8]), "RGBA").save(buf, "PNG")

    def magenta_share(img):
        avatar = fast_reconstructor.reconstruct(img).avatar
        colours = np.clip(sh_dc_to_rgb(avatar.sh[:, 0]) * 255, 0, 255)
        return _magenta(colours[None])[0].mean()

    # The photo itself has no magenta; a halo paints the silhouette's Gaussians with it (as dropping the
    # alpha does: checked, so that the test can fail).
    assert magenta_share(decode_compressed(buf.getvalue())) < 0.002
    assert magenta_share(hidden) > 0.02


def test_a_cutout_portrait_is_said_to_be_composited_and_reconstructs(tmp_path, capsys, caplog):
    """A portrait PNG with its background cut away (alpha 0 around the person, black under it, as an editor leaves it)
    was taken without a word. It is composited onto the grey backdrop and the log says so, with how much of it is
    transparent; `gaussian-head reconstruct` makes the avatar of the person from it."""
    import logging

    from PIL import Image

    from gaussian_head_ros.cli import main

    rgb = photo("obama_official.jpg", 480)
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    inside = np.hypot((xx - w / 2) / (0.36 * w), (yy - h * 0.5) / (0.55 * h)) < 1  # head and shoulders
    a8 = np.where(inside, 255, 0).astype(np.uint8)
    cut = np.where(inside[..., None], rgb, 0).astype(np.uint8)
    path = tmp_path / "cutout.png"
    Image.fromarray(np.dstack([cut, a8]), "RGBA").save(path)
    share = round(100 * (a8 == 0).mean())
    caplog.set_level(logging.INFO, logger="gaussian_head_ros.core.imageio")
    got = read_image(str(path))  # a photo file: its decode's notes logged (a message's are its node's to say)
    assert np.all(got[a8 == 0] == BACKDROP_RGB) and np.array_equal(got[inside], rgb[inside])
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"the photo is transparent in {share} % of its pixels (0 % partly): composited onto mid grey " \
           f"{BACKDROP_RGB}" in said, said
    caplog.clear()
    cv2.imwrite(str(tmp_path / "opaque.png"), rgb[..., ::-1])
    assert read_image(str(tmp_path / "opaque.png")) is not None
    assert not [r for r in caplog.records if "transparent" in r.getMessage()]  # an opaque photo: nothing said
    assert main(["reconstruct", str(path), "-o", str(tmp_path / "me.ply"), "--preset", "fast"]) == 0
    assert "transparent in" in " ".join(r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------------
# 7. large phone photos

def _phone_jpeg(path, width=8000, height=6000) -> np.ndarray:
    """A 48 MP JPEG (8000x6000) upscaled from a portrait; returns the upright pixels scaled down by 8."""
    small = photo("obama_official.jpg", max(width, height) // 8)
    small = cv2.resize(small, (width // 8, height // 8), interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    assert cv2.imwrite(str(path), big[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return small


# The child's own peak (VmHWM, core.memory): getrusage's ru_maxrss starts a child at its parent's size, so under a
# large pytest parent the old probe read +0 MiB whatever the decode held (train14, session 14). A tiny JPEG is
# decoded first, so that the modules a decode imports are not counted as the photo's memory.
_DECODE_PEAK = """
import sys
import cv2, numpy as np
from gaussian_head_ros.core.imageio import decode_compressed, read_image
from gaussian_head_ros.core.memory import peak_rss_mb
decode_compressed(cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))[1].tobytes())
rss0 = peak_rss_mb()
try:
    img = read_image(sys.argv[1], max_pixels=int(sys.argv[2]))
    print(img.shape[1], img.shape[0], peak_rss_mb() - rss0)
except ValueError as e:
    print("refused:", e)
"""


def _decode_in_child(path, max_pixels) -> str:
    out = subprocess.run([sys.executable, "-c", _DECODE_PEAK, str(path), str(max_pixels)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_a_48mp_phone_photo_is_decoded_reduced_within_bounded_memory(tmp_path):
    path = tmp_path / "phone_48mp.jpg"
    small = _phone_jpeg(path)
    # 40 MP limit -> 1/2 (4000x3000 = 12 MP); 4 MP -> 1/4 (2000x1500 = 3 MP); 1 MP -> 1/8 (1000x750).
    for limit, (w, h) in ((40_000_000, (4000, 3000)), (4_000_000, (2000, 1500)), (1_000_000, (1000, 750))):
        got = _decode_in_child(path, limit)
        assert not got.startswith("refused"), got
        gw, gh, peak_mb = got.split()
        assert (int(gw), int(gh)) == (w, h), (limit, got)
        # A full decode is 8000 x 6000 x 3 = 144 MB; the reduced one holds Pillow's pixels (4 bytes each) and the
        # array (3): measured +80 MiB at 1/2 (+149 with the transpose's copy and np.asarray's two buffers).
        assert float(peak_mb) < 2.5 * w * h * 3 / 2**20 + 20, (limit, got)
    img = read_image(str(path), max_pixels=1_000_000)
    assert np.abs(img.astype(int) - small).mean() < 6  # the same picture, 1/8 the size
    # Below 1/8 of the limit it cannot be decoded within it: refused, saying so.
    got = _decode_in_child(path, 500_000)
    assert got.startswith("refused") and "above the limit of 500000" in got and "1/8" in got, got


def test_a_photo_above_the_pixel_limit_says_the_size_to_shrink_it_to(tmp_path, capsys):
    """A PNG above the pixel limit (a 48 MP screenshot or export; only JPEG can be decoded reduced) was refused saying
    the limit only. Now it says the largest size of its aspect ratio within the limit and how to get there (shrink it,
    save it as JPEG, raise --max-pixels); a raw image message and an array given to a reconstructor say the same. At
    a 1 MP limit, to keep the test small: 1600x1200 = 1.92 MP -> 1154x866 (1154 x 866 <= 1e6 < 1155 x 867)."""
    from PIL import Image

    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.reconstruct.framing import check_image

    big = cv2.resize(photo("obama_official.jpg", 1600), (1600, 1200), interpolation=cv2.INTER_LINEAR)
    path = tmp_path / "export.png"
    Image.fromarray(big).save(path, compress_level=1)
    capsys.readouterr()
    assert main(["reconstruct", str(path), "-o", str(tmp_path / "me.ply"), "--max-pixels", "1000000"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    said = err[0]
    # the file named first, as every other refusal of a photo names it (it named none; cli63)
    assert said.startswith(f"gaussian-head reconstruct: error: {path}: image is 1600x1200 = 1920000 pixels, above the "
                           "limit of 1000000 (only JPEG can be decoded reduced"), said
    assert "shrink it to at most 1154x866" in said and "save it as JPEG" in said and "--max-pixels" in said, said
    with pytest.raises(ValueError, match="above the limit of 1000000: shrink it to at most 1154x866"):
        decode_raw(big.tobytes(), 1600, 1200, 1600 * 3, "rgb8", max_pixels=1_000_000)
    with pytest.raises(ValueError, match="above the limit of 1000000: shrink it to at most 1154x866"):
        check_image(big, 1_000_000)


def test_a_48mp_phone_photo_stored_rotated_is_reduced_and_upright(tmp_path):
    """Reduction and orientation together (a phone held upright writes 8000x6000 + Orientation 6)."""
    from PIL import Image

    path = tmp_path / "phone_48mp.jpg"
    small = _phone_jpeg(path)  # 8000x6000 landscape pixels
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    with Image.open(path) as im:
        rotated = tmp_path / "phone_48mp_rot.jpg"
        Image.fromarray(stored_for_orientation(np.asarray(im), 6)).save(rotated, "JPEG", exif=exif.tobytes(),
                                                                        quality=90)
    img = read_image(str(rotated), max_pixels=1_000_000)
    assert img.shape == (small.shape[0], small.shape[1], 3)
    assert np.abs(img.astype(int) - small).mean() < 6


# ---------------------------------------------------------------------------------------------------
# 3. camera_info: K, else P, else the field of view; compressedDepth; 8UC3

def test_a_camera_info_for_another_aspect_ratio_is_warned_about():
    """A driver calibrated at 1920x1080 that streams 640x480: the tracker scaled K by 1/3 in x and 4/9 in y, fx 467
    and fy 622 px from one 1400 px lens, and logged it as an ordinary INFO line (user16, s16). The rule: the same size,
    no size given, or the same aspect ratio (another resolution of the same mode) say nothing; another ratio says
    both sizes and the factors."""
    from gaussian_head_ros.core.camera_info import size_mismatch

    assert size_mismatch(640, 480, 640, 480) == "" and size_mismatch(0, 0, 640, 480) == ""
    assert size_mismatch(1280, 960, 640, 480) == "" and size_mismatch(1920, 1080, 1280, 720) == ""
    assert size_mismatch(1282, 960, 640, 480) == ""  # within 1 %
    said = size_mismatch(1920, 1080, 640, 480)
    assert "1920x1080" in said and "640x480" in said and "0.333 in x and 0.444 in y" in said, said


def test_intrinsics_from_camera_info_rule():
    from gaussian_head_ros.core.camera_info import check_camera_info, intrinsics_from_camera_info
    from gaussian_head_ros.core.facemesh import default_intrinsics

    K = [800.0, 0, 320, 0, 810, 240, 0, 0, 1]
    P = [700.0, 0, 300, 0, 0, 710, 250, 0, 0, 0, 1, 0]
    m, src = intrinsics_from_camera_info(K, P, 640, 480, 640, 480, 50.0)
    assert src == "K" and m[0, 0] == 800 and m[1, 1] == 810
    m, src = intrinsics_from_camera_info([0.0] * 9, P, 640, 480, 640, 480, 50.0)
    assert src == "P" and m.tolist() == [[700, 0, 300], [0, 710, 250], [0, 0, 1]]
    m, src = intrinsics_from_camera_info([0.0] * 9, [0.0] * 12, 640, 480, 640, 480, 50.0)
    assert src == "fov" and np.allclose(m, default_intrinsics(640, 480, 50.0))
    m, _ = intrinsics_from_camera_info([0.0] * 9, P, 640, 480, 320, 240, 50.0)  # half the resolution
    assert m[0, 0] == 350 and m[1, 2] == 125
    for k, p, why in (([np.nan] + K[1:], P, "not finite"), ([0.0] * 9, [-1.0] + P[1:], "negative")):
        with pytest.raises(ValueError, match=why):
            check_camera_info(k, p)


def test_a_camera_matrix_no_camera_has_is_refused():
    """check_plausible, through intrinsics_from_camera_info: fx = 1 px with the principal point on the corner (a
    placeholder: 179.6 degrees across 640 px), fx = 1e9 px (0.00004 degrees), pixels 3x taller than wide, a principal
    point off the image; webcams (50-90 degrees), a 30x PTZ's tele end (2.3 degrees), a fisheye's equidistant K
    (~118 degrees) and a 16:9 calibration rescaled to 4:3 frames (fy / fx 4/3) pass."""
    from gaussian_head_ros.core.camera_info import intrinsics_from_camera_info

    def k(fx, fy=None, cx=320.0, cy=240.0):
        return [fx, 0, cx, 0, fx if fy is None else fy, cy, 0, 0, 1]

    for K, why in ((k(1.0, cx=0.0, cy=0.0), "fx 1 px is a 179.6 degree field of view across the 640 px width"),
                   (k(1e9), "fx 1e+09 px is a 3.667e-05 degree"), (k(500.0, 1500.0), "fy / fx is 3"),
                   (k(500.0, cx=-10.0), "the principal point (-10, 240) px is not inside the 640x480 image"),
                   (k(500.0, cy=480.0), "the principal point (320, 480)")):
        with pytest.raises(ValueError, match=re.escape(f"its K is not a real camera's: {why}")):
            intrinsics_from_camera_info(K, [], 640, 480, 640, 480, 50.0)
    fisheye_fx = 320 / np.radians(95.0)  # 190 degrees across the width, equidistant model
    for K in (k(320 / np.tan(np.radians(45))), k(320 / np.tan(np.radians(1.15))), k(fisheye_fx)):
        assert intrinsics_from_camera_info(K, [], 640, 480, 640, 480, 50.0)[1] == "K"
    m, _ = intrinsics_from_camera_info(k(1400.0, cx=960.0, cy=540.0), [], 1920, 1080, 640, 480, 50.0)
    assert m[1, 1] / m[0, 0] == pytest.approx(4 / 3)
    with pytest.raises(ValueError, match="its P is not a real camera's: fx 1 px"):  # P's matrix is checked too
        intrinsics_from_camera_info([0.0] * 9, [1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 1, 0], 640, 480, 640, 480, 50.0)


def test_16uc3_and_16uc4_are_bgr16_and_bgra16_and_noted():
    """A 16-bit colour picture that cv_bridge publishes with encoding 'passthrough' (cv2.imread(..., IMREAD_UNCHANGED) of
    a 16-bit PNG or TIFF) is 16UC3 (16UC4 with alpha): a photo sent so was refused 'unsupported image encoding
    '16UC3'; use one of rgb8, ...', where its 8-bit sibling 8UC3 is taken as BGR with a note (user54). Now the same
    rule: OpenCV's order, the top byte of each sample, and a note naming bgr16 / rgb16."""
    from gaussian_head_ros.core.imageio import decode_raw_with_notes, encoding_note

    rgb = photo("obama_official.jpg", 64)
    h, w = rgb.shape[:2]
    bgr16 = np.ascontiguousarray(rgb[..., ::-1]).astype(np.uint16) * 257
    got, notes = decode_raw_with_notes(bgr16.tobytes(), w, h, w * 6, "16UC3")
    np.testing.assert_array_equal(got, rgb)
    assert notes == ()
    assert encoding_note("16UC3") == ("16UC3 images carry no channel order: taken as BGR (OpenCV's order, as cv_bridge "
                                      "does); publish bgr16 or rgb16 to say which"), encoding_note("16UC3")
    bgra16 = np.concatenate([bgr16, np.full((h, w, 1), 65535, np.uint16)], axis=2)
    got, notes = decode_raw_with_notes(bgra16.tobytes(), w, h, w * 8, "16UC4")
    np.testing.assert_array_equal(got, rgb)
    assert "publish bgra16 or rgba16" in encoding_note("16UC4")


def test_16_bit_images_of_fewer_bits_are_scaled_by_their_own_depth():
    """A 12-bit camera's or scanner's picture in 16-bit samples (values 0-4095: mono16 from a machine-vision or infrared
    camera, a 16-bit grey PNG or TIFF) was scaled to 8 bits by its top byte, as cv_bridge does: values 0-15, a black
    picture. `gaussian-head reconstruct gray12in16.png` said 'the face is dark (mean brightness 9 of 255) ...: use a
    photo with light on the face' and made a black avatar (user54). Samples that all fit in 10, 12 or 14 bits are now
    scaled by that depth, with a note; a picture that uses the 16 bits is taken by its top byte as before."""
    from PIL import Image

    from gaussian_head_ros.core.imageio import decode_raw_with_notes, decode_with_format

    rgb = photo("obama_official.jpg", 64)
    h, w = rgb.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    twelve = grey.astype(np.uint16) * 16  # 0..4080
    got, notes = decode_raw_with_notes(twelve.tobytes(), w, h, w * 2, "mono16")
    np.testing.assert_array_equal(got[..., 0], grey)
    assert notes == ("the mono16 image's samples all fit in 12 bits: taken as 12-bit data (a 12-bit camera's samples "
                     "in 16-bit words), scaled to 8 bits by 1/16; its top 8 bits alone would make it nearly black",), notes
    got, notes = decode_raw_with_notes((rgb.astype(np.uint16) * 4).tobytes(), w, h, w * 6, "rgb16")  # 10 bits
    np.testing.assert_array_equal(got, rgb)
    assert "fit in 10 bits" in notes[0] and "by 1/4" in notes[0], notes
    full = rgb.astype(np.uint16) * 257  # the whole 16 bits: the top byte, no note
    got, notes = decode_raw_with_notes(full.tobytes(), w, h, w * 6, "rgb16")
    np.testing.assert_array_equal(got, rgb)
    assert notes == (), notes
    png = io.BytesIO()
    Image.fromarray(twelve).save(png, "PNG")  # a 16-bit grey PNG (Pillow mode I;16)
    got, _, _, notes = decode_with_format(png.getvalue())
    np.testing.assert_array_equal(got[..., 0], grey)
    assert "the photo's samples all fit in 12 bits" in notes[0], notes


def test_compressed_depth_is_refused_naming_it():
    depth = cv2.imencode(".png", np.full((8, 8), 1000, np.uint16))[1].tobytes()
    with pytest.raises(ValueError, match="compressedDepth image .* is a depth map"):
        decode_compressed(b"\0" * 12 + depth, fmt="16UC1; compressedDepth png")


def test_8uc3_is_bgr_and_noted_once():
    from gaussian_head_ros.core.imageio import EncodingNotes

    rgb = photo("obama_official.jpg", 64)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    np.testing.assert_array_equal(decode_raw(bgr.tobytes(), bgr.shape[1], bgr.shape[0], bgr.strides[0], "8UC3"), rgb)
    notes = EncodingNotes()
    assert "taken as BGR" in notes.first("8UC3") and notes.first("8UC3") is None and notes.first("rgb8") is None


def test_a_four_channel_image_with_alpha_0_everywhere_is_an_opaque_bgrx_picture():
    """bgra8 / rgba8 / 8UC4 with the fourth byte 0 in every pixel (BGRx: a screen grab, an XRGB source) was composited
    as wholly transparent: a flat grey picture (user46, s46). Now its colour is taken, with a note; an alpha that
    leaves some pixels opaque is still composited."""
    from gaussian_head_ros.core.imageio import decode_raw_with_notes

    rgb = photo("obama_official.jpg", 64)
    h, w = rgb.shape[:2]
    bgrx = np.concatenate([rgb[..., ::-1], np.zeros((h, w, 1), np.uint8)], axis=2)
    got, notes = decode_raw_with_notes(bgrx.tobytes(), w, h, w * 4, "bgra8")
    np.testing.assert_array_equal(got, rgb)
    assert notes == ("the bgra8 image's alpha is 0 in every pixel: taken as padding (an opaque BGRx/RGBx picture), not "
                     "as a wholly transparent one; publish bgr8 or rgb8 (or alpha 255) for opaque pictures",), notes
    bgrx[0, 0, 3] = 255  # one opaque pixel: real transparency, composited onto the grey backdrop
    got, notes = decode_raw_with_notes(bgrx.tobytes(), w, h, w * 4, "bgra8")
    assert tuple(got[h // 2, w // 2]) == (128, 128, 128) and "transparent in 100 %" in notes[0], notes


def test_a_photo_file_with_alpha_0_everywhere_is_an_opaque_picture():
    """A PNG whose alpha is 0 in every pixel (a BGRA camera frame saved with cv2.imwrite, an export that left the channel
    empty) was composited as wholly transparent, flat grey: 'the photo is transparent in 100 % of its pixels' and
    then 'no face found in the photo' from the robot (user54: photo_node and photo_path), where the same pixels as
    a raw bgra8 photo are taken as padding (user46). One rule for a photo however it comes: its colour, with a note; an
    alpha that leaves some pixel visible is composited as before."""
    from PIL import Image

    from gaussian_head_ros.core.imageio import decode_with_format

    rgb = photo("obama_official.jpg", 64)
    h, w = rgb.shape[:2]
    bgra = np.concatenate([rgb[..., ::-1], np.zeros((h, w, 1), np.uint8)], axis=2)
    png = cv2.imencode(".png", bgra)[1].tobytes()
    got, kind, _, notes = decode_with_format(png)
    np.testing.assert_array_equal(got, rgb)
    assert kind == "png" and notes == (
        "the image's alpha is 0 in every pixel: taken as an unused channel (an opaque picture saved with an empty alpha, "
        "as a BGRA camera frame written to PNG is), not as a wholly transparent one; save it without alpha (or with "
        "alpha 255)",), notes
    la = io.BytesIO()
    Image.fromarray(np.dstack([rgb[..., 1], np.zeros((h, w), np.uint8)]), "LA").save(la, "PNG")
    got, _, _, notes = decode_with_format(la.getvalue())
    np.testing.assert_array_equal(got[..., 0], rgb[..., 1])
    assert "taken as an unused channel" in notes[0], notes
    bgra[0, 0, 3] = 255  # one opaque pixel: real transparency, composited onto the grey backdrop
    got, _, _, notes = decode_with_format(cv2.imencode(".png", bgra)[1].tobytes())
    assert tuple(got[h // 2, w // 2]) == (128, 128, 128) and "transparent in 100 %" in notes[0], notes


def test_depth_encodings_are_named_as_depth():
    """16UC1 (depth in mm) is read as grey with a note that names it a depth image; 32FC1 (metres) is refused saying
    so (it was refused with the list of encodings alone; user46, s46). mono16 (an infrared camera) has no note."""
    from gaussian_head_ros.core.imageio import EncodingNotes, check_raw

    notes = EncodingNotes()
    note = notes.first("16UC1")
    assert note.startswith("16UC1 is how depth cameras publish depth images (REP 118, in millimetres)"), note
    assert notes.first("16UC1") is None and notes.first("mono16") is None
    with pytest.raises(ValueError, match=r"unsupported image encoding '32FC1' \(32FC1 is how depth cameras publish "
                                         r"depth images \(REP 118, in metres\)"):
        check_raw(np.zeros(16 * 16, np.float32).tobytes(), 16, 16, 64, "32FC1")


# ---------------------------------------------------------------------------------------------------
# 4. partial faces: reconstruction

def _face_rows(img) -> tuple[float, float]:
    """(forehead y, chin y) of the largest face, photo pixels, from the uncut photo."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.facemesh import FaceMesh

    fm = FaceMesh()
    try:
        lm = fm.detect(img)[0].landmarks_px
    finally:
        fm.close()
    return float(lm[lmk.FOREHEAD, 1]), float(lm[lmk.CHIN, 1])


@pytest.mark.parametrize("name", ["obama_official.jpg", "lp_d8_man_glasses.jpg", "business_person.png"])
def test_a_face_cut_by_the_frame_is_refused_or_warned(name, fast_reconstructor):
    """Chin below the photo's bottom edge, or forehead above its top edge: refused (FACE_CUT_OFF, saying
    which); the skull's top above the top edge (the edge 10% of the face height above MediaPipe's forehead
    point, where the hair still is): a warning. The whole photo: neither."""
    from gaussian_head_ros.core.reconstruct import FACE_CUT_OFF, ReconstructionError

    img = read_image(str(shared("portraits", name)))
    fore, chin = _face_rows(img)
    face_h = chin - fore
    full = mesh_fit_result(img, preset="fast")
    assert not any("cut off" in w for w in full.warnings), full.warnings
    for cut, words in ((img[: int(fore + 0.9 * face_h)], "chin is cut off by the bottom"),
                       (img[int(fore + 0.1 * face_h):], "forehead is cut off by the top")):
        with pytest.raises(ReconstructionError, match=words) as e:
            fast_reconstructor.reconstruct(np.ascontiguousarray(cut))
        assert e.value.code == FACE_CUT_OFF
    scalp = fast_reconstructor.reconstruct(np.ascontiguousarray(img[int(fore - 0.1 * face_h):]))
    assert any("top of the head is cut off" in w for w in scalp.warnings), scalp.warnings


def test_a_heic_photo_is_named_and_avif_still_decodes():
    """An iPhone's HEIC photo (an ISO-BMFF file whose ftyp box names a HEIF brand; Pillow has no HEIF decoder)
    was refused as 'corrupt, truncated or not an image' (try8); now it is named, with what to do. An AVIF photo
    (HEIF-based too, brands avif + mif1) decodes as before; an MP4 (ftyp isom) is named a video."""
    import os

    from PIL import Image

    heic = (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"  # the ftyp box of an iPhone photo
            + b"\x00\x00\x01\x00meta" + os.urandom(4000))
    with pytest.raises(ValueError, match="HEIC/HEIF photo .* convert it to JPEG or PNG"):
        decode_compressed(heic, fmt="heic")
    mp4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + os.urandom(4000)
    with pytest.raises(ValueError, match="a video file"):  # named since files20, s20
        decode_compressed(mp4)
    rgb = np.zeros((64, 48, 3), np.uint8)
    rgb[..., 0] = 200
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "AVIF", quality=90)
    assert buf.getvalue()[4:8] == b"ftyp"
    got = decode_compressed(buf.getvalue())
    assert got.shape == (64, 48, 3) and abs(int(got[..., 0].mean()) - 200) < 8


def test_the_intrinsics_line_says_why_a_field_of_view_is_used():
    """`ros2 param set /tracker_node use_camera_info false` with a camera_info published: the tracker logged 'intrinsics
    from a 50 degree field of view (no camera_info yet)' (user19, s19), as if none had come. The line names the
    reason: camera_info not used, none yet, or all zero."""
    from gaussian_head_ros.core.camera_info import describe

    K = np.array([[549.0, 0, 256.0], [0, 549.0, 256.0], [0, 0, 1]])
    assert "(use_camera_info is false)" in describe(K, "fov", 50.0, have_camera_info=True, use_camera_info=False)
    assert "(use_camera_info is false)" in describe(K, "fov", 50.0, have_camera_info=False, use_camera_info=False)
    assert "(no camera_info yet)" in describe(K, "fov", 50.0, have_camera_info=False)
    assert "(camera_info K and P are all zero)" in describe(K, "fov", 50.0, have_camera_info=True)
    assert describe(K, "K", 50.0).startswith("intrinsics from camera_info K: fx 549.0 fy 549.0 cx 256.0 cy 256.0")


def test_a_photo_refused_by_the_cli_is_named(tmp_path, capsys):
    """`gaussian-head reconstruct` of a photo whose face is too small (a phone photo scaled down for a chat) said
    'error: the face is 30 px wide, below the minimum of 60 px; use a closer or larger photo', naming no file: in a
    loop over a folder of photos, or `eval --video clip.mp4 --photo p.jpg`, which input was refused was left to guess
    (user56, s56). Now the line names the photo, as the README's 'one line naming the file and why' says."""
    from gaussian_head_ros.cli import main

    rgb = read_image(str(shared("portraits", "obama_official.jpg")))
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), cv2.resize(rgb, (rgb.shape[1] // 8, rgb.shape[0] // 8))[..., ::-1])
    assert main(["reconstruct", str(small), "-o", str(tmp_path / "me.ply")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"gaussian-head reconstruct: error: {small} cannot become an avatar: the face is ") and \
        "below the minimum of 60 px" in err, err
    assert main(["eval", "--video", str(shared("driving", "lp_d18.mp4")), "--photo", str(small), "--max-frames", "2",
                 "--no-holes"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"gaussian-head eval: error: --photo {small} cannot become an avatar: the face is "), err
