"""Quick acceptance of the living face (issue 11) on one short real clip, frame 0 as the photo: the head
shows no holes under the clip's expressions, and the avatar's eyes follow the operator's gaze (measured
on the renders by MediaPipe's face mesh, independent of the driver)."""

import numpy as np
import pytest
from conftest import mesh_fit_result, shared
from gaussian_head_ros.core import eyes
from gaussian_head_ros.core.avatar import PART_EYE
from gaussian_head_ros.core.control import FaceControl
from gaussian_head_ros.core.drive import Driver
from gaussian_head_ros.core.evaluate import EvalConfig, evaluate, render_control
from gaussian_head_ros.core.facemesh import FaceMesh
from gaussian_head_ros.core.holes import count_holes
from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
from gaussian_head_ros.core.video import read_frames

CLIP, FRAMES = "lp_d0", 60  # lp_d0 looks left and right and smiles within its first 60 frames


@pytest.fixture(scope="module")
def driven():

    frames = read_frames(str(shared("driving", f"{CLIP}.mp4")), FRAMES)
    avatar = mesh_fit_result(frames[0].rgb).avatar
    cam = avatar.source_camera
    fx, fy, cx, cy = cam.intrinsics
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
    size = frames[0].rgb.shape[1]
    K *= np.array([[size / cam.size[0]], [size / cam.size[1]], [1.0]])  # the clip's frames, the photo's lens
    driver = Driver(avatar)
    out = {"avatar": avatar, "driver": driver, "holes": [], "gaze_driver": [], "gaze_render": [], "frames": frames}
    with FaceTracker(TrackerConfig(fov_deg=12.0)) as tracker, FaceMesh(static_image_mode=True, max_faces=1) as mesh:
        for f in frames:
            c = tracker.process(f.rgb, f.stamp_ns, K)
            if c is None or not c.face_detected:
                continue
            r = render_control(driver, c, K, size, size)
            out["holes"].append(count_holes(r.image, r.alpha) * (512 * 512) / (size * size))
            img = (np.clip(r.image + (1 - r.alpha[..., None]) * 0.5, 0, 1) * 255).astype(np.uint8)
            found = mesh.detect(img)
            if found:
                out["gaze_driver"].append(c.gaze.mean(0))
                out["gaze_render"].append(eyes.gaze_from_landmarks(found[0].landmarks_px).mean(0))
    return out


def test_the_avatar_has_eyeballs_that_rest_where_the_photo_looks(driven):
    avatar, driver = driven["avatar"], driven["driver"]
    assert (avatar.part == PART_EYE).sum() > 500
    rest = driver.drive(FaceControl.rest())
    same = driver.drive(FaceControl(gaze=driver.rig.rest_gaze.astype(np.float32)))
    assert np.abs(same.means - rest.means).max() < 1e-6  # the photo's own gaze turns nothing


def test_no_holes_through_the_head(driven):
    h = np.asarray(driven["holes"])
    assert len(h) >= FRAMES - 5
    assert np.percentile(h, 95) <= 5 and h.max() < 50, h


def test_the_rendered_gaze_follows_the_operator(driven):
    d, r = np.asarray(driven["gaze_driver"]), np.asarray(driven["gaze_render"])
    assert len(d) >= FRAMES - 5
    assert np.std(d[:, 0]) > 0.05  # the clip really looks around (rad)
    assert np.corrcoef(d[:, 0], r[:, 0])[0, 1] >= 0.7  # horizontal


