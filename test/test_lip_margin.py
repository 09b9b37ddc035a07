"""The parted lips' inner margins: the lips' own colour, not the photo's seam stretched (core/lip_margin.py; session
45)."""

import cv2
import numpy as np
import pytest
from conftest import mesh_fit_result, render_in_photo_camera, shared, tracked_controls

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.control import FaceControl
from gaussian_head_ros.core.drive import Driver

_LUMA = np.array([0.299, 0.587, 0.114])


def _portrait(name: str):
    from gaussian_head_ros.core.imageio import read_image

    return mesh_fit_result(read_image(str(shared("portraits", name)))).avatar


def _lips_ring(px: np.ndarray, shape) -> np.ndarray:
    """[H, W] bool: the lips' red as the driven template draws them: inside the outer lip contour (lmk.LIP_OUTER),
    outside the inner one (the inner corners and lmk.LIP_UPPER_INNER / LIP_LOWER_INNER); px [V, 2] pixels."""
    outer, inner = np.zeros(shape[:2], np.uint8), np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(outer, [np.round(px[list(lmk.LIP_OUTER)] * 4).astype(np.int32)], 1, shift=2)
    loop = (lmk.MOUTH_CORNER_R_IN,) + lmk.LIP_UPPER_INNER + (lmk.MOUTH_CORNER_L_IN,) + lmk.LIP_LOWER_INNER[::-1]
    cv2.fillPoly(inner, [np.round(px[list(loop)] * 4).astype(np.int32)], 1, shift=2)
    return (outer > 0) & (inner == 0)


def _dark_share_of_parted_lips(avatar, jaw_open: float) -> float:
    """The share of the parted lips' pixels (`_lips_ring`) in the mouth's middle (the middle half of the inner
    corners' span) darker than 0.6 x their 80th percentile luma, the avatar driven by a blendshape-only jawOpen and
    drawn through its photo's camera."""
    c = FaceControl(blendshape_names=["jawOpen"], blendshapes=np.array([jaw_open], np.float32))
    img, px = render_in_photo_camera(Driver(avatar), c, avatar)
    a, b = sorted((px[lmk.MOUTH_CORNER_R_IN, 0], px[lmk.MOUTH_CORNER_L_IN, 0]))
    ring = _lips_ring(px, img.shape) & (np.abs(np.arange(img.shape[1]) - 0.5 * (a + b)) < 0.25 * (b - a))[None, :]
    assert ring.sum() > 200, f"the lips' middle covers only {ring.sum()} px"
    luma = img[ring] @ _LUMA
    return float((luma < 0.6 * np.quantile(luma, 0.8)).mean())


@pytest.mark.parametrize("portrait, bound", [("trump_official.png", 0.04), ("lp_s9_monalisa.jpg", 0.115)])
def test_parted_lips_show_their_own_colour_not_the_photos_seam(portrait, bound):
    """A closed-lips photo's dark line where the lips meet is bound to the lips' triangles by the meeting line;
    parted, it became the lips' inner margins: black dots along trump_official's, a brown ring round
    lp_s9_monalisa's opening (lp_d18 frames 66 / 132, crops 3x). Share of the parted lips' middle darker than 0.6 x
    their 80th percentile at a blendshape-only jawOpen 0.3 / 0.5: trump_official 0.077 / 0.076 before, 0.012 /
    0.014 now; lp_s9_monalisa 0.144 / 0.135 before, 0.092 / 0.090 now (lp_d8_man_glasses 0.139 -> 0.112)."""
    a = _portrait(portrait)
    for jaw_open in (0.3, 0.5):
        dark = _dark_share_of_parted_lips(a, jaw_open)
        assert dark < bound, f"{portrait} at jawOpen {jaw_open}: {dark:.3f} of the parted lips' middle dark"


