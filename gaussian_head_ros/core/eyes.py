"""Eyes: gaze from landmarks or blendshapes, eyeball geometry, and the eyeball rotation the driver applies.

Gaze convention (FaceControl.gaze, msg FaceControl.gaze): per eye (row 0 the subject's right eye, row 1
the left), (yaw, pitch) in radians in the head frame (x image-right, y down, z into the head), with the
head pose's own convention (control.euler_deg): the gaze direction is Ry(yaw) Rx(pitch) (0, 0, -1), so
positive yaw looks towards the image left (the subject's right) and positive pitch looks down; (0, 0)
looks straight out of the face (along -z).

From landmarks (MediaPipe refine_landmarks, 478 points) in the image (pixels) or any frame whose x points
image-right and y image-down: each eye's iris centre (468, 473) relative to the eye, along the corner-to-corner
axis and across it, in eye widths, times EYE_WIDTH_M, on an eyeball of radius EYEBALL_RADIUS_M: sin(pitch) =
dy / r, sin(yaw) cos(pitch) = -dx / r. Along the axis the eye's centre is the mean of its 16 contour points
(landmarks.EYE_CONTOUR_R/L), across it the corners' midpoint: two corner points are a noisier horizontal
reference than the whole opening, while the opening's mean moves up and down with the lids. Measured with
the tracker (iris model, core/iris.py) against FaceLandmarker's eyeLookIn/Out on the four ../shared driving
clips, whole clips: r 0.381 / 0.729 / 0.969 / 0.930 (lp_d18 / tpsmm / lp_d0 / sadtalker) with the corners'
midpoint, 0.453 / 0.788 / 0.969 / 0.953 with the contour mean; vertical r within 0.005. The same held for
FaceLandmarker's own landmarks (0.857 / 0.825 / 0.996 / 0.985 -> 0.889 / 0.934 / 0.997 / 0.993) and the
mesh's own irises. A photo's gaze (the avatar's rest gaze, `rest_gaze`) is measured as the tracker measures
the operator's: its yaw so, in the image plane on its own eyes, its pitch in the head frame (below). (Session 5 kept the
tracker in the image plane too: with the face mesh's own irises, its pose-free 3D landmarks followed eyeLookIn/Out at
|r| 0.21-0.99; with the iris model's irises that no longer holds, next paragraph but one.) MediaPipe's canonical face
(which looks straight ahead) has its irises within 1.2 % of the eye width of the corners' midpoint (0.8 % of the contour
mean), so no offset is applied. The eyeball's centre is the iris centre moved back by r against the gaze direction.

The tracker's yaw is measured in the head frame, against the operator's neutral eyes (`operator_gaze`:
`gaze_from_landmarks(canonical, reference=neutral)`, this frame's pose-free landmarks, the pixel landmarks
through the similarity fit of the rigid points, before any smoothing): along each eye from the opening's mean
of the operator's neutral face, which is fixed in the head. The frame's own opening is not: MediaPipe's lid
points follow the iris part of the way (a far sideways look drags the opening's mean along; lp_d0's far looks
came out at ~0.7 of what its picture shows: the iris moves ~0.23 eye widths, asin(0.23 x 27 / 12) ~ 0.54 rad,
measured 0.37-0.40), and the frame's own contour points add their jitter to the iris's (lp_d18 keeps its eyes
on the camera while the head turns: sub-pixel counter-rotations). Measured on the four ../shared clips (tracker
gaze vs FaceLandmarker's eyeLookIn/Out on the driver, the tracker's filter and lid rules on both; gaze11,
session 11), image plane with the frame's own eyes -> this rule, lp_d0 / lp_d18 / sadtalker / tpsmm: first 60
frames (what the living-face table reads) r 0.995 / 0.564 / 0.939 / 0.728 -> 0.995 / 0.749 / 0.930 / 0.739;
whole clips 0.969 / 0.453 / 0.952 / 0.811 -> 0.973 / 0.661 / 0.967 / 0.782. MediaPipe's iris depth, which the
paragraph above blames, hardly matters now: the irises moved to the neutral's iris depth in the head frame
changed r by < 0.01. Living-face table (40 pairs, 60 frames, exact controls): reader gaze_h r 0.666 -> 0.737,
its slope 0.61 -> 0.76 (lp_d18 cross 0.49 -> 0.63, tpsmm cross 0.28 -> 0.40); gaze_v 0.801 -> 0.793, all of
it on lp_d0's pairs (0.736 -> 0.701): its far looks, now larger, read partly as vertical on some portraits
(lp_d9 0.51 -> 0.30, astronaut -0.38 -> -0.56).

The pitch is measured in the head frame too, from the frame's own corners in its pose-free landmarks, and both
eyes share one (`conjugate_pitch`: weighted to the less turned eye, whose fix is better). In the image plane a
head pitch was read as an eye pitch: in MediaPipe's canonical face the iris centre lies 3.6 mm in front of the
corners' line, so a head pitched by 15 deg moved the iris 0.08 rad against the corners, in the direction of the
head's turn; sadtalker's operator tilts the head back ~20 deg while looking down, and the image plane cancelled
about half of the look (tracked pitch against the reader's gaze_v on the driver, first 60 frames, reader blink
< 0.3: r 0.750 -> 0.889, slope 0.09 -> 0.19 rad per unit; whole clips sadtalker 0.777 -> 0.918, tpsmm 0.864 ->
0.910, lp_d0 0.657 -> 0.672, lp_d18 0.381 -> 0.355; gazev13, session 13). The photo's rest pitch is measured in
its head frame as well (`rest_gaze`), so a photo's own control still gives its eyes back. From the neutral's
corners, MediaPipe's guess of an iris under a closing lid goes down with its corners (tpsmm's second blink:
0.2-0.46 rad down; from the frame's ~0.05): the frame's own corners are kept. With the look down larger, the
avatar's lid-eye coupling (`deform.lid_turns`) on top of the measured lid ratios counted the lids' drop twice
(session 11 and 13's tries: blink 0.9006 -> 0.889, 0.9008 -> 0.891); the tracker's lid ratios are now net of
the look down since the operator's neutral (`deform.net_lid_ratios`). Living-face table (40 pairs, 60 frames,
exact controls; head14, session 14, against final13): gaze_v 0.8037 -> 0.8085, blink 0.9008 -> 0.9025
(sadtalker 0.915 -> 0.931, tpsmm 0.886 -> 0.874), gaze_h 0.7281 -> 0.7314, brow 0.613 -> 0.627, frame 0 within
0.011 dB. What holds the vertical r down
on whole clips is `held_gaze` (next paragraph): it keeps the gaze whenever a centre lid gap is below
IRIS_SEEN_RATIO of the neutral, which happens in ordinary downward looks (the upper lid rides on the eye) as
well as in blinks: whole-clip vertical r 0.259 / 0.263 / 0.807 / 0.703 with it, 0.551 / 0.768 / 0.799 / 0.749
without it.

With both irises far in the corners the shared pitch's change since the neutral counts less (`turned_pitch`:
cos(turn)^8 of the less turned eye's turn): MediaPipe's vertical fix there has an error of the face, not of the
look (lp_d0's operator's side looks read 0.13 rad down with his lids wide open; the lid-eye coupling then closed
the avatar's lids to slits). Self lp_d0, its 41 side-look frames (first 60), eye-region PSNR 15.83 -> 16.16 dB
(head mask 25.89 -> 25.96); living-face table (40 pairs, 60 frames, exact controls): gaze_v 0.8049 -> 0.8012, all
of it on astronaut x lp_d0 (-0.33 -> -0.50, a near-flat render series: std 0.028), the other 39 pairs +0.03 in
sum; gaze_v slope 0.787 -> 0.775, gaze_h 0.7582 -> 0.7568, blink 0.9271 -> 0.9280, brow 0.6506 -> 0.6466; frame 0
unchanged (sidelook17). FaceLandmarker, the table's reader, reads those side looks lower too (on the driver, and
on the avatar's render with the pitch held), so gaze_v cannot show the gain.

While the lids hide the iris (a blink, a squint) MediaPipe's iris points are guesses: on tpsmm_driving's
blink (lid gap 0.31-0.45 of the neutral) they put the left eye 11-21 deg off for three frames, the One Euro
filter spread that over the next ones, and the avatar's eyes darted sideways under closing lids. The
tracker therefore keeps each eye's last gaze while its lids are nearly closed (`held_gaze`): the measured
gaze counts fully from a centre lid gap of IRIS_SEEN_RATIO x the neutral gap, not at all below
IRIS_HIDDEN_RATIO (the iris centre is then behind the upper lid), linearly between. The part it does not
count is taken from the other eye's counted change (eyes turn together): an eye closed alone turns with the
open one. Kept alone, sadtalker's right eye, closed at frames 32-36 while both eyes turned sideways, stayed
put while the left one turned (vergence 0.12 rad off its value before, for four frames: the avatar's eyes
diverged); now 0.01 rad. Living-face reader, same avatars: self sadtalker gaze_h r 0.835 -> 0.840, blink
0.918 -> 0.921 (eyes15, session 15); with both eyes' lids down nothing is taken, as before.

Before the lids are that far down, one iris can already be misplaced alone: on tpsmm_driving's second blink
(frames 58-62) our lid gap was still 0.52-0.64 of the neutral (FaceLandmarker: eyeBlink 0.67-0.83) while
MediaPipe put the left iris 0.26-0.52 rad off and the right one stayed within 0.03 rad. Eyes turn together
(conjugate movements) and their vergence changes slowly when the operator looks at a screen, so while a lid
is down (centre gap below VERGENCE_LID_RATIO of the neutral) the tracker checks each frame's vergence (the
left eye's gaze less the right's) against the operator's usual one (`conjugate_gaze`): a frame more than
VERGENCE_JUMP_RAD off, with one eye that moved at least MOVED_RATIO times as far as the other since the last
frame, has that eye misplaced, and it follows the other eye's change instead; without such an eye both are
misplaced, and they take their mean turn at the usual vergence: the iris model (core/iris.py) puts both irises
towards the nose as the lids come down at tpsmm_driving's frames 58-61 (right -0.42, left +0.49 rad, the lid
gap 0.49-0.65), a 0.9 rad vergence jump that no single eye made (largest step of the tracked gaze 0.32 -> 0.11 rad
with this). The usual vergence adapts over VERGENCE_TAU_S (an operator who really converges on something near is
followed within about a second).
Measured on the four ../shared clips (tracker gaze vs FaceLandmarker's eyeLook* on the driver, whole clips):
tpsmm_driving's yaw r 0.585 -> 0.760, its largest frame-to-frame step 0.32 -> 0.19 rad; lp_d18 and sadtalker
within 0.004; lp_d0's far side looks (right eye 0.32, left 0.76 rad in the image plane) come out with the
left eye at 0.56 (the avatar's turn limit is 0.6): yaw r 0.971 -> 0.967, pitch r 0.36 -> 0.42.

From ARKit blendshapes (eyeLookIn/Out/Up/Down per eye, 0..1; other drivers): yaw and pitch are their
differences times ARKIT_YAW_RAD / ARKIT_PITCH_RAD (ARKit documents no angle for a coefficient of 1;
these are our estimate of where MediaPipe's FaceLandmarker saturates).
"""

