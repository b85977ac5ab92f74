"""The web app: every mode of the generation pipeline in the browser (Gradio Blocks).

    python app.py [--ckpt CKPT] [--host 127.0.0.1] [--port 7860] [--device auto] [--max-duration 30] [--share]

Without ``--ckpt`` it serves the newest demo LDM (runs/demo_ldm/version_*/checkpoints/last.ckpt, made by
``bash scripts/demo.sh``). One tab per mode: text to audio, variation, style transfer, inpainting,
super-resolution. Each result shows an audio player, its mel image and the settings used (seeds and the
``generate.py`` command that makes the same clips), with the wavs to download. Every event has a stable
``api_name`` for ``gradio_client``: text_to_audio, variation, style_transfer, inpaint, super_resolution.
Nothing is sent anywhere: analytics are off, and a public share link is made only with ``--share``.
"""

from __future__ import annotations

import argparse
import glob
import inspect
import os
import sys
import tempfile
import traceback
from typing import Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads, by design
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import gradio as gr  # noqa: E402

from audioldm.diffusion.names import SAMPLERS  # noqa: E402
from audioldm.pipeline.text_to_audio import TextToAudio  # noqa: E402
from audioldm.request.jobs import MAX_CLIPS, JobResult, Jobs, default_sampling  # noqa: E402
from audioldm.request.limits import LORA_SCALE, RequestError  # noqa: E402
from audioldm.request.sampling import Sampling  # noqa: E402

DEMO_CHECKPOINTS = "runs/demo_ldm/version_*/checkpoints/last.ckpt"


def newest_demo_checkpoint(pattern: str = DEMO_CHECKPOINTS) -> str:
    """The most recently written demo LDM checkpoint; a ``FileNotFoundError`` that says how to make one."""
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not found:
        raise FileNotFoundError(
            f"no --ckpt given and no demo checkpoint matches {pattern}: train one with "
            f"`bash scripts/demo.sh`, or pass --ckpt PATH (ours, an original AudioLDM .ckpt "
            f"or a diffusers folder)"
        )
    return found[-1]


SAMPLING = ("negative", "steps", "sampler", "guidance", "seed", "candidates", "eta")  # sampling_controls' order


def sampling_controls(d: Sampling, samplers: list[str]) -> list[gr.components.Component]:
    """The inputs named in ``SAMPLING``, in that order, starting at ``d``; ``samplers``: the checkpoint's."""
    negative = gr.Textbox(
        label="Negative prompt",
        placeholder="e.g. low quality, noisy",
        info="its CLAP embedding replaces the empty caption's in guidance",
    )
    with gr.Row():
        steps = gr.Slider(1, 200, d.steps, step=1, label="Steps")
        sampler = gr.Dropdown(samplers, value=d.sampler, label="Sampler")
    with gr.Row():
        guidance = gr.Slider(1.0, 20.0, d.guidance, step=0.5, label="Guidance", info="1 = none")
        seed = gr.Number(d.seed, precision=0, minimum=0, label="Seed", info="clip i uses seed + i")
    with gr.Row():
        candidates = gr.Slider(
            1, 8, d.candidates, step=1, label="Candidates", info="draws per clip; CLAP keeps the best match"
        )
        eta = gr.Slider(0.0, 1.0, d.eta, step=0.1, label="DDIM eta", info="DDIM only; 0 = deterministic")
    return [negative, steps, sampler, guidance, seed, candidates, eta]


def length_controls(max_seconds: float) -> tuple[gr.Slider, gr.Slider]:
    """(duration, number of clips) sliders in one row: the text and variation tabs' lengths."""
    with gr.Row():
        duration = gr.Slider(0.5, max_seconds, min(5.0, max_seconds), step=0.1, label="Duration (s)")
        clips = gr.Slider(1, MAX_CLIPS, 1, step=1, label="Number of clips")
    return duration, clips


def result_slots(n: int, tab: str) -> list[gr.components.Component]:
    """n (audio player, mel image) pairs, then the wav downloads and the settings."""
    slots = []
    for i in range(n):
        slots.append(
            gr.Audio(
                label=f"clip {i + 1}", type="filepath", interactive=False, visible=i == 0, elem_id=f"{tab}-audio-{i}"
            )
        )
        slots.append(
            gr.Image(
                label=f"clip {i + 1}: log-mel",
                type="filepath",
                interactive=False,
                visible=i == 0,
                elem_id=f"{tab}-mel-{i}",
            )
        )
    files = gr.File(label="download (wav)", file_count="multiple", interactive=False, elem_id=f"{tab}-files")
    settings = gr.JSON(label="settings (the command makes the same clips)", elem_id=f"{tab}-settings")
    return [*slots, files, settings]