def _dark_share_of_stretched_corners(avatar, jaw_open: float) -> float:
    """The share of the parted lips' pixels (`_lips_ring`) by the corners (beyond 0.6 of the inner corners' half span
    from the middle) darker than 0.4 x the 80th percentile luma of the lips' middle (within half of it): near black,
    the avatar driven by a blendshape-only jawOpen and drawn through its photo's camera."""
    c = FaceControl(blendshape_names=["jawOpen"], blendshapes=np.array([jaw_open], np.float32))
    img, px = render_in_photo_camera(Driver(avatar), c, avatar)
    a, b = sorted((px[lmk.MOUTH_CORNER_R_IN, 0], px[lmk.MOUTH_CORNER_L_IN, 0]))
    out = (np.abs(np.arange(img.shape[1]) - 0.5 * (a + b)) / (0.5 * (b - a)))[None, :]
    ring = _lips_ring(px, img.shape)
    corners, middle = ring & (out > 0.6), ring & (out < 0.5)
    assert corners.sum() > 200, f"the lips' corners cover only {corners.sum()} px"
    return float(((img[corners] @ _LUMA) < 0.4 * np.quantile(img[middle] @ _LUMA, 0.8)).mean())


@pytest.mark.parametrize("portrait, bound", [("trump_official.png", 0.15), ("astronaut_eileen_collins.png", 0.095)])
def test_a_wide_opening_stretches_the_lips_not_the_corners_shadow(portrait, bound):
    """A wide-open mouth (a scream, a yawn) stretched the shade of the photo's closed corners over the sides of the
    opening: a black ring round trump_official's, dark red bands beside business_person's (lp_d18 frame 130, the
    render node's head framing at 800 px; session 51). The corners' rows are lifted to their lip in shade
    (lip_margin.CORNER_SHADE), but only as the lips part there beyond lip_margin.CORNER_GAP_M (a smile's and speech's
    corners stay as the photo shades them: the acceptance reader places the corners by that shade, session 45; the
    tracked ../shared speech and smiles give the corners' rows at most 0.09 of their share, lp_d18's scream all of
    it). Share of the corners' lip pixels near black at a blendshape-only jawOpen 0.9, before / now: trump_official
    0.187 / 0.119, astronaut_eileen_collins 0.129 / 0.061 (business_person 0.090 / 0.061, obama_official 0.208 /
    0.149, two_children_multiface 0.397 / 0.285, obama_speech 0.355 / 0.316); lp_d18 frame 130's control: 0.186 /
    0.099, 0.108 / 0.059 (0.208 / 0.095, 0.188 / 0.119, 0.331 / 0.276, 0.289 / 0.244)."""
    from gaussian_head_ros.core import lip_margin

    a = _portrait(portrait)
    dark = _dark_share_of_stretched_corners(a, 0.9)
    assert dark < bound, f"{portrait} at jawOpen 0.9: {dark:.3f} of the corners' lip pixels dark"
    d = Driver(a)
    corner = d.margin.corner > 0.99
    assert corner.sum() > 20, "no corner rows"
    for jaw_open, lo, hi in ((0.25, 0.0, 0.05), (0.9, 0.99, 1.0)):  # (the corners' opening: 7 / 24 mm on trump's)
        share = d.tables(FaceControl(blendshape_names=["jawOpen"], blendshapes=np.array([jaw_open], np.float32))).margin
        got = float(np.max(share[corner, 2]))
        assert lo <= got <= hi, f"jawOpen {jaw_open}: the corners' share {got:.3f}, not in [{lo}, {hi}]"
    assert lip_margin.CORNER_GAP_M[0] > lip_margin.GAP_FULL_M


def test_the_lip_margins_are_the_photos_at_rest_and_at_the_photos_own_opening():
    """The margin map is the driver's and only for lips parted beyond the photo's: at rest the colours are exactly the
    avatar's (the closed lips keep the photo's line between them), and the control tracked from a parted photo's own
    frame (sadtalker_WDA_KatieHill's frame 0, whose lips are apart over shaded teeth) takes nothing from it (frame 0
    gives the photo back: self PSNR 30.090 dB with and without the map)."""
    from gaussian_head_ros.core.video import read_frames

    a = _portrait("business_person.png")
    d = Driver(a)
    assert len(d.margin.rows) > 100, "no lip margin rows on a closed-lips photo"
    assert d.tables(FaceControl()).margin is None  # (Driver._colour_maps: no map, the colours are the avatar's)

    frame0 = read_frames(str(shared("driving", "sadtalker_WDA_KatieHill_000.mp4")), max_frames=1)[0].rgb
    own = Driver(mesh_fit_result(frame0).avatar)
    control = tracked_controls("sadtalker_WDA_KatieHill_000.mp4", 1, 40_000_000)[0]
    share = own.tables(control).margin
    assert share is None or float(np.max(share)) < 0.01, f"the photo's own opening recoloured ({np.max(share):.2f})"
    wider = FaceControl(blendshape_names=["jawOpen"], blendshapes=np.array([0.5], np.float32))
    assert own.tables(wider).margin is not None, "a wider opening than the photo's took nothing"


