"""How an image batch is represented by the optimised variables.

Every parameterization maps its variables to RGB 0-255 (`to_rgb`), is built from a start
image (`build(centred)`, the start minus the dataset mean), and can project onto the
per-pixel bound ||x_ij - mean|| <= B+ of M&V 2016 after each step (`project`). Where a
parameterization claims to be invertible (all of these), `build(c)` followed by
`to_rgb()` returns mean + c (tested).

* `mv` (M&V 2015/2016): rgb = mean + sigma * u, bound projection on sigma * u.
* `pixels`: the RGB values themselves are the variable.
* `fourier` (lucid's `param.image`): a decorrelated colour space, then a 2-D real Fourier
  basis whose coefficients are scaled by 1/frequency^decay — gradient steps move low
  frequencies as much as high ones (a preconditioner for natural-image spectra).
* `laplacian`: a Laplacian pyramid (levels at 1, 1/2, 1/4, ... resolution, summed after
  bilinear upsampling), level k scaled by gain^k.
"""
import numpy as np
import tensorflow as tf

__all__ = ["Parameterization", "Pixels", "Fourier", "LaplacianPyramid", "PARAMETERIZATIONS",
           "make_parameterization", "project_bound"]

PARAMETERIZATIONS = ("mv", "pixels", "fourier", "laplacian")

# lucid's colour correlation square root (ImageNet), columns normalised to max norm 1.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]],
                       np.float32)
_COLOR = _COLOR_SQRT / np.max(np.linalg.norm(_COLOR_SQRT, axis=0))


def project_bound(centred, bound):
    """Scale each pixel vector of a mean-subtracted batch down to norm <= `bound`."""
    norm = tf.sqrt(tf.reduce_sum(tf.square(centred), axis=-1, keepdims=True))
    return centred * tf.minimum(1.0, bound / tf.maximum(norm, 1e-12))


class Parameterization:
    """Base: subclasses define `_encode(centred) -> [arrays]` and `_decode(vars) -> centred`.

    Args:
      mean: RGB dataset mean (3,), added back by `to_rgb`.
      bound: B+ of the per-pixel bound projection (0 = none).
    """
    name = None

    def __init__(self, mean=(0.0, 0.0, 0.0), bound=0.0):
        self.mean = tf.constant(np.asarray(mean, np.float32))
        self.bound = float(bound)
        self.variables = None

    def build(self, centred):
        """Create the variables so that `to_rgb()` == mean + centred (projected)."""
        centred = tf.convert_to_tensor(np.asarray(centred, np.float32))
        if self.bound:
            centred = project_bound(centred, self.bound)
        self.shape = tuple(centred.shape)
        self.variables = [tf.Variable(v, name=f"{self.name}_{i}")
                          for i, v in enumerate(self._encode(centred))]
        return self

    def centred(self):
        return self._decode(self.variables)

    def to_rgb(self):
        """Current images, RGB 0-255 (unclipped) [N, H, W, 3]."""
        return self.mean + self.centred()

    def assign_centred(self, centred):
        for v, value in zip(self.variables, self._encode(centred)):
            v.assign(value)

    def project(self):
        """After each step: the bound projection, if any."""
        if self.bound:
            self.assign_centred(project_bound(self.centred(), self.bound))

    def describe(self):
        return {"name": self.name, "bound": self.bound}


class Pixels(Parameterization):
    """rgb = mean + scale * u (`mv`: M&V's sigma-scaling, scale = sigma; `pixels`: 1)."""

    def __init__(self, mean=(0.0, 0.0, 0.0), scale=1.0, bound=0.0, name="pixels"):
        super().__init__(mean, bound)
        self.scale, self.name = float(scale) or 1.0, name

    def _encode(self, centred):
        return [centred / self.scale]

    def _decode(self, variables):
        return self.scale * variables[0]

    def project(self):
        if self.bound:  # M&V: u <- P(sigma u) / sigma, without a round trip
            u = self.variables[0]
            u.assign(project_bound(self.scale * u, self.bound) / self.scale)

    def describe(self):
        return dict(super().describe(), scale=self.scale)


