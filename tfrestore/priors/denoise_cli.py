"""The denoising benchmark as run by `bin/denoise.py`: load, crop, tune, denoise, write."""
import os
import sys


__all__ = ["run_denoising_benchmark", "run"]


def run_denoising_benchmark(priors, images, output, tune_images=None, prior_weights=(1.0,),
                            tv_weights=(10.0,), image_size=128, crop=64, sigmas=(15, 25),
                            modes=("grey", "colour"), steps=100, lr=2.0, seed=0, log=print,
                            tune_once=False):
    """Run `denoising_benchmark` and write the markdown table and a JSON record."""
    from tfrestore.data.images import load_images
    from tfrestore.io import atomic_write, cap_steps, environment_info, write_json
    from tfrestore.priors.denoising import centre_crop, denoising_benchmark, markdown_table
    from tfrestore.priors.layers import load_prior

    steps = cap_steps(steps)
    methods, grid = {}, {}
    for p in priors:
        if p == "tv":
            methods["TV"] = "tv"
            grid["TV"] = [float(w) for w in tv_weights]
        else:
            name = os.path.splitext(os.path.basename(p))[0]
            methods[name] = load_prior(p)
            grid[name] = [float(w) for w in prior_weights]
    test = load_images(images, image_size)
    clean = centre_crop(test.images, crop)
    tune = None
    if tune_images:
        tune = centre_crop(load_images(tune_images, image_size).images, crop)
    result = denoising_benchmark(methods, clean, [int(s) for s in sigmas], list(modes), tune,
                                 grid if tune is not None else None, steps, lr, seed, log,
                                 tune_once)
    table = markdown_table(result, [int(s) for s in sigmas], list(modes))
    cmd = "python " + " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("denoise.py") else "(library call)"
    text = (f"# MAP denoising with learned patch priors vs TV\n\nCommand:\n\n```\n{cmd}\n```\n\n"
            f"{len(clean)} test images ({crop}x{crop} centre crops after resizing to "
            f"{image_size}): {', '.join(os.path.basename(p) for p in test.paths)}.\n"
            f"λ chosen {'once per method (first mode, largest σ)' if tune_once else 'per method, mode and σ'} on: "
            f"{', '.join(tune_images) if tune_images else 'none (λ = 1)'}. {steps} Adam steps.\n"
            f"Grey: BT.601 luminance; colour priors see it replicated to R = G = B.\n\n"
            f"Mean PSNR (dB):\n\n{table}\n")
    atomic_write(output, text)
    write_json(os.path.splitext(output)[0] + ".json",
               {"result": result, "images": test.paths, "tune_images": tune_images,
                "steps": steps, "lr": lr, "seed": seed, "crop": crop,
                "image_size": image_size, "environment": environment_info()})
    log(f"wrote {output}\n{table}")
    return result, table


def run(f, log=print):
    return run_denoising_benchmark(
        f.priors, f.images, f.output, f.tune_images, f.prior_weights, f.tv_weights,
        f.image_size, f.crop, f.sigmas, f.modes, f.steps, f.lr, f.seed, log, f.tune_once)
