"""MediaPipe face-mesh topology: every landmark index and mesh size the package uses, in one place.

Template vertex i is MediaPipe face-mesh landmark i, so these names index the avatar's template, the
tracker's landmarks and the control's expression alike. "Right" and "left" are the subject's: the
subject's right eye (33, 133, iris 468-472) lies on the image left of a frontal face.

Sources (facts checked against, no code taken):
- the mediapipe wheel's own constants, `mediapipe.python.solutions.face_mesh_connections`
  (FACEMESH_RIGHT_EYE / LEFT_EYE / RIGHT_IRIS / LEFT_IRIS / LIPS / FACE_OVAL / *_EYEBROW), and
  `face_mesh.FACEMESH_NUM_LANDMARKS_WITH_IRISES` (478);
- MediaPipe's canonical face model (`canonical_face_model.obj`, 468 vertices; `face_model_with_iris.obj`,
  478), in which vertex 4 is the most forward point (nose tip), 10 the top of the forehead, 152 the chin
  (lowest point), 234/454 the sides at ear height, 468/473 the iris centres of the right/left eye.
"""

from __future__ import annotations

NUM_MESH = 468  # face-mesh points (the tessellated surface)
NUM_IRIS = 10  # refined iris points (refine_landmarks): a centre + 4 contour points per eye
NUM_LANDMARKS = NUM_MESH + NUM_IRIS  # 478

# Single points (midline first).
FOREHEAD = 10  # top of the forehead (rigid with the skull)
CHIN = 152  # lowest point of the chin (moves with the jaw)
NOSE_TIP = 4  # most forward point of the nose
NOSE_BASE = 2  # below the nose tip
NOSE_BRIDGE = 195  # the nose's bridge, 1.5 cm below the eye corners' line on the canonical face (the lower lids 0.3 cm)
BELOW_LOWER_LIP = 18  # midline below the lower lip (moves with the jaw)
UPPER_LIP_IN, LOWER_LIP_IN = 13, 14  # inner lip line, centre
UPPER_LIP_OUT, LOWER_LIP_OUT = 0, 17  # outer lip line (the lips' outer edges), centre
MOUTH_CORNER_R, MOUTH_CORNER_L = 61, 291  # outer lip corners
MOUTH_CORNER_R_IN, MOUTH_CORNER_L_IN = 78, 308  # inner lip corners
# skin beside and above-beside each outer corner (~6.5 mm out; ~4 mm out and 7 mm up on the canonical face)
MOUTH_CORNER_SKIN_R, MOUTH_CORNER_SKIN_L = (57, 186), (287, 410)
CHEEK_R, CHEEK_L = 234, 454  # sides of the face oval at ear height (within 1 % of its widest)
EYE_OUTER_R, EYE_INNER_R = 33, 133  # subject's right eye corners
EYE_OUTER_L, EYE_INNER_L = 263, 362  # subject's left eye corners
EYE_CORNERS = ((EYE_OUTER_R, EYE_INNER_R), (EYE_OUTER_L, EYE_INNER_L))  # per eye: (outer, inner)
OUTER_EYE = (EYE_OUTER_R, EYE_OUTER_L)

# Irises (refine_landmarks): centre, then 4 contour points.
IRIS_CENTER_R, IRIS_CENTER_L = 468, 473
IRIS_R = (469, 470, 471, 472)
IRIS_L = (474, 475, 476, 477)