def test_frame_0_control_gives_the_photo_back(driven):
    """Item 6: the control tracked from the avatar's own photo, rendered through the tracker's camera where the
    head is in the frame, reproduces the photo (what `gaussian-head eval` reports as psnr_frame0). lp_d0: 26.9 dB
    before head rotations were taken relative to the line of sight (control.line_of_sight_rotation; the head
    was drawn ~3 px off), 29.8 after, 31.2 with settled landmarks (facemesh.FaceMesh), 32.2 with the silhouette
    matte (mesh_fit edge_matte), 34.4 with the clip's letterbox bar outside the photo and the head mask
    (framing.border_bars: the black slab's blurred edge was 47 % of the error), 34.6 with the torso at the
    photo's pose and the footprint refinement. The clip draws the 512 px crop 1.26x larger (0.42 m spans 646
    px), where the stride-2 photo layer's discs (std-dev 0.5 x spacing) showed as a dot grid in the skin:
    0.55 x spacing, detail Gaussians 0.25 px and 6 refinement passes (mesh_fit) give 35.0, issue 11's line
    (34.96 at session 19's end). The detail discs' colours kept within the photo's 3x3 range +-0.05 (mesh_fit
    detail_refine_px / margin: the refinement had driven them to black or white cores, specks in every driven frame
    around obama_official's eyes) give 34.72 (eyes20, session 20: the price of no specks; margin 0.1: 34.89).
    That range kept on the face mesh only (mesh_fit detail_refine_face_grow_px; the hair's and ears' strands get
    more of their contrast: margin 0.1 there): 34.84 (f027, session 27; 34.73 before)."""
    f0 = driven["frames"][0]
    m = evaluate([f0.rgb], [f0.stamp_ns], None, EvalConfig(max_frames=1, holes=False), driven["avatar"])
    assert m["psnr_frame0"] >= 34.8, m