from __future__ import annotations

import numpy as np

from gaussian_head_ros.core import landmarks as lmk

EYEBALL_RADIUS_M = 0.012  # adult eyeball: ~24 mm axial length
EYE_WIDTH_M = 0.027  # corner to corner, MediaPipe's canonical face at the head frame's scale
ARKIT_YAW_RAD = 0.5  # eyeLookOut - eyeLookIn = 1 -> this many radians
ARKIT_PITCH_RAD = 0.4  # eyeLookDown - eyeLookUp = 1 -> this many radians
IRIS_CENTRES = (lmk.IRIS_CENTER_R, lmk.IRIS_CENTER_L)
EYE_CONTOURS = (lmk.EYE_CONTOUR_R, lmk.EYE_CONTOUR_L)
IRIS_HIDDEN_RATIO, IRIS_SEEN_RATIO = 0.4, 0.7  # centre lid gap / neutral gap: iris gaze ignored .. fully used
VERGENCE_JUMP_RAD = 0.2  # a frame's vergence this far from the operator's usual one: one iris is misplaced
VERGENCE_TAU_S = 1.0  # time constant of the usual vergence (seconds)
VERGENCE_LID_RATIO = 0.9  # the check runs while a centre lid gap is below this x its neutral (wide open eyes:
# unequal image-plane fixes of a far side look, lp_d0 right 0.32 / left 0.76 rad, are real looks)
PITCH_WEIGHT_POWER = 4.0  # each eye's pitch counts cos(yaw)^this in the pitch both eyes share (conjugate_pitch)
PITCH_TURN_POWER = 8.0  # the shared pitch's change since the neutral counts cos(turn)^this (turned_pitch)
MOVED_RATIO = 2.0  # ... and only when that eye moved at least this many times as far as the other since the last frame