def show(result: JobResult, n: int) -> list:
    """A ``JobResult`` as the values of ``result_slots(n)``: unused slots hidden."""
    values = []
    for i in range(n):
        used = i < len(result.wavs)
        values.append(
            gr.Audio(
                result.wavs[i] if used else None,
                visible=used,
                label=f"clip {i + 1}: seed {result.settings['clips'][i]['seed']}" if used else None,
            )
        )
        values.append(gr.Image(result.images[i] if used else None, visible=used))
    return [*values, result.wavs, result.settings]


def event(run: Callable[..., JobResult], names: list[str], n_slots: int) -> Callable[..., list]:
    """A Gradio event handler with positional parameters ``names`` + ``SAMPLING`` + ``progress`` (Gradio reads
    the signature: the names appear in the API, and the ``gr.Progress`` default asks for a progress bar). It calls
    ``run(*inputs, sampling=Sampling(...), progress=callback)`` and shows the result in ``n_slots`` slots; bad
    input becomes a short message in the page (never a traceback), and the app keeps serving."""

    def handler(*values) -> list:  # Gradio passes the inputs, then the gr.Progress, positionally
        *values, progress = values
        inputs, settings = values[: len(names)], dict(zip(SAMPLING, values[len(names) :]))
        track = lambda done, total: progress((done, total), desc="sampling", unit="steps")  # noqa: E731
        return page_errors(lambda: show(run(*inputs, sampling=Sampling(**settings), progress=track), n_slots))

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    handler.__signature__ = inspect.Signature(
        [inspect.Parameter(n, kind) for n in (*names, *SAMPLING)]
        + [inspect.Parameter("progress", kind, default=gr.Progress())]
    )
    handler.__name__ = run.__name__
    return handler


def page_errors(run: Callable[[], list]) -> list:
    """``run()``, with errors raised as ``gr.Error`` (a one-line message in the page)."""
    try:
        return run()
    except RequestError as e:
        raise gr.Error(str(e), print_exception=False) from None
    except Exception as e:  # an unexpected failure: one line in the page, the traceback on the server
        traceback.print_exc()
        raise gr.Error(
            f"generation failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", print_exception=False
        ) from None


def edit_tab(
    title: str,
    tab_id: str,
    text_label: str,
    button_label: str,
    run: Callable,
    setting: str,
    api_name: str,
    make_setting: Callable[[], gr.components.Component],
    controls: Callable[[], list[gr.components.Component]],
) -> None:
    """One tab that edits an uploaded clip (style transfer, inpainting, super-resolution): source, text, the
    mode's own ``setting`` (made by ``make_setting``), the sampling controls (made by ``controls``), and one
    result."""
    with gr.Tab(title, id=tab_id):
        with gr.Row():
            with gr.Column():
                source = gr.Audio(label="Source clip", type="filepath", sources=["upload"])
                text = gr.Textbox(label=text_label)
                value = make_setting()
                sampling = controls()
                button = gr.Button(button_label, variant="primary", elem_id=f"{tab_id}-generate")
            with gr.Column():
                outputs = result_slots(1, tab_id)
        button.click(
            event(run, ["audio", "text", setting], 1), [source, text, value, *sampling], outputs, api_name=api_name
        )


