#!/bin/sh
# Activation maximisation of 10 classes of the bundled MobileNetV2 under each prior family.
# Run from the repository root: sh results/actmax/run.sh
T=class:flamingo,class:goldfish,class:ostrich,class:tree_frog,class:monarch,class:pineapple,class:lemon,class:volcano,class:school_bus,class:espresso
python bin/actmax.py --target=$T --preset=mv2016 --steps=200 --seed=0 \
    --output_dir=results/actmax/mv2016 --log_every=50
python bin/actmax.py --target=$T --preset=mv2016 --steps=200 --seed=0 --tv_weight=0 \
    --prior=checkpoints/foe_8x8x3_512.keras@image:2e-7 --prior_crop=0.25 \
    --output_dir=results/actmax/foe --log_every=50
# The same with 20x the TV weight (smoother images; do they transfer to the quantised model?)
python bin/actmax.py --target=$T --preset=mv2016 --steps=200 --seed=0 --tv_weight=20 \
    --output_dir=results/actmax/mv2016_tv20 --log_every=50
# Denoising-autoencoder prior (Plug & Play style: its gradient -(r(x) - x)/sigma^2) instead of TV
python bin/actmax.py --target=$T --preset=mv2016 --steps=200 --seed=0 --tv_weight=0 \
    --prior=checkpoints/dae_rgb_imagenet.keras@image:1 \
    --output_dir=results/actmax/dae --log_every=50