def gaze_from_landmarks(points: np.ndarray, radius_m: float = EYEBALL_RADIUS_M,
                        reference: np.ndarray | None = None) -> np.ndarray:
    """[478, 2+] landmarks (x image-right, y image-down: pixels or the head frame) -> gaze [2, 2] (yaw, pitch)
    rad per eye (right, left). Along each eye: the iris from the opening's mean of `reference` ([478, 2+] in the
    same frame; None = `points` itself), whose corners also give the eye's axis and width; across it: the iris
    from the corners' midpoint of `points`. The tracker gives its head-frame landmarks and the operator's neutral
    face (`operator_gaze`, module notes). Raises ValueError without the 10 iris points."""
    v = np.asarray(points, np.float64)
    ref = v if reference is None else np.asarray(reference, np.float64)
    for x in (v, ref):
        if x.ndim != 2 or x.shape[0] < lmk.NUM_LANDMARKS or x.shape[1] < 2:
            raise ValueError(f"gaze needs {lmk.NUM_LANDMARKS} landmarks (with the irises), got {x.shape}")
    v, ref = v[:, :2], ref[:, :2]
    out = np.zeros((2, 2))
    for e, ((outer, inner), iris, contour) in enumerate(zip(lmk.EYE_CORNERS, IRIS_CENTRES, EYE_CONTOURS)):
        a, b = (ref[outer], ref[inner]) if ref[outer, 0] <= ref[inner, 0] else (ref[inner], ref[outer])  # a: image-left
        axis = b - a
        width2 = max(float(axis @ axis), 1e-12)
        along = v[iris] - ref[list(contour)].mean(0)  # from the opening's mean (the module notes say why)
        across = v[iris] - 0.5 * (v[outer] + v[inner])  # from this face's own corners' midpoint (ditto)
        dx = float(along @ axis) / width2 * EYE_WIDTH_M  # along the eye, towards image-right
        dy = float(across @ np.array([-axis[1], axis[0]])) / width2 * EYE_WIDTH_M  # across it, downwards
        pitch = np.arcsin(np.clip(dy / radius_m, -1, 1))
        yaw = np.arcsin(np.clip(-dx / (radius_m * max(np.cos(pitch), 1e-6)), -1, 1))
        out[e] = yaw, pitch
    return out


