#!/bin/sh
# Langevin sampling results (run from the repository root: sh results/sampling/run.sh).
# (a) the learned FoE prior alone (T = 1, energies in 0-255 units), 32x32, 4 chains from
# noise: MALA at step sizes 1e-3 (and, in a first run, 3e-3 and 3e-2: acceptance 0), 1e-4, 1e-5; ULA at 1e-4.
for h in 0.001 0.0001 0.00001; do
python bin/sample.py --mode=prior --prior=checkpoints/foe_8x8x3_512.keras@image:1 --size=32 \
    --n_samples=4 --steps=300 --step_size=$h --mala --every=50 --seed=0 \
    --output_dir=results/sampling/foe_mala_h$h
done
python bin/sample.py --mode=prior --prior=checkpoints/foe_8x8x3_512.keras@image:1 --size=32 \
    --n_samples=4 --steps=300 --step_size=0.0001 --every=50 --seed=0 \
    --output_dir=results/sampling/foe_ula_h0.0001
# (b) pre-images of MobileNetV2 at expanded_conv_6_add (fast preset energy: C * feature
# loss + range + TV), 3 MALA chains started at the image.
python bin/sample.py --mode=preimage --images=../shared/data/imagenet_samples/n01531178_goldfinch.JPEG \
    --layer=expanded_conv_6_add --n_samples=3 --steps=150 --step_size=0.5 --temperature=1 \
    --mala --init=image --every=50 --seed=0 --output_dir=results/sampling/preimage_mala
