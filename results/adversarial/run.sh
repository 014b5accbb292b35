#!/bin/sh
# Adversarial table on the first 50 held-out test images (results/splits/test.txt).
# Run from the repository root: sh results/adversarial/run.sh (resumes from cache/).
python bin/adversarial.py --images=results/splits/test.txt --limit=50 --attack=fgsm,pgd \
    --norm=linf --eps=4 --step_size=1 --iters=10 --seed=0 \
    --defences=tv,jpeg,median,invert --restore_sigma=4 --restore_tv_weight=0.02 \
    --restore_steps=50 --invert_layer=expanded_conv_6_add --invert_steps=50 \
    --output_dir=results/adversarial
# A stronger TV restoration (data-term s = 16 instead of 4), attacks copied from cache/:
# mkdir -p results/adversarial/tv_s16/cache && cp results/adversarial/cache/{fgsm,pgd}_* results/adversarial/tv_s16/cache/
python bin/adversarial.py --images=results/splits/test.txt --limit=50 --attack=fgsm,pgd \
    --norm=linf --eps=4 --step_size=1 --iters=10 --seed=0 --defences=tv --restore_sigma=16 \
    --restore_tv_weight=0.02 --restore_steps=50 --output_dir=results/adversarial/tv_s16
