"""Inverting networks (Dosovitskiy & Brox): inverse modules per classifier block, stacked
from any layer back to the image, trained solo / stacked / joint / end to end, and used
alone or as the initialisation of prior-regularised optimisation (hybrid).

    stack = build_stack(clf, blocks=["block_2_add", "block_5_add", "block_12_add"])
    data = prepare_data(clf, stack.levels, images, names, num_val=100)
    trainer = Trainer(lambda: build_stack(clf, blocks=...), data, TrainConfig(mode="joint"))
    trainer.train(); save_stack(trainer.stack, "inverter.keras")
    rec = reconstruct_with_network(load_inverter("inverter.keras"), clf, "block_5_add", images)
"""
from tfrestore.inverters.modules import MODULE_KINDS, InverseModule, default_hidden
from tfrestore.inverters.reconstruct import (InverterMismatchError, NetworkResult,
                                            check_inverter, load_inverter,
                                            reconstruct_hybrid, reconstruct_with_network)
from tfrestore.inverters.stack import (BlockError, InverterStack, build_stack, cut_layers,
                                      default_blocks, resolve_blocks, warm_start)
from tfrestore.inverters.training import (MODES, FeatureData, TrainConfig, Trainer,
                                         compute_features, evaluate_stack, prepare_data,
                                         save_stack, split_indices, train_info)

__all__ = ["InverseModule", "MODULE_KINDS", "default_hidden", "InverterStack", "BlockError",
           "build_stack", "cut_layers", "default_blocks", "resolve_blocks", "warm_start", "MODES",
           "TrainConfig", "FeatureData", "Trainer", "compute_features", "prepare_data",
           "split_indices", "evaluate_stack", "save_stack", "train_info",
           "InverterMismatchError", "NetworkResult", "load_inverter", "check_inverter",
           "reconstruct_with_network", "reconstruct_hybrid"]
