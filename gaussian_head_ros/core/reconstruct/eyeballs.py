"""Eyeballs (PART_EYE): the photo's eye openings on two spheres, completed where the lids hide them.

Each eye is a sphere of radius eyes.EYEBALL_RADIUS_M about eyes.eyeball_centres(template) (the iris centre
moved back against the photo's gaze), so the driver can turn it about that centre by the operator's gaze
relative to the photo's (core/deform.py). The pixels of the photo's eye openings are put on the sphere
(`place_on_eyeballs`): at rest the avatar shows exactly the photo's eyes. What the lids (and the sclera's
pixels, below) hide at rest is painted (`eyeball_completion`): iris and pupil around the rest gaze direction with
the iris size and colours measured in the photo, sclera elsewhere; so a turned eye shows an iris, not the lids'
colour. The painted
sclera is the photo's lit sclera (`EyeballConfig.lit_sclera_share`: the brightest tenth of the opening's
sclera ring), not the typical visible one: what a far look uncovers faces the camera and the light, like the
sclera next to the iris, while the brightest quarter that references the lid band (`opening_colours`) takes in
the lids' shadow and the corners' skin.

Only the iris disc of an opening turns with the eyeball (`eyeball_parts`). The pixels that are sclera show the
sclera's light (its shading, the lids' shadow, reflections), which stays: they lie on the eyeball, a little behind
its sphere, and the turning iris passes in front of them; the painted sphere behind them shows where the turned
iris leaves its rest place. Turned with the eyeball, they came round to face the camera at a far look, magnified:
a whitish, streaked smear trailing the iris (issue 11, eyes35). The opening's dark band along the lids (lashes,
the lids' shadow, the lid margins: 2-5 px at 512 px, wider than any fixed rim) stays with the lids, and the
sphere behind it is painted like the hidden part. Before, that band lay on the sphere: a turned eye dragged a
dark ring across the white, and a lid that opened wider than the photo's showed a second lash line under it (the
reader read a wider lid as a lower gaze: lp_d9_woman_turned driven by lp_d18, r_gaze_v -0.76).

The photo's catchlights (`catchlights`: the light's reflection on the cornea) are a layer of their own over the
iris, which is filled under them: they follow half the eyeball's turn (core/deform.py's lag), as a reflection on
the cornea does, not all of it to the iris's edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gaussian_head_ros.core import eyes
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import PART_EYE
from gaussian_head_ros.core.reconstruct.builder import GaussianBatch, surface_discs
from gaussian_head_ros.core.reconstruct.surfaces import masked_blur
from gaussian_head_ros.core.colour import LUMA


@dataclass
class EyeballConfig:
    """The painted eyeballs mesh_fit adds behind the lids: size and spacing (metres), the cap's extent, and
    how their sclera and iris colours and shading are taken from the photo (defaults when it shows too
    little)."""

    radius_m: float = eyes.EYEBALL_RADIUS_M  # eyeball radius (the driver uses the same)
    spacing_m: float = 0.00085  # Gaussian spacing on the painted (hidden at rest) eyeball
    # half-angle of the painted cap's candidate points about each eye's rest gaze; of them only those some turn of the
    # eye and lids brings into view are kept (`seen_in_turns`). A cap of 75 deg about the head's forward direction,
    # all of it kept where hidden at rest, left a thin dark seam in far looks (business_person, lp_d9, obama_speech at
    # yaw 0.45-0.6 off the rest gaze: the turned cap's edge inside the place the iris left; sclera63, session 63)
    cap_deg: float = 130.0
    # seen_in_turns: the eye's turns sampled this finely (rad) over the driver's limit (deform.DriveConfig.gaze_max_rad),
    # and the eye opening grown by this much (metres) for a view from another head pose and for the lids' own motion
    # with an expression (a turned view sees through the opening points ~1 mm off those the photo's rays meet)
    turn_step_rad: float = 0.05
    turn_margin_m: float = 0.001
    pupil_ratio: float = 0.4  # pupil radius / iris radius
    sclera_rgb: tuple[float, float, float] = (0.78, 0.74, 0.72)  # when the photo shows no sclera
    # The painted (hidden at rest) sclera: the median of this brightest share of the sclera ring (opening_colours).
    # A far look uncovers sclera that faces the camera; the ring's brightest quarter (the lid band's reference)
    # takes in the lids' shadow and the corners: lp_d0's frame 0 gave rgb (0.58, 0.49, 0.47) / (0.60, 0.51, 0.51)
    # there, while the sclera his side looks uncover is (0.66, 0.60, 0.59) / (0.68, 0.62, 0.61) (same clip,
    # frames 0-77 with |yaw| > 0.25, brightest quarter of the opening 1.3 iris radii off his iris); the brightest
    # tenth gives (0.60, 0.52, 0.51) / (0.60, 0.54, 0.52). On sadtalker's clip, whose photo shows a wide clear
    # sclera, the brightest tenth is within 0.05 of what its side looks uncover (0.78, 0.70, 0.66 vs 0.79, 0.68,
    # 0.61). The rendered eye: a grey-lilac patch beside a turned iris became a lighter one (eyes18, session 18).
    lit_sclera_share: float = 0.1
    # The painted sclera's shading (sclera_shading): its luminance fitted on the photo's visible sclera as a function
    # of the distance from the iris, so the painted eyeball is darker towards the corners as the photo's is,
    # not one flat colour (obama_official / lp_d0 at far looks: a flat grey block; eyes19, sclera19, session 19).
    shade_range: tuple[float, float] = (0.6, 1.2)  # the shading factor is kept in this range (of the lit colour)
    # where the photo shows too little sclera to fit on: relative luminance per iris radius off the iris centre; half
    # the median of the fitted c1 (-0.16) over 10 eyes (lp_d0's frame 0, obama_official, business_person, trump,
    # lp_d8: -0.43 .. +0.06), a mild falloff for a photo whose sclera says nothing (sclera19, session 19)
    shade_falloff: float = -0.08
    # The upper lid's shadow (lid_shadow): the photo's sclera is darker just under the upper lid than below it (its
    # eyeball pixels' top row beside the iris over the rest of them, over the radial shading, right / left eye:
    # business_person 0.80 / 0.84, astronaut 0.76 / 0.80, two_children 0.68 / 0.73, obama_speech 0.79 / 0.69;
    # trump_official's right eye 1.0), while
    # the cap painted the lit colour above the iris: a lid opened wider than the photo's, or a look, uncovered a bright
    # white wedge under the lid (business_person x sadtalker f50; eyes27, session 27). Measured on at least this many
    # columns beside the iris (the nine portraits' eyes show 6-15)
    lid_shadow_columns: int = 5
    iris_rgb: tuple[float, float, float] = (0.30, 0.20, 0.14)  # when the photo shows no iris
    min_pixels: int = 12  # fewer photo pixels than this: the default colour
    # Which opening pixels are the eyeball's (eyeball_parts), one rule for the whole opening: within iris_reach
    # iris radii of the iris centre (MediaPipe's ring lies a little inside the limbus: business_person's darker
    # limbus pixels lie at 1.0-1.15 radii), or at least sclera_level of the way in luminance from the opening's dark
    # rim to the measured sclera and not redder than the sclera by skin_red ((r - b) / luma: the lid margin and
    # the corners' skin, business_person's pink lower margin 0.40 above its sclera's, its shaded sclera 0.1-0.2).
    # Before, a 2 px rim kept only what was 0.8 of the way to the sclera and the interior 0.5: the shaded sclera
    # next to a narrow eye's iris (business_person: 0.55-0.78 of the way) stayed with the lids, in front of the
    # turning eyeball, and at lp_d0's far looks the iris passed behind a white band (six of nine portraits; eyes22,
    # iris23, sessions 22-23). The lashes and the lid margins' shadow (0.0-0.3 of the way) still stay with the lids.
    sclera_level: float = 0.3
    iris_reach: float = 1.15
    # The lid's shadow and lashes over the iris top (eyeball_parts' iris_shadow): within iris_reach, more than
    # iris_shadow_up iris radii above the iris centre (clear of the pupil, 0.4), darker than iris_shadow_level of the
    # iris colour and joined to the opening's edge, they stay with the lids. On the eyeball, a lid opened wider than
    # the photo's uncovered them as a dark dome over the iris (lp_d9_woman_turned: two rows at luma 0.12-0.19 over an
    # iris of 0.28-0.45; eyes27, session 27); the painted iris shows behind them instead
    iris_shadow_level: float = 0.7
    iris_shadow_up: float = 0.5
    skin_red: float = 0.15
    band_lift_m: float = 0.0005  # the band that stays with the lids lies this far in front of the eyeball
    # The photo's sclera pixels (eyeball_parts) stay where the photo shows them, this far behind the eyeball's sphere
    # along their camera rays: in front of the painted cap (cap_inset_m), behind the turning iris, which passes over
    # them. What the photo shows of the sclera is its light (the radial shading, the lids' shadow, the lashes' and the
    # window's reflections), which does not turn with the eye; turned with the eyeball, those pixels (2-5 px beside
    # a narrow eye's iris, the corners' at a grazing angle on the sphere) came round to face the camera at a far
    # look, magnified up to 3x: a whitish, streaked smear trailing the iris (issue 11: eyeLookOutLeft 1 on
    # business_person, two_children, obama_official; lp_d0's side looks). Self lp_d0, its 53 side-look frames of 78:
    # eye-box PSNR 16.83 -> 17.12 dB (eyes35, session 35)
    sclera_behind_m: float = 0.001
    # the painted cap lies this far inside the sphere the photo's eye pixels are put on: at lp_d0's far side looks,
    # turned with the eyeball, it swept in front of the outer corner's skin and lid band (the template's skin lies
    # within ~2 mm of the sphere there): a flat grey lobe past the eye's outline over its dark rim (obama_official,
    # self lp_d0). 2 mm: it shows only through the opening the photo's eye pixels leave; the whole table gaze_v
    # +0.011, gaze_h -0.012, blink -0.005 (all met), brow +0.010 (eyes20, session 20)
    cap_inset_m: float = 0.002
    # The photo's catchlight (catchlights): the light's reflection on the cornea. Turned with the eyeball it reached the
    # iris's edge at lp_d0's far looks as a white fleck (business_person, two_children, lp_d9: iris23, session 23), and
    # kept with the lids it was a white blob ringed dark; a real catchlight moves with the cornea, whose centre of
    # curvature lies ~half as far from the eyeball's centre as the iris (~5.6 of ~10-12 mm: the pupil-glint vector eye
    # trackers read), so it follows about half of the turn (catchlight_lag, deform.eye_lag_level) on its own
    # Gaussians catchlight_lift_m in front of the sphere; the iris behind it is filled from the iris around it.
    # Catchlight pixels: in the iris disc, brighter than the disc's median luminance by catchlight_level of the way to
    # the measured sclera's and by catchlight_min at least (lp_d8's dark photo: sclera 0.17, iris 0.09), plus the
    # pixels beside them half that bright (the catchlight's soft edge). On the nine portraits and the two clips' frame 0
    # (eyes24, session 24): 0 (lp_s9_monalisa) to 44 (obama_official's window reflections) pixels of both eyes.
    catchlight_level: float = 0.5
    # the core lies within this many iris radii of the iris centre: the disc's rim (MediaPipe's ring a little off the
    # limbus) takes in sclera and lid pixels as bright (lp_s9_monalisa, obama_speech, lp_d0's frame 0: 10-30 pixels an
    # eye at 0.8-1.0 radii); the catchlights the photos show lie within 0.75 (lp_d0's ring light's lowest)
    catchlight_reach: float = 0.75
    catchlight_min: float = 0.15
    catchlight_lag: float = 0.5
    # in front of the photo layer's detail Gaussians (MeshFitConfig.detail_lift_m, 0.4 mm): at 0.25 mm they stood in
    # front of the catchlight and the colour refinement made them white again (business_person: luma 0.99 on the
    # iris, turning with it)
    catchlight_lift_m: float = 0.0006

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise ValueError, naming the field, for a config the eyeballs cannot be built from: lit_sclera_share not
        in (0, 1] (_check_share), a radius, spacing, cap angle or turn step that is not > 0, a turn_margin_m < 0, a pupil ratio not in (0, 1), fewer
        than 1 pixel to measure a colour on or 1 column to measure the lid's shadow on, a sclera_level not in [0, 1], an iris_reach or skin_red not > 0, a
        shade_range not 0 < lo <= 1 <= hi, a shade_falloff not finite, a cap_inset_m not in [0, radius_m), a
        catchlight_level, catchlight_min, catchlight_lag, catchlight_reach or iris_shadow_level not in [0, 1], a
        catchlight_lift_m < 0, an iris_shadow_up not finite, a sclera_behind_m not in [0, radius_m).
        Checked when made: lit_sclera_share 0 or above 1 failed only deep in a
        reconstruction (review18, s18)."""
        _check_share("EyeballConfig.lit_sclera_share", self.lit_sclera_share)
        for name in ("radius_m", "spacing_m", "cap_deg", "turn_step_rad"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"EyeballConfig.{name} must be > 0, got {v!r}")
        if not 0.0 < self.pupil_ratio < 1.0:
            raise ValueError(f"EyeballConfig.pupil_ratio must be in (0, 1), got {self.pupil_ratio!r}")
        lo, hi = self.shade_range
        if not (np.isfinite(lo) and np.isfinite(hi) and 0.0 < lo <= 1.0 <= hi):
            raise ValueError(f"EyeballConfig.shade_range must be (lo, hi) with 0 < lo <= 1 <= hi, got {self.shade_range!r}")
        if not np.isfinite(self.shade_falloff):
            raise ValueError(f"EyeballConfig.shade_falloff must be finite, got {self.shade_falloff!r}")
        if self.min_pixels < 1:
            raise ValueError(f"EyeballConfig.min_pixels must be >= 1, got {self.min_pixels!r}")
        if self.lid_shadow_columns < 1:
            raise ValueError(f"EyeballConfig.lid_shadow_columns must be >= 1, got {self.lid_shadow_columns!r}")
        if not 0.0 <= self.sclera_level <= 1.0:
            raise ValueError(f"EyeballConfig.sclera_level must be in [0, 1], got {self.sclera_level!r}")
        for name in ("iris_reach", "skin_red"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"EyeballConfig.{name} must be > 0, got {v!r}")
        for name in ("catchlight_level", "catchlight_min", "catchlight_lag", "catchlight_reach", "iris_shadow_level"):
            v = getattr(self, name)
            if not (np.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"EyeballConfig.{name} must be in [0, 1], got {v!r}")
        if not np.isfinite(self.iris_shadow_up):
            raise ValueError(f"EyeballConfig.iris_shadow_up must be finite, got {self.iris_shadow_up!r}")
        if not (np.isfinite(self.catchlight_lift_m) and self.catchlight_lift_m >= 0):
            raise ValueError(f"EyeballConfig.catchlight_lift_m must be >= 0, got {self.catchlight_lift_m!r}")
        if not (np.isfinite(self.cap_inset_m) and 0.0 <= self.cap_inset_m < self.radius_m):
            raise ValueError(f"EyeballConfig.cap_inset_m must be in [0, radius_m), got {self.cap_inset_m!r}")
        if not (np.isfinite(self.turn_margin_m) and self.turn_margin_m >= 0):
            raise ValueError(f"EyeballConfig.turn_margin_m must be >= 0, got {self.turn_margin_m!r}")
        if not (np.isfinite(self.sclera_behind_m) and 0.0 <= self.sclera_behind_m < self.radius_m):
            raise ValueError(f"EyeballConfig.sclera_behind_m must be in [0, radius_m), got {self.sclera_behind_m!r}")


