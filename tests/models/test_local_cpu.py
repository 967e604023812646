"""How the local adapter loads llama.cpp on CPUs whose AMX kernels crash it."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro_lite.models.local import LocalModel, _weights_repacked, cpu_has_amx

_AMX = "flags\t\t: fpu sse avx2 avx512f amx_bf16 avx512_fp16 amx_tile amx_int8\n"
_NO_AMX = "flags\t\t: fpu sse avx2 avx512f avx512_vnni\n"


def test_amx_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\n" + _AMX)
    assert cpu_has_amx(cpuinfo)
    cpuinfo.write_text("processor\t: 0\n" + _NO_AMX)
    assert not cpu_has_amx(cpuinfo)
    assert not cpu_has_amx(tmp_path / "absent")  # not Linux: no AMX assumed


def test_repacking_defaults_to_off_only_where_the_cpu_has_amx(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    assert LocalModel(gguf).repack is (not cpu_has_amx())
    assert LocalModel(gguf, repack=True).repack is True
    assert LocalModel(gguf, repack=False).repack is False


def test_models_load_without_extra_buffers_and_the_defaults_are_restored() -> None:
    native = pytest.importorskip("llama_cpp.llama_cpp")
    original = native.llama_model_default_params
    assert original().use_extra_bufts  # llama.cpp's own default
    with _weights_repacked(False):
        assert native.llama_model_default_params().use_extra_bufts is False
    assert native.llama_model_default_params is original
    with _weights_repacked(True):
        assert native.llama_model_default_params is original
    with pytest.raises(RuntimeError), _weights_repacked(False):
        raise RuntimeError("a load that fails")
    assert native.llama_model_default_params is original


def test_the_local_model_uses_every_core_unless_told(tmp_path: Path) -> None:
    from maestro_lite.models.local import cpu_threads

    gguf = tmp_path / "m.gguf"
    assert cpu_threads() >= 1
    assert LocalModel(gguf).n_threads == cpu_threads()
    assert LocalModel(gguf, n_threads=1).n_threads == 1


def test_the_prefix_cache_keeps_the_most_recent_states_by_count() -> None:
    pytest.importorskip("llama_cpp")
    from maestro_lite.models.local import _prefix_cache

    class State:
        llama_state_size = 1  # what the byte count sees; the logits copy is not counted

    cache = _prefix_cache(2)
    for key in ((1, 2, 3), (1, 2, 4), (7, 8)):
        cache[key] = State()
    assert list(cache.cache_state) == [(1, 2, 4), (7, 8)]  # the oldest went
    # A new prompt resumes from the state with the longest shared prefix.
    assert cache[(1, 2, 4, 9)] is cache.cache_state[(1, 2, 4)]
