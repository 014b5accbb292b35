#!/bin/sh
# Caricatures of three held-out ImageNet images by the bundled MobileNetV2 at two depths.
# Run from the repository root: sh results/caricature/run.sh
I=../shared/data/imagenet_samples/n01531178_goldfinch.JPEG,../shared/data/imagenet_samples/n01669191_box_turtle.JPEG,../shared/data/imagenet_samples/n01742172_boa_constrictor.JPEG
for L in expanded_conv_3_add expanded_conv_10_add; do
python bin/caricature.py --images=$I --layer=$L --preset=mv2016 --steps=150 --seed=0 \
    --output_dir=results/caricature/$L
done