def build_app(
    pipe: TextToAudio,
    ckpt: str | None = None,
    out_dir: str | None = None,
    max_seconds: float = 30.0,
    adapters: list[tuple[str, float]] | None = None,
) -> gr.Blocks:
    """The Blocks app over ``pipe`` (not launched). Clips are written under ``out_dir`` (default: a new
    temporary folder); ``ckpt`` names the checkpoint in the reproducing commands; durations and sources are
    limited to ``max_seconds``; ``adapters``: the LoRA adapters attached (not fused) to ``pipe``, each given a
    scale slider."""
    jobs = Jobs(pipe, out_dir or tempfile.mkdtemp(prefix="audioldm-app-"), max_seconds, ckpt or "CKPT", adapters)
    start = default_sampling(pipe, ckpt)  # the checkpoint's guidance and samplers
    samplers = [name for name in SAMPLERS if name in pipe.model.samplers]

    def controls() -> list[gr.components.Component]:
        return sampling_controls(start, samplers)

    with gr.Blocks(title="AudioLDM", analytics_enabled=False) as app:
        gr.Markdown(
            f"## AudioLDM\nCheckpoint `{os.path.basename(ckpt or 'CKPT')}` on `{pipe.device}`. "
            f"Clips are 16 kHz; durations up to {max_seconds:g} s."
        )
        if jobs.adapters:
            with gr.Accordion("LoRA adapters", open=True):
                sliders = [
                    gr.Slider(*LORA_SCALE, scale, step=0.05, label=os.path.basename(path), info="0: off, 1: as trained")
                    for path, scale in jobs.adapters
                ]
            for slider in sliders:
                slider.change(
                    lambda *values: jobs.set_adapter_scales(list(values)) and None,
                    sliders,
                    None,
                    api_name="adapter_scales" if slider is sliders[0] else False,
                )

        with gr.Tab("Text to audio", id="text"):
            with gr.Row():
                with gr.Column():
                    prompt = gr.Textbox(label="Prompt", placeholder="e.g. a dog barks in the rain", elem_id="prompt")
                    duration, clips = length_controls(max_seconds)
                    sampling = controls()
                    button = gr.Button("Generate", variant="primary", elem_id="text-generate")
                with gr.Column():
                    outputs = result_slots(MAX_CLIPS, "text")

            button.click(
                event(jobs.text, ["prompt", "duration", "clips"], MAX_CLIPS),
                [prompt, duration, clips, *sampling],
                outputs,
                api_name="text_to_audio",
            )

        with gr.Tab("Variation", id="variation"):
            with gr.Row():
                with gr.Column():
                    source = gr.Audio(label="Source clip", type="filepath", sources=["upload"])
                    text = gr.Textbox(label="Text to mix in (optional)")
                    weight = gr.Slider(
                        0.0,
                        1.0,
                        0.5,
                        step=0.05,
                        label="Audio weight",
                        info="condition = normalise(w * audio + (1 - w) * text); w = 1 without text",
                    )
                    duration, clips = length_controls(max_seconds)
                    sampling = controls()
                    button = gr.Button("Generate variations", variant="primary", elem_id="variation-generate")
                with gr.Column():
                    outputs = result_slots(MAX_CLIPS, "variation")

            button.click(
                event(jobs.variation, ["audio", "text", "audio_weight", "duration", "clips"], MAX_CLIPS),
                [source, text, weight, duration, clips, *sampling],
                outputs,
                api_name="variation",
            )

        edit_tab(
            "Style transfer",
            "transfer",
            "Target text",
            "Transfer",
            jobs.transfer,
            "strength",
            "style_transfer",
            lambda: gr.Slider(0.0, 1.0, 0.5, step=0.05, label="Strength", info="0 keeps the source, 1 ignores it"),
            controls,
        )
        edit_tab(
            "Inpainting",
            "inpaint",
            "Text for the new parts",
            "Inpaint",
            jobs.inpaint,
            "spans",
            "inpaint",
            lambda: gr.Textbox(label="Time spans to regenerate (s)", placeholder="e.g. 2.0-4.5, 6-7"),
            controls,
        )
        edit_tab(
            "Super-resolution",
            "sr",
            "Text describing the clip",
            "Regenerate the high band",
            jobs.super_resolution,
            "cutoff",
            "super_resolution",
            lambda: gr.Number(4000, label="Cutoff (Hz)", info="kept below, regenerated above"),
            controls,
        )
    app.queue(default_concurrency_limit=1)
    return app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--ckpt",
        help=f"an LDM checkpoint (ours, an original .ckpt or a diffusers folder); default: the "
        f"newest {DEMO_CHECKPOINTS}",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda if available)")
    p.add_argument("--max-duration", type=float, default=30.0, help="longest clip (s) generated or read")
    p.add_argument("--share", action="store_true", help="also make a temporary public link through Gradio's servers")
    p.add_argument("--tokenizer", help="RoBERTa tokenizer folder for LAION-CLAP text (original .ckpt)")
    p.add_argument("--no-ema", action="store_true", help="use the raw UNet weights instead of the EMA")
    p.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="ADAPTER[:SCALE]",
        help="a LoRA adapter on the checkpoint's UNet (repeatable); the page gives each a scale slider",
    )
    p.add_argument("--force-lora", action="store_true", help="apply adapters trained on another base")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from audioldm.checkpoint import CheckpointError
    from audioldm.request.arguments import adapters_from_args, check_model_files
    from audioldm.request.limits import Limits, check_port, resolve_device

    try:
        ckpt = args.ckpt or newest_demo_checkpoint()
        check_model_files(argparse.Namespace(ckpt=ckpt, tokenizer=args.tokenizer, lora=args.lora))
        adapters = adapters_from_args(args)
        Limits(args.max_duration)  # a bad --max-duration, --device or --port fails before the model loads
        device = resolve_device(args.device)
        check_port(args.host, args.port)
        pipe = TextToAudio.from_checkpoint(
            ckpt,
            device,
            use_ema=not args.no_ema,
            tokenizer=args.tokenizer,
            adapters=adapters,
            force_adapters=args.force_lora,
        )
    except (FileNotFoundError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"app: serving {ckpt} on {device}")
    build_app(pipe, ckpt, max_seconds=args.max_duration, adapters=adapters).launch(
        server_name=args.host, server_port=args.port, share=args.share, show_error=False
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