class Fourier(Parameterization):
    """Decorrelated colour + Fourier coefficients scaled by 1/max(f, 1/max(H, W))^decay.

    The variable holds the real and imaginary parts of rfft2d per decorrelated channel;
    the decoded image is rescaled so that unit-variance coefficients give pixels of
    standard deviation `pixel_std` (0-255 units), which fixes what a learning rate means.
    """
    name = "fourier"

    def __init__(self, mean=(0.0, 0.0, 0.0), bound=0.0, decay=1.0, decorrelate=True,
                 pixel_std=1.0):
        super().__init__(mean, bound)
        self.decay, self.decorrelate, self.pixel_std = float(decay), bool(decorrelate), \
            float(pixel_std)

    def _setup(self, h, w):
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        freqs = np.sqrt(fy * fy + fx * fx)
        scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** self.decay
        # Unit-variance coefficients -> pixel std: irfft2d's 1/(HW) and the Hermitian sum.
        # NumPy constants (not tensors): the step function is traced in its own graph.
        self._scale = scale.astype(np.float32)
        self._gain = float(self.pixel_std * h * w / np.sqrt(2.0 * np.sum(scale ** 2)))
        colour = _COLOR if self.decorrelate else np.eye(3, dtype=np.float32)
        self._colour = np.ascontiguousarray(colour.T)
        self._colour_inv = np.linalg.inv(colour.T).astype(np.float32)
        self._hw = (h, w)

    def build(self, centred):
        self._setup(*np.shape(centred)[1:3])
        return super().build(centred)

    def _encode(self, centred):
        x = tf.transpose(tf.matmul(centred, self._colour_inv) / self._gain, [0, 3, 1, 2])
        spec = tf.signal.rfft2d(x) / tf.cast(self._scale, tf.complex64)
        return [tf.math.real(spec), tf.math.imag(spec)]

    def _decode(self, variables):
        spec = tf.complex(variables[0] * self._scale, variables[1] * self._scale)
        x = tf.signal.irfft2d(spec, fft_length=self._hw)
        return tf.matmul(tf.transpose(x, [0, 2, 3, 1]) * self._gain, self._colour)

    def describe(self):
        return dict(super().describe(), decay=self.decay, decorrelate=self.decorrelate,
                    pixel_std=self.pixel_std)


class LaplacianPyramid(Parameterization):
    """centred = l_0 + up(gain * l_1 + up(gain^2 * l_2 + ...)): `levels` variables at
    resolutions H/2^k; a step on a coarse level moves a whole region."""
    name = "laplacian"

    def __init__(self, mean=(0.0, 0.0, 0.0), bound=0.0, levels=4, gain=2.0):
        super().__init__(mean, bound)
        if int(levels) < 1:
            raise ValueError(f"A Laplacian pyramid needs >= 1 level, got {levels}.")
        self.levels, self.gain = int(levels), float(gain)

    @staticmethod
    def _down(x):
        h, w = x.shape[1], x.shape[2]
        return tf.image.resize(x, [(h + 1) // 2, (w + 1) // 2], method="area")

    @staticmethod
    def _up(x, size):
        return tf.image.resize(x, size, method="bilinear")

    def _encode(self, centred):
        gs = [centred]
        for _ in range(self.levels - 1):
            gs.append(self._down(gs[-1]))
        out = [gs[k] - self._up(gs[k + 1], gs[k].shape[1:3]) for k in range(self.levels - 1)]
        out.append(gs[-1])
        return [v / self.gain ** k for k, v in enumerate(out)]

    def _decode(self, variables):
        g = variables[-1] * self.gain ** (self.levels - 1)
        for k in range(self.levels - 2, -1, -1):
            g = variables[k] * self.gain ** k + self._up(g, variables[k].shape[1:3])
        return g

    def describe(self):
        return dict(super().describe(), levels=self.levels, gain=self.gain)


def make_parameterization(name, mean=(0.0, 0.0, 0.0), bound=0.0, sigma=0.0, **options):
    """A parameterization by name (one of PARAMETERIZATIONS); `options` are its own."""
    if name == "mv":
        return Pixels(mean, scale=sigma or 1.0, bound=bound, name="mv")
    if name == "pixels":
        return Pixels(mean, scale=1.0, bound=bound, name="pixels")
    if name == "fourier":
        return Fourier(mean, bound, **options)
    if name == "laplacian":
        return LaplacianPyramid(mean, bound, **options)
    raise ValueError(f"Unknown parameterization '{name}'; choose one of "
                     f"{list(PARAMETERIZATIONS)}.")
