"""What pre-images and learned priors are for, each on the one optimisation engine:

* `targets`: what to maximise (`logit:I`, `class:LABEL`, `channel:LAYER:I`, `unit:LAYER:I:Y:X`).
* `actmax`: activation maximisation (M&V 2016 regularisers and/or learned priors).
* `caricature`: amplify what a layer sees in an image (M&V 2016).
* `sampling`: unadjusted (ULA) and Metropolis-adjusted (MALA) Langevin sampling of priors
  and of pre-images.
* `adversarial`: FGSM / PGD attacks and their restoration (MAP under a prior, inversion,
  JPEG, median filter).
* `tflite_check`: classify saved 8-bit images with tf.lite.Interpreter on the original file.
"""
