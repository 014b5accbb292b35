"""Unbiased strided-grid estimate of a patch prior's energy, for large images.

A `PatchPrior`'s energy is a sum over every patch position. On a 224x224 image an 8x8x3
prior with 512 experts evaluates 217² x 512 = 24 M responses per step — the convolution
and, above all, the expert nonlinearity and its gradient cost tens of times a MobileNetV2
forward + backward (bench/bench_prior_cost.py). No exact evaluation is cheap enough, so
inversion uses an estimate:

    Ê(x) = s² Σ_{i, j} e(x; o_y + s·i, o_x + s·j),     (o_y, o_x) uniform in {0..s-1}²

the energy at the positions of a stride-s grid with a random offset drawn per call, scaled
by s². The s² offsets partition the positions, so the mean of Ê over the offsets is the
exact energy — for every image, borders included: Ê and its gradient are unbiased (unlike a
random crop, which reaches border patches less often). The cost falls by about s², and the
grid spreads the sampled positions over the whole image, so neighbouring (correlated)
patches are not sampled together. Its spread is measured in bench/bench_prior_cost.py
(relative standard deviation of Ê and of its gradient over offsets, on real images).
"""
import tensorflow as tf

__all__ = ["GridEstimate"]


class GridEstimate:
    """Callable [B, H, W, C] -> estimated energies [B] of `prior` on a stride-`stride` grid.

    Args:
      prior: a `PatchPrior` (any layout).
      stride: grid spacing s (1 = the exact energy, no estimate).
      seed: seed of the generator that draws the offsets (one draw per call).
    Inputs of unknown size are evaluated exactly.
    """

    def __init__(self, prior, stride=4, seed=0):
        if int(stride) != stride or stride < 1:
            raise ValueError(f"Grid stride must be a positive integer, got {stride}.")
        self.prior = prior
        self.stride = int(stride)
        self.seed = int(seed)
        self.patch_size = prior.patch_size
        self.name = f"{prior.name}_grid{self.stride}"
        # Created eagerly: it is part of a run's state (checkpointed with it).
        self.generator = tf.random.Generator.from_seed(self.seed)

    def grid_energy(self, x, offset):
        """s² × the energy at the grid positions with `offset` (oy, ox) (ints or tensors), [B].

        Shapes do not depend on the offset (XLA compiles the expert sums once): the input is
        zero-padded, a window of fixed size taken from (oy, ox), and grid positions beyond
        the image's last patch are masked out.
        """
        s = self.stride
        ph, pw = self.patch_size
        h, w = x.shape[1], x.shape[2]
        hp, wp = h - ph + 1, w - pw + 1                 # patch positions per axis
        ny, nx = -(-hp // s), -(-wp // s)               # grid positions at offset 0 (the most)
        win_h, win_w = (ny - 1) * s + ph, (nx - 1) * s + pw
        xp = tf.pad(x, [[0, 0], [0, max(0, s - 1 + win_h - h)],
                        [0, max(0, s - 1 + win_w - w)], [0, 0]])
        oy, ox = offset[0], offset[1]
        window = tf.slice(xp, tf.stack([0, oy, ox, 0]), [-1, win_h, win_w, -1])
        my = tf.cast(oy + s * tf.range(ny) <= hp - 1, tf.float32)
        mx = tf.cast(ox + s * tf.range(nx) <= wp - 1, tf.float32)
        mask = my[:, None] * mx[None, :]
        return float(s * s) * self.prior.energy(window, strides=s, mask=mask)

    def _exact(self, x):
        ph, pw = self.patch_size
        h, w = x.shape[1], x.shape[2]
        return self.stride == 1 or h is None or w is None or h < ph or w < pw

    def __call__(self, x):
        x = tf.convert_to_tensor(x)
        if self._exact(x):
            return self.prior(x)
        offset = self.generator.uniform((2,), 0, self.stride, tf.int32)
        return self.grid_energy(x, offset)

    def describe(self):
        return dict(self.prior.describe(), estimate=f"strided grid, stride {self.stride}, "
                    f"random offset per call (seed {self.seed})")

    def __repr__(self):
        return f"GridEstimate({self.prior!r}, stride={self.stride}, seed={self.seed})"