def _closed_gap_read(avatar, reads: int = 16) -> float:
    """FaceMesh's inner-lip gap (landmarks 13-14) over the outer eye corners' distance on the avatar at rest, drawn
    through its photo's camera (the operator's neutral: lips together): the mean over `reads` reads of the render, the
    first rounded to 8 bits, the others dithered by up to half a level (seeded). One read of one rounding is noise:
    obama_speech's render, dithered so, read 0.033-0.049 (sd 0.005), and a change to the teeth behind its closed
    lips that moved no pixel by more than 0.0017 moved its single read 0.040 -> 0.043 (session 55)."""
    from gaussian_head_ros.core.facemesh import FaceMesh

    img, _ = render_in_photo_camera(Driver(avatar), FaceControl(), avatar)
    level = np.clip(img, 0, 1) * 255 + 0.5
    rng, gaps = np.random.default_rng(0), []
    with FaceMesh(static_image_mode=True, max_faces=1) as fm:
        for i in range(reads):
            dither = rng.uniform(-0.5, 0.5, level.shape) if i else 0.0
            lm = fm.detect(np.clip(level + dither, 0, 255).astype(np.uint8))[0].landmarks_px
            gaps.append(np.linalg.norm(lm[13, :2] - lm[14, :2]) / np.linalg.norm(lm[33, :2] - lm[263, :2]))
    return float(np.mean(gaps))


@pytest.mark.parametrize("portrait, bound", [("astronaut_eileen_collins.png", 0.048), ("trump_official.png", 0.032),
                                             ("obama_speech.jpg", 0.047)])
def test_an_open_photos_closed_lips_read_closed(portrait, bound):
    """A photo that shows its teeth gets closed lips from the reconstructor, but the rows by their meeting line held
    the teeth's white and the opening's edge and no line between the lips: FaceMesh read the avatar's lips at rest
    apart (lip_margin's closing share draws the line a closed-lips photo shows). FaceMesh's gap / inter-ocular distance
    at rest through the photo's camera: astronaut_eileen_collins 0.059 -> 0.038, trump_official 0.035 -> 0.025,
    obama_speech 0.053 -> 0.030 (business_person, closed lips: 0.0006 both); frontal: 0.066 -> 0.030, 0.026 -> 0.012,
    0.061 -> 0.052, tpsmm_driving's frame 0 0.020 -> 0.001 (the closed-lips photos: 0.000-0.006). Read as a mean of
    dithered reads (`_closed_gap_read`, session 55): 0.036 / 0.029 / 0.041 at f2ee460 (its single reads had drifted to
    0.035 / 0.027 / 0.040 against bounds of 0.048 / 0.030 / 0.041; by eye obama_speech's lips at rest meet in a line);
    the bounds are halfway between those and the reads before lip_margin's closing share."""
    a = _portrait(portrait)
    assert Driver(a).margin.photo_open, f"{portrait}'s open mouth was not found"
    gap = _closed_gap_read(a)
    assert gap < bound, f"{portrait} at rest: FaceMesh reads its lips {gap:.3f} inter-ocular distances apart"


def _lab(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] rgb in [0, 1] -> [..., 3] CIE Lab (OpenCV's float convention: L 0..100)."""
    return cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32).reshape(-1, 1, 3), cv2.COLOR_RGB2LAB).reshape(rgb.shape)


def _polygon(px: np.ndarray, loop, shape) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(px[list(loop), :2] * 4).astype(np.int32)], 1, shift=2)
    return m > 0


_UPPER_LIP = (lmk.MOUTH_CORNER_R, *lmk.LIP_UPPER_OUTER, lmk.MOUTH_CORNER_L, lmk.MOUTH_CORNER_L_IN,
              *lmk.LIP_UPPER_INNER[::-1], lmk.MOUTH_CORNER_R_IN)
