"""The operator's expression basis (core/operator_basis.py, expression_codec FLAG_OPERATOR_BASIS): learned from
a real tracked clip's codec residual, it makes the compact code closer on held-out frames; the code round-trips
with and without it; a receiver without the basis (or with another one) decodes the fixed part exactly as the
plain code; the ExpressionBasis message round-trips and keeps FaceControl <= 600 bytes; corruption is refused."""

import dataclasses

import numpy as np
import pytest
from conftest import tracked_controls

from gaussian_head_ros.core import expression_codec as ec
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core import operator_basis as ob

LEARN_FRAMES = 60  # frames 0-59 learn, the rest are held out
LEARN_S = 2.0  # the learner's window: 51 frames at 25 fps


@pytest.fixture(scope="module")
def tracked():
    """Dense expressions of a real clip (bundled face mesh), the first LEARN_FRAMES to learn from."""
    out = tracked_controls("sadtalker_WDA_KatieHill_000.mp4", max_frames=110, period_ns=40_000_000,
                           calibrated_only=True)
    assert len(out) > LEARN_FRAMES + 20
    return out


@pytest.fixture(scope="module")
def basis(tracked):
    learner = ob.BasisLearner(duration_s=LEARN_S)
    got = [learner.add(c.expression, c.eyelid_ratios, c.stamp_ns) for c in tracked[:LEARN_FRAMES]]
    learned = [b for b in got if b is not None]
    assert len(learned) == 1  # once, on the first frame LEARN_S after the first
    i = next(k for k, b in enumerate(got) if b is not None)
    assert (tracked[i].stamp_ns - tracked[0].stamp_ns) * 1e-9 >= LEARN_S > (tracked[i - 1].stamp_ns - tracked[0].stamp_ns) * 1e-9
    assert learner.add(tracked[0].expression, None, 0) is None  # learned once until reset
    return learned[0]


def _rms_mm(a, b):
    return float(np.sqrt(((a[:lmk.NUM_MESH] - b[:lmk.NUM_MESH]) ** 2).sum(-1).mean()) * 1e3)


def test_round_trip_with_and_without_the_basis(tracked, basis):
    b = basis.components.reshape(basis.num_components, -1)
    np.testing.assert_allclose(b @ b.T, np.eye(basis.num_components), atol=5e-3)  # orthonormal up to float16
    held_out = tracked[LEARN_FRAMES:]
    plain_err, with_err = [], []
    for c in held_out:
        plain = ec.encode(c.expression, c.eyelid_ratios)
        code = ec.encode(c.expression, c.eyelid_ratios, basis)
        assert len(code) == len(plain) + ec.OPERATOR_SECTION_BYTES + basis.num_components
        assert ec.operator_basis_id(code) == basis.id and ec.operator_basis_id(plain) == 0
        ex, lid = ec.decode(code, basis)
        ex_fixed, lid_fixed = ec.decode(code)  # no basis held: the fixed part only, = the plain code
        ex_plain, _ = ec.decode(plain)
        np.testing.assert_array_equal(ex_fixed, ex_plain)
        np.testing.assert_array_equal(lid, lid_fixed)
        np.testing.assert_array_equal(ex[lmk.NUM_MESH:], ex_plain[lmk.NUM_MESH:])  # irises are not in the basis
        eye = ob._eye_points()
        e_plain = np.sqrt(((ex_plain[:lmk.NUM_MESH][eye] - c.expression[:lmk.NUM_MESH][eye]) ** 2).sum(-1).mean())
        e_with = np.sqrt(((ex[:lmk.NUM_MESH][eye] - c.expression[:lmk.NUM_MESH][eye]) ** 2).sum(-1).mean())
        assert e_with <= e_plain + 1e-5, (e_plain, e_with)  # the eye block only ever brings the eyes closer
        plain_err.append(_rms_mm(ex_plain, c.expression))
        with_err.append(_rms_mm(ex, c.expression))
    print(f"held-out landmark RMS: fixed code {np.mean(plain_err):.3f} mm, with the operator basis {np.mean(with_err):.3f} mm")
    assert np.mean(with_err) < 0.7 * np.mean(plain_err), (np.mean(plain_err), np.mean(with_err))
    assert max(w - p for w, p in zip(with_err, plain_err)) < 0.02  # no frame made worse by more than quantisation


def test_another_basis_id_decodes_the_fixed_part_only(tracked, basis):
    c = tracked[-1]
    code = ec.encode(c.expression, c.eyelid_ratios, basis)
    other = ob.OperatorBasis(np.roll(basis.components, 1, axis=0))  # same size, other content: another id
    assert other.id != basis.id
    np.testing.assert_array_equal(ec.decode(code, other)[0], ec.decode(ec.encode(c.expression, c.eyelid_ratios))[0])
    # a 468-point code without ratios works the same way
    code = ec.encode(c.expression[:lmk.NUM_MESH], None, basis)
    assert ec.decode(code, basis)[0].shape == (lmk.NUM_MESH, 3) and ec.decode(code, basis)[1].shape == (0,)


def test_zero_expression_stays_exact_with_the_basis(basis):
    zero = np.zeros((lmk.NUM_LANDMARKS, 3), np.float32)
    assert np.array_equal(ec.decode(ec.encode(zero, None, basis), basis)[0], zero)


def test_basis_message_round_trip_size_and_refusals(tracked, basis):
    from rclpy.serialization import serialize_message

    from gaussian_head_ros.nodes.conversions import basis_to_msg, control_to_msg, msg_to_basis, msg_to_control

    msg = basis_to_msg(basis, 123)
    assert len(msg.components) == 2 * basis.num_components * lmk.NUM_MESH * 3  # float16
    back = msg_to_basis(msg)
    assert back.id == basis.id and np.array_equal(back.components, basis.components)
    c = dataclasses.replace(tracked[-1], landmarks=np.zeros((0, 3), np.float32))  # the tracker's default
    m = control_to_msg(c, ec.CODEC_COMPACT, basis)
    assert len(serialize_message(m)) <= 600, len(serialize_message(m))
    np.testing.assert_array_equal(msg_to_control(m, back).expression, ec.decode(ec.encode(
        c.expression, c.eyelid_ratios, basis), basis)[0])
    bad = basis_to_msg(basis)
    data = bytearray(bad.components)
    data[100] ^= 0x40
    bad.components = bytes(data)
    with pytest.raises(ValueError, match="does not match"):
        msg_to_basis(bad)
    bad = basis_to_msg(basis)
    bad.num_components = 15
    with pytest.raises(ValueError, match="needs"):
        msg_to_basis(bad)
    code = ec.encode(c.expression, c.eyelid_ratios, basis)
    with pytest.raises(ValueError, match="bytes"):
        ec.decode(code[:-1], basis)


def test_learn_refuses_too_few_frames():
    with pytest.raises(ValueError, match="needs as many frames"):
        ob.learn(np.zeros((3, lmk.NUM_MESH, 3)))
    with pytest.raises(ValueError, match="all zero"):
        ob.learn(np.zeros((20, lmk.NUM_MESH, 3)))