def test_the_hairs_strands_keep_their_contrast_and_the_face_its_colours():
    """Item 6 in the hair: sadtalker's frame 0 (blond hair of 1 px strands) was 28.95 dB, 30 % of its error in the
    hair above the brows. The detail discs' colours were kept within the photo's 3x3 range everywhere (eyes20's
    cure for specks around the eyes): in the hair that held each strand short of its contrast. Kept on the face
    mesh only, off it 0.1 (mesh_fit detail_refine_face_grow_px, detail_refine_margin_off_face): the hair 28.24 ->
    28.83 dB, frame 0 29.27, the face region unchanged (the same colours there to 0.01 dB) (f027, session 27; no
    limit off the face: 29.56 / 29.64, but grain in the hair at 2x). The lattice's discs on the rigid head where the
    photo is textured std-dev 0.5 x spacing, not 0.6 (mesh_fit textured_sigma_per_stride): the hair 28.89 -> 29.95 dB,
    frame 0 30.04 -> 30.85 (sad60, session 60; issue 11's 35 dB is out of a 512 px crop's reach here: the clip's
    frame taken to the crop's scale, 1.41x smaller, and back scores 33.7-34.2 dB however exact the avatar)."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.metrics import psnr

    f0 = read_frames(str(shared("driving", "sadtalker_WDA_KatieHill_000.mp4")), 1)[0]
    avatar = mesh_fit_result(f0.rgb).avatar
    got = []
    m = evaluate([f0.rgb], [f0.stamp_ns], None, EvalConfig(max_frames=1, holes=False), avatar, on_frame=got.append)
    g = got[0]
    brow_top = g.landmarks_px[list(lmk.BROW_R) + list(lmk.BROW_L), 1].min()
    hair = g.mask & (np.arange(g.mask.shape[0])[:, None] < brow_top - 4)
    assert hair.sum() > 20_000, hair.sum()
    assert psnr(g.pred, g.rgb, hair) >= 29.6, psnr(g.pred, g.rgb, hair)  # 28.24 with the range everywhere, 28.89
    # with the hair's discs as wide as the skin's
    # 28.95 before; 29.36 until a parted-lips photo's opening pixels were left out of the avatar (bb90e5e, session 42:
    # the synthetic rows stand in its gap at its own pose, 29.09; its opened mouth without the olive streak); 30.09
    # since they are kept for its own opening only (avatar.PART_PHOTO_MOUTH, session 44; the synthetic rows at any
    # other); 30.85 with the textured hair's sharper discs (30.04 before)
    assert m["psnr_frame0"] >= 30.6, m


def test_eval_hands_each_scored_frame_to_a_caller(driven):
    """evaluate's on_frame: one EvalFrame per frame it scores, in clip order, with the figures it averages (a
    measurement script, scripts/psnr_attribution.py, measures more on eval's own frames instead of a loop of its
    own), the composite it scored, and the render through its own driver and camera."""
    fs = driven["frames"][:3]
    got = []
    m = evaluate([f.rgb for f in fs], [f.stamp_ns for f in fs], None, EvalConfig(holes=False), driven["avatar"],
                 on_frame=got.append)
    assert [g.index for g in got] == [0, 1, 2] and m["frames_evaluated"] == 3
    assert np.mean([g.psnr for g in got]) == pytest.approx(m["psnr"], abs=1e-4)
    assert got[0].psnr == pytest.approx(m["psnr_frame0"], abs=1e-4)
    assert np.mean([g.psnr_plate for g in got]) == pytest.approx(m["psnr_plate"], abs=1e-4)
    g = got[1]
    over = np.clip(g.render.image + (1 - g.render.alpha[..., None]) * g.background, 0, 1)
    np.testing.assert_array_equal(g.pred, (over * 255 + 0.5).astype(np.uint8))
    np.testing.assert_array_equal(g.render_control(g.control).image, g.render.image)
    assert g.mask.shape == g.rgb.shape[:2] and g.mask.sum() > 1000 and g.landmarks_px.shape == (478, 3)


def test_frame_0_over_a_person_free_plate_scores_what_the_avatar_draws(driven):
    """Over frame 0 (eval's psnr), an avatar that draws nothing shows the photo itself: a perfect frame 0. Over
    the person-free plate (psnr_frame0_plate) it shows the background and scores low; the real avatar scores
    well above that (lp_d0: 30.5 dB on the plate against 35.0 over frame 0: the avatar's outline does not
    cover the photo's whole person, the plate counts what it leaves out)."""
    import dataclasses

    f0 = driven["frames"][0]
    empty = dataclasses.replace(driven["avatar"], logit_opacities=np.full_like(driven["avatar"].logit_opacities, -30.0))
    cfg = EvalConfig(max_frames=1, holes=False)
    nothing = evaluate([f0.rgb], [f0.stamp_ns], None, cfg, empty)
    assert nothing["psnr_frame0"] > 60, nothing  # the photo itself
    assert nothing["psnr_frame0_plate"] < 20, nothing  # the background where the head was
    real = evaluate([f0.rgb], [f0.stamp_ns], None, cfg, driven["avatar"])
    assert real["psnr_frame0_plate"] >= 29.5, real
    assert real["psnr_frame0_plate"] < real["psnr_frame0"], real


def test_the_silhouette_matte_gives_the_photo_back():
    """Item 6 at the silhouette: lp_d18 (dark hair on a light wall) lost 76 % of its frame-0 error within 4 px of
    the silhouette (33.0 dB): the outermost pixels took the inner hair colour at full opacity and the back's wide
    discs spilt a dark halo over the wall. With the matte (edge opacity from the compositing equation, the
    completion kept inside the silhouette) 38.8 dB."""

    f0 = read_frames(str(shared("driving", "lp_d18.mp4")), 1)[0]
    avatar = mesh_fit_result(f0.rgb).avatar
    m = evaluate([f0.rgb], [f0.stamp_ns], None, EvalConfig(max_frames=1), avatar)
    assert m["psnr_frame0"] >= 36.5, m
    assert m["holes_max_px512"] == 0, m


def test_frame_0_of_a_pitched_head_gives_the_shoulders_back():
    """Item 6 below the chin: tpsmm's head is pitched in its first frame. The driver turns the torso by only a
    fraction of the head rotation, so frame 0 drew the collar and the neck's shadow ~2 px low: 62 % of its
    frame-0 error (35.0 dB) was on the torso. The reconstructor now builds the torso for that fraction
    (reconstruct.rest_pose.turn_torso): 36.8 dB; with each photo-layer disc refined through its own footprint
    (photo_layer.refine_colours; the residual was blurred 0.8 px for all) 37.0."""

    f0 = read_frames(str(shared("driving", "tpsmm_driving.mp4")), 1)[0]
    avatar = mesh_fit_result(f0.rgb).avatar
    m = evaluate([f0.rgb], [f0.stamp_ns], None, EvalConfig(max_frames=1, holes=False), avatar)
    assert m["psnr_frame0"] >= 36.9, m


def test_a_strong_brow_raise_keeps_the_forehead_skin_closed():
    """A 5 mm brow raise stretches the skin between brows and lids ~1.5x vertically: grown by the square root
    of their triangles' area change, the rows of face Gaussians parted (alpha dips of the face layer, seen as
    fine horizontal stripes across the forehead; old rule: pixels below alpha 0.9 in the strip 188 vs 47 at
    rest on this portrait, 1st percentile 0.87 vs 0.93). Grown by the largest stretch they stay closed."""
    import cv2

    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import PART_FACE
    from gaussian_head_ros.core.control import line_of_sight_rotation
    from gaussian_head_ros.core.expression import BROW_POINTS, forehead_points
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.render import rasterize

    avatar = mesh_fit_result(read_image(str(shared("portraits", "astronaut_eileen_collins.png")))).avatar
    driver = Driver(avatar)
    face = (avatar.part == PART_FACE) & (avatar.face_id >= 0)
    v0 = np.asarray(avatar.template_vertices, np.float64)[:lmk.NUM_LANDMARKS]
    fh = forehead_points(v0)
    upper_lids = [p[0] for p in lmk.EYELID_PAIRS_R + lmk.EYELID_PAIRS_L]
    y, y_brow = v0[fh, 1], v0[BROW_POINTS, 1].mean()
    lift = np.clip(1 - (y_brow - y) / (y_brow - y.min()), 0.3, 1.0)  # the brows all of it, the forehead less
    K = default_intrinsics(512, 512, 12.0)
    t = np.array([0, 0, 2.0], np.float32)
    view = np.eye(4, dtype=np.float32)
    view[:3, :3], view[:3, 3] = line_of_sight_rotation(t), t
    found = []
    for mm in (0.0, 5.0):
        ex = np.zeros((lmk.NUM_LANDMARKS, 3), np.float32)
        ex[fh, 1] = -mm / 1000 * lift  # y down: up
        posed = driver.drive(FaceControl(expression=ex, translation=t))
        r = rasterize(posed.means[face], posed.quats[face], posed.scales[face], posed.opacities[face],
                      posed.colors[face], view, K, 512, 512, backend="cpu")
        p = (v0 + ex)[np.r_[fh, upper_lids]] + t  # the strip: forehead, brows, down to the upper lids
        px = np.stack([K[0, 0] * p[:, 0] / p[:, 2] + K[0, 2], K[1, 1] * p[:, 1] / p[:, 2] + K[1, 2]], 1)
        mask = np.zeros((512, 512), np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull(px.astype(np.float32)).astype(np.int32), 1)
        a = r.alpha[cv2.erode(mask, np.ones((9, 9), np.uint8)).astype(bool)]
        assert a.size > 3000
        found.append(((a < 0.9).sum(), np.percentile(a, 1)))
    (thin_rest, p1_rest), (thin_raised, p1_raised) = found
    assert thin_raised <= 1.5 * thin_rest + 10, found
    assert p1_raised >= p1_rest - 0.02, found


def test_the_skin_shows_no_dot_grid_when_drawn_larger_than_the_photo(driven):
    """The clip draws the avatar's 512 px crop 1.26x larger. There the head photo layer's stride-2 lattice of
    discs let the darker layers behind it show between the discs as a grid of lines over all the skin: at a
    std-dev of 0.55 x spacing ~9 % of the light passes midway between four discs, ~6 % at 0.6 (by calculation;
    mesh_fit sigma_per_stride). The forehead of frame 0's render less its own blur (2 px) keeps the photo's fine
    texture and the grid: high-pass std-dev 1.66 grey levels at 0.55, 1.27 at 0.6 (business_person drawn 1.3x
    larger: 2.52 -> 1.66)."""
    import cv2

    from gaussian_head_ros.core import landmarks as lmk

    f0 = driven["frames"][0]
    size = f0.rgb.shape[1]
    cam = driven["avatar"].source_camera
    fx, fy, cx, cy = cam.intrinsics
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
    K *= np.array([[size / cam.size[0]], [size / cam.size[1]], [1.0]])
    with FaceTracker(TrackerConfig(fov_deg=12.0)) as tracker, FaceMesh(static_image_mode=True, max_faces=1) as mesh:
        r = render_control(driven["driver"], tracker.process(f0.rgb, f0.stamp_ns, K), K, size, size)
        img = (np.clip(r.image, 0, 1) * 255 + 0.5).astype(np.uint8)
        lm = mesh.detect(img)[0].landmarks_px
    brows = lm[list(lmk.BROW_R + lmk.BROW_L), :2].mean(0)
    x, y = ((lm[lmk.FOREHEAD, :2] + brows) / 2).astype(int)  # mid-forehead
    patch = img[y - 16:y + 16, x - 32:x + 32].astype(np.float32).mean(-1)
    high = (patch - cv2.GaussianBlur(patch, (0, 0), 2.0))[4:-4, 4:-4]
    assert high.std() < 1.45, high.std()
