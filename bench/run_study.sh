#!/bin/bash
# The converged study, stage by stage, in the order it is run (README: "The converged
# study"). Every command resumes where it stopped (finished cells are kept in the output
# JSON, a running cell resumes from its checkpoint in --work_dir), so a stage can be
# interrupted and rerun at will, a few hours at a time, in the background:
#
#   nohup nice -n 10 bash bench/run_study.sh RUNS_DIR STAGE [STAGE ...] &
#
# RUNS_DIR holds the outputs and per-cell checkpoints (several GB are not needed: only the
# running cells' checkpoints). MobileNetV2 cells run the network on chunks of 4 images (1.3-1.4x
# less CPU; AlexNet gains nothing from it: results/feature_chunk_benchmark*.md). Stages:
#   mnv2_mv       M&V 2016 at three MobileNetV2 depths (the baseline of every table)
#   mnv2_mv_rest  M&V 2016 at the other two
#   dae_search    DAE prior weights at convergence on 4 development images (image DAE at
#                 three depths, feature-map DAEs at the depths above their layers)
#   patch_search  image FoE / ICA (and AlexNet's image DAE) weights, likewise
#   fmap_search   feature-map FoE weights, each depth with the prior of the layer below
#   mnv2_fast     the fast preset at its own 350-step budget
#   mnv2_networks the shipped inverting networks and the hybrid (network start + M&V 2016)
#   weights       the searched weights into both configs (bench/search_bests.py --write:
#                 each searched layer's best, the geometric mean between searched layers)
#   mnv2_priors   every prior method (after `weights`)
#   alexnet       random-weight AlexNet conv1-conv5, every method
#   render        the tables and figures into RUNS_DIR (copy them to results/study/)
# The tables are rendered from whatever cells exist with `render`.
set -e
RUNS=${1:?usage: bench/run_study.sh RUNS_DIR STAGE [STAGE ...]}; shift
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # this checkout's tfrestore
mkdir -p "$RUNS/study" "$RUNS/search"
MNV2=(python bin/compare.py --config=results/study/mobilenet_v2_config.json
      --images=results/splits/test.txt --limit=20 --steps=3500 --verbose "--baseline=M&V 2016"
      --output="$RUNS/study/mobilenet_v2" --work_dir="$RUNS/study/cells" --feature_chunk=4)
ALEX=(python bin/compare.py --config=results/study/alexnet_random_config.json
      --images=results/splits/test.txt --limit=20 --steps=3500 --verbose "--baseline=M&V 2016"
      --output="$RUNS/study/alexnet_random" --work_dir="$RUNS/study/cells_alexnet")
SEARCH=(python bin/search_weights.py --images=results/splits/dev.txt --limit=4 --steps=3500
        --metric=ssim --verbose --set=converge_rtol=0.001 --set=converge_window=100
        --set=prior_start=0.25)
