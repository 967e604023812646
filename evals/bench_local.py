"""Where a local call's time goes, through ``LocalModel`` and through raw llama-cpp-python.

Measures, side by side in one process on the same weights:

* prompt processing and generation tokens/s of raw llama-cpp-python with its defaults
  (``n_threads=None``: half the cores), raw with every core, and ``LocalModel`` (every core,
  its defaults); each prompt read from scratch (the KV cache reset before each call);
* a second call that shares a ~1,000-token prefix with the first, with another call in
  between: ``LocalModel``'s prefix cache against reading the prompt again.

Generation is timed as the difference between a call that generates ``--tokens`` tokens and
one that generates one, on the same prompt read from scratch.

    python -m evals.bench_local --repeat 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from maestro_lite.models import ModelRegistry, ModelSettings
from maestro_lite.models.local import LocalModel, cpu_threads
from maestro_lite.settings import Settings
from maestro_lite.tokens import count_tokens

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "You are a meticulous analyst. Use only the evidence given. Cite evidence by its id."


def _prefix(tokens: int) -> str:
    """About ``tokens`` tokens of evidence lines from the sample documents."""
    lines: list[str] = []
    for path in sorted((ROOT / "sample_docs" / "research").glob("*.*")):
        if path.suffix in (".md", ".txt"):
            lines += [ln.strip() for ln in path.read_text().splitlines() if len(ln.strip()) > 40]
    out: list[str] = []
    for n, line in enumerate(lines, start=1):
        out.append(f"c{n}.s1: {line}")
        if count_tokens("\n".join(out)) >= tokens:
            break
    return "Evidence (cite by id):\n" + "\n".join(out)


def _messages(prefix: str, question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{prefix}\n\nQuestion: {question}"},
    ]


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = call()
    return time.perf_counter() - started, out


def _rates(
    complete: Callable[[list[dict[str, str]], int], dict[str, Any]],
    reset: Callable[[], None],
    prompt: list[dict[str, str]],
    gen: int,
) -> dict[str, float]:
    reset()
    t_one, one = _timed(lambda: complete(prompt, 1))
    reset()
    t_many, many = _timed(lambda: complete(prompt, gen))
    prompt_tokens = one["usage"]["prompt_tokens"]
    generated = many["usage"]["completion_tokens"]
    return {
        "prompt_tokens": prompt_tokens,
        "prompt_tok_s": prompt_tokens / t_one,
        "generated": generated,
        "gen_tok_s": (generated - 1) / max(1e-9, t_many - t_one),
    }


def _raw(path: Path, n_threads: int | None, n_ctx: int) -> Any:
    from llama_cpp import Llama

    from maestro_lite.models.local import _weights_repacked, repacks

    with _weights_repacked(repacks(None)):
        return Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            seed=0,
            verbose=False,
        )


def run(model: str, *, repeat: int, gen: int, prefix_tokens: int) -> dict[str, Any]:
    settings = Settings.from_env()
    registry = ModelRegistry(settings.models_dir, allow_download=settings.allow_download)
    path = registry.ensure(model)
    prefix = _prefix(prefix_tokens)
    prompt = _messages(prefix, "When will the Skylark S3 launch?")
    other = _messages(_prefix(200).replace("c", "d"), "Who makes the MCB-220 board?")
    follow = _messages(prefix, "What will the delay cost?")
    n_ctx = 4096
    results: dict[str, Any] = {"model": model, "cores": cpu_threads(), "rows": {}}

    def plain(llama: Any) -> Callable[[list[dict[str, str]], int], dict[str, Any]]:
        def complete(messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
            out: dict[str, Any] = llama.create_chat_completion(
                messages=messages, temperature=0.0, max_tokens=max_tokens, repeat_penalty=1.1
            )
            return out

        return complete

    rows: dict[str, list[dict[str, float]]] = {}
    for label, threads in (
        ("raw, llama-cpp-python defaults", None),
        ("raw, every core", cpu_threads()),
    ):
        llama = _raw(path, threads, n_ctx)
        rows[label] = [_rates(plain(llama), llama.reset, prompt, gen) for _ in range(repeat)]
        llama.close()

    local = LocalModel(str(path), n_ctx=n_ctx)
    local._ensure_loaded()
    llama = local._llama

    def through_local(messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        return local._complete(
            messages, None, ModelSettings(max_tokens=max_tokens, temperature=0.0)
        )

    def cold() -> None:
        llama.reset()
        if llama.cache is not None:
            llama.cache.cache_state.clear()

    rows["LocalModel"] = [_rates(through_local, cold, prompt, gen) for _ in range(repeat)]
    # A call sharing the prefix, after another call: with the prefix cache, and without.
    shared: dict[str, list[float]] = {
        "first call": [],
        "second call, prefix cache": [],
        "second call, no cache": [],
    }
    for _ in range(repeat):
        cold()
        t_first, _ = _timed(lambda: through_local(prompt, 1))
        through_local(other, 1)
        t_second, _ = _timed(lambda: through_local(follow, 1))
        cold()
        saved, llama.cache = llama.cache, None
        through_local(prompt, 1)
        through_local(other, 1)
        t_uncached, _ = _timed(lambda: through_local(follow, 1))
        llama.cache = saved
        shared["first call"].append(t_first)
        shared["second call, prefix cache"].append(t_second)
        shared["second call, no cache"].append(t_uncached)
    local.close()
    for label, runs in rows.items():
        results["rows"][label] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    results["prefix"] = {k: statistics.median(v) for k, v in shared.items()}
    results["prefix"]["prompt_tokens"] = count_tokens(SYSTEM + prefix)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64, help="tokens generated per call")
    parser.add_argument("--prefix", type=int, default=1000, help="tokens of shared prefix")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    out = run(args.model, repeat=args.repeat, gen=args.tokens, prefix_tokens=args.prefix)
    print(f"model {out['model']}, {out['cores']} core(s); medians of {args.repeat}")
    print(f"{'':34} {'prompt tok/s':>12} {'gen tok/s':>10}")
    for label, row in out["rows"].items():
        print(f"{label:34} {row['prompt_tok_s']:12.1f} {row['gen_tok_s']:10.2f}")
    p = out["prefix"]
    print(
        f"prefix of ~{p['prompt_tokens']} tokens: first call {p['first call']:.1f} s; "
        f"second call after another: {p['second call, prefix cache']:.1f} s with the prefix "
        f"cache, {p['second call, no cache']:.1f} s without"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
