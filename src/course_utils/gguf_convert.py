"""llama.cpp's own converter, ``convert_hf_to_gguf.py``, and a comparison of two GGUF files.

The course writes GGUF files with its own short writer (:func:`course_utils.export.export_gguf`, lesson 08).
On a model of their own, learners will use the converter that llama.cpp maintains for hundreds of
architectures. It is a Python script with a ``conversion`` package beside it and the ``gguf`` package of the
same commit (``gguf-py``: the release on PyPI can lag behind it), shipped in the source distribution of
llama-cpp-python (not in its wheel); ``tools/install.sh`` keeps those files in
``<python prefix>/share/llama.cpp/``. :func:`convert_with_llamacpp` runs it on a folder saved with
``save_pretrained``, and :func:`compare_gguf` says whether two files hold the same tensors:

    ours = export_gguf(model, "ours-f16.gguf", outtype="f16")
    theirs = convert_with_llamacpp(saved_folder, "theirs-f16.gguf", outtype="f16")
    print(compare_gguf(ours, theirs))       # same 272 tensors, same types, largest difference 0

>>> convert_with_llamacpp("/no/such/folder", "out.gguf", outtype="q4")
Traceback (most recent call last):
...
course_utils.errors.InvalidOption: llama.cpp's converter writes f32, f16, bf16, q8_0 or auto, not 'q4'. Fix: convert to f16, then quantize: quant.quantize_gguf(path, out, 'Q4_K_M')

Taught in: lesson 08 (its GGUF section). Tools layer: imports :mod:`.errors` and :mod:`.paths`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError, InvalidOption, ModelNotFound
from .paths import atomic_output

CONVERTER_OUTTYPES = ("f32", "f16", "bf16", "q8_0", "auto")
INSTALL_FIX = "run tools/install.sh again: it fetches the converter from llama-cpp-python's source distribution"


def converter_dir() -> Path:
    """Where ``tools/install.sh`` keeps llama.cpp's converter: ``<python prefix>/share/llama.cpp``."""
    return Path(sys.prefix) / "share" / "llama.cpp"


def converter_script() -> Path:
    """The path of ``convert_hf_to_gguf.py``; a clear error if the install did not fetch it."""
    script = converter_dir() / "convert_hf_to_gguf.py"
    if not all(p.exists() for p in (script, script.parent / "conversion", script.parent / "gguf-py" / "gguf")):
        raise ModelNotFound(f"llama.cpp's converter is not installed ({script} is missing)", fix=INSTALL_FIX)
    return script


def convert_with_llamacpp(hf_dir: str | os.PathLike, out: str | os.PathLike, outtype: str = "f16", timeout: float = 600) -> Path:
    """Run ``convert_hf_to_gguf.py hf_dir --outfile out --outtype outtype`` in a child process.

    ``hf_dir`` is a folder written by ``save_pretrained`` (config, safetensors, tokenizer). The file
    appears only when the conversion succeeded; a failure raises :class:`DataError` with the converter's
    last lines.
    """
    if outtype not in CONVERTER_OUTTYPES:
        raise InvalidOption(f"llama.cpp's converter writes {', '.join(CONVERTER_OUTTYPES[:-1])} or auto, not {outtype!r}",
                            fix="convert to f16, then quantize: quant.quantize_gguf(path, out, 'Q4_K_M')")
    hf_dir, out = Path(hf_dir), Path(out)
    if not (hf_dir / "config.json").is_file():
        raise ModelNotFound(f"{hf_dir} is not a saved Hugging Face model (no config.json)",
                            fix="save one first: model.save_pretrained(folder); tokenizer.save_pretrained(folder)")
    script = converter_script()

    def write(tmp: Path) -> None:
        cmd = [sys.executable, str(script), str(hf_dir), "--outfile", str(tmp), "--outtype", outtype]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(script.parent / "gguf-py"), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise DataError(f"llama.cpp's converter failed on {hf_dir}: {tail}",
                            fix="check that the folder holds a complete save_pretrained() of a supported architecture")

    atomic_output(out, write)
    return out


@dataclass(frozen=True)
class GGUFComparison:
    """What two GGUF files share: tensor names, types and values, and metadata keys."""

    tensors: int  # tensors both files hold
    only_first: tuple[str, ...]
    only_second: tuple[str, ...]
    type_differences: tuple[str, ...]  # same name, another type (e.g. f16 vs f32)
    max_abs_difference: float  # over the tensors of the same name and type, as stored
    keys_only_first: tuple[str, ...]
    keys_only_second: tuple[str, ...]

    @property
    def same_tensors(self) -> bool:
        """The same names, the same types and the same stored values, bit for bit."""
        return not (self.only_first or self.only_second or self.type_differences) and self.max_abs_difference == 0

    def __str__(self) -> str:
        verdict = "the same tensors, bit for bit" if self.same_tensors else "different tensors"
        return (f"{verdict}: {self.tensors} in both, {len(self.only_first)} only in the first, {len(self.only_second)} only in "
                f"the second, {len(self.type_differences)} of another type, largest difference {self.max_abs_difference:g}; "
                f"metadata keys only in the first: {', '.join(self.keys_only_first) or 'none'}; "
                f"only in the second: {', '.join(self.keys_only_second) or 'none'}")


def compare_gguf(first: str | os.PathLike, second: str | os.PathLike) -> GGUFComparison:
    """Compare two GGUF files tensor by tensor (names, types, stored values) and by metadata keys."""
    import gguf
    import numpy as np

    readers = []
    for path in (Path(first), Path(second)):
        try:
            readers.append(gguf.GGUFReader(str(path)))
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {path} as GGUF ({exc})", fix="pass two complete .gguf files") from None
    a, b = ({t.name: t for t in r.tensors} for r in readers)
    shared = [n for n in a if n in b]
    types = tuple(n for n in shared if a[n].tensor_type != b[n].tensor_type)
    worst = 0.0
    for name in shared:
        if name not in types:
            x, y = np.asarray(a[name].data), np.asarray(b[name].data)
            worst = max(worst, float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max()) if x.size else 0.0)
    keys = [set(r.fields) for r in readers]
    return GGUFComparison(len(shared), tuple(sorted(set(a) - set(b))), tuple(sorted(set(b) - set(a))), types, worst,
                          tuple(sorted(keys[0] - keys[1])), tuple(sorted(keys[1] - keys[0])))