MNV2_SEARCH=("${SEARCH[@]}" --classifier=mobilenet_v2_tflite)
ALEX_SEARCH=("${SEARCH[@]}" --classifier=alexnet --weights=random --weights_seed=0)
search() {   # search NAME ARGS...: one resumable search into $RUNS/search/NAME
  local name=$1; shift
  "$@" --output="$RUNS/search/$name" --work_dir="$RUNS/search/cells_$name"
}
for stage in "$@"; do
  case $stage in
    mnv2_mv)
      "${MNV2[@]}" "--methods=M&V 2016" \
        --layers=expanded_conv_3_add,expanded_conv_5_add,expanded_conv_12_add ;;
    mnv2_mv_rest)
      "${MNV2[@]}" "--methods=M&V 2016" --layers=expanded_conv_8_add,Conv2d_0_0 ;;
    dae_search)
      search mnv2_dae_image "${MNV2_SEARCH[@]}" --grid=3e-4,1e-3,3e-3 --set=prior_crop=0.5 \
        --layer=expanded_conv_5_add,expanded_conv_3_add,expanded_conv_12_add \
        --prior=checkpoints/dae_rgb_imagenet.keras@image
      # (the no-prior baseline of these layers is in mnv2_dae_image's w=0 cells)
      search mnv2_dae_fmap_ec5 "${MNV2_SEARCH[@]}" --grid=3e-4,1e-3,3e-3 \
        --include_zero=false --layer=expanded_conv_5_add \
        --prior=checkpoints/fmap/dae_mnv2_expanded_conv_3_add.keras@expanded_conv_3_add
      search mnv2_dae_fmap_ec5prior "${MNV2_SEARCH[@]}" --grid=3e-4,1e-3,3e-3 \
        --include_zero=false --layer=expanded_conv_12_add,expanded_conv_8_add \
        --prior=checkpoints/fmap/dae_mnv2_expanded_conv_5_add.keras@expanded_conv_5_add
      # the image DAE at the other two depths (against the patch searches' zero weight)
      search mnv2_dae_image_l0 "${MNV2_SEARCH[@]}" --grid=3e-5,1e-4,3e-4,1e-3 --include_zero=false \
        --set=prior_crop=0.5 --layer=Conv2d_0_0 --prior=checkpoints/dae_rgb_imagenet.keras@image
      search mnv2_dae_image_l8 "${MNV2_SEARCH[@]}" --grid=1e-3,3e-3,1e-2 --include_zero=false \
        --set=prior_crop=0.5 --layer=expanded_conv_8_add \
        --prior=checkpoints/dae_rgb_imagenet.keras@image
      # AlexNet: each feature-map DAE at the layer above its own, on MobileNetV2's range
      for k in 2 3 4; do
        search "alexnet_dae_fmap_conv$k" "${ALEX_SEARCH[@]}" --grid=3e-4,1e-3,3e-3 \
          --include_zero=false --layer="conv$k/lin" \
          --prior="checkpoints/fmap/dae_alexnet_conv$((k - 1))_lin.keras@conv$((k - 1))/lin"
      done ;;
    patch_search)
      search mnv2_foe_image "${MNV2_SEARCH[@]}" --grid=3e-7,1e-6,3e-6 --include_zero=false \
        --layer=expanded_conv_5_add,expanded_conv_3_add,expanded_conv_12_add \
        --prior=checkpoints/foe_8x8x3_512.keras@image
      search mnv2_ica_image "${MNV2_SEARCH[@]}" --grid=3e-7,1e-6,3e-6 --include_zero=false \
        --layer=expanded_conv_5_add,expanded_conv_3_add,expanded_conv_12_add \
        --prior=checkpoints/ica_8x8x3_512.keras@image
      # where a best sat at the grid's upper edge, the grid extended upwards
      search mnv2_foe_image_ext "${MNV2_SEARCH[@]}" --grid=1e-5 --include_zero=false \
        --layer=expanded_conv_12_add,expanded_conv_5_add --prior=checkpoints/foe_8x8x3_512.keras@image
      search mnv2_foe_image_ext2 "${MNV2_SEARCH[@]}" --grid=3e-5 --include_zero=false \
        --layer=expanded_conv_12_add --prior=checkpoints/foe_8x8x3_512.keras@image
      search mnv2_ica_image_ext "${MNV2_SEARCH[@]}" --grid=1e-5 --include_zero=false \
        --layer=expanded_conv_12_add,expanded_conv_5_add,expanded_conv_3_add \
        --prior=checkpoints/ica_8x8x3_512.keras@image
      # the upper edges checked (session 14): only ICA at _12_add moved (to 3e-5)
      search mnv2_foe_image_ext3 "${MNV2_SEARCH[@]}" --grid=1e-4 --include_zero=false \
        --layer=expanded_conv_12_add --prior=checkpoints/foe_8x8x3_512.keras@image
      search mnv2_ica_image_ext2 "${MNV2_SEARCH[@]}" --grid=3e-5 --include_zero=false \
        --layer=expanded_conv_12_add,expanded_conv_8_add,expanded_conv_5_add \
        --prior=checkpoints/ica_8x8x3_512.keras@image
      search mnv2_ica_image_ext3 "${MNV2_SEARCH[@]}" --grid=1e-4 --include_zero=false \
        --layer=expanded_conv_12_add --prior=checkpoints/ica_8x8x3_512.keras@image
      # _8_add: the weights around those of its neighbours; Conv2d_0_0: small weights and none
      search mnv2_foe_image_l8 "${MNV2_SEARCH[@]}" --grid=3e-6,1e-5,3e-5 --include_zero=false \
        --layer=expanded_conv_8_add --prior=checkpoints/foe_8x8x3_512.keras@image
      search mnv2_ica_image_l8 "${MNV2_SEARCH[@]}" --grid=3e-6,1e-5 --include_zero=false \
        --layer=expanded_conv_8_add --prior=checkpoints/ica_8x8x3_512.keras@image
      search mnv2_foe_image_l0 "${MNV2_SEARCH[@]}" --grid=3e-7,1e-6,3e-6 --include_zero=true \
        --layer=Conv2d_0_0 --prior=checkpoints/foe_8x8x3_512.keras@image
      search mnv2_ica_image_l0 "${MNV2_SEARCH[@]}" --grid=3e-7,1e-6,3e-6 --include_zero=true \
        --layer=Conv2d_0_0 --prior=checkpoints/ica_8x8x3_512.keras@image
      # AlexNet at conv1, conv3 and conv5 (conv2 and conv4 take the geometric mean of their
      # neighbours' bests: stage `weights`); the FoE searches hold the no-prior cells. Grids
      # as run: at conv3 the FoE's best sat at the upper edge twice (session 16), so its grid
      # was extended and ICA's at conv3 and both at conv5 start higher; ICA's bests at conv3
      # and conv5 sat at the upper edge too (session 17), so their grids were extended
      FOE=checkpoints/foe_8x8x3_512.keras@image ICA=checkpoints/ica_8x8x3_512.keras@image
      search alexnet_foe_image_conv1 "${ALEX_SEARCH[@]}" --grid=3e-7,1e-6,3e-6 \
        --layer=conv1/lin --prior=$FOE
      search alexnet_ica_image_conv1 "${ALEX_SEARCH[@]}" --grid=3e-7,1e-6,3e-6 \
        --include_zero=false --layer=conv1/lin --prior=$ICA
      search alexnet_foe_image_conv3 "${ALEX_SEARCH[@]}" --grid=1e-6,3e-6,1e-5 \
        --layer=conv3/lin --prior=$FOE
      search alexnet_foe_image_conv3_ext "${ALEX_SEARCH[@]}" --grid=3e-5,1e-4 \
        --include_zero=false --layer=conv3/lin --prior=$FOE
      search alexnet_foe_image_conv3_ext2 "${ALEX_SEARCH[@]}" --grid=3e-4,1e-3 \
        --include_zero=false --layer=conv3/lin --prior=$FOE
      search alexnet_ica_image_conv3 "${ALEX_SEARCH[@]}" --grid=1e-5,3e-5,1e-4,3e-4 \
        --include_zero=false --layer=conv3/lin --prior=$ICA
      search alexnet_ica_image_conv3_ext "${ALEX_SEARCH[@]}" --grid=1e-3 \
        --include_zero=false --layer=conv3/lin --prior=$ICA
      search alexnet_ica_image_conv3_ext2 "${ALEX_SEARCH[@]}" --grid=3e-3 \
        --include_zero=false --layer=conv3/lin --prior=$ICA
      search alexnet_foe_image_conv5 "${ALEX_SEARCH[@]}" --grid=3e-5,1e-4,3e-4,1e-3 \
        --layer=conv5/lin --prior=$FOE
      search alexnet_ica_image_conv5 "${ALEX_SEARCH[@]}" --grid=3e-5,1e-4,3e-4,1e-3 \
        --include_zero=false --layer=conv5/lin --prior=$ICA
      search alexnet_ica_image_conv5_ext "${ALEX_SEARCH[@]}" --grid=3e-3 \
        --include_zero=false --layer=conv5/lin --prior=$ICA
      for g in "conv1 3e-5,1e-4,3e-4" "conv3 3e-4,1e-3,3e-3" "conv5 1e-3,3e-3,1e-2"; do
        read -r layer dae <<< "$g"
        search "alexnet_dae_image_$layer" "${ALEX_SEARCH[@]}" --grid="$dae" --include_zero=false \
          --set=prior_crop=0.5 --layer="$layer/lin" --prior=checkpoints/dae_rgb_imagenet.keras@image
      done ;;
    fmap_search)
      # each inverted layer with the feature-map FoE of the layer below it (grid-2 estimate);
      # the grids as run: extended downwards where the best was the smallest weight
      FS=("${MNV2_SEARCH[@]}" --set=prior_grid_maps=2 --include_zero=false)
      search mnv2_foe_fmap_expanded_conv_3_add "${FS[@]}" --grid=1e-6,3e-6,1e-5,3e-5 \
        --layer=expanded_conv_3_add --prior=checkpoints/fmap/mnv2_Conv2d_0_0_1024.keras@Conv2d_0_0
      search mnv2_foe_fmap_expanded_conv_5_add "${FS[@]}" --grid=3e-6,1e-5,3e-5,1e-4,3e-4 \
        --layer=expanded_conv_5_add \
        --prior=checkpoints/fmap/mnv2_expanded_conv_3_add_1024.keras@expanded_conv_3_add
      search mnv2_foe_fmap_expanded_conv_8_add "${FS[@]}" --grid=3e-5,1e-4,3e-4 \
        --include_zero=true --layer=expanded_conv_8_add \
        --prior=checkpoints/fmap/mnv2_expanded_conv_5_add_1024.keras@expanded_conv_5_add
      search mnv2_foe_fmap_expanded_conv_12_add "${FS[@]}" --grid=3e-5,1e-4,3e-4 \
        --layer=expanded_conv_12_add \
        --prior=checkpoints/fmap/mnv2_expanded_conv_8_add_1024.keras@expanded_conv_8_add
      for k in 2 3 4 5; do
        search "alexnet_foe_fmap_conv$k" "${ALEX_SEARCH[@]}" --grid=3e-5,1e-4,3e-4 \
          --include_zero=false --layer="conv$k/lin" \
          --prior="checkpoints/fmap/alexnet_conv$((k - 1))_lin_1024.keras@conv$((k - 1))/lin"
      done ;;
    mnv2_fast)
      "${MNV2[@]}" --methods=fast ;;
    mnv2_networks)
      "${MNV2[@]}" "--methods=inverting network (stacked),inverting network (joint)"
      "${MNV2[@]}" "--methods=hybrid (stacked network + M&V 2016)" \
        --layers=expanded_conv_12_add,expanded_conv_5_add,expanded_conv_3_add ;;
    weights)
      for config in mobilenet_v2 alexnet_random; do
        python bench/search_bests.py --config="results/study/${config}_config.json" \
          --searches="$RUNS/search/*.json" --write
      done
      # the real-weights AlexNet config takes the random-weight searches' FoE weights
      python - <<'PY'