_LOWER_LIP = (lmk.MOUTH_CORNER_R, *lmk.LIP_LOWER_OUTER, lmk.MOUTH_CORNER_L, lmk.MOUTH_CORNER_L_IN,
              *lmk.LIP_LOWER_INNER[::-1], lmk.MOUTH_CORNER_R_IN)


def _skin_share_of_rest_upper_lip(name: str) -> tuple[float, int]:
    """The share of the rest upper lip's pixels (through the photo's camera: between the rest template's upper outer
    contour and the line where the lips meet, the middle half between the corners) whose Lab (a, b) is nearer the
    photo's skin's than the photo's lips' (medians: FaceLandmarker's lip polygons on the photo, teeth-white pixels, L
    above 70 and chroma below 14, left out; the skin a band 0.35 x the mouth's width round the outer lip contour, from
    0.12 x it out), and how many pixels that is."""
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reader import FaceReader

    res = mesh_fit_result(read_image(str(shared("portraits", name))))
    photo = res.photo.astype(np.float32) / 255
    with FaceReader(str(shared("models", "face_landmarker.task")), video=False) as reader:
        pp = reader.read(res.photo).landmarks_px[:, :2].astype(np.float64)
    lab = _lab(photo)
    teeth = (lab[..., 0] > 70) & (np.hypot(lab[..., 1], lab[..., 2]) < 14)
    lips = (_polygon(pp, _UPPER_LIP, photo.shape) | _polygon(pp, _LOWER_LIP, photo.shape)) & ~teeth
    outer = _polygon(pp, lmk.LIP_OUTER, photo.shape).astype(np.uint8)
    w = float(np.linalg.norm(pp[lmk.MOUTH_CORNER_R] - pp[lmk.MOUTH_CORNER_L]))
    grow = lambda f: cv2.dilate(outer, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(f * w) | 1,) * 2)) > 0
    skin = grow(0.35) & ~grow(0.12) & ~teeth
    lip_ab, skin_ab = np.median(lab[lips][:, 1:], 0), np.median(lab[skin][:, 1:], 0)

    a = res.avatar
    img, px = render_in_photo_camera(Driver(a), FaceControl(), a)
    rest = _polygon(px, _UPPER_LIP, img.shape)
    x0, x1 = sorted((px[lmk.MOUTH_CORNER_R, 0], px[lmk.MOUTH_CORNER_L, 0]))
    rest &= (np.abs(np.arange(img.shape[1]) - 0.5 * (x0 + x1)) < 0.25 * (x1 - x0))[None, :]
    ab = _lab(img)[rest][:, 1:]
    nearer_skin = np.linalg.norm(ab - skin_ab, axis=1) < np.linalg.norm(ab - lip_ab, axis=1)
    return float(nearer_skin.mean()), int(rest.sum())


def test_a_smiling_photos_closed_upper_lip_is_lip_not_skin():
    """trump_official smiles with his thin upper lip rolled in over the teeth: the lip band above them holds the
    skin above the lip, and the rest pose closed it to a relaxed lip's height in that skin's colour (core.lip_body).
    The share of its rest upper lip's pixels nearer the photo's skin than its lips in Lab (a, b)
    (`_skin_share_of_rest_upper_lip`, 192 px): 0.66 before, 0.11 with the lip body map (obama_official and
    astronaut_eileen_collins 0.00, obama_speech 0.20, both ways; session 60)."""
    from gaussian_head_ros.core.imageio import read_image

    share, n = _skin_share_of_rest_upper_lip("trump_official.png")
    assert n > 100, f"the rest upper lip covers only {n} px"
    assert share < 0.3, f"trump_official's rest upper lip: {share:.2f} of its pixels skin-coloured"
    # the photo's own expression draws the photo (frame 0); a closed-lips photo's lips are its own
    res = mesh_fit_result(read_image(str(shared("portraits", "trump_official.png"))))
    assert Driver(res.avatar).tables(FaceControl(expression=res.expression)).body == 0.0
    assert not len(Driver(_portrait("business_person.png")).body.rows)