def operator_gaze(canonical: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """The tracker's gaze [2, 2] (yaw, pitch) rad per eye (right, left) of one frame (module notes), both in the
    head frame: yaw against the operator's neutral eyes (`gaze_from_landmarks(canonical, reference=neutral)`),
    pitch against this frame's own corners (`gaze_from_landmarks(canonical)`); both eyes share one pitch
    (`conjugate_pitch`), whose change since the neutral counts less with both eyes far turned (`turned_pitch`).
    canonical [478, 2+] the frame's landmarks pose-free (head frame, x right, y down); neutral [478, 2+] the
    operator's neutral face in that frame. Raises ValueError without the iris points."""
    head = gaze_from_landmarks(canonical, reference=neutral)
    own = gaze_from_landmarks(canonical)
    rest = gaze_from_landmarks(neutral)
    return turned_pitch(conjugate_pitch(np.stack([head[:, 0], own[:, 1]], 1), rest[:, 1]), rest)


def rest_gaze(template: np.ndarray, photo_points: np.ndarray | None = None) -> np.ndarray:
    """The avatar's rest gaze [2, 2] (yaw, pitch) rad per eye (right, left), the gaze its photo shows, measured as
    the tracker measures the operator's (`operator_gaze`): the pitch in the head frame, from the template's own
    corners (template [478, 2+], head frame, x right, y down); the yaw in the image plane from photo_points
    ([478, 2+] the template seen in its photo, pixels; None = the template's own yaw). A photo with its head
    pitched has the iris's parallax in front of the corners in its image-plane pitch (module notes), which the
    tracker no longer reads; measured in the same frame, the photo's own control gives its eyes back. Raises
    ValueError without the iris points."""
    own = gaze_from_landmarks(template)
    if photo_points is None:
        return own
    return np.stack([gaze_from_landmarks(photo_points)[:, 0], own[:, 1]], 1)


def conjugate_pitch(gaze: np.ndarray, neutral_pitch=None, power: float = PITCH_WEIGHT_POWER) -> np.ndarray:
    """gaze [2, 2] (yaw, pitch) rad per eye (right, left) -> the same with both eyes turned up or down together:
    each eye's pitch less its offset (neutral_pitch [2], the operator's neutral pitch per eye, less their mean:
    the face's and the landmarks' own difference between the eyes, which the photo's rest gaze has too; None = 0)
    averaged with weights cos(yaw)^power, plus that offset. The eyes turn up and down together (vertical
    vergence is a fraction of a degree), while an iris far in a corner gives a poor vertical fix: MediaPipe's
    iris and the lids' outline there are foreshortened and the iris model's fix follows |yaw| (lp_d0's far
    looks: left eye 0.76 rad, its pitch r 0.27 against FaceLandmarker's eyeLookDown - eyeLookUp over the first
    60 frames; right eye 0.87).
    Measured on the four ../shared clips (tracker pitch vs the reader's gaze_v on the driver, the tracker's lid
    rules and filter on both; gazev11, session 11), first 60 frames lp_d0 / lp_d18 / sadtalker / tpsmm: per eye
    0.608 / 0.841 / 0.792 / 0.655 -> this 0.711 / 0.838 / 0.808 / 0.664 (power 0, a plain mean, leaves lp_d0 at
    0.608; without the offsets power 2 / 4 / 8 give lp_d0 0.693 / 0.749 / 0.798, the others within 0.01; with
    no offset the first frame's eyes came out up to 0.03 rad off the photo's, self-reenactment lp_d0 frame-0
    PSNR 35.02 -> 34.67 dB)."""
    g = np.asarray(gaze, np.float64).reshape(2, 2).copy()
    off = np.zeros(2) if neutral_pitch is None else np.asarray(neutral_pitch, np.float64).reshape(2)
    off = off - off.mean()
    w = np.cos(g[:, 0]) ** power
    g[:, 1] = float(w @ (g[:, 1] - off)) / max(float(w.sum()), 1e-12) + off
    return g


def turned_pitch(gaze: np.ndarray, neutral: np.ndarray, power: float = PITCH_TURN_POWER) -> np.ndarray:
    """gaze [2, 2] (yaw, pitch) rad per eye (right, left), both eyes at one pitch (`conjugate_pitch`) -> the same
    with each eye's pitch change since the operator's neutral gaze `neutral` [2, 2] (its own gaze, measured the
    same way) scaled by cos(turn)^power, turn = the less turned eye's yaw from its neutral yaw (clipped to pi/2).

    With both irises far in the corners neither gives a vertical fix worth its change: MediaPipe's iris centre there
    carries a vertical error that depends on the face (its lids), not on the look. Renders of four avatars turned
    0.5-0.7 rad at a constant pitch were tracked at +0.02 .. +0.08 rad (lp_d0's photo) and -0.01 .. -0.12 rad
    (business, obama_official, sadtalker) of pitch; lp_d0's operator, turned 0.4-0.6 rad with wide-open lids, at
    +0.13 rad (a look down: the lid-eye coupling narrowed the avatar's lids to slits). His frontal frames' eye
    pixels peak sharply at the tracked pitch (eye-region PSNR 23.9 dB; 20.7-22.7 at -0.15 .. +0.05 rad off it), his
    side-look frames' rise monotonically towards his rest pitch (16.6 dB at the tracked pitch, 17.1 at 0.15 rad
    above; lids as measured, no coupling; sidelook17, session 17). cos^8 keeps 0.9 of a change at 0.17 rad of turn,
    0.5 at 0.4, 0.2 at 0.6. FaceLandmarker reads those side looks lower as well (its eyeLookDown/Up on the driver
    and on a render with the pitch held), so the living-face reader's gaze_v does not reward this; the eye-region
    PSNR does (module notes)."""
    g = np.asarray(gaze, np.float64).reshape(2, 2).copy()
    n = np.asarray(neutral, np.float64).reshape(2, 2)
    turn = min(float(np.abs(g[:, 0] - n[:, 0]).min()), np.pi / 2)
    g[:, 1] = n[:, 1] + np.cos(turn) ** power * (g[:, 1] - n[:, 1])
    return g


def iris_seen(lid_mid_ratios) -> np.ndarray:
    """How much of each eye's measured gaze counts, [2] in [0, 1], from lid_mid_ratios [2] (each eye's centre lid
    gap / its neutral gap): 0 at or below IRIS_HIDDEN_RATIO, 1 at or above IRIS_SEEN_RATIO (and for NaN)."""
    r = np.asarray(lid_mid_ratios, np.float64).reshape(2)
    w = np.clip((r - IRIS_HIDDEN_RATIO) / (IRIS_SEEN_RATIO - IRIS_HIDDEN_RATIO), 0.0, 1.0)
    return np.where(np.isfinite(w), w, 1.0)


def held_gaze(measured: np.ndarray, held: np.ndarray | None, lid_mid_ratios) -> np.ndarray:
    """This frame's gaze [2, 2] (yaw, pitch) rad per eye from the measured one and the one held so far (None: the
    measured one), weighted per eye by how open its lids are: lid_mid_ratios [2] = each eye's centre lid gap /
    its neutral gap (1 = the neutral; `deform.eyelid_ratios` at `deform.LID_MID`). Weight 0 at or below
    IRIS_HIDDEN_RATIO (the held gaze stays), 1 at or above IRIS_SEEN_RATIO (the measured gaze). What an eye does
    not take of its own measured change (1 - its weight) it takes of the other eye's weighted change since
    `held` (conjugate movement): an eye closed alone turns with the open one; both closed: both held."""
    g = np.asarray(measured, np.float64).reshape(2, 2)
    if held is None:
        return g.copy()
    w = iris_seen(lid_mid_ratios)
    h = np.asarray(held, np.float64).reshape(2, 2)
    seen = w[:, None] * (g - h)  # each eye's own measured change, as far as its iris is seen
    return h + seen + (1.0 - w[:, None]) * seen[::-1]


def conjugate_gaze(measured: np.ndarray, held: np.ndarray | None, vergence: np.ndarray | None,
                   lid_mid_ratios, max_jump: float = VERGENCE_JUMP_RAD) -> np.ndarray:
    """This frame's gaze [2, 2] (yaw, pitch) rad per eye (right, left) with a misplaced eye replaced (module
    docstring): while a lid is down over the iris (either eye's centre lid gap below VERGENCE_LID_RATIO x its
    neutral gap; lid_mid_ratios [2] as for held_gaze) and the measured vergence (left less right, [2] yaw/pitch)
    is more than max_jump rad from the operator's usual one `vergence` [2], the eye that moved more since `held`
    (the last gaze given out, [2, 2]), at least MOVED_RATIO times as far as the other, takes the other eye's
    change since then; when neither moved that much more, both eyes take their mean turn at the usual vergence.
    None held or vergence: the measured gaze."""
    g = np.asarray(measured, np.float64).reshape(2, 2).copy()
    if held is None or vergence is None or not np.nanmin(np.asarray(lid_mid_ratios, np.float64)) < VERGENCE_LID_RATIO:
        return g
    h = np.asarray(held, np.float64).reshape(2, 2)
    if not np.linalg.norm(g[1] - g[0] - np.asarray(vergence, np.float64)) > max_jump:
        return g
    moved = np.linalg.norm(g - h, axis=1)
    bad = int(np.argmax(moved))
    if moved[bad] < MOVED_RATIO * moved[1 - bad]:  # both irises misplaced: their mean turn, at the usual vergence
        mean, v = 0.5 * (g[0] + g[1]), np.asarray(vergence, np.float64)
        return np.stack([mean - 0.5 * v, mean + 0.5 * v])
    g[bad] = h[bad] + (g[1 - bad] - h[1 - bad])
    return g


def usual_vergence(vergence: np.ndarray | None, measured: np.ndarray, dt_s: float, weight: float = 1.0,
                   tau_s: float = VERGENCE_TAU_S) -> np.ndarray:
    """The operator's usual vergence [2] (left eye's gaze less the right's) after one frame: the measured gaze's
    [2, 2] vergence averaged in with time constant tau_s over dt_s, times weight in [0, 1] (0 = the iris is hidden,
    keep it); the measured one when there is none yet."""
    g = np.asarray(measured, np.float64).reshape(2, 2)
    v = g[1] - g[0]
    if vergence is None:
        return v
    a = float(np.clip(weight, 0.0, 1.0)) * (1.0 - np.exp(-max(dt_s, 0.0) / tau_s))
    return np.asarray(vergence, np.float64) + a * (v - vergence)


def gaze_directions(gaze: np.ndarray) -> np.ndarray:
    """[..., 2] (yaw, pitch) -> [..., 3] unit gaze directions in the head frame."""
    g = np.asarray(gaze, np.float64)
    yaw, pitch = g[..., 0], g[..., 1]
    return np.stack([-np.sin(yaw) * np.cos(pitch), np.sin(pitch), -np.cos(yaw) * np.cos(pitch)], -1)


def eyeball_centres(landmarks: np.ndarray, gaze: np.ndarray, radius_m: float = EYEBALL_RADIUS_M) -> np.ndarray:
    """[478, 3] head-frame landmarks, their gaze [2, 2] -> [2, 3] eyeball centres (right, left): each iris
    centre moved back by the radius against its gaze."""
    v = np.asarray(landmarks, np.float64)
    return v[list(IRIS_CENTRES)] - radius_m * gaze_directions(gaze)


def gaze_from_blendshapes(names, values, rest_gaze=None) -> np.ndarray | None:
    """ARKit eyeLook* coefficients -> gaze [2, 2] (yaw, pitch) rad per eye, or None when none is given: the turn
    they give from rest_gaze ([2, 2] rad, the avatar's rest gaze, `Rig.rest_gaze`: all 0 looks as the photo does;
    None = from the head frame's 0, as training takes them). ARKit's eyeLook* are 0 for a straight look, while a
    photo's rest pitch in the head frame is -0.12..-0.27 rad: taken as absolute, a phone app's 0 turned the eyes
    down under the lids."""
    d = dict(zip(names, np.asarray(values, np.float64)))
    if not any(n.startswith("eyeLook") for n in d):
        return None
    g = np.zeros((2, 2)) if rest_gaze is None else np.array(rest_gaze, np.float64).reshape(2, 2)
    for e, side in enumerate(("Right", "Left")):
        out, inn = d.get(f"eyeLookOut{side}", 0.0), d.get(f"eyeLookIn{side}", 0.0)
        # the right eye looks out towards the subject's right (+yaw), the left eye out towards -yaw
        g[e, 0] += ARKIT_YAW_RAD * ((out - inn) if side == "Right" else (inn - out))
        g[e, 1] += ARKIT_PITCH_RAD * (d.get(f"eyeLookDown{side}", 0.0) - d.get(f"eyeLookUp{side}", 0.0))
    return g


def control_gaze(control, rest_gaze=None) -> np.ndarray | None:
    """A FaceControl's gaze [2, 2] (yaw, pitch) rad: its explicit gaze, else from its eyeLook* blendshapes as a turn
    from rest_gaze ([2, 2] rad or None: `gaze_from_blendshapes`), else None (rest)."""
    g = np.asarray(control.gaze, np.float64)
    if g.size == 4:
        return g.reshape(2, 2)
    return gaze_from_blendshapes(control.blendshape_names, control.blendshapes, rest_gaze)


def _yaw_pitch_matrices(yaw, pitch, xp):
    """[..., 2] yaw, [..., 2] pitch -> [..., 2, 3, 3] Ry(yaw) @ Rx(pitch)."""
    cy, sy, cp, sp = xp.cos(yaw), xp.sin(yaw), xp.cos(pitch), xp.sin(pitch)
    zero, one = xp.zeros_like(cy), xp.ones_like(cy)
    ry = xp.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(*cy.shape, 3, 3)
    rx = xp.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(*cy.shape, 3, 3)
    return ry @ rx


def gaze_rotations(gaze, rest_gaze: np.ndarray, max_rad: float, like):
    """Eyeball rotations [..., 2, 3, 3] (head frame, about each eye's centre) that turn the rest gaze [2, 2] (yaw,
    pitch) rad into `gaze` ([..., 2, 2] rad: one gaze, or several at once, as deform.frame_tables' lag levels), each
    angle kept within max_rad of the rest; exactly the identity [2, 3, 3] for gaze None. Array type of `like`."""
    from gaussian_head_ros.core.deform import asarray_like

    if gaze is None:
        return asarray_like(np.broadcast_to(np.eye(3), (2, 3, 3)), like)
    rest = np.asarray(rest_gaze, np.float64)
    g = np.clip(np.asarray(gaze, np.float64), rest - max_rad, rest + max_rad)
    both = _yaw_pitch_matrices(*np.concatenate([g.reshape(-1, 2, 2), rest[None]]).transpose(2, 0, 1), np)  # (one call)
    r_to, r_from = both[:-1].reshape(*g.shape[:-1], 3, 3), both[-1]
    return asarray_like(r_to @ r_from.transpose(0, 2, 1), like)