def _check_share(name: str, share: float) -> None:
    """Raise ValueError unless `share` (of an opening's pixels, by brightness) is in (0, 1]: 0 would take the single
    brightest pixel, above 1 there is no percentile."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {share!r}")


def eye_side(fid: np.ndarray, first_eye_tri: int, num_right_tris: int) -> np.ndarray:
    """Eye-opening triangle ids -> 0 (subject's right eye, filled first) or 1 (left)."""
    return (np.asarray(fid) >= first_eye_tri + num_right_tris).astype(np.int64)


def place_on_eyeballs(origin: np.ndarray, dirs: np.ndarray, side: np.ndarray, centres: np.ndarray,
                      radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera rays (origin [3], unit dirs [M, 3], head frame) through eye pixels -> (points [M, 3] where they
    meet the front of their eyeball, outward normals [M, 3]). A ray that misses keeps its point nearest to the
    eyeball's centre, on the ray: moved onto the sphere (before sclera63) the pixel left its place, a hole at rest
    and, seen from aside, a light patch off the eye (lp_s9_monalisa's left inner corner: 56 of 331 pixels miss, by up
    to ~13 mm)."""
    c = centres[side]  # [M, 3]
    oc = origin[None] - c
    b = np.einsum("ij,ij->i", dirs, oc)
    disc = b * b - (np.einsum("ij,ij->i", oc, oc) - radius_m ** 2)
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    q = origin[None] + t[:, None] * dirs
    nrm = q - c
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    return np.where((disc >= 0)[:, None], c + radius_m * nrm, q), nrm


def opening_colours(photo: np.ndarray, opening: np.ndarray, d_r: np.ndarray, min_pixels: int,
                    sclera_share: float = 0.25):
    """One eye's (sclera, iris, pupil) rgb measured on its opening: photo [S, S, 3] in [0, 1], opening [S, S]
    bool (the eye's visible pixels), d_r [S, S] each pixel's distance from the iris centre in iris radii. Each
    is None when fewer than min_pixels pixels measure it. The one rule for the eye's colours (eye_colours, and
    eyelids.lid_margins' references):
    - sclera: the median of the brightest `sclera_share` (in (0, 1]) of the opening 1.15-4 iris radii out (the
      lids' shadow and lashes are not the sclera); a quarter for the references, a tenth for the painted
      sclera (EyeballConfig.lit_sclera_share);
    - iris: the median of the darker half of its ring 0.45-0.85 radii (the whole disc < 0.85 when the ring has
      fewer than min_pixels): specular highlights and sclera the landmarks' disc takes in are not the iris;
    - pupil: the 10th percentile of that disc.
    ValueError when sclera_share is not in (0, 1] (_check_share)."""
    _check_share("sclera_share", sclera_share)
    sclera = iris = pupil = None
    ring = opening & (d_r > 1.15) & (d_r < 4.0)
    if ring.sum() >= min_pixels:
        px = photo[ring]
        lum = px @ LUMA
        sclera = np.median(px[lum >= np.percentile(lum, 100.0 * (1.0 - sclera_share))], 0)
    disc = opening & (d_r < 0.85)
    if disc.sum() >= min_pixels:
        ring = disc & (d_r > 0.45)
        px = photo[ring if ring.sum() >= min_pixels else disc]
        lum = px @ LUMA
        iris = np.median(px[lum <= np.median(lum)], 0)
        pupil = np.percentile(photo[disc], 10, axis=0)
    return sclera, iris, pupil


def iris_distance(shape: tuple[int, int], centre_px, radius_px: float) -> np.ndarray:
    """[H, W] float64: each pixel's (centre at +0.5) distance from an iris centre (centre_px [2], x right, y down,
    pixels) in iris radii (radius_px, pixels; at least 1e-6). The one per-eye distance map of eye_colours,
    eyeball_parts, catchlights and eyelids' references."""
    cx, cy = float(centre_px[0]), float(centre_px[1])
    rows, cols = np.ogrid[0:shape[0], 0:shape[1]]
    return np.hypot(cols + 0.5 - cx, rows + 0.5 - cy) / max(float(radius_px), 1e-6)


def iris_height(rows: int, centre_y_px: float, radius_px: float) -> np.ndarray:
    """[rows, 1] float64: each pixel row's (centre at +0.5) height above an iris centre (centre_y_px, y down, pixels)
    in iris radii (radius_px, pixels; at least 1e-6), as iris_distance measures: lid_shadow's and iris_shadow's
    "above the iris"."""
    return (float(centre_y_px) - (np.arange(rows)[:, None] + 0.5)) / max(float(radius_px), 1e-6)


def eye_colours(photo: np.ndarray, eye_px: np.ndarray, landmarks_px: np.ndarray, cfg: EyeballConfig) -> dict:
    """Per eye (right, left): sclera, iris and pupil rgb in [0, 1] and the iris radius in pixels, measured on
    the photo's eye openings (eye_px [S, S] bool) around the iris landmarks (opening_colours; the defaults of
    cfg where the photo shows too little), "sclera_lit": the sclera's brightest share
    (cfg.lit_sclera_share), the painted eyeball's sclera (eyeball_completion), "sclera_shade" [2, 5]: each
    eye's sclera_shading fit (c0, c1, d_lo, d_hi, brightest / lit) that shades that painted sclera, "sclera_side"
    [2, 2] (sclera_sides) and "sclera_lid" [2, 2] (lid_shadow: the upper lid's shadow and the lid's height)."""
    out = {"sclera": [], "sclera_lit": [], "iris": [], "pupil": [], "iris_radius_px": [], "sclera_shade": [],
           "sclera_side": [], "sclera_lid": []}
    lum = photo @ LUMA
    for centre, ring in ((lmk.IRIS_CENTER_R, lmk.IRIS_R), (lmk.IRIS_CENTER_L, lmk.IRIS_L)):
        r_px = float(np.mean(np.linalg.norm(landmarks_px[list(ring), :2] - landmarks_px[centre, :2], axis=1)))
        d_r = iris_distance(eye_px.shape, landmarks_px[centre, :2], r_px)
        sclera, iris, pupil = opening_colours(photo, eye_px, d_r, cfg.min_pixels)
        lit = opening_colours(photo, eye_px, d_r, cfg.min_pixels, cfg.lit_sclera_share)[0]
        out["sclera"].append(np.asarray(cfg.sclera_rgb) if sclera is None else sclera)
        out["sclera_lit"].append(out["sclera"][-1] if lit is None else lit)
        out["iris"].append(np.asarray(cfg.iris_rgb) if iris is None else iris)
        out["pupil"].append(0.25 * np.asarray(cfg.iris_rgb) if pupil is None else pupil)
        out["iris_radius_px"].append(r_px)
        sclera_luma = float(out["sclera"][-1] @ LUMA)
        lit_px = sclera_pixels(lum, eye_px, d_r, sclera_luma, cfg.min_pixels)  # once an eye (sclera_sides too)
        sclera_px = eye_px & (d_r > 1.15) & (d_r < 4.0)
        if sclera is not None:  # the sclera's own pixels, not the lashes (sclera_pixels, as eyeball_parts)
            sclera_px &= lit_px
        lit_luma = float(out["sclera_lit"][-1] @ LUMA)
        out["sclera_shade"].append(sclera_shading(lum[sclera_px], d_r[sclera_px], lit_luma, cfg))
        dx = np.arange(eye_px.shape[1])[None, :] + 0.5 - float(landmarks_px[centre, 0])
        out["sclera_side"].append(sclera_sides(lum, eye_px, lit_px, d_r, dx, sclera_luma, lit_luma,
                                               out["sclera_shade"][-1], cfg))
        out["sclera_lid"].append(lid_shadow(lum, eye_px, d_r, dx / max(r_px, 1e-6),
                                            iris_height(eye_px.shape[0], landmarks_px[centre, 1], r_px), sclera_luma,
                                            out["sclera_shade"][-1], cfg))
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def sclera_shading(lum: np.ndarray, d_r: np.ndarray, lit_luma: float, cfg: EyeballConfig) -> np.ndarray:
    """One eye's sclera shading, fitted on the photo's visible sclera pixels: lum [N] their luminance, d_r [N] their
    distance from the iris centre in iris radii, lit_luma the painted colour's luminance. -> [5]: (c0, c1) of
    luminance / lit_luma = c0 + c1 d (least squares: lit beside the iris, darker towards the corners as the eyeball's
    surface turns away from the view axis), the d range it was fitted on (d_lo, d_hi; `shade` is evaluated clamped to
    it) and the brightest pixel / lit_luma (the painted sclera is no whiter than the photo shows). Radial only: a
    height term (the lids' shadow) moved the reader's gaze_v on the table's noise pair (astronaut x lp_d0 -0.47 ->
    -0.61, sclera19). Fewer than max(cfg.min_pixels, 8) pixels, pixels that span less than half an iris radius, or no
    lit luminance: the fallback falloff cfg.shade_falloff per iris radius, 1 at 1.15 iris radii. The fit is the
    photo's light as its image shows the eye; the painted eyeball carries it about its rest gaze (an approximation:
    at a far look the revealed sclera is lit as the photo's sclera that far from the iris is)."""
    fallback = np.array([1.0 - 1.15 * cfg.shade_falloff, cfg.shade_falloff, 1.15, 4.0, cfg.shade_range[1]])
    if len(lum) < max(cfg.min_pixels, 8) or np.ptp(d_r) < 0.5 or lit_luma <= 1e-6:
        return fallback
    c = np.linalg.lstsq(np.stack([np.ones_like(d_r), d_r], 1), lum / lit_luma, rcond=None)[0]
    if not np.all(np.isfinite(c)):
        return fallback
    return np.concatenate([c, [d_r.min(), d_r.max(), max(1.0, float(lum.max()) / lit_luma)]])


def sclera_sides(lum: np.ndarray, opening: np.ndarray, lit_px: np.ndarray, d_r: np.ndarray, dx: np.ndarray,
                 sclera_luma: float, lit_luma: float, coef: np.ndarray, cfg: EyeballConfig) -> np.ndarray:
    """[2] (image left, image right of the iris) factor on one eye's painted sclera: lum [S, S] luminance, opening
    [S, S] bool, lit_px [S, S] bool its sclera (sclera_pixels at the default level, as eye_colours computes it once
    an eye), d_r [S, S] iris radii off the iris centre, dx [1, S] or [S, S] pixels right of it, sclera_luma the
    measured sclera's, lit_luma the painted colour's, coef its radial shading (sclera_shading). Where both sides show
    sclera (lit_px beyond 1.15 radii, at least cfg.min_pixels each), the darker one gets the ratio of the two sides'
    medians over the radial fit, the lighter 1 (business_person's outer side 0.83: a turn uncovered white beside the
    iris where the photo shows grey; eyes27, session 27); where only one does, 1 there (the radial fit holds). On a
    side that shows none (a face lit from one side: lp_d9_woman_turned's image-right sclera is grey, luma 0.41 against
    the lit 0.72 measured on the other side), the eyeball's own pixels there (cfg.sclera_level of the way, beyond 1
    radius) over the painted colour they would have: a look that way uncovered a white bar between the photo's grey
    and the lids (iris25, session 25). In cfg.shade_range[0] .. 1; 1 when fewer than cfg.min_pixels say."""
    out = np.ones(2)
    if lit_luma <= 1e-6:
        return out
    level = None  # the eyeball's own pixels (cfg.sclera_level of the way): once an eye, where a side needs them
    lit_sides = []  # per side that shows lit sclera: its median over the radial fit (the side's own light)
    for k, side in enumerate((dx < 0, dx > 0)):
        seen = lit_px & side & (d_r > 1.15)
        if seen.sum() >= cfg.min_pixels:
            lit_sides.append((k, float(np.median(lum[seen] / np.maximum(lit_luma * shade(coef, d_r[seen]), 1e-6)))))
            continue
        if level is None:
            level = sclera_pixels(lum, opening, d_r, sclera_luma, cfg.min_pixels, cfg.sclera_level)
        own = level & side & (d_r > 1.0)
        if own.sum() >= cfg.min_pixels:
            painted = lit_luma * float(np.median(shade(coef, d_r[own])))
            out[k] = np.clip(float(np.median(lum[own])) / max(painted, 1e-6), cfg.shade_range[0], 1.0)
    if len(lit_sides) == 2:  # both sides show lit sclera: the darker one is darker by the photo's ratio of the two
        (k0, m0), (k1, m1) = lit_sides
        out[k0] = np.clip(m0 / max(m1, 1e-6), cfg.shade_range[0], 1.0)
        out[k1] = np.clip(m1 / max(m0, 1e-6), cfg.shade_range[0], 1.0)
    return out


def lid_shadow(lum: np.ndarray, opening: np.ndarray, d_r: np.ndarray, x_r: np.ndarray, up_r: np.ndarray,
               sclera_luma: float, coef: np.ndarray, cfg: EyeballConfig) -> np.ndarray:
    """One eye's upper-lid shadow on its sclera -> [2]: (factor, lid height). lum [S, S] luminance, opening [S, S]
    bool, d_r [S, S] iris radii off the iris centre, x_r [1, S] (or [S, S]) iris radii right of it, up_r [S, 1] (or
    [S, S]) iris radii above it, sclera_luma the measured sclera's, coef its radial shading (sclera_shading). Factor:
    in the columns beside the iris (|x_r| > 1.15) that show the eyeball's own pixels (sclera_pixels at
    cfg.sclera_level: not the lashes), the median over the radial shading (`shade`: the top pixel lies farther from
    the iris) of each column's top one (the sclera just under the upper lid) over the same median of the others, in
    cfg.shade_range[0] .. 1; 1 when fewer than cfg.lid_shadow_columns columns or cfg.min_pixels others say. Lid
    height: the median height of the opening's top over the iris (|x_r| < 0.5), in iris radii, in 0.25 .. 1.5 (1
    when the opening shows none). eyeball_completion darkens the painted sclera by the factor from the iris centre's
    height up to the lid's: a wider lid or a look uncovers sclera in the lid's shadow (see EyeballConfig)."""
    near = opening & (d_r < 4.0)
    x_r, up_r = np.broadcast_to(x_r, near.shape), np.broadcast_to(up_r, near.shape)
    over = near & (np.abs(x_r) < 0.5)
    cols = over.any(0)
    height = float(np.median(up_r[over.argmax(0)[cols], np.nonzero(cols)[0]])) if cols.any() else 1.0
    height = float(np.clip(height, 0.25, 1.5))
    own = sclera_pixels(lum, opening, d_r, sclera_luma, cfg.min_pixels, cfg.sclera_level) & (np.abs(x_r) > 1.15)
    cols = own.any(0)
    if cols.sum() < cfg.lid_shadow_columns:
        return np.array([1.0, height])
    top = np.zeros_like(own)
    top[own.argmax(0)[cols], np.nonzero(cols)[0]] = True
    rest = own & ~top
    if rest.sum() < cfg.min_pixels:
        return np.array([1.0, height])
    rel = lum / np.maximum(shade(coef, d_r), 1e-6)  # over the radial shading
    factor = float(np.median(rel[top])) / max(float(np.median(rel[rest])), 1e-6)
    return np.array([float(np.clip(factor, cfg.shade_range[0], 1.0)), height])


def shade(coef: np.ndarray, d_r: np.ndarray) -> np.ndarray:
    """sclera_shading's fit coef [5] at distances d_r [M] from the iris centre (iris radii), clamped to the range it
    was fitted on -> relative luminance [M]."""
    return coef[0] + coef[1] * np.clip(d_r, coef[2], coef[3])


def eyeball_parts(photo: np.ndarray, eye_px: np.ndarray, landmarks_px: np.ndarray, colours: dict,
                  cfg: EyeballConfig) -> tuple[np.ndarray, np.ndarray]:
    """The eye-opening pixels (eye_px [S, S] bool, photo [S, S, 3] in [0, 1]) that show the eyeball -> (iris [S, S]
    bool, sclera [S, S] bool, disjoint). iris: within cfg.iris_reach iris radii of the iris centre (iris landmarks,
    `colours["iris_radius_px"]`) but for the lid's shadow over the iris top (iris_shadow, against colours["iris"];
    cfg.iris_rgb when absent); it turns with the eyeball. sclera: the other pixels at least cfg.sclera_level of the
    way in luminance from the opening's dark rim (its 10th percentile outside the iris) to the measured sclera
    (sclera_pixels) and not redder than that sclera (colours["sclera"], rgb) by cfg.skin_red in (r - b) / luminance
    (the lid margin, the corners' skin); what the photo shows of it is its light, which stays (mesh_fit: on the
    eyeball, behind the turning iris; see EyeballConfig.sclera_behind_m). One rule for the rim and the inside of the
    opening alike (see EyeballConfig)."""
    lum = photo @ LUMA
    red = (photo[..., 0] - photo[..., 2]) / np.maximum(lum, 1e-3)
    iris_out = np.zeros(eye_px.shape, bool)
    sclera_out = np.zeros(eye_px.shape, bool)
    iris_rgb = colours.get("iris", (cfg.iris_rgb, cfg.iris_rgb))  # as eye_colours, where the photo shows none
    for e, centre in enumerate((lmk.IRIS_CENTER_R, lmk.IRIS_CENTER_L)):
        d = iris_distance(eye_px.shape, landmarks_px[centre, :2], colours["iris_radius_px"][e])
        near = eye_px & (d < 4.0)  # this eye's opening
        if not near.any():
            continue
        sclera = np.asarray(colours["sclera"][e], np.float64)
        s_luma = float(sclera @ LUMA)
        sclera_red = (sclera[0] - sclera[2]) / max(s_luma, 1e-3)
        up = iris_height(eye_px.shape[0], landmarks_px[centre, 1], colours["iris_radius_px"][e])
        shadow = iris_shadow(lum, eye_px, near & (up > cfg.iris_shadow_up),
                             cfg.iris_shadow_level * float(np.asarray(iris_rgb[e]) @ LUMA))
        iris_out |= near & (d < cfg.iris_reach) & ~shadow
        sclera_out |= sclera_pixels(lum, eye_px, d, s_luma, cfg.min_pixels, cfg.sclera_level) & (
            red < sclera_red + cfg.skin_red)
    return iris_out, sclera_out & ~iris_out


def iris_shadow(lum: np.ndarray, opening: np.ndarray, top: np.ndarray, level: float) -> np.ndarray:
    """[S, S] bool: the lid's shadow and lashes over an iris's top (EyeballConfig.iris_shadow_level): of top [S, S] bool
    (the eye's opening pixels above its pupil), those darker in luminance (lum [S, S]) than level, in 8-connected blobs
    that reach the opening's edge (a pixel of opening [S, S] bool next to one off it): the shadow falls from the lid; a
    dark fleck inside the iris is the iris. eyeball_parts keeps those within its iris reach off the eyeball."""
    dark = top & (lum < level)
    if not dark.any():
        return dark
    n, labels = cv2.connectedComponents(dark.astype(np.uint8), connectivity=8)
    edge = dark & cv2.dilate((~opening).astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=1).astype(bool)
    reach = np.zeros(n, bool)
    reach[labels[edge]] = True
    reach[0] = False
    return reach[labels]


def catchlights(photo: np.ndarray, eyeball: np.ndarray, landmarks_px: np.ndarray, colours: dict,
                cfg: EyeballConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo's catchlights (photo [S, S, 3] in [0, 1]) on the eyeball's pixels (eyeball [S, S] bool,
    eyeball_parts), as a layer over the iris: photo = alpha light + (1 - alpha) under -> (alpha [S, S] float32 in
    [0, 1], 0 off the catchlights; light [S, S, 3] float32, the catchlight's colour; under [S, S, 3] float32, the
    iris behind it, elsewhere the photo). Within each eye's iris disc (iris landmarks, colours["iris_radius_px"]):
    the core, pixels within cfg.catchlight_reach iris radii at least step = max(cfg.catchlight_min,
    cfg.catchlight_level x (sclera - median)) brighter in luminance than the disc's median (colours["sclera"]), in
    blobs the disc's pixels surround (none of a blob's 8-neighbours off the disc: `_inside`), keeps its own colour
    (alpha 1); the pixels next to it (8-neighbours) at least step / 2 brighter, its soft edge,
    take the core's brightest colour at the alpha that gives their luminance back. under: the masked_blur (1.5 px)
    of the disc's other pixels (see EyeballConfig)."""
    h, w = eyeball.shape
    photo = np.asarray(photo, np.float32)
    lum = photo @ LUMA.astype(np.float32)
    core = np.zeros((h, w), bool)
    edges, discs, peaks = [], np.zeros((h, w), bool), []
    for e, centre in enumerate((lmk.IRIS_CENTER_R, lmk.IRIS_CENTER_L)):
        d_r = iris_distance(eyeball.shape, landmarks_px[centre, :2], colours["iris_radius_px"][e])
        disc = eyeball & (d_r < 1.0)
        if disc.sum() < cfg.min_pixels:
            continue
        base = float(np.median(lum[disc]))
        step = max(cfg.catchlight_min, cfg.catchlight_level * (float(np.asarray(colours["sclera"][e]) @ LUMA) - base))
        bright = disc & (d_r < cfg.catchlight_reach) & (lum >= base + step)
        bright = _inside(bright, disc)
        if not bright.any():
            continue
        beside = cv2.dilate(bright.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        core |= bright
        discs |= disc
        edges.append(disc & beside & ~bright & (lum >= base + 0.5 * step))
        peaks.append(photo[bright][np.argmax(lum[bright])])
    alpha = core.astype(np.float32)
    light = photo.copy()
    under = photo.copy()
    mask = core | np.logical_or.reduce(edges) if edges else core
    if mask.any():
        under[mask] = masked_blur(photo, discs & ~mask, 1.5)[mask]
        under_lum = under @ LUMA.astype(np.float32)
        for edge, peak in zip(edges, peaks):
            light[edge] = peak
            gain = np.maximum(float(peak @ LUMA) - under_lum[edge], 1e-3)
            alpha[edge] = np.clip((lum[edge] - under_lum[edge]) / gain, 0.0, 1.0)
    return alpha, light, under


def _inside(bright: np.ndarray, disc: np.ndarray) -> np.ndarray:
    """[S, S] bool: the blobs (8-connected) of bright [S, S] bool whose every 8-neighbour lies in disc [S, S] bool (the
    iris disc's eyeball pixels): a catchlight is a blob the iris surrounds. A blob that reaches the disc's edge is a
    lid's row (the light lower lid margin under obama_official's irises, trump_official's narrow eyes' lid rows: 3 + 3
    blobs, 1-5 px each, which lagged half the turn) or the sclera; on the nine portraits and the two clips' frame 0
    every catchlight taken before lies inside (iris25, session 25)."""
    n, labels = cv2.connectedComponents(bright.astype(np.uint8), connectivity=8)
    if n <= 1:
        return bright
    edge = bright & cv2.dilate((~disc).astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=1).astype(bool)
    touching = np.zeros(n, bool)
    touching[labels[edge]] = True
    return bright & ~touching[labels]


def sclera_pixels(lum: np.ndarray, opening: np.ndarray, d_r: np.ndarray, sclera_luma: float, min_pixels: int,
                  level: float = 0.5) -> np.ndarray:
    """[S, S] bool: one eye's opening pixels (opening [S, S] bool, within 4 iris radii: d_r [S, S] each pixel's
    distance from the iris centre in iris radii) whose luminance (lum [S, S], LUMA) is at least `level` of the way
    from the opening's dark rim (the 10th percentile of its pixels outside the iris, 1-4 radii; 0 when fewer than
    min_pixels) to sclera_luma (the measured sclera's luminance, opening_colours): the sclera, not the lashes,
    the lids' shadow or the lid margins. The one rule for which pixels are the sclera (eyeball_parts: what stays on
    the eyeball behind the turning iris; eye_colours: what sclera_shading is fitted on)."""
    near = opening & (d_r < 4.0)
    outside = near & (d_r >= 1.0)
    dark = float(np.percentile(lum[outside], 10)) if outside.sum() >= min_pixels else 0.0
    return near & (lum >= dark + level * (sclera_luma - dark))


def cap_points(spacing_m: float, radius_m: float, cap_deg: float) -> np.ndarray:
    """Unit directions [M, 3] evenly over a sphere's cap of half-angle cap_deg (degrees) about -z (Fibonacci
    lattice): M = max(16, the cap's area on a sphere of radius_m over spacing_m squared), so that neighbours lie
    ~spacing_m apart on that sphere (metres)."""
    area = 2 * np.pi * radius_m ** 2 * (1 - np.cos(np.radians(cap_deg)))
    m = max(16, int(area / spacing_m ** 2))
    k = np.arange(m) + 0.5
    cos_t = 1 - k / m * (1 - np.cos(np.radians(cap_deg)))
    phi = k * np.pi * (3 - np.sqrt(5))
    sin_t = np.sqrt(1 - cos_t ** 2)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), -cos_t], 1)


def eyeball_completion(vertices: np.ndarray, rest_gaze: np.ndarray, colours: dict, metres_per_px: float,
                       cfg: EyeballConfig, keep=None, behind_iris=None) -> GaussianBatch | None:
    """Painted eyeball caps for both eyes (head frame; rest_gaze [2, 2] the photo's, eyes.gaze_from_landmarks of
    its pixel landmarks): pupil and iris about each eye's rest gaze with the
    photo's iris radius (pixels x metres_per_px, as seen along the rest gaze on the inset cap), the lit sclera
    elsewhere (colours["sclera_lit"], eye_colours;
    colours["sclera"] when absent), on a sphere cfg.cap_inset_m inside the eyeball's, cfg.cap_deg about each eye's rest
    gaze (cap_points turned by eyes.gaze_rotations). keep(points [M, 3], cap [M, 3], e) -> [M] bool selects which to
    keep of eye e (0 the subject's right) by their places on the eyeball's sphere (points, radius cfg.radius_m, where
    the photo's eye pixels lie) and on the inset cap (cap, where they are drawn): the mesh_fit caller keeps those the
    photo's turning iris does not cover at rest and some turn brings into view (seen_in_turns), so the cap fills what
    the turned iris leaves. behind_iris(points [M, 3], on the inset cap) -> [M] bool: those the photo's own iris covers at
    rest are painted sclera, not iris (the painted iris is wider on the inset cap than the photo's iris on the sphere:
    turned, its rim trailed the photo's iris as a dark arc, two_children x eyeLookOutLeft 1)."""
    v = np.asarray(vertices, np.float64)
    centres = eyes.eyeball_centres(v, rest_gaze, cfg.radius_m)
    rest = eyes.gaze_directions(rest_gaze)  # [2, 3]
    about = eyes.gaze_rotations(rest_gaze, np.zeros((2, 2)), np.pi, like=v)  # [2, 3, 3] forward -> each rest gaze
    forward = cap_points(cfg.spacing_m, cfg.radius_m, cfg.cap_deg)
    sclera = colours.get("sclera_lit", colours["sclera"])
    batches = []
    for e in range(2):
        dirs = forward @ about[e].T
        pts = centres[e] + (cfg.radius_m - cfg.cap_inset_m) * dirs
        ang = np.arccos(np.clip(dirs @ rest[e], -1, 1))  # from the rest gaze
        iris_rad = np.arcsin(min(0.95, colours["iris_radius_px"][e] * metres_per_px / cfg.radius_m))
        # the painted iris is the photo's iris radius as the cap, cfg.cap_inset_m inside the sphere, shows it: at
        # iris_rad it was 0.83 of it seen from the front, all under the photo's own iris, and a lid opened wider than
        # the photo's showed the cap's white over a flat-topped iris (business_person, eyelid ratio 1.5). Out to the
        # limbus (cfg.iris_reach, 1.15) it also reached below business_person's iris, and a turned eye showed a sliver
        # of sclera between the two (test_a_turned_iris_carries_no_catchlight_of_its_own: 3 px; lid26, session 26)
        paint_rad = np.arcsin(min(0.95, colours["iris_radius_px"][e] * metres_per_px / (cfg.radius_m - cfg.cap_inset_m)))
        t_iris = np.clip(ang / max(paint_rad, 1e-6), 0, None)
        scl = np.broadcast_to(sclera[e], (len(dirs), 3))
        if "sclera_shade" in colours:  # the photo's shading at the place's distance from the iris centre as the
            # photo shows the eye: its projection about the rest gaze, sin(angle) / sin(iris angle) iris radii
            coef = colours["sclera_shade"][e]
            f = shade(coef, np.sin(ang) / max(np.sin(iris_rad), 1e-6))
            # its mean over what a far look uncovers (gaze_max: 0.6 rad beyond the iris's edge) is the lit colour
            band = (ang > iris_rad) & (ang < iris_rad + 0.6)
            lo, hi = cfg.shade_range
            f = np.clip(f / max(float(f[band].mean()) if band.any() else 1.0, 1e-6), lo, min(hi, coef[4]))
            if "sclera_side" in colours:  # the side the photo shows no sclera on: its own pixels' shade (sclera_sides)
                lat = (dirs[:, 0] - rest[e, 0] * np.cos(ang)) / np.maximum(np.sin(ang), 1e-6)  # x share off the gaze
                g = np.where(lat > 0, colours["sclera_side"][e][1], colours["sclera_side"][e][0])
                f = f * (1.0 + (g - 1.0) * np.clip(np.abs(lat), 0.0, 1.0))
            if "sclera_lid" in colours:  # the upper lid's shadow (lid_shadow): from the iris centre's height up to the
                # lid's, the place's height above the rest gaze as the photo shows it, in iris radii
                k, height = colours["sclera_lid"][e]
                up = -(dirs[:, 1] - rest[e, 1] * np.cos(ang)) / max(np.sin(iris_rad), 1e-6)
                f = np.maximum(f * (1.0 + (k - 1.0) * np.clip(up / height, 0.0, 1.0)), lo)
            scl = scl * f[:, None]
        if behind_iris is not None:  # the photo's iris is in front of these at rest: where the cap shows, it is sclera
            t_iris = np.where(behind_iris(pts), np.inf, t_iris)
        col = np.where((t_iris < cfg.pupil_ratio)[:, None], colours["pupil"][e],
                       np.where((t_iris < 1.0)[:, None],
                                colours["iris"][e] * (1.0 - 0.25 * np.clip(t_iris - 0.7, 0, 0.3) / 0.3)[:, None],  # limbus
                                scl))
        sel = keep(centres[e] + cfg.radius_m * dirs, pts, e) if keep is not None else np.ones(len(pts), bool)
        batches.append(surface_discs(pts[sel], dirs[sel], np.clip(col[sel], 0, 1), np.full(int(sel.sum()),
                                     0.75 * cfg.spacing_m), None, PART_EYE))
    batches = [b for b in batches if len(b)]
    return GaussianBatch.concat(batches) if batches else None


def seen_in_turns(cap: np.ndarray, centre: np.ndarray, camera: np.ndarray, rotations: np.ndarray, lid_turns: np.ndarray,
                  project, upper: np.ndarray, lower: np.ndarray, static: np.ndarray, taper: np.ndarray) -> np.ndarray:
    """[M] bool: which points of one eye's painted cap (cap [M, 3], head frame, metres, at rest) some turn of the eye
    brings into the source camera's view (camera [3] its centre, head frame) through the eye's opening. For each turn
    (rotations [T, 3, 3] about the eyeball's centre [3], eyes.gaze_rotations; lid_turns [T, 2] the (upper, lower) lid's
    turn about the head frame's x axis through that centre that goes with it, rad, down positive: deform.lid_turns'
    coupling) a turned point is seen where it faces the camera, lies below the upper lid (undone by the upper lid's turn
    x taper[j] at its pixel column j, it projects into upper [S, S] bool, the opening as far up as the widest lid goes),
    above the lower lid (undone likewise, into lower [S, S] bool) and not behind the photo's sclera, which stays at
    rest (static [S, S] bool). project(points [K, 3]) -> (row i [K], column j [K], depth [K], inside [K]): the source
    camera's (completion.Scene.project). taper [S] the share of its eye's lid turn the lid at each pixel column takes
    (deform._lid_taper: none at the corners, all at the middle).

    Why: a cap wider than what turns can show costs the photo layer's detail budget (mesh_fit gives the photo layer
    what the completion leaves): 85 deg about the rest gaze, all kept where hidden at rest, removed the far looks'
    seams but took ~1.2 k Gaussians out of the photo's detail (lp_d9's head PSNR at rest -0.31 dB; sclera63, session
    63), while 75 deg about the head's forward direction left them."""
    q = np.asarray(cap, np.float64) - centre  # [M, 3] about the eyeball's centre
    seen = np.zeros(len(q), bool)
    for rot, (up, lo) in zip(np.asarray(rotations, np.float64), np.asarray(lid_turns, np.float64)):
        todo = ~seen
        if not todo.any():
            break
        p = q[todo] @ rot.T  # [K, 3] turned
        facing = np.einsum("kc,kc->k", p, camera - centre - p) > 0
        i, j, _, inside = project(centre + p)
        ok = facing & inside & ~static[i, j]
        a = taper[j]
        for turn, mask in ((up, upper), (lo, lower)):
            ca, sa = np.cos(-turn * a), np.sin(-turn * a)  # undo the lid's turn (about x): its opening at rest
            back = np.stack([p[:, 0], ca * p[:, 1] - sa * p[:, 2], sa * p[:, 1] + ca * p[:, 2]], 1)
            bi, bj, _, bin_ = project(centre + back)
            ok &= bin_ & mask[bi, bj]
        seen[np.flatnonzero(todo)[ok]] = True
    return seen