# Eye contours (FACEMESH_RIGHT_EYE / FACEMESH_LEFT_EYE) and their eyelid pairs (upper, lower), inner to outer.
EYE_CONTOUR_R = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
EYE_CONTOUR_L = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
EYELID_PAIRS_R = ((173, 155), (157, 154), (158, 153), (159, 145), (160, 144), (161, 163), (246, 7))
EYELID_PAIRS_L = ((398, 382), (384, 381), (385, 380), (386, 374), (387, 373), (388, 390), (466, 249))
EYELID_MID_R, EYELID_MID_L = (159, 145), (386, 374)  # centre of each eye's upper and lower lid
# The eye outline of MediaPipe's iris landmark model (its first output, 71 eye-contour and brow points per eye): its
# first 16 points are these face-mesh vertices (outer corner, lower lid outer to inner, inner corner, upper lid outer
# to inner), the same 16 for the left eye's mirrored crop. Source: MediaPipe's iris tracking graph, which writes the
# model's 71 points per eye over these face-mesh vertices: the first 16 of each eye's half of
# kEyeLandmarkIndicesInFaceLandmarks in mediapipe/graphs/iris_tracking/calculators/update_face_landmarks_calculator.cc
# (read against it in sessions 64 and 65: identical, both eyes, in this order); also checked here by the nearest mesh
# vertex of each point on tpsmm_driving frame 0 and obama_official (0.3-3.8 px on 40-60 px eyes).
IRIS_MODEL_OUTLINE_R = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
IRIS_MODEL_OUTLINE_L = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
# The mesh row above each upper-lid margin vertex (EYELID_PAIRS_*'s upper, same order: the margin vertex's nearest
# neighbour above it in the canonical mesh's triangles, outside the eye contour): the lid skin up to the crease, 1.4-5 mm
# above the margin on business_person's rest template.
UPPER_LID_ROW_R = (190, 56, 28, 27, 29, 30, 247)
UPPER_LID_ROW_L = (414, 286, 258, 257, 259, 260, 467)

# Brows (FACEMESH_RIGHT_EYEBROW / LEFT_EYEBROW).
BROW_R = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
BROW_L = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
BROW_LOWER_R = (46, 53, 52, 65, 55)  # each brow's lower contour (FACEMESH_*_EYEBROW's lower edge), outer to inner
BROW_LOWER_L = (276, 283, 282, 295, 285)
# The mesh row just below each brow's lower contour (46-53-52-65-55 / 276-283-282-295-285), outer to inner: on the
# canonical face 8-11 mm below the brows, on low brows (the Obamas', trump_official's) on the brow hair's lower edge.
BROW_SKIN_R = (225, 224, 223, 222, 221)
BROW_SKIN_L = (445, 444, 443, 442, 441)

# Lips (FACEMESH_LIPS) and the chin / jaw midline below them.
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
        270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
CHIN_REGION = (152, 148, 176, 149, 150, 377, 400, 378, 379, 18, 200, 199, 175)
JAW_LINE = (152, 175, 148, 176, 149, 150, 377, 400, 378, 379)  # the chin and the jaw line (bone, not the lip)
JAW_EDGE = (150, 149, 176, 148, 152, 377, 400, 378, 379)  # the jaw's lower edge, subject's right to left (JAW_LINE
# without 175, the chin's front above its lowest point)
# Inner lip contour without its corners, subject's right to left; the two arcs' points face each other.
LIP_UPPER_INNER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LIP_LOWER_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
LIP_LOWER_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)  # the lower lip's outer edge, right to left
LIP_UPPER_OUTER = (185, 40, 39, 37, 0, 267, 269, 270, 409)  # the upper lip's outer edge, right to left
# The outer lip contour as a closed loop (FACEMESH_LIPS' outer ring): right corner, lower lip, left corner, upper lip.
LIP_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)

# Face oval as four anchors in order: forehead, subject's right cheek (image left), chin, left cheek.
OVAL_ANCHORS = (FOREHEAD, CHEEK_R, CHIN, CHEEK_L)

# Rigid with the skull (the tracker's pose fit): symmetric pairs (subject's right, left) of outer/inner
# eye corners, cheekbones, temples and nose wings, plus points on the forehead-nose midline. No eyebrow
# point (BROW_R / BROW_L): a brow raise moved the fitted pose (3 mm on both brows: 0.07 deg, scale +0.17 %)
# and the fit took 10 % of the raise out of the expression.
RIGID_PAIRS = ((33, 263), (133, 362), (234, 454), (127, 356), (98, 327), (116, 345))
RIGID_MIDLINE = (FOREHEAD, NOSE_BASE, 151, 9, 168, 6, 195, 5, 4, 1)
RIGID_LANDMARKS = tuple(sorted({i for p in RIGID_PAIRS for i in p} | set(RIGID_MIDLINE)))
# The nose below its bridge: the pose fit's landmarks outside the eyes' and the brows' expression rows (the bridge,
# the tip, the base, the wings); the face mesh keeps the lips on the picture while it is in it (core/face_regions.py)
NOSE = (NOSE_BRIDGE, 5, NOSE_TIP, 1, NOSE_BASE, 98, 327)


def has_mediapipe_topology(num_vertices: int) -> bool:
    """True when a template / landmark set of this many points is the MediaPipe face mesh (>= 468)."""
    return int(num_vertices) >= NUM_MESH