import json
s = "results/study/"
random = json.load(open(s + "alexnet_random_config.json"))
real = json.load(open(s + "alexnet_imagenet_config.json"))
real["methods"]["+ image FoE"] = random["methods"]["+ image FoE"]
open(s + "alexnet_imagenet_config.json", "w").write(json.dumps(real, indent=2) + "\n")
PY
      ;;
    mnv2_priors)
      "${MNV2[@]}" "--methods=+ image DAE,+ feature-map DAE" \
        --layers=expanded_conv_5_add,expanded_conv_3_add,expanded_conv_12_add,expanded_conv_8_add
      "${MNV2[@]}" ;;
    alexnet)
      "${ALEX[@]}" "--methods=M&V 2016,fast"
      "${ALEX[@]}" ;;
    render)
      "${MNV2[@]}" --render_only
      [ -f "$RUNS/study/alexnet_random.json" ] && "${ALEX[@]}" --render_only
      [ -f "$RUNS/study/alexnet_random.json" ] && python bench/thesis_alexnet_table.py \
        --results="$RUNS/study/alexnet_random.json" --output="$RUNS/study/alexnet_thesis_table.md"
      true ;;
    *) echo "bench/run_study.sh: unknown stage '$stage' (see the list at the top)" >&2; exit 2 ;;
  esac
done
